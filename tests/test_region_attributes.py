"The attribute head in the region token (14_model): CLIP's dense head, its class probabilities pooled inside the sketch, as a fourth code."
import pytest, torch
from vitron_nb.core import VitronConfig, VitronError, set_seed

def test_the_lever_is_off_by_default_and_old_configs_load_without_it():
    from vitron_nb.region_encoder import RegionEncoder
    old = {k: v for k, v in VitronConfig().to_dict().items() if k != "region_attributes"}
    assert VitronConfig.from_dict(old).region_attributes is False
    plain, read = RegionEncoder(VitronConfig()), RegionEncoder(VitronConfig(region_attributes=True))
    assert not hasattr(plain, "attribute_mlp") and plain.mix.in_features == 3 * VitronConfig().d_vision
    assert read.mix.in_features == 4 * VitronConfig().d_vision

def test_the_region_token_reads_the_head_and_refuses_to_run_without_it():
    from vitron_nb.region_encoder import RegionEncoder
    from vitron_nb.regions import Region
    from vitron_nb.vision import PATCH_CLASSES
    config = VitronConfig(region_attributes=True); side = config.image_size // config.patch_size
    set_seed(0); encoder = RegionEncoder(config).eval()
    features, regions = torch.randn(2, side * side, config.d_vision), [Region("box", box=(0.1, 0.1, 0.5, 0.5))] * 2
    k = sum(PATCH_CLASSES.values())
    a, b = torch.zeros(2, side * side, k), torch.zeros(2, side * side, k)
    a[..., 1] = 1.0; b[..., 2] = 1.0                                       # every patch: one colour, then another
    with torch.no_grad():
        ta, tb = encoder(features, regions, a), encoder(features, regions, b)
    assert ta.shape == (2, encoder.n_region_tokens, config.d_llm) and not torch.allclose(ta, tb)
    parts = encoder.codes(features, regions, a)
    assert torch.allclose(parts["attributes"][:, 1], torch.ones(2))       # pooling weights sum to one inside the sketch
    with pytest.raises(VitronError, match="config.region_attributes"): encoder(features, regions)
    with pytest.raises(VitronError, match="attributes must be a tensor"): encoder(features, regions, a[:, :3])

def test_a_model_with_the_lever_feeds_the_head_trains_and_reloads(tmp_path):
    from vitron_nb.model import build_model, media_embeddings, train_stage, save_trained, load_trained
    from vitron_nb.tasks import make_examples
    examples = make_examples(["region_caption"], 2, "train")
    set_seed(0); model = build_model(VitronConfig(region_attributes=True))
    before = torch.stack(media_embeddings(model, examples)["region"])
    with torch.no_grad(): model.region_encoder.attribute_mlp[-1].weight.mul_(3.0)     # the head's code reaches the tokens
    assert not torch.allclose(torch.stack(media_embeddings(model, examples)["region"]), before)
    record = train_stage(model, "1.1", steps=1, batch_size=2, out_dir=tmp_path, tasks={"region_caption": 1}, progress=False)
    assert record["final_loss"] is not None and torch.isfinite(torch.tensor(record["final_loss"]))
    save_trained(model, tmp_path / "m")
    again = load_trained(tmp_path / "m")
    assert again.config.region_attributes and torch.equal(again.region_encoder.attribute_mlp[0].weight, model.region_encoder.attribute_mlp[0].weight)

def test_the_cli_flag_sets_the_field():
    from vitron_nb.cli import LEVER_FLAGS, build_parser
    assert LEVER_FLAGS["region_attributes"] == "--region-attributes"
    args = build_parser().parse_args(["train", "--only", "vitron", "--region-attributes"])
    assert args.region_attributes is True
