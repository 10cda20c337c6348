"Tests for vitron_nb.region_encoder: projectors, pooling weights, shape/box codes and the region encoder."
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st, HealthCheck

from vitron_nb.core import VitronConfig, VitronError
from vitron_nb.regions import REGION_KINDS, Region, sample_region
from vitron_nb.region_encoder import (Projector, build_projector, PROJECTOR_KINDS, RegionEncoder, pooling_weights,
                                      region_masks, shape_codes, box_codes, show_region_similarity, N_REGION_TOKENS)

CONFIG = VitronConfig.from_preset("tiny")
GRID = CONFIG.image_size // CONFIG.patch_size


def disk(row=30, col=20, radius=9, size=64):
    rows, cols = np.mgrid[0:size, 0:size]
    return (rows - row) ** 2 + (cols - col) ** 2 <= radius ** 2


def regions_of_every_kind(seed=0):
    rng = np.random.default_rng(seed)
    return [sample_region(disk(), rng, kind) for kind in REGION_KINDS]


# ---------------------------------------------------------------- projectors

@pytest.mark.parametrize("kind", PROJECTOR_KINDS)
def test_projector_shapes(kind):
    projector = build_projector(VitronConfig.from_preset("tiny", projector=kind), 48)
    assert projector.kind == kind and (projector.d_in, projector.d_out) == (48, CONFIG.d_llm)
    assert projector(torch.zeros(48)).shape == (CONFIG.d_llm,)
    assert projector(torch.zeros(3, 5, 48)).shape == (3, 5, CONFIG.d_llm)


def test_projector_linear_is_one_affine_map():
    torch.manual_seed(0)
    projector = Projector(6, 4, "linear")
    layer = projector.layers[0]
    assert len(projector.layers) == 1
    x = torch.randn(5, 6)
    torch.testing.assert_close(projector(x), x @ layer.weight.T + layer.bias)
    # affine: f(a + b) - f(b) = f(a) - f(0)
    a, b = torch.randn(6), torch.randn(6)
    torch.testing.assert_close(projector(a + b) - projector(b), projector(a) - projector(torch.zeros(6)))


def test_projector_mlp2x_gelu_is_linear_gelu_linear():
    torch.manual_seed(0)
    projector = Projector(6, 4, "mlp2x_gelu")
    first, activation, second = projector.layers
    assert isinstance(activation, torch.nn.GELU)
    assert (first.in_features, first.out_features, second.in_features, second.out_features) == (6, 4, 4, 4)
    x = torch.randn(5, 6)
    torch.testing.assert_close(projector(x), F.gelu(x @ first.weight.T + first.bias) @ second.weight.T + second.bias)


def test_projector_errors():
    with pytest.raises(VitronError, match="unknown projector kind 'qformer'"): Projector(4, 8, "qformer")
    with pytest.raises(VitronError, match="d_out must be a positive int"): Projector(4, 0)
    with pytest.raises(VitronError, match="last dimension is 4"): Projector(4, 8)(torch.zeros(2, 5))


def test_build_projector_follows_config():
    paper = VitronConfig.from_preset("paper")
    projector = build_projector(paper, 1024)
    assert projector.kind == "linear" and projector.d_out == 4096


# ---------------------------------------------------------------- pooling weights

def test_pooling_weights_hand_example_2x2_grid():
    # 4 x 4 image, 2 x 2 patches: full top-left patch and half of the top-right patch
    big = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    # 3 pixels (less than one 4-pixel patch): their centre (row 0.83, col 2.17) lies in the top-right patch
    tiny = torch.tensor([[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    # exactly one full patch: coverage (0, 0, 0, 1), not the fallback
    corner = torch.zeros(4, 4, dtype=torch.bool); corner[2:, 2:] = True
    # two half patches on the bottom row: coverage (0, 0, 0.5, 0.5)
    bottom = torch.zeros(4, 4, dtype=torch.bool); bottom[3] = True
    # two far corners (2 pixels): their centre is the image's centre, between patches; the fallback picks a patch
    # the mask touches (top-left or bottom-right), never one it misses
    corners = torch.zeros(4, 4, dtype=torch.bool); corners[0, 0] = corners[3, 3] = True
    weights = pooling_weights(torch.stack([big, tiny, corner, bottom, corners]), grid=2)
    torch.testing.assert_close(weights[:4], torch.tensor([[2 / 3, 1 / 3, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0.5, 0.5]]))
    assert weights[4, 1] == weights[4, 2] == 0 and weights[4].max() == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31 - 1))
def test_pooling_weights_sum_to_one_and_respect_the_mask(seed):
    rng = np.random.default_rng(seed)
    masks = rng.random((3, 16, 16)) < rng.uniform(0.005, 0.5)
    masks[:, rng.integers(16), rng.integers(16)] = True          # never empty
    masks = torch.from_numpy(masks)
    weights = pooling_weights(masks, grid=4)
    torch.testing.assert_close(weights.sum(1), torch.ones(3))
    assert (weights >= 0).all()
    touched = F.adaptive_max_pool2d(masks.float()[:, None], 4).flatten(1) > 0
    assert (weights[~touched] == 0).all()                          # no weight on a patch the mask does not touch
    big = masks.flatten(1).sum(1) >= 16                            # at least one 4 x 4 patch's worth of pixels
    coverage = F.avg_pool2d(masks.float()[:, None], 4).flatten(1)
    torch.testing.assert_close(weights[big], coverage[big] / coverage[big].sum(1, keepdim=True))


def test_pooling_weights_errors():
    masks = torch.zeros(2, 8, 8, dtype=torch.bool); masks[0, 0, 0] = True
    with pytest.raises(VitronError, match="mask 1 of the batch is empty"): pooling_weights(masks, 2)
    with pytest.raises(VitronError, match="B x H x W"): pooling_weights(torch.ones(8, 8), 2)


# ---------------------------------------------------------------- masks and codes

def test_region_masks_accepts_regions_masks_and_arrays():
    box = Region("box", box=(0.25, 0.25, 0.75, 0.5))
    masks = region_masks([box, np.eye(32, dtype=bool), torch.ones(64, 64)], 64)
    assert masks.shape == (3, 64, 64) and masks.dtype == torch.bool
    assert masks[0].sum() == 32 * 16 and masks[1].sum() == 128 and masks[2].all()
    assert region_masks(np.stack([disk(), disk(40, 40)]), 64).shape == (2, 64, 64)


def test_region_masks_errors():
    with pytest.raises(VitronError, match="region 1 of the batch: region mask of shape \\(8, 8\\) is empty"):
        region_masks([np.ones((8, 8)), np.zeros((8, 8))], 64)
    with pytest.raises(VitronError, match="wrap one Region in a list"): region_masks(Region("box", box=(0, 0, 1, 1)), 64)
    with pytest.raises(VitronError, match="non-empty list"): region_masks([], 64)
    with pytest.raises(VitronError, match="B x H x W"): region_masks(np.ones((64, 64), bool), 64)


def test_shape_and_box_codes_by_hand():
    mask = torch.zeros(1, 8, 8, dtype=torch.bool); mask[0, 2:4, 1:6] = True
    torch.testing.assert_close(box_codes(mask), torch.tensor([[1 / 8, 2 / 8, 6 / 8, 4 / 8]]))
    code = shape_codes(mask, grid=4).reshape(4, 4)
    torch.testing.assert_close(code, torch.tensor([[0, 0, 0, 0], [0.5, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0.]]))


# ---------------------------------------------------------------- the encoder

@pytest.mark.parametrize("kind", REGION_KINDS)
@pytest.mark.parametrize("batch", [1, 3])
def test_encoder_output_shape_for_every_kind(kind, batch):
    torch.manual_seed(0)
    encoder = RegionEncoder(CONFIG)
    rng = np.random.default_rng(batch)
    regions = [sample_region(disk(20 + 10 * i, 30), rng, kind) for i in range(batch)]
    tokens = encoder(torch.randn(batch, GRID ** 2, CONFIG.d_vision), regions)
    assert tokens.shape == (batch, N_REGION_TOKENS, CONFIG.d_llm) and torch.isfinite(tokens).all()


@pytest.mark.parametrize("projector", PROJECTOR_KINDS)
def test_encoder_more_tokens_and_both_projectors(projector):
    config = VitronConfig.from_preset("tiny", projector=projector)
    encoder = RegionEncoder(config, n_region_tokens=2)
    assert encoder.projector.kind == projector
    assert encoder(torch.randn(5, GRID ** 2, config.d_vision), regions_of_every_kind()).shape == (5, 2, config.d_llm)


def test_pooled_appearance_by_hand():
    # each patch's feature is its index: the pool is the weighted mean of patch indices
    encoder = RegionEncoder(CONFIG)
    features = torch.arange(GRID ** 2, dtype=torch.float32)[None, :, None].expand(1, -1, CONFIG.d_vision)
    mask = np.zeros((64, 64), bool); mask[0:8, 0:12] = True        # patch 0 fully, half of patch 1
    pooled = encoder.pool(features, [mask])
    torch.testing.assert_close(pooled, torch.full((1, CONFIG.d_vision), 1 / 3))


def test_a_region_and_its_mask_give_the_same_tokens():
    torch.manual_seed(0)
    encoder = RegionEncoder(CONFIG)
    features = torch.randn(1, GRID ** 2, CONFIG.d_vision)
    polygon = Region("polygon", points=[(0.2, 0.8), (0.5, 0.2), (0.8, 0.8)])
    torch.testing.assert_close(encoder(features, [polygon]), encoder(features, [polygon.to_mask(64, 64)]))
    # a mask at half resolution is resized to the image
    half = disk()[::2, ::2]
    torch.testing.assert_close(encoder(features, [half]), encoder(features, [Region("mask", mask=half).to_mask(64, 64)]))


def test_codes_and_gradients():
    torch.manual_seed(0)
    encoder = RegionEncoder(CONFIG)
    features = torch.randn(5, GRID ** 2, CONFIG.d_vision)
    parts = encoder.codes(features, regions_of_every_kind())
    assert parts["appearance"].shape == (5, CONFIG.d_vision) and parts["shape"].shape == (5, 64) and parts["box"].shape == (5, 4)
    torch.testing.assert_close(encoder.tokens_from_codes(parts), encoder(features, regions_of_every_kind()))
    encoder.tokens_from_codes(parts).sum().backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_encoder_errors():
    encoder = RegionEncoder(CONFIG)
    features = torch.randn(2, GRID ** 2, CONFIG.d_vision)
    good = [Region("box", box=(0, 0, 0.5, 0.5))] * 2
    with pytest.raises(VitronError, match="region 1 of the batch: region mask of shape \\(64, 64\\) is empty"):
        encoder(features, [disk(), np.zeros((64, 64), bool)])
    with pytest.raises(VitronError, match="got shape \\(2, 60, 128\\)"): encoder(features[:, :60], good)
    with pytest.raises(VitronError, match="got shape \\(2, 64, 32\\)"): encoder(features[..., :32], good)
    with pytest.raises(VitronError, match="got shape \\(64, 128\\)"): encoder(features[0], good)
    with pytest.raises(VitronError, match="1 regions for a batch of 2 images"): encoder(features, good[:1])
    with pytest.raises(VitronError, match="must be a tensor"): encoder(features.numpy(), good)
    with pytest.raises(VitronError, match="n_region_tokens must be a positive int"): RegionEncoder(CONFIG, n_region_tokens=0)
    with pytest.raises(VitronError, match="needs a VitronConfig"): RegionEncoder({"d_vision": 128})


def test_show_region_similarity_returns_cosines():
    image = np.full((64, 64, 3), 128, np.uint8)
    regions = regions_of_every_kind()[:3]
    features = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    figure, similarity = show_region_similarity(image, regions, features)
    np.testing.assert_allclose(similarity, [[1, 2 ** -0.5, 0], [2 ** -0.5, 1, 2 ** -0.5], [0, 2 ** -0.5, 1]], atol=1e-12)
    with pytest.raises(VitronError, match="n_regions = 3"): show_region_similarity(image, regions, features[:2])
    import matplotlib.pyplot as plt
    plt.close(figure)
