"Region-only views (14_model): a share of the sketched training examples given without their picture's tokens."
import pytest, torch
from vitron_nb.core import VitronConfig, VitronError, set_seed
from vitron_nb.model import stage_examples, region_only_view, user_text

def test_the_share_picks_sketched_examples_only_and_no_share_changes_nothing():
    config = VitronConfig()
    plain = [e for step in range(12) for e in stage_examples("1.1", step, 8, config)]
    viewed = [e for step in range(12) for e in stage_examples("1.1", step, 8, config, region_only=0.5)]
    assert [e.id for e in plain] == [e.id for e in viewed]                         # the same examples, some viewed otherwise
    sketched = [v for v in viewed if v.region is not None]
    only = [v for v in viewed if v.meta.get("region_only")]
    assert only and all(v.region is not None for v in only) and 0.3 < len(only) / len(sketched) < 0.7
    assert all("<image>" not in user_text(v) and "<region>" in user_text(v) for v in only)
    assert all("<image>" in user_text(p) for p, v in zip(plain, viewed) if v.meta.get("region_only"))
    assert not any(e.meta.get("region_only") for e in plain)
    with pytest.raises(VitronError, match="region_only is a share"): stage_examples("1.1", 0, 8, config, region_only=1.5)
    no_sketch = next(e for e in plain if e.region is None)
    with pytest.raises(VitronError, match="only an example with a sketch"): region_only_view(no_sketch)

def test_a_region_only_example_trains_on_the_sketchs_tokens_alone(tmp_path):
    from vitron_nb.model import build_model, media_embeddings, encode_batch, train_stage
    from vitron_nb.tasks import make_examples
    set_seed(0); model = build_model()
    example = make_examples(["region_caption"], 1, "train")[0]
    alone = region_only_view(example)
    media = media_embeddings(model, [alone])
    assert media["image"] == [] and len(media["region"]) == 1
    assert torch.allclose(media["region"][0], media_embeddings(model, [example])["region"][0])   # the same sketch tokens, from the same picture
    full, short = encode_batch(model, [example]), encode_batch(model, [alone])
    assert full["inputs_embeds"].shape[1] > short["inputs_embeds"].shape[1]                  # the picture's tokens are gone
    record = train_stage(model, "1.1", steps=2, batch_size=4, out_dir=tmp_path, region_only=0.5, progress=False)
    assert record["region_only"] == 0.5 and torch.isfinite(torch.tensor(record["final_loss"]))

def test_the_cli_takes_a_share_for_the_alignment_stages_only():
    from tests.test_cli import run
    code, _, err = run("train", "--only", "vitron", "--region-only", "2")
    assert code == 2 and "--region-only takes a share" in err
    code, _, err = run("train", "--only", "llm", "--region-only", "0.5")
    assert code == 2 and "--only vitron" in err
