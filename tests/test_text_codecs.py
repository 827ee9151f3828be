"""The byte-level BPE codec's pre-tokenization: a prompt that ends in a space is tokenized as the text that
continues it is, and every text round-trips."""

from __future__ import annotations

import pytest

from genlab.data.text import BPECodec, CharCodec, string_array
from genlab.errors import DataError

CODE = [f"def f{i}(x, y=2):\n    \"\"\"Return x.\"\"\"\n    return x * {i} + y  # ok\n\n\nclass C{i}:\n"
        f"\tdef g(self):\r\n        pass\n" for i in range(40)]


def fitted() -> BPECodec:
    return BPECodec(context=8, vocab_size=400).fit(string_array(CODE))


def test_a_word_keeps_the_space_after_it():
    codec = fitted()
    # the prompt "def " is one token, the token the training text holds before every function name
    assert [codec.detokenize([i]) for i in codec.tokenize("def ")] == ["def "]
    for prompt, text in [("def ", "def f3(x, y=2):"), ("    return ", "    return x * 3"), ("x = ", "x = 1")]:
        assert codec.tokenize(text)[:len(codec.tokenize(prompt))] == codec.tokenize(prompt), prompt


def test_newlines_carry_the_indentation_and_every_text_round_trips():
    codec = fitted()
    assert "\n    " in {codec.detokenize([i]) for i in codec.tokenize("x\n    return x")}
    for text in [*CODE[:3], "héllo  wörld ☃\n\t\r\n", "   leading and trailing   ", "a\u00a0b\u2028c", ""]:
        assert codec.detokenize(codec.tokenize(text)) == text
    again = BPECodec.from_state(codec.state())
    assert again.tokenize(CODE[5]) == codec.tokenize(CODE[5])


def test_the_character_codec_tokenizes_a_batch_as_each_text_alone():
    codec = CharCodec(context=8).fit(string_array(["héllo wörld ☃\n", "abc"]))
    texts = ["hé", "", "llo ☃", "\n", "w", "örld"]
    assert codec.tokenize_batch(texts) == [codec.tokenize(text) for text in texts]   # one lookup, sliced
    assert codec.tokenize_batch([]) == []
    with pytest.raises(DataError, match="'z'"):
        codec.tokenize_batch(["ab", "z"])
