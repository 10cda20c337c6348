"The answer grammar: format_answer writes it, parse_answer reads it back exactly, names every error and never raises on a string."
import re
import numpy as np, pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from vitron_nb.core import VitronError
from vitron_nb.tasks import MODULES, ModuleCall, make_examples
from vitron_nb.calls import (format_answer, parse_answer, ParsedAnswer, FALLBACKS, MESSAGE_MODES, call_inputs)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAG = re.compile(r"</?(?:module|instruction|region)>|<signal_\d+>", re.IGNORECASE | re.ASCII)
SIGNALS = "<signal_0><signal_1><signal_2><signal_3>"
CALL = "<Module> image_segmentation </Module> <Instruction> segment the red circle </Instruction>"
GOOD = f"Sure. {CALL} <Region> (0.10, 0.20, 0.40, 0.50) </Region> {SIGNALS}"

# ---------- writing ----------

def test_format_answer_writes_the_exact_text():
    call = ModuleCall("image_segmentation", "segmentation: red circle", (0.1, 0.2, 0.35, 0.5))
    assert format_answer("Here it is.", call, n_signal=4) == (
        "Here it is. <Module> image_segmentation </Module> <Instruction> segmentation: red circle </Instruction> "
        "<Region> (0.10, 0.20, 0.35, 0.50) </Region> <signal_0><signal_1><signal_2><signal_3>")
    assert format_answer("Here it is.", call, n_signal=0) == "Here it is. " + call.to_text()
    assert format_answer("  a small red circle \n") == "a small red circle"          # no call: no signal tokens
    assert format_answer("", ModuleCall("video_generation", "generation: a cat"), n_signal=2) == (
        "<Module> video_generation </Module> <Instruction> generation: a cat </Instruction> <signal_0><signal_1>")
    assert format_answer("ok", ModuleCall("video_generation", "g")).endswith(SIGNALS)    # default: VitronConfig().n_signal == 4

def test_format_answer_agrees_with_the_data():
    for ex in make_examples(n_per_task=2, split="train"):
        assert format_answer(ex.answer.text, ex.call, n_signal=0) == ex.target_text()
        text = format_answer(ex.answer.text, ex.call, n_signal=4)
        assert text == ex.target_text() + (" " + SIGNALS if ex.call else "")
        parsed = parse_answer(text, n_signal=4)
        assert (parsed.reply, parsed.error, parsed.fallback) == (ex.answer.text, None, None)
        assert (parsed.call is None) == (ex.call is None)
        if ex.call:
            assert (parsed.call.module, parsed.call.instruction) == (ex.call.module, ex.call.instruction)
            assert parsed.call.region == (None if ex.call.region is None else tuple(round(v, 2) for v in ex.call.region))

@pytest.mark.parametrize("make, fragment", [
    (lambda: format_answer("see <Module> here"), "reply contains the tag '<Module>'"),
    (lambda: format_answer("x", ModuleCall("image_editing", "a <signal_0> b")), "instruction contains the tag '<signal_0>'"),
    (lambda: format_answer("x", ModuleCall("image_editing", " edit")), "leading or trailing whitespace"),
    (lambda: format_answer("x", ModuleCall("image_editing", "edit", (0.121, 0.1, 0.124, 0.3))), "empty or flipped"),
    (lambda: format_answer("x ends in <Modu"), "ends inside a tag"),
    (lambda: format_answer(3), "reply must be a string"),
    (lambda: format_answer("x", "<Module> a </Module>"), "call must be a tasks.ModuleCall"),
    (lambda: format_answer("x", n_signal=33), "n_signal must be a whole number from 0 to 32"),
])
def test_format_answer_refuses_what_would_not_read_back(make, fragment):
    with pytest.raises(VitronError, match=re.escape(fragment)): make()

# ---------- reading: the round trip ----------

replies = st.text(max_size=40).map(str.strip).filter(lambda r: not TAG.search(r))
instructions = st.text(min_size=1, max_size=40).map(str.strip).filter(lambda s: s and not TAG.search(s))
grid_boxes = st.tuples(st.integers(0, 100), st.integers(0, 100), st.integers(0, 100), st.integers(0, 100)).filter(
    lambda b: b[0] < b[2] and b[1] < b[3]).map(lambda b: tuple(v / 100 for v in b))
calls = st.builds(ModuleCall, st.sampled_from(MODULES), instructions, st.none() | grid_boxes)

@FUZZ
@given(replies, st.none() | calls, st.integers(0, 8))
def test_round_trip_recovers_reply_and_call_exactly(reply, call, n_signal):
    try: text = format_answer(reply, call, n_signal)
    except VitronError as e:                 # only a reply that itself ends like a cut-off tag ('x <Mod') is refused
        assert "ends inside a tag" in str(e); return
    parsed = parse_answer(text, n_signal)
    assert (parsed.reply, parsed.call, parsed.error, parsed.fallback) == (reply, call, None, None)
    assert len(parsed.signal_positions) == (n_signal if call else 0)
    assert [text[p: text.index(">", p) + 1] for p in parsed.signal_positions] == [f"<signal_{i}>" for i in range(len(parsed.signal_positions))]

# ---------- reading: every error case ----------

@pytest.mark.parametrize("text, fragment, fallback", [
    (f"Sure. {CALL.replace('image_segmentation', 'painting')} {SIGNALS}", "unknown module 'painting'", "reply_only"),
    (f"Sure. {CALL.replace('image_segmentation', 'B')} {SIGNALS}", "modules are named, never lettered", "reply_only"),
    (f"Sure. {CALL.replace('image_segmentation', 'Image Segmentation')} {SIGNALS}", "write it as 'image_segmentation'", "reply_only"),
    (f"{CALL} <Region> 0.1 0.2 0.4 </Region> {SIGNALS}", "malformed region '0.1 0.2 0.4'", "reply_only"),
    (f"{CALL} <Region> (0.1, 0.2, 0.3) </Region> {SIGNALS}", "malformed region '(0.1, 0.2, 0.3)'", "reply_only"),
    (f"{CALL} <Region> (0.10, 0.20, 1.40, 0.50) </Region> {SIGNALS}", "region '(0.10, 0.20, 1.40, 0.50)' is outside [0, 1]", "reply_only"),
    (f"{CALL} <Region> (-0.1, 0.20, 0.40, 0.50) </Region> {SIGNALS}", "is outside [0, 1]", "reply_only"),
    (f"{CALL} <Region> (0.40, 0.20, 0.10, 0.50) </Region> {SIGNALS}", "empty or flipped: need x1 < x2", "reply_only"),
    (f"Sure. {CALL}", "no signal tokens after the call (expected 4: <signal_0>...<signal_3>)", "text_only"),
    (f"Sure. {CALL} <signal_0><signal_1>", "only 2 of 4 signal tokens", "text_only"),
    (f"Sure. {CALL} {SIGNALS}<signal_4>", "5 signal tokens after the call (expected 4", "text_only"),
    (f"Sure. {CALL} <signal_1><signal_0><signal_2><signal_3>", "wrong numbers or order", "text_only"),
    (f"Sure. {CALL} <signal_0> um <signal_1><signal_2><signal_3>", "text 'um' among the signal tokens", "text_only"),
    ("Sure. <Module> image_segmentation </Module> <Instruction> segment the", "truncated answer: <Instruction> is never closed (the answer ends with 'segment the')", "reply_only"),
    ("Sure. <Module> image_segmentation </Module>", "truncated answer: it ends after </Module>, before <Instruction>", "reply_only"),
    ("Sure. <Module> image_segmentation </Mod", "the answer ends inside a tag ('</Mod')", "reply_only"),
    ("Sure, I will segm <Mo", "the answer ends inside a tag ('<Mo')", "reply_only"),
    (f"Sure. {CALL} {SIGNALS} {CALL} {SIGNALS}", "duplicated call: 2 <Module> tags", "reply_only"),
    (f"Sure. {CALL} {CALL} {SIGNALS}", "duplicated call", "reply_only"),
    ("<Instruction> segment </Instruction> <Module> image_segmentation </Module>", "expected <Module> first, found <Instruction>", "reply_only"),
    ("<Module> image_segmentation </Module> <Region> (0.1, 0.2, 0.3, 0.4) </Region> <Instruction> x </Instruction>",
     "expected <Instruction> after </Module>, found <Region>", "reply_only"),
    ("<Module> image_segmentation <Instruction> x </Instruction> </Module>", "expected </Module> after <Module>, found <Instruction>", "reply_only"),
    (f"{CALL} {SIGNALS} </Region>", "unexpected </Region> after the call", "reply_only"),
    (f"Sure. {SIGNALS}", "signal tokens without a module call", "reply_only"),
    (f"{CALL.replace('Instruction', 'instruction')} {SIGNALS}", "tag '<instruction>' must be written '<Instruction>'", "reply_only"),
    ("<Module>  </Module> <Instruction> x </Instruction>", "empty module name", "reply_only"),
    ("<Module> image_editing </Module> <Instruction>   </Instruction>", "empty instruction", "reply_only"),
    ("<Module> image_editing </Module> so <Instruction> x </Instruction>", "unexpected text 'so' between </Module> and <Instruction>", "reply_only"),
])
def test_each_error_is_named_with_its_fallback(text, fragment, fallback):
    parsed = parse_answer(text, n_signal=4)
    assert fragment in parsed.error and parsed.fallback == fallback
    assert (parsed.call is None) == (fallback == "reply_only")

def test_what_survives_an_error():
    parsed = parse_answer(f"Sure. {CALL} <signal_0><signal_1>", n_signal=4)
    assert parsed.reply == "Sure." and parsed.call == ModuleCall("image_segmentation", "segment the red circle")
    assert parsed.modes == ("text",)
    chatter = parse_answer(f"{GOOD} Anything else?", n_signal=4)   # text after a complete call: reported, costs nothing
    assert chatter.fallback is None and chatter.error == "text after the call is ignored: 'Anything else?'"
    assert chatter.modes == MESSAGE_MODES
    assert parse_answer("Sure. <Module> image_segmentation </Mod").reply == "Sure."
    restricted = parse_answer(f"{CALL} {SIGNALS}", n_signal=4, modules=("image_generation",))
    assert "not accepted here" in restricted.error and restricted.call is None

def test_plain_answers_and_signal_positions():
    assert parse_answer("  a small red circle ") == ParsedAnswer("a small red circle")
    assert parse_answer("x < y and 2 > 1").error is None                     # a lone '<' is text, not a tag
    parsed = parse_answer(GOOD, n_signal=4)
    start = GOOD.index("<signal_0>")
    assert parsed.signal_positions == (start, start + 10, start + 20, start + 30)
    assert parsed.call.region == (0.1, 0.2, 0.4, 0.5) and parsed.error is None
    assert parse_answer(f"{CALL} <signal_0>", n_signal=1).signal_positions == (len(CALL) + 1,)
    assert parse_answer(CALL, n_signal=0).fallback is None and parse_answer(CALL, n_signal=0).modes == ("text",)

@pytest.mark.parametrize("bad", [None, 3, b"<Module>", ["text"]])
def test_non_strings_raise(bad):
    with pytest.raises(VitronError, match="parse_answer expects a string"): parse_answer(bad)

def test_bad_arguments_raise():
    with pytest.raises(VitronError, match="n_signal"): parse_answer("x", n_signal=-1)
    with pytest.raises(VitronError, match="n_signal"): parse_answer("x", n_signal=True)
    with pytest.raises(VitronError, match="modules must be names"): parse_answer("x", modules=("painting",))

# ---------- reading: fuzz ----------

def check(text: str, n_signal: int = 4) -> ParsedAnswer:
    "Parse `text` and check what must hold for every string."
    parsed = parse_answer(text, n_signal)
    assert isinstance(parsed, ParsedAnswer) and parsed.fallback in FALLBACKS
    assert isinstance(parsed.reply, str) and parsed.reply == parsed.reply.strip() and not TAG.search(parsed.reply)
    if parsed.call is not None:
        region = parsed.call.region
        assert parsed.call.module in MODULES and parsed.call.instruction.strip()
        assert region is None or (0 <= region[0] < region[2] <= 1 and 0 <= region[1] < region[3] <= 1)
    assert all(text[p: p + 8].lower() == "<signal_" for p in parsed.signal_positions)
    if parsed.fallback == "reply_only": assert parsed.call is None and parsed.error
    if parsed.fallback == "text_only": assert parsed.call is not None and parsed.error
    if parsed.fallback is None and parsed.call is not None:
        assert [text[p: text.index(">", p) + 1] for p in parsed.signal_positions] == [f"<signal_{i}>" for i in range(n_signal)]
    if parsed.error is None and parsed.call is not None:              # an error-free parse writes back to the same answer
        try: again = parse_answer(format_answer(parsed.reply, parsed.call, n_signal), n_signal)
        except VitronError as e: assert "region" in str(e)           # a box like (0.121, ..., 0.124, ...) collapses at 2 decimals
        else: assert (again.reply, again.call.module, again.call.instruction) == (parsed.reply, parsed.call.module, parsed.call.instruction)
    return parsed

PIECES = ["<Module>", "</Module>", "<Instruction>", "</Instruction>", "<Region>", "</Region>", "<module>", "<signal_0>",
          "<signal_1>", "<signal_2>", "<signal_3>", "<signal_4>", "<SIGNAL_0>", "<signal_", "<Mod", "</", "<", ">", " ",
          "image_segmentation", "video_generation", "B", "segment the", "(0.10, 0.20, 0.40, 0.50)", "(0.5, 0.2, 0.4",
          "(1e999, 0, 1, 1)", "(0.121, 0.1, 0.124, 0.3)", "\n", "\x00", "é", "🦄"]

@FUZZ
@given(st.text(max_size=200))
def test_any_text_parses(text):
    check(text)

@FUZZ
@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join), st.integers(0, 6))
def test_tag_soup_parses(text, n_signal):
    check(text, n_signal)

@FUZZ
@given(st.binary(max_size=120))
def test_random_bytes_parse(data):
    check(data.decode("latin-1")); check(data.decode("utf-8", errors="replace"))

VALID = [GOOD, format_answer("", ModuleCall("video_generation", "generation: a cat")),
         format_answer("Done.", ModuleCall("image_editing", "editing: make the blue square red", (0.0, 0.5, 1.0, 1.0)))]

def test_every_truncation_of_a_call_is_reported():
    for text in VALID:
        call_start = text.index("<Module>")
        for k in range(len(text)):
            parsed = check(text[:k])
            if k >= call_start + 2: assert parsed.error is not None, text[:k]     # from '<M' on, a cut is always seen
            else: assert parsed.call is None
            if parsed.call is not None:                                        # a cut never invents another call
                assert parsed.call.instruction in text and parsed.call.module in text

def tags_of(text): return [(m.start(), m.end()) for m in TAG.finditer(text)]

@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_deleted_duplicated_or_swapped_tags_are_reported(text, data):
    tags = tags_of(text)
    (a_start, a_end), (b_start, b_end) = sorted(data.draw(st.lists(st.sampled_from(tags), min_size=2, max_size=2, unique=True)))
    a, b = text[a_start:a_end], text[b_start:b_end]
    mutated = data.draw(st.sampled_from([
        text[:a_start] + text[a_end:],                                                    # deleted
        text[:a_end] + a + text[a_end:],                                                  # duplicated
        text[:a_start] + b + text[a_end:b_start] + a + text[b_end:]]))                    # swapped
    assert check(mutated).error is not None, mutated

@FUZZ
@given(st.sampled_from(VALID), st.integers(0, 10_000), st.binary(min_size=1, max_size=12))
def test_spliced_bytes_never_break_the_parser(text, where, data):
    where %= len(text) + 1
    parsed = check(text[:where] + data.decode("latin-1") + text[where:])
    if parsed.call is not None: assert parsed.call.module in text

# ---------- what a specialist receives ----------

def test_call_inputs_per_mode():
    parsed = parse_answer(GOOD, n_signal=4)
    states = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    text = dict(module="image_segmentation", instruction="segment the red circle", region=(0.1, 0.2, 0.4, 0.5))
    assert call_inputs(parsed, "text") == text
    embeddings = call_inputs(parsed, "embeddings", states)
    assert set(embeddings) == {"module", "signal"} and embeddings["signal"] is states
    hybrid = call_inputs(parsed, "hybrid", states)
    assert {k: v for k, v in hybrid.items() if k != "signal"} == text and hybrid["signal"] is states

def test_call_inputs_refuses_what_the_answer_lacks():
    import torch
    states = torch.zeros(4, 8)
    text_only = parse_answer(f"Sure. {CALL} <signal_0>", n_signal=4)
    assert call_inputs(text_only, "text")["instruction"] == "segment the red circle"
    for mode in ("embeddings", "hybrid"):
        with pytest.raises(VitronError, match=f"mode '{mode}' needs the signal tokens' hidden states, but only 1 of 4"):
            call_inputs(text_only, mode, states)
    with pytest.raises(VitronError, match="no usable module call"): call_inputs(parse_answer("a red circle"), "text")
    with pytest.raises(VitronError, match="duplicated call"): call_inputs(parse_answer(f"{CALL} {CALL}"), "text")
    good = parse_answer(GOOD, n_signal=4)
    with pytest.raises(VitronError, match=r"shape \(4, d\).*shape \(3, 8\)"): call_inputs(good, "hybrid", states[:3])
    with pytest.raises(VitronError, match="got no array"): call_inputs(good, "embeddings")
    with pytest.raises(VitronError, match="unknown message mode 'telepathy'"): call_inputs(good, "telepathy")
    with pytest.raises(VitronError, match="expects a ParsedAnswer"): call_inputs(GOOD, "text")
    with pytest.raises(VitronError, match="n_signal is 0"): call_inputs(parse_answer(CALL, n_signal=0), "embeddings", states)

def test_call_words_hold_place_words_only_when_asked():
    import torch
    from vitron_nb.calls import CallWords, PLACE_WORDS
    from vitron_nb.tokenizer import load_tokenizer
    tok = load_tokenizer()
    one = lambda w: tok(" " + w, add_special_tokens=False)["input_ids"][0]
    call = "Sure. <Module> image_generation </Module> <Instruction> generation: a small blue cross at the"
    ids = torch.tensor([tok(call, add_special_tokens=False)["input_ids"]])
    held = CallWords(tok, "Paint a little blue cross at the bottom left.", places=True)(ids, torch.zeros(1, len(tok)))[0]
    free = CallWords(tok, "Paint a little blue cross at the bottom left.")(ids, torch.zeros(1, len(tok)))[0]
    assert torch.isinf(held[[one(w) for w in PLACE_WORDS if w != "bottom"]]).all() and not torch.isinf(held[one("bottom")])
    assert not torch.isinf(free[[one(w) for w in PLACE_WORDS]]).any()
    # a request that names no place leaves place words free, with places on
    none = CallWords(tok, "Paint a little blue cross.", places=True)(ids, torch.zeros(1, len(tok)))[0]
    assert not torch.isinf(none[[one(w) for w in PLACE_WORDS]]).any()

def test_edit_kind_reads_the_kind_each_generated_edit_changes():
    from vitron_nb.calls import edit_kind, EDIT_FORMS
    from vitron_nb.tasks import make_examples
    for e in make_examples(["image_edit", "video_edit"], 60, "test"):
        verb = e.call.instruction.split(":")[1].split()[0]           # 'editing: make the ...' / 'editing: turn the ...'
        assert edit_kind(e.instruction) == EDIT_FORMS[verb], (e.instruction, e.call.instruction)
