"The pipeline: one folder in and out, refused files named, chat inputs as users have them, calls carried out, history."
import hashlib, json, pickle, shutil, warnings
import numpy as np
import pytest
import torch
from PIL import Image
from vitron_nb.core import VitronConfig, VitronError, CheckpointError, write_json
from vitron_nb.tasks import make_example, ModuleCall
from vitron_nb.regions import Region
from vitron_nb.metrics import mask_iou, j_and_f
from vitron_nb import pipeline
from vitron_nb.world import COLOURS
from vitron_nb.editor import grow_mask, EDIT_GROW
from vitron_nb.pipeline import (Vitron, ChatResult, REQUIRED_FILES, read_picture, read_video, resize_picture, expected_shapes,
                                _boxes_per_frame)
from vitron_nb.core import file_sha256 as _sha256


@pytest.fixture(scope="module")
def vitron():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Vitron.tiny(device="cpu", generator=False)

@pytest.fixture(scope="module")
def saved(vitron, tmp_path_factory): return vitron.save_pretrained(tmp_path_factory.mktemp("pretrained") / "vitron-tiny")

@pytest.fixture(scope="module")
def example(): return make_example("ref_seg", 3, "test")

@pytest.fixture(scope="module")
def vos(): return make_example("vos", 1, "test")

@pytest.fixture
def copy(saved, tmp_path):
    "A fresh copy of the saved folder to break."
    return shutil.copytree(saved, tmp_path / "copy")

def listing(folder): return sorted((p.name, p.stat().st_size) for p in folder.iterdir())


# --- one folder: save_pretrained / from_pretrained ------------------------------------------------------------------

def test_round_trip_same_answers_and_tensors_without_unpickling(vitron, saved, example, monkeypatch):
    manifest = json.loads((saved / "manifest.json").read_text())
    held = ("referring.safetensors",) + (("editor.safetensors",) if vitron.editor is not None else ()) + (
        ("animator.safetensors",) if vitron.animator is not None else ()) + (("signals.safetensors",) if vitron.signals is not None else ())
    assert sorted(manifest["files"]) == sorted(REQUIRED_FILES + held)       # no generator held; the referring segmenter, editor, animator and signals are
    for name, entry in manifest["files"].items():
        data = (saved / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    config = json.loads((saved / "config.json").read_text())
    assert config["format_version"] == 1 and VitronConfig.from_dict(config["config"]) == vitron.config
    def refuse(*args, **kwargs): raise AssertionError("from_pretrained unpickled something")
    for module, name in [(pickle, "load"), (pickle, "loads"), (torch, "load")]: monkeypatch.setattr(module, name, refuse)
    loaded = Vitron.from_pretrained(saved, device="cpu")
    assert loaded.trained == vitron.trained and loaded.generator is None
    for (name, a), b in zip(vitron.model.state_dict().items(), loaded.model.state_dict().values()): assert torch.equal(a, b), name
    for (name, a), b in zip(vitron.segmenter.state_dict().items(), loaded.segmenter.state_dict().values()): assert torch.equal(a, b), name
    assert loaded.referring is not None and loaded.segment_route == vitron.segment_route
    for (name, a), b in zip(vitron.referring.state_dict().items(), loaded.referring.state_dict().values()): assert torch.equal(a, b), name
    assert (loaded.editor is None) == (vitron.editor is None)
    if vitron.editor is not None:
        for (name, a), b in zip(vitron.editor.state_dict().items(), loaded.editor.state_dict().values()): assert torch.equal(a, b), name
    assert (loaded.animator is None) == (vitron.animator is None)
    if vitron.animator is not None:
        for (name, a), b in zip(vitron.animator.state_dict().items(), loaded.animator.state_dict().values()): assert torch.equal(a, b), name
    assert (loaded.signals is None) == (vitron.signals is None) and loaded.message_mode == vitron.message_mode
    if vitron.signals is not None:
        for (name, a), b in zip(vitron.signals.state_dict().items(), loaded.signals.state_dict().values()): assert torch.equal(a, b), name
    question = dict(message="What is in the picture?", image=example.image, max_new_tokens=12)
    before, after = vitron.chat(**question), loaded.chat(**question)
    assert before.answer == after.answer and before.answer
    vitron.reset()

def test_lora_round_trip(vitron, tmp_path):
    from vitron_nb.model import build_model
    from vitron_nb.llm import add_lora
    model = build_model(device="cpu")
    model.llm = add_lora(model.llm, model.config)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.llm.named_parameters():
            if "lora_B" in name: parameter.normal_(0, 0.02)              # LoRA B starts at zero: make the adapter matter
    folder = Vitron.from_components(model=model, segmenter=vitron.segmenter, trained=True).save_pretrained(tmp_path / "lora")
    from safetensors import safe_open
    with safe_open(str(folder / "llm.safetensors"), "pt") as f: names = list(f.keys())
    assert not any("lora_" in n or "base_layer" in n for n in names)      # the base LLM file is plain Llama
    loaded = Vitron.from_pretrained(folder, device="cpu")
    assert hasattr(loaded.model.llm, "peft_config") and loaded.trained is True
    ids = torch.tensor([[1, 50, 60, 70]])
    with torch.no_grad(): a, b = model.llm(input_ids=ids).logits, loaded.model.llm(input_ids=ids).logits
    torch.testing.assert_close(a, b)

def test_generator_round_trip_and_generation_call(vitron, tmp_path):
    pytest.importorskip("diffusers")
    from vitron_nb.generator import load_generator, GENERATOR_PATH
    if not GENERATOR_PATH.is_file(): pytest.skip("no committed generator weights")
    call = "Here it is. <Module> image_generation </Module> <Instruction> generation: a large red circle at the top left </Instruction>"
    without = vitron.execute(call)
    assert without.output is None and "image_generation" in without.note and "not loaded" in without.note
    held = Vitron.from_components(model=vitron.model, segmenter=vitron.segmenter, generator=load_generator(device="cpu"))
    folder = held.save_pretrained(tmp_path / "with-generator")
    assert "generator.safetensors" in json.loads((folder / "manifest.json").read_text())["files"]
    loaded = Vitron.from_pretrained(folder, device="cpu")
    for (name, a), b in zip(held.generator.state_dict().items(), loaded.generator.state_dict().values()): assert torch.equal(a, b), name
    drawn = loaded.execute(call)
    assert drawn.task == "t2i" and drawn.output_kind == "image" and drawn.output.shape == (64, 64, 3) and drawn.output.dtype == np.uint8

def flip_middle_byte(path):
    data = bytearray(path.read_bytes()); data[len(data) // 2] ^= 0xFF; path.write_bytes(bytes(data))

def small_preset_config(folder):
    "config.json rewritten to the small preset, with a manifest that agrees (so only the shapes can catch it)."
    info = json.loads((folder / "config.json").read_text()); info["config"] = VitronConfig.from_preset("small").to_dict()
    write_json(folder / "config.json", info)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["config.json"] = {"bytes": (folder / "config.json").stat().st_size, "sha256": _sha256(folder / "config.json")}
    write_json(folder / "manifest.json", manifest)

def swap_files(folder):
    "segmenter.safetensors and clip.safetensors swapped, manifest updated to match."
    (folder / "clip.safetensors").rename(folder / "tmp"); (folder / "segmenter.safetensors").rename(folder / "clip.safetensors")
    (folder / "tmp").rename(folder / "segmenter.safetensors")
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in ("clip.safetensors", "segmenter.safetensors"):
        manifest["files"][name] = {"bytes": (folder / name).stat().st_size, "sha256": _sha256(folder / name)}
    write_json(folder / "manifest.json", manifest)

FAULTS = {
    "missing file": (lambda f: (f / "segmenter.safetensors").unlink(), r"segmenter\.safetensors is missing"),
    "truncated file": (lambda f: (f / "clip.safetensors").write_bytes((f / "clip.safetensors").read_bytes()[:1000]),
                       r"clip\.safetensors is 1000 bytes but the manifest says \d+: the file is truncated"),
    "sha mismatch": (lambda f: flip_middle_byte(f / "llm.safetensors"), r"llm\.safetensors: its sha256 does not match"),
    "other preset": (small_preset_config, r"clip\.safetensors does not fit config\.json \(preset 'small'\): tensor "
                                          r"'text_model\.embeddings\.token_embedding\.weight' is \(1024, 128\) in the file but \(2048, 256\)"),
    "swapped files": (swap_files, r"clip\.safetensors holds a 'segmenter' model, not the clip"),
    "no manifest": (lambda f: (f / "manifest.json").unlink(), r"has no manifest\.json"),
}

@pytest.mark.parametrize("fault", list(FAULTS))
def test_broken_folders_are_refused_by_name(copy, fault):
    apply, message = FAULTS[fault]
    apply(copy)
    before = listing(copy)
    with pytest.raises(VitronError, match=message) as caught: Vitron.from_pretrained(copy, device="cpu")
    assert isinstance(caught.value, CheckpointError)
    assert listing(copy) == before                                          # refusing writes nothing

def test_config_that_is_not_a_vitron_config_is_refused(copy, tmp_path):
    write_json(copy / "config.json", {"hidden_size": 4096})                  # a transformers config dropped in
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["config.json"] = {"bytes": (copy / "config.json").stat().st_size, "sha256": _sha256(copy / "config.json")}
    write_json(copy / "manifest.json", manifest)
    with pytest.raises(CheckpointError, match=r"config\.json in .* is not a Vitron config"): Vitron.from_pretrained(copy)
    with pytest.raises(CheckpointError, match="is not a folder"): Vitron.from_pretrained(tmp_path / "nowhere")

def test_expected_shapes_of_the_paper_preset_are_vicuna_7b():
    from vitron_nb.llm import VICUNA_7B_PARAMETERS
    shapes = expected_shapes(VitronConfig.from_preset("paper"), lora=False)
    assert sum(int(np.prod(s)) for s in shapes["llm.safetensors"].values()) == VICUNA_7B_PARAMETERS
    assert shapes["llm.safetensors"]["model.embed_tokens.weight"] == (32000, 4096)

def test_interrupted_save_leaves_nothing_and_foreign_folders_are_not_overwritten(vitron, tmp_path):
    def fail(*args, **kwargs): raise KeyboardInterrupt("killed mid-save")
    vitron.segmenter.state_dict = fail
    try:
        with pytest.raises(KeyboardInterrupt): vitron.save_pretrained(tmp_path / "out")
    finally: del vitron.segmenter.state_dict
    assert list(tmp_path.iterdir()) == []                                   # no folder, no temporary folder
    foreign = tmp_path / "mine"; foreign.mkdir(); (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(VitronError, match="already exists"): vitron.save_pretrained(foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


# --- pictures as users have them -------------------------------------------------------------------------------------

def test_pictures_in_every_form_become_rgb(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    assert read_picture(grey).shape == (3, 4, 3) and read_picture(grey)[2, 3].tolist() == [220] * 3
    rgba = np.zeros((1, 2, 4), np.uint8); rgba[0, 0] = (10, 20, 30, 255); rgba[0, 1] = (0, 0, 0, 51)   # 20% opaque black
    assert read_picture(rgba).tolist() == [[[10, 20, 30], [204, 204, 204]]]  # laid over white: 255 * 0.8
    assert read_picture(np.full((2, 2), 0.5))[0, 0].tolist() == [128] * 3 and read_picture(np.full((2, 2, 1), 7, np.int64))[0, 0, 0] == 7
    assert read_picture(Image.fromarray(rgba, "RGBA"))[0, 1].tolist() == [204] * 3
    palette = Image.fromarray(grey).convert("P")
    assert read_picture(palette).shape == (3, 4, 3)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    assert np.array_equal(read_picture(tmp_path / "grey.png"), read_picture(grey)) and np.array_equal(read_picture(str(tmp_path / "grey.png")), read_picture(grey))
    assert resize_picture(read_picture(np.zeros((480, 640, 3), np.uint8)), 64).shape == (64, 64, 3)
    with pytest.raises(VitronError, match="16-bit"): read_picture(Image.fromarray(np.full((4, 4), 1000, np.uint16)))
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(VitronError, match="cannot read .*notes.txt.* as a picture"): read_picture(tmp_path / "notes.txt")

def test_videos_from_lists_and_gif_files(tmp_path):
    frames = [np.zeros((32, 48, 3), np.uint8), np.full((64, 64), 255, np.uint8)]
    assert [f.shape for f in read_video(frames)] == [(32, 48, 3), (64, 64, 3)]
    pictures = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (0, 120, 240)]
    pictures[0].save(tmp_path / "clip.gif", save_all=True, append_images=pictures[1:])
    assert len(read_video(tmp_path / "clip.gif")) == 3
    with pytest.raises(VitronError, match="one frame"): read_video([frames[0]])

def test_big_picture_with_pixel_mask_region_segments_the_object(vitron, example):
    big = np.repeat(np.repeat(example.image, 4, axis=0), 4, axis=1)          # a 256 x 256 photo of the same scene
    mask = np.repeat(np.repeat(example.answer.mask, 4, axis=0), 4, axis=1)  # the user's mask, at the photo's size
    done = vitron.execute("Sure. <Module> image_segmentation </Module> <Instruction> segmentation: it </Instruction>", image=big, region=mask)
    assert done.picture.shape == (64, 64, 3) and done.region.kind == "mask" and isinstance(done.prompt, Region)
    assert mask_iou(done.output, example.answer.mask) > 0.8
    clicked = vitron.execute("Sure. <Module> image_segmentation </Module> <Instruction> segmentation: it </Instruction>",
                             image=big, region=tuple(np.argwhere(mask).mean(0)[::-1]))   # one click, in the photo's pixels
    assert clicked.region.kind == "click" and mask_iou(clicked.output, example.answer.mask) > 0.8


# --- chat: bad input -----------------------------------------------------------------------------------------------

BAD = {
    "empty message": (dict(message=""), "message is empty"),
    "blank message": (dict(message="  \n"), "message is empty"),
    "not a string": (dict(message=None), "message must be a string"),
    "image and video": (dict(message="hi", image="IMAGE", video="VIDEO"), "an image or a video, not both"),
    "region without picture": (dict(message="What is this?", region=(0.1, 0.1, 0.5, 0.5)), "a region needs a picture"),
    "region outside": (dict(message="What is this?", image="IMAGE", region=(10, 10, 90, 90)), "region: .*lies outside the image"),
    "click outside": (dict(message="What is this?", image="IMAGE", region=(70, 3)), r"region: pixel point 1 \(70, 3\) lies outside"),
    "zero-area box": (dict(message="What is this?", image="IMAGE", region=(0.2, 0.2, 0.2, 0.5)), "zero area"),
    "empty mask": (dict(message="What is this?", image="IMAGE", region=np.zeros((64, 64), bool)), "empty"),
    "one-frame video": (dict(message="Track it.", video="VIDEO1"), "video has one frame"),
    "empty video": (dict(message="Track it.", video=[]), "video has no frames"),
    "unreadable path": (dict(message="hi", image="/nonexistent/cat.png"), "cannot read '/nonexistent/cat.png': no such file"),
    "wrong shape": (dict(message="hi", image=np.zeros((64, 64, 2), np.uint8)), r"got shape \(64, 64, 2\)"),
    "video as image": (dict(message="hi", image=np.zeros((8, 64, 64, 3), np.uint8)), "looks like a video"),
    "picture as video": (dict(message="hi", video=np.zeros((64, 64, 3), np.uint8)), "a single picture"),
    "wrong dtype": (dict(message="hi", image=np.zeros((8, 8), complex)), "dtype complex128"),
    "bool image": (dict(message="hi", image=np.zeros((8, 8), bool)), "pass it as region="),
    "float out of range": (dict(message="hi", image=np.full((8, 8, 3), 255.0)), "float pictures must be in 0-1"),
    "reserved token": (dict(message="<Module> hi", image="IMAGE"), "reserved token '<Module>'"),
    "region token without region": (dict(message="What is <region>?", image="IMAGE"), "no region was given"),
    "too long": (dict(message="tell me " * 400, image="IMAGE"), "message too long"),
    "bad max_new_tokens": (dict(message="hi", max_new_tokens=0), "max_new_tokens"),
}

@pytest.mark.parametrize("case", list(BAD))
def test_bad_chat_input_is_refused_by_name(vitron, example, vos, case):
    inputs, message = BAD[case]
    stand_in = {"IMAGE": example.image, "VIDEO": vos.video, "VIDEO1": vos.video[:1]}
    inputs = {k: stand_in.get(v, v) if isinstance(v, str) and k != "message" and v in stand_in else v for k, v in inputs.items()}
    vitron.reset()
    with pytest.raises(VitronError, match=message): vitron.chat(**inputs)
    assert vitron.history == [] and vitron.last_picture is None


# --- carrying out answers -------------------------------------------------------------------------------------------

def test_answers_become_boxes_masks_and_plain_notes(vitron, example, vos):
    done = vitron.execute(example.target_text(), image=example.image)
    assert (done.task, done.output_kind, done.call.module) == ("ref_seg", "mask", "image_segmentation")
    assert vitron.segment_route == "instruction" and done.output.any()               # the referring segmenter read the instruction
    assert done.prompt == f"the call's instruction {example.call.instruction!r}"
    try:
        for route in ("box", "both"):                                                # the call's true box: SAM's own prompt
            vitron.segment_route = route
            assert mask_iou(vitron.execute(example.target_text(), image=example.image).output, example.answer.mask) > 0.9, route
        vitron.segment_route = "sideways"
        with pytest.raises(VitronError, match="segment_route"): vitron.execute(example.target_text(), image=example.image)
    finally: vitron.segment_route = "instruction"
    without = Vitron(vitron.model, vitron.segmenter, trained=vitron.trained)     # no referring segmenter: the call's box prompts SAM
    np.testing.assert_allclose(without.execute(example.target_text(), image=example.image).prompt, example.call.region, atol=0.005)
    box = vitron.execute("the yellow circle: (0.10, 0.20, 0.30, 0.40)", image=example.image)
    assert (box.task, box.output_kind, box.output, box.call) == ("rec", "box", (0.1, 0.2, 0.3, 0.4), None)
    grounded = vitron.execute("(0.10, 0.10, 0.30, 0.30 -> 0.50, 0.10, 0.70, 0.30 | 2, 6)", video=vos.video)
    assert grounded.task == "video_grounding" and grounded.output[:2] == [None, None] and grounded.output[7] is None
    np.testing.assert_allclose(grounded.output[4], (0.3, 0.1, 0.5, 0.3))   # halfway from frame 2 to frame 6
    if vitron.animator is not None:                   # no generator held: the animator makes the video from the words alone
        later = vitron.execute("Here. <Module> video_generation </Module> <Instruction> generation: a red circle moving right </Instruction>")
        assert later.task == "t2v" and later.output_kind == "video" and later.output.shape == (8, 64, 64, 3) and later.note is None
        assert later.prompt == "the words alone; colour red, shape circle, size medium, motion right, speed slowly", later.prompt
    cut = vitron.execute("Sure <Module> image_segmentation </Module> <Instruction> segm", image=example.image)
    assert cut.call is None and cut.output is None and "truncated" in cut.call_error and cut.note.startswith("no module was called")
    plain = vitron.execute("a small yellow circle")
    assert (plain.task, plain.output, plain.note) == ("reply", None, None)

def test_video_segmentation_tracks_every_frame(vitron, vos):
    done = vitron.execute(vos.target_text(), video=vos.video, region=vos.region)
    assert done.task == "vos" and done.output_kind == "masks" and done.output.shape == vos.answer.masks.shape
    assert j_and_f(done.output, vos.answer.masks)["jf"] > 0.6

def test_long_video_llm_sees_n_frames_boxes_cover_all():
    assert _boxes_per_frame("(0.10, 0.10, 0.30, 0.30 | 1, 2)", 16, 8) == [None] * 2 + [(0.1, 0.1, 0.3, 0.3)] * 4 + [None] * 10
    assert _boxes_per_frame("(0.10, 0.10, 0.30, 0.30 | 1, 2)", 4, 8) == [None, (0.1, 0.1, 0.3, 0.3), (0.1, 0.1, 0.3, 0.3), None]
    assert _boxes_per_frame("no box here", 4, 8) is None


def test_image_edit_repaints_only_the_target(vitron):
    if vitron.editor is None: pytest.skip("no committed editor weights")
    edit = make_example("image_edit", 3, "test")                             # "editing: make the yellow triangle purple"
    done = vitron.execute(edit.target_text(), image=edit.image)
    assert (done.task, done.output_kind, done.note) == ("image_edit", "image", None) and done.output.shape == edit.image.shape
    assert done.prompt == "the call's instruction 'segmentation: yellow triangle'"   # the object's name, for the referring segmenter
    _, mask, _, _ = vitron._segment(pipeline._target_call(edit.call, pipeline.read_edit(edit.call.instruction)), vitron._inputs(edit.image))
    assert mask_iou(mask, edit.answer.target_mask) > 0.8                    # the target, found from its name
    changed = (done.output != edit.image).any(-1)
    assert changed.sum() > 0.5 * mask.sum() and not (changed & ~grow_mask(mask, EDIT_GROW)).any()   # outside it: the picture's own pixels
    inside = done.output[edit.answer.target_mask].mean(0)
    assert np.abs(inside - COLOURS["purple"]).sum() < np.abs(inside - COLOURS["yellow"]).sum()

def test_video_edit_repaints_every_frame(vitron):
    if vitron.editor is None: pytest.skip("no committed editor weights")
    edit = make_example("video_edit", 0, "test")
    done = vitron.execute(edit.target_text(), video=edit.video)
    assert (done.task, done.output_kind, done.note) == ("video_edit", "video", None) and done.output.shape == edit.video.shape
    changed = (done.output != edit.video).any(-1)
    assert changed.reshape(len(changed), -1).any(1)[edit.answer.masks.reshape(len(changed), -1).sum(1) >= 6].all()

def test_unreadable_edits_give_notes_not_crashes(vitron, example, vos):
    run = lambda instruction, module="image_editing", **given: vitron.execute(
        f"Done. <Module> {module} </Module> <Instruction> {instruction} </Instruction>", **given)
    cases = [(run("editing: make it nicer", image=example.image), "could not read a new colour"),
             (run("editing: turn the circle into something else", image=example.image), "no shape named after 'into'"),
             (run("editing: make it blue", image=example.image), "does not say the object's shape"),       # no earlier turn to ask
             (run("editing: make the red circle blue"), "needs a picture"),
             (run("editing: make the red circle blue", "video_editing", image=example.image), "video_editing needs a video")]
    if vitron.editor is None: cases = []
    for result, words in cases:
        assert result.output is None and result.output_kind is None and words in result.note, (result.note, words)
    without = Vitron(vitron.model, vitron.segmenter, trained=vitron.trained)
    assert "image_editing specialist is not loaded" in without.execute(example.target_text().replace("image_segmentation", "image_editing"),
                                                                         image=example.image).note


# --- the conversation ----------------------------------------------------------------------------------------------

def test_follow_up_uses_the_last_picture_and_mask_and_reset_forgets(vitron, example, vos, monkeypatch):
    script, seen = [], []
    def scripted(model, examples, max_new_tokens=96, logits_processor=None):
        seen.append(examples[0]); return [script.pop(0)]
    monkeypatch.setattr(pipeline, "answer", scripted)
    vitron.reset()
    script += [example.target_text(), "Again. <Module> image_segmentation </Module> <Instruction> segmentation: it </Instruction>",
               "Done. <Module> image_editing </Module> <Instruction> editing: make it blue </Instruction>", "hello"]
    first = vitron.chat("Segment the yellow circle.", image=example.image)
    assert seen[0].image is not None and seen[0].video is None and np.array_equal(vitron.last_mask, first.output)
    again = vitron.chat("Segment it again.")                                # no picture: the previous one, and its mask as prompt
    assert again.from_history and np.array_equal(seen[1].image, first.picture) and again.prompt.kind == "mask"
    assert np.array_equal(again.prompt.mask, first.output) and mask_iou(again.output, first.output) > 0.5   # prompted by the last mask
    blue = vitron.chat("Now make it blue.")                                  # the segmented object, its shape from the first turn
    assert blue.from_history and np.array_equal(blue.prompt.mask, again.output)
    if vitron.editor is not None:
        assert (blue.task, blue.output_kind, blue.note) == ("image_edit", "image", None)
        changed = (blue.output != first.picture).any(-1)
        assert changed.any() and not (changed & ~grow_mask(again.output, EDIT_GROW)).any()     # only the segmented object is repainted
        assert np.array_equal(vitron.last_picture, blue.output)             # the next turn is about the edited picture
    assert [r.message for r in vitron.history] == ["Segment the yellow circle.", "Segment it again.", "Now make it blue."]
    vitron.reset()
    assert vitron.history == [] and vitron.last_picture is None and vitron.last_mask is None
    text_only = vitron.chat("Say hello.")
    assert seen[3].image is None and seen[3].video is None and text_only.picture is None
    vitron.reset()

def test_long_video_is_subsampled_for_the_llm_only(vitron, monkeypatch):
    seen = []
    monkeypatch.setattr(pipeline, "answer", lambda model, examples, max_new_tokens=96, logits_processor=None: seen.append(examples[0]) or ["a video"])
    video = np.random.default_rng(0).integers(0, 255, (20, 48, 40, 3), dtype=np.uint8)
    result = vitron.chat("Describe the video.", video=video, region=(5, 5, 20, 30))
    assert seen[0].video.shape == (vitron.config.n_frames, 64, 64, 3) and result.video.shape == (20, 64, 64, 3)
    np.testing.assert_allclose(result.region.box, (5 / 40, 5 / 48, 20 / 40, 30 / 48))   # pixels of the frame as given
    vitron.reset()

def test_tiny_without_trained_weights_warns_and_is_seeded(vitron, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "VITRON_TINY", tmp_path)
    with pytest.warns(UserWarning, match="freshly initialised"): fresh = Vitron.tiny(device="cpu", generator=False)
    assert fresh.trained is False and "freshly initialised" in repr(fresh)
    if vitron.trained is False:
        for (name, a), b in zip(vitron.model.image_projector.state_dict().items(), fresh.model.image_projector.state_dict().values()):
            assert torch.equal(a, b), name                                   # seed 0 both times

def test_parts_must_agree(vitron):
    from vitron_nb.segmenter import build_segmenter
    with pytest.raises(VitronError, match="model must be a model.VitronModel"): Vitron("model", vitron.segmenter)
    with pytest.raises(VitronError, match="editor must be an editor.Editor"): Vitron(vitron.model, vitron.segmenter, editor=vitron.segmenter)
    with pytest.raises(VitronError, match="animator must be an animator.Animator"): Vitron(vitron.model, vitron.segmenter, animator=vitron.segmenter)
    with pytest.raises(VitronError, match="reads 128 px pictures but the model 64 px"):
        Vitron(vitron.model, build_segmenter(VitronConfig(image_size=128, patch_size=8)))
