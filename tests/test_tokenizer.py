"The PixelWorld tokenizer: special tokens whole, any text round-trips, Vicuna v1 chat, and no drift from its trainer."
import json
import pytest
from vitron_nb.core import VitronConfig, VitronError
from vitron_nb.tokenizer import load_tokenizer, train_tokenizer, SPECIAL_TOKENS, TOKENIZER_PATH, signal_tokens

@pytest.fixture(scope="module")
def tokenizer(): return load_tokenizer()

def test_special_tokens_are_single_tokens(tokenizer):
    for t in SPECIAL_TOKENS: assert len(tokenizer(t, add_special_tokens=False)["input_ids"]) == 1, t
    assert len(tokenizer) <= VitronConfig().vocab_size

@pytest.mark.parametrize("text", ["Blorp the frobnicated zorblax 🦄!", "", "ünïcödé  double  spaces\ttab",
                                  "<video> When does the red circle appear? (0.25, 0.31, 0.50, 0.62 | 2, 7)"])
def test_any_text_round_trips(tokenizer, text):
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text

def test_pixelworld_words_are_whole_tokens_and_digits_single(tokenizer):
    # instructions always follow "USER: " in the chat template, so each word is learned with its leading space
    assert tokenizer.tokenize("USER: Segment the crimson disc left of the blue box") == [
        "USER", ":", *["Ġ" + w for w in "Segment the crimson disc left of the blue box".split()]]
    assert [t for t in tokenizer.tokenize("0.625") if t.isdigit()] == ["0", "6", "2", "5"]

def test_chat_template(tokenizer):
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}], tokenize=False)
    assert text == "<s>USER: Hi ASSISTANT: Hello.</s>"
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("ASSISTANT:")

def test_committed_tokenizer_is_what_the_trainer_makes():
    fresh = json.loads(train_tokenizer().backend_tokenizer.to_str())["model"]
    committed = json.loads(TOKENIZER_PATH.read_text())["model"]
    assert fresh["merges"] == committed["merges"] and fresh["vocab"] == committed["vocab"], "run `vitron train --only tokenizer --export`"

def test_errors(tmp_path):
    with pytest.raises(VitronError, match="does not exist"): load_tokenizer(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(VitronError, match="not a tokenizer"): load_tokenizer(tmp_path / "bad.json")
    with pytest.raises(VitronError, match="at most"): signal_tokens(99)
    with pytest.raises(VitronError, match="too small"): train_tokenizer(VitronConfig(vocab_size=100), ["a b"])
