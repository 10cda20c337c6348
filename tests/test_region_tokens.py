"Two region tokens (14_model): config.region_tokens LLM tokens per sketch, each a learned mix of every code (default 1)."
import pytest, torch
from vitron_nb.core import VitronConfig, VitronError, set_seed

def test_one_token_by_default_old_configs_load_and_a_bad_count_is_refused():
    from vitron_nb.region_encoder import RegionEncoder, N_REGION_TOKENS
    old = {k: v for k, v in VitronConfig().to_dict().items() if k != "region_tokens"}
    assert VitronConfig.from_dict(old).region_tokens == 1 and N_REGION_TOKENS == 1
    assert RegionEncoder(VitronConfig()).n_region_tokens == 1
    two = RegionEncoder(VitronConfig(region_tokens=2))
    assert two.n_region_tokens == 2 and two.mix.out_features == 2 * VitronConfig().d_vision
    assert RegionEncoder(VitronConfig(region_tokens=2), n_region_tokens=3).n_region_tokens == 3     # the parameter overrides the field
    for bad in (0, 1.5, True):
        with pytest.raises(VitronError, match="region_tokens must be"): VitronConfig(region_tokens=bad)

def test_each_sketch_takes_two_rows_in_the_prompt_and_the_model_trains_and_reloads(tmp_path):
    from vitron_nb.model import build_model, encode_batch, batch_loss, media_embeddings, answer, train_stage, save_trained, load_trained, user_text
    from vitron_nb.tasks import make_examples
    examples = make_examples(["region_caption"], 2, "train")
    set_seed(0); one = build_model(VitronConfig())
    set_seed(0); two = build_model(VitronConfig(region_tokens=2))
    rows = media_embeddings(two, examples)["region"]
    assert [tuple(r.shape) for r in rows] == [(2, two.config.d_llm)] * 2 and not torch.allclose(rows[0][0], rows[0][1])
    width = lambda model: encode_batch(model, examples)["inputs_embeds"].shape[1]
    assert all("<region>" in user_text(e) for e in examples) and width(two) == width(one) + 1     # one more position per sketch
    with torch.no_grad():                                     # the second token reaches the LLM's loss
        before = batch_loss(two, examples); two.region_encoder.mix.weight[two.config.d_vision:].mul_(5.0); after = batch_loss(two, examples)
    assert not torch.isclose(before, after)
    record = train_stage(two, "1.1", steps=1, batch_size=2, out_dir=tmp_path, tasks={"region_caption": 1}, progress=False)
    assert record["final_loss"] is not None and torch.isfinite(torch.tensor(record["final_loss"]))
    save_trained(two, tmp_path / "m")
    again = load_trained(tmp_path / "m")
    assert again.config.region_tokens == 2 and torch.equal(again.region_encoder.mix.weight, two.region_encoder.mix.weight)
    assert answer(again, examples[:1], max_new_tokens=4) == answer(two, examples[:1], max_new_tokens=4)

def test_the_cli_flag_sets_the_field_and_refuses_zero():
    from tests.test_cli import run
    from vitron_nb.cli import LEVER_FLAGS, build_parser
    assert LEVER_FLAGS["region_tokens"] == "--region-tokens"
    assert build_parser().parse_args(["train", "--only", "vitron", "--region-tokens", "2"]).region_tokens == 2
    code, out, err = run("train", "--only", "vitron", "--region-tokens", "0")
    assert code != 0 and "region_tokens must be >= 1 (LLM tokens per region), got 0" in err and "Traceback" not in err
    code, out, err = run("train", "--only", "clip", "--region-tokens", "2")
    assert code != 0 and "belong to --only vitron" in err

def test_the_flag_reaches_the_model_the_command_builds(monkeypatch, tmp_path):
    import vitron_nb.model
    from tests.test_cli import run
    built = {}
    def stop(config):
        built["config"] = config; raise VitronError("stopped before training")
    monkeypatch.setattr(vitron_nb.model, "build_model", stop)
    code, out, err = run("train", "--only", "vitron", "--region-tokens", "2", "--out", str(tmp_path / "run"))
    assert code != 0 and "stopped before training" in err and built["config"].region_tokens == 2
