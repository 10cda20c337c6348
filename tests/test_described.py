"""Scenes written out in words for the LLM: described_example, described_rec and tune_on_described (12_llm)."""
import json
import numpy as np
import pytest
import torch
from vitron_nb.core import VitronError, VitronConfig, DATA_SAMPLES, set_seed
from vitron_nb.llm import (DESCRIBED_TASKS, described_example, described_rec, tune_on_described, scene_words, build_llm,
                           dialogue, dialogue_loss, _recorded_renders)
from vitron_nb.world import Scene, sample_scene
from vitron_nb.tasks import make_example


def test_a_described_example_is_the_example_with_its_own_scene_written_out():
    for task in DESCRIBED_TASKS:
        example, turn = described_example(task, 3, "test")
        plain = make_example(task, 3, "test")
        assert example.target_text() == plain.target_text() and example.instruction == plain.instruction
        assert turn.startswith("<image> Objects: ") and turn.endswith(" " + plain.instruction)
    example, turn = described_example("rec", 7, "train")
    box = example.target_text().split(": ", 1)[1]
    assert box in turn                          # the answer's box is written in the scene


def test_scene_words_names_every_visible_object_with_its_box():
    scene = sample_scene(np.random.default_rng(4), VitronConfig(), "train")
    _, masks = scene.render()
    words = scene_words(scene, masks, np.random.default_rng(0))
    assert words.startswith("Objects: ") and words.endswith(").")
    assert words.count(": (") == sum(bool(m.any()) for m in masks)
    for o in scene.objects: assert f"{o.size} {o.name}: (" in words


def test_renders_are_recorded_only_inside_the_block():
    original = Scene.render
    with _recorded_renders() as seen: make_example("rec", 0, "train")
    assert Scene.render is original and len(seen) >= 1
    with pytest.raises(RuntimeError):
        with _recorded_renders(): raise RuntimeError("boom")
    assert Scene.render is original             # restored when the block fails too


def test_bad_input_is_refused_by_name():
    with pytest.raises(VitronError, match="task must be one of"): described_example("t2i", 0)
    llm = build_llm(VitronConfig())
    with pytest.raises(VitronError, match="n must be >= 1"): described_rec(llm, n=0)
    with pytest.raises(VitronError, match="steps and batch_size must be >= 1"): tune_on_described(llm, 0)
    with pytest.raises(VitronError, match="precision"): tune_on_described(llm, 1, precision="fp8")


def test_tuning_lowers_the_loss_on_what_it_read_and_reading_scores_shares():
    set_seed(0)
    llm = build_llm(VitronConfig())
    first = [dialogue(t, e.target_text()) for e, t in (described_example("rec", i, "train") for i in range(4))]
    before = dialogue_loss(llm, first, assistant_only=True)["loss"]
    losses = tune_on_described(llm, steps=6, batch_size=4, lr=3e-3)
    assert len(losses) == 6 and dialogue_loss(llm, first, assistant_only=True)["loss"] < before
    read = described_rec(llm, n=2)
    assert read["n"] == 2 and 0 <= read["rec"] <= 1 and 0 <= read["name_right"] <= 1


def test_the_record_states_what_it_measured():
    record = json.loads((DATA_SAMPLES / "reproduction" / "described_scenes.json").read_text())
    assert record["tuned"]["text_rec"] > 5 * record["committed_stage0"]["text_rec"]
    curve = [c["text_rec"] for c in record["tuned_curve"]] + [record["tuned"]["text_rec"]]
    assert curve == sorted(curve)
    arms = {(r["llm"], bool(r["config"]), r["seed"]): r for r in record["transfer"]}
    assert ("committed", False, 0) in arms and ("tuned", False, 0) in arms
    for r in record["transfer"]:
        assert 0 <= r["rec"] <= 1 and abs(sum(r["kinds"][k] * r["n_kinds"][k] for k in r["kinds"]) / sum(r["n_kinds"].values()) - r["image_qa"]) < 2e-3
