"""Syntax-constrained Python decoding (genlab.sampling.python_syntax, genlab.sampling.python_constraint) and the
python-names verifier."""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import random
import re
import string
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import genlab
from gpt_support import random_gpt
from genlab.data.dataset import Dataset
from genlab.data.text import CharCodec, string_array
from genlab.sampling.decoding import LEVELS, VERIFIERS, GenerationConfig, generate, sample_verified
from genlab.sampling.python_constraint import PythonSyntax
from genlab.sampling.python_syntax import LineState, TopLevel, advance, completion, names_resolve, parses

ALIVE = ["def ", "def f", "def f(x):\n", "def f(x):\n    return x", "x = 'ab", "x = 1 +", "x = 1 i", "def f(x) -",
         "x = '''ab\ncd", "x = 1e", "if x:\n    # c\n  # d\n    y\n", "def f():\n    return (1,\n  2)\n",
         "def f(x):\n    return x\n  ", "try:\n    x\nexcept E:\n    pass\nfinally:\n    y\n", "x = 1 \\\n  + 2\n",
         "class A:\n    def f(self):\n        pass\n\n    def g(self): ",
         # inside a single-quoted string left open, tokenize reads \, $ and ? as stray characters: they are not
         "x = 'a\\nb", "x = 'a$b", 'print("why? because', "f('#!',\n  a",
         "f(a,\n  in",                      # a keyword may grow into a name (in -> int): 3.11 blames the bracket
         "s = (r'a'\n     r",                # a string prefix may open a string after another one
         "x = ('' if y =",                   # = may become == (3.11 blames the whole conditional)
         "match x:\n    case None:\n",      # case lines compile under a dummy match
         "x = 1\n        # c", "x = 1\n   ",  # a comment or blank line may come at any indentation
         'msg = "a \\\\',                     # an escaped backslash is not a line continuation
         "x = f'{a", "x = 'ab\\", "f(1e-", "f(2e+", "x = 0x", "x = 1.e", "x = 0E5J", "x = rb'ab",
         "if not isinstance(value, int, int"]   # open strings judged closed; numbers in the making
ROOT = Path(__file__).resolve().parents[1]
DEAD = {"def (": "def without a name", "x = 1)": "unbalanced closing bracket", "x = [1, 2]]": "unbalanced ]",
        "def f(x):\n    a\n  b": "dedent to a level never opened", "x = 1\n    y = 2": "unexpected indent",
        "def f(x):\nreturn": "no indented block after :", "x = 'ab\n": "unterminated string at a newline",
        "x = 1 +\n": "statement cut at a newline", "x == = 1": "invalid mid-line", "x = $": "stray character",
        "def f(x):\n    return x\n     y": "indent between levels", "x = 1e ": "a number that cannot grow",
        "f(x, def ": "a keyword that cannot grow", "f('\n": "unterminated string at a newline inside brackets",
        "f('a\n  # c\n": "the same before a comment line", 'import a import "x': "an error before an open string",
        "def :": "a colon cannot become a name", "def df0+": "a sign after a name is no exponent",
        "x = a b": "two names in a row, which the parser calls incomplete", "x = 1 ix": "no keyword starts ix",
        "raise E than": "the same after raise", "f(a) b": "a name after a call",
        "x = 'z' 0255": "a number after a string", "x = 0EJ": "no number starts 0EJ",
        "def g('x": "a string where a parameter goes", 'def f(x)"""Doc': "a docstring where the colon goes"}


@pytest.mark.parametrize("text", ALIVE)
def test_completable_prefixes_stay_alive(text):
    assert advance(LineState(), text) is not None


@pytest.mark.parametrize("text, why", DEAD.items())
def test_prefixes_no_text_can_fix_are_dead(text, why):
    assert advance(LineState(), text) is None, why


#: What a model may write next at any point, right or wrong.
CANDIDATES = (")", "]", ":", "\n", " ", "x", "'", '"', "'''", "#", "\\", "\\\n", "$", "!", "=", "1e", "def ", "el", "i",
              "\n    ", "\n  ", "(", ",", "-", "return", "pass\n", "'a'", "\t", "\r", "\x00", "é", "b'", "?")


@pytest.mark.parametrize("module, every", [(textwrap, 7), (inspect, 41)])
def test_the_incremental_check_agrees_with_the_full_check_on_standard_library_prefixes(module, every):
    """Real source read piece by piece is alive all the way, and after every ``every``-th piece each candidate
    gets the same answer from the carried state (tokenize resumed at its mark, comments and docstrings taken
    without a check) as from a fresh read of the unfinished line."""
    source = inspect.getsource(module)[:40_000]
    pieces = re.findall(r"\w+ ?|\n[ \t]*|[^\w\n]+ ?", source)   # about as a BPE tokenizer splits code
    assert "".join(pieces) == source
    state, rng = LineState(), random.Random(0)
    for i, piece in enumerate(pieces):
        if i % every == 0:
            fresh = LineState(state.pending, state.indents, state.expect_indent)   # no mark: the full check
            for candidate in rng.sample(CANDIDATES, 12):
                assert advance(state, candidate) == advance(fresh, candidate), (state.pending, candidate)
        state = advance(state, piece)
        assert state is not None, "".join(pieces[max(0, i - 20):i + 1])


@pytest.mark.parametrize("module", ["fractions", "string", "tokenize"])
def test_real_source_read_character_by_character_stays_alive(module):
    """Every character prefix of real source is alive: numbers in the making (``1e``, ``0x``), names that may
    become keywords, open strings of every kind and the parser's sentinel check all let real code through."""
    source = inspect.getsource(importlib.import_module(module))[:6000]
    state = LineState()
    for i, character in enumerate(source):
        state = advance(state, character)
        assert state is not None, source[max(0, i - 80):i + 1]


def test_advancing_piece_by_piece_agrees_with_the_whole_text():
    text = "def f(x, y=2):\n    if x:\n        return [i for i in y]\n    return {'a': x}\n"
    state = LineState()
    for i in range(len(text)):
        state = advance(state, text[i])
        assert state is not None and state == advance(LineState(), text[:i + 1])


def test_tokenizing_resumes_after_the_last_space_of_the_row():
    """The mark a piece leaves is the start of the row's last token after a space, so the next piece re-reads a
    few tokens, not the row; tokens with no space between them may still merge (``2e`` ``-`` ``5``)."""
    state = advance(LineState(), "if x:\n    y = f(a,\n          b, 2")
    assert state.mark.start == len("y = f(a,\n          b, ") and state.mark.column == len("          b, ")
    for piece in ("e", "-", "5", ")", "\n"):
        text = state.pending + piece
        state = advance(state, piece)
        assert state == advance(LineState(), "if x:\n" + text)


FUNCTION = "def f(x):\n    return x\n"
#: Texts -> where the logical line before their first new top-level statement ends (``None``: none starts).
TOP_LEVEL = {FUNCTION + "\n# next\nclass A": len(FUNCTION),       # blank and comment lines before it dropped
             FUNCTION + "@dec": len(FUNCTION),
             "def f(x):\n    '''doc\nat column 0\n'''\n": None,     # inside a docstring: no logical line
             "def f(x):\n    return (x,\n0)\n": None,                # inside a bracket
             "def f(x):\n    x\n# at column 0\n    return x\n": None,   # a comment is no statement
             "if x:\n    y\nelse:\n    z\n": None,                     # a clause of the statement before
             "if x:\n    y\nexc": None,                                # may still become "except"
             "if x:\n    y\nelsewhere = 1": len("if x:\n    y\n"),     # a name, known once it cannot be "else"
             "def f(x):\n    return x": None}                          # the first statement is not complete


@pytest.mark.parametrize("text, end", TOP_LEVEL.items())
def test_a_new_top_level_statement_is_found_where_tokenize_sees_one(text, end):
    """Read whole or character by character, the text gives the same answer, at the character that decides."""
    expected = None if end is None else TopLevel(end)
    whole = advance(LineState(), text, top_after=0)
    assert (whole if isinstance(whole, TopLevel) else None) == expected
    state = LineState()
    for i, character in enumerate(text):
        offset = i - len(state.pending)   # where the unfinished line starts in the text
        after = advance(state, character, top_after=-offset)
        if isinstance(after, TopLevel):
            assert TopLevel(offset + after.end) == expected, text[:i + 1]
            assert text[i + 1:] in ("lass A", "dec", "here = 1")   # the first character that tells
            return
        state = after
    assert expected is None and state is not None


def test_a_column_0_line_after_a_block_header_is_dead_not_an_end():
    assert advance(LineState(), "def f(x):\nx", top_after=0) is None
    assert advance(LineState(), "def f(x):\n    return x\nx", top_after=len("def f(x):\n    return x\n")) == \
        advance(LineState(), "def f(x):\n    return x\nx")   # the line before it ended before top_after: read on


@pytest.fixture(scope="module")
def codec():
    corpus = np.array(["def f(x):\n    return [x, 'a', (1 + 2)]\n\nclass A:\n    pass\n" + string.ascii_letters],
                      dtype=object)
    return CharCodec(context=64).fit(corpus)


def test_dead_candidates_are_removed_and_the_rest_keep_the_models_scores(codec):
    # coverage 1: every candidate is checked, so the allowed set is exactly the live one
    processor = PythonSyntax.for_codec(codec, coverage=1.0)
    prefix = "def f(x):\n    return (x"
    tokens = torch.tensor([[codec.eos] + codec.tokenize(prefix)])
    scores = torch.randn(1, codec.vocab_size, generator=torch.Generator().manual_seed(0))
    out = processor(tokens, scores.clone())
    allowed = torch.isfinite(out[0])
    state = advance(LineState(), prefix)
    for token in range(codec.vocab_size):
        piece_alive = token != codec.eos and advance(state, codec.detokenize([token])) is not None
        assert bool(allowed[token]) == piece_alive, repr(codec.detokenize([token]))
    assert not allowed[codec.tokenize("]")[0]] and allowed[codec.tokenize(")")[0]]
    # the allowed tokens' distribution is the model's renormalised: scores unchanged where allowed
    assert torch.equal(out[0, allowed], scores[0, allowed])
    renormalised = scores[0].softmax(-1)[allowed] / scores[0].softmax(-1)[allowed].sum()
    torch.testing.assert_close(out[0].softmax(-1)[allowed], renormalised)   # float32 softmax round-off only
    assert processor.fallbacks == 0 and processor.masked == int((~allowed).sum())


def test_greedy_decoding_checking_draws_gives_the_tokens_of_masking_every_candidate(codec):
    network = random_gpt(vocab=codec.vocab_size, block=64, seed=1)
    prompts = [[codec.eos] + codec.tokenize(p) for p in ("def ", "def f(x):\n    return (", "class A:\n")]
    checked = PythonSyntax.for_codec(codec)
    full = PythonSyntax.for_codec(codec, coverage=1.0)
    masked = lambda tokens, scores: full(tokens, scores)   # noqa: E731  a plain processor: every candidate checked
    config = GenerationConfig(max_new_tokens=30, temperature=0.0)
    rows = generate(network, prompts, GenerationConfig(**{**config.__dict__, "logits_processors": (checked,)}),
                    eos=codec.eos)
    assert rows == generate(network, prompts, GenerationConfig(**{**config.__dict__, "logits_processors": (masked,)}),
                            eos=codec.eos)
    assert checked.checks < full.checks / 5 and checked.fallbacks == full.fallbacks == 0


def test_a_sample_ends_only_where_its_text_parses(codec):
    """The end-of-text token and a stop string (the sample is cut before it) need the text before them to parse;
    a stop string inside the prompt does not count."""
    constraint = PythonSyntax.for_codec(codec, stop=("\n\n",))

    def allowed(prompt: str, drawn: str, piece: str) -> bool:
        ids = [codec.eos] + codec.tokenize(prompt)
        constraint.update(torch.tensor([ids]))
        for token in codec.tokenize(drawn):   # decoding appends the drawn tokens one at a time
            ids.append(token)
            constraint.update(torch.tensor([ids]))
        return constraint.allows(0, codec.eos if piece == "<eos>" else codec.tokenize(piece)[0])

    assert allowed("def f(x):\n    return x", "\n", "\n") and not allowed("def f(x):", "\n", "\n")
    assert allowed("def f(x):\n", "    return x\n", "<eos>") and not allowed("def f(x):\n", "    return (x", "<eos>")
    assert allowed("f(1)\n", "", "\n") and allowed("f(1)\n\nf(", "", "1")   # the prompt's lines do not stop it


def test_a_sample_ends_before_its_first_new_top_level_statement():
    """A column-0 line the sample starts after a statement that parses ends it before that line (what the token
    writes past it dropped); where the text before does not parse, the line is judged as any other."""
    codec = CharCodec(context=64).fit(np.array(["@<:()'\n " + string.ascii_letters], dtype=object))

    def draw(prompt: str, drawn: str, piece: str) -> tuple[bool, str | None]:
        constraint, ids = PythonSyntax.for_codec(codec), [codec.eos] + codec.tokenize(prompt)
        constraint.update(torch.tensor([ids]))
        for token in codec.tokenize(drawn):
            ids.append(token)
            constraint.update(torch.tensor([ids]))
        token = codec.eos if piece == "<eos>" else codec.tokenize(piece)[0]
        return constraint.allows(0, token), constraint.ends(0, token)

    assert draw("def ", "f(x):\n    return x\n\n", "c") == (True, "f(x):\n    return x\n")
    assert draw("def ", "f(x):\n", "c") == (False, None)                           # no body yet: refused
    assert draw("def ", "f(x):\n    '''a\n", "c") == (True, None)                  # inside a docstring
    assert draw("def f(x):\n    return x\n", "", "c") == (True, None)              # the prompt's statement
    assert draw("def f(x):\n    return x", "\n", "c") == (True, "\n")              # ... that the sample ended
    assert draw("", "@f\n", "d") == (True, None)                                    # a decorated def goes on
    assert draw("if x:\n", "    y\ne", "l") == (True, None)                        # may become else or elif
    assert draw("if x:\n", "    y\nels", "e") == (True, None)
    assert draw("if x:\n", "    y\ne", "f") == (True, "    y\n")                   # ef: not a clause
    assert draw("if x:\n", "    y\nex", "y") == (True, "    y\n")                 # a word piece settles it too
    assert draw("def ", "f(x):\n    return x\n", "<") == (True, "f(x):\n    return x\n")   # not part of it
    assert draw("def ", "f(x):\n    return x\n", "<eos>") == (True, None)   # the end of text: decoding's own end


class Scripted(nn.Module):
    """A network that writes ``script`` (token ids) one token a step after a prompt of ``width`` tokens (read
    without a cache), putting nearly all its probability on the script's next token."""

    def __init__(self, script: list[int], width: int, vocab: int) -> None:
        super().__init__()
        self.script, self.width, self.vocab, self.block_size = script, width, vocab, 256
        self.unused = nn.Parameter(torch.zeros(()))   # decoding reads the device from the parameters

    def forward(self, tokens, cache=None, positions=None, mask=None):
        logits = torch.zeros(*tokens.shape, self.vocab)                                 # (B, T, V)
        logits[:, -1, self.script[min(tokens.shape[1] - self.width, len(self.script) - 1)]] = 20.0
        return logits


def test_a_model_that_writes_on_past_its_function_gives_the_function_alone():
    """As from a model trained on whole files: a function, a blank line, the next class. The constrained sample
    stops before the class (the column-0 line inside the docstring does not stop it) and parses; streaming ends
    there too; unconstrained, the text runs on to the budget."""
    function = "def f(x):\n    '''Twice x.\nat column 0\n'''\n    return 2 * x\n"
    script = function[len("def "):] + "\nclass A:\n    pass\n\n" + "x = 1\n" * 20
    data = Dataset("code", "text", string_array(["def " + script] * 4), string_array([script]))
    model = genlab.fit(data, family="transformer", tokenizer="char", n_layer=1, n_head=2, n_embd=8, block_size=16,
                       train={"steps": 1, "batch_size": 2, "seed": 0})
    codec = model.codec_
    model.network_ = Scripted(codec.tokenize(script), 1 + len(codec.tokenize("def ")), codec.vocab_size)
    options = dict(temperature=0.0, max_new_tokens=100, use_cache=False)
    texts = model.sample(3, prompt="def ", logits_processors=(PythonSyntax.for_codec(codec),), **options)
    assert [str(t) for t in texts] == [function] * 3 and parses(function)
    streamed = "".join(model.stream("def ", logits_processors=(PythonSyntax.for_codec(codec),), **options))
    assert "def " + streamed in (function, function + "\n")   # the blank line was already streamed
    free = str(model.sample(1, prompt="def ", **options)[0])
    assert free.startswith(function + "\nclass A:") and len(free) == len("def ") + 100


def test_near_the_budget_a_sample_ends_at_the_first_line_end_where_its_text_parses():
    """A model that writes method after method inside its function never comes back to column 0. In the last
    ``margin`` tokens of the budget the sample ends at a logical line end after which the text parses (one token a
    character here): not at a blank line or a block header; with no such line end in the window it runs to the
    budget unfinished, as it does everywhere when the constraint is not told the budget."""
    methods = "".join(f"\n    def m{i}(self):\n        return {i}\n" for i in range(9))
    script = "f(x):" + methods
    data = Dataset("code", "text", string_array(["def " + script] * 4), string_array([script]))
    model = genlab.fit(data, family="transformer", tokenizer="char", n_layer=1, n_head=2, n_embd=8, block_size=16,
                       train={"steps": 1, "batch_size": 2, "seed": 0})
    codec = model.codec_
    model.network_ = Scripted(codec.tokenize(script), 1 + len(codec.tokenize("def ")), codec.vocab_size)

    def sample(budget: int | None, margin: int) -> str:
        constraint = PythonSyntax.for_codec(codec, max_new_tokens=budget, margin=margin)
        return str(model.sample(1, prompt="def ", logits_processors=(constraint,), temperature=0.0,
                                max_new_tokens=budget or 60, use_cache=False)[0])

    one = "def f(x):\n    def m0(self):\n        return 0\n"
    two = one + "\n    def m1(self):\n        return 1\n"
    ends = len(one) - len("def "), len(two) - len("def ")   # tokens drawn at their line ends: 41 and 77
    assert sample(90, 90 - ends[0] + 1) == one and parses(one)    # the window opens at token 41: the first end
    assert sample(90, 90 - ends[0]) == two and parses(two)        # at 42: the blank line, the header: read on
    assert sample(ends[1], 1) == two                               # the very last token may end it
    assert sample(60, 10) == "def " + script[:60] and not parses("def " + script[:60])   # none from 51 to 60
    assert sample(None, 40) == "def " + script[:60]                  # no budget told: no end near it


COMPLETIONS = {"def f(x):\n    return x": "", "s = '''a''": "'", 'def f():\n    """Doc': '"""', "x = 'ab": "'",
               "def f(x):\n    return g(x, [1": "])", "def f(x):\n    y = x +": " 0", "d = {a:": " 0}",
               "def f(x": "):\n    pass", "def f(x):\n    if x": ":\n        pass", "def f(x):\n": "    pass",
               "def f(x):\n    if x:\n        ": "pass", "def f(x):\n    if x:\n  ": "      pass",
               "if x:\n    # c": "\n    pass", "f(a,  # note": "\n)", "x = 1  # note": "",
               "for x": None, "@decorator\n": None}


@pytest.mark.parametrize("text, suffix", COMPLETIONS.items())
def test_a_completion_closes_what_the_text_left_open(text, suffix):
    state = advance(LineState(), text)
    assert state is not None and completion(text, state) == suffix
    assert suffix is None or parses(text + suffix)


def test_near_the_budget_a_token_that_leaves_no_room_to_finish_is_refused():
    """In the last ``margin`` tokens a row whose text has a completion that fits keeps one: a token after which
    the shortest known completion no longer fits in the tokens left is refused (counted in ``steered``); a row
    that had no room already is not steered, and the last token must leave text that parses."""
    codec = CharCodec(context=64).fit(np.array(['"():+= \n' + string.ascii_letters], dtype=object))

    def allowed(prompt: str, drawn: str, piece: str, budget: int) -> tuple[bool, int]:
        constraint, ids = PythonSyntax.for_codec(codec, max_new_tokens=budget, margin=8), [codec.eos]
        ids += codec.tokenize(prompt)
        constraint.update(torch.tensor([ids]))
        for token in codec.tokenize(drawn):
            ids.append(token)
            constraint.update(torch.tensor([ids]))
        return constraint.allows(0, codec.tokenize(piece)[0]), constraint.steered

    docstring = 'def f():\n    """'                         # its completion: the three quotes, 3 tokens
    assert allowed(docstring, "ab", "c", 6) == (True, 0)     # 3 tokens left after c: room
    assert allowed(docstring, "ab", "c", 5) == (False, 1)    # 2 left after c: no room for the quotes
    assert allowed(docstring, "ab", '"', 5) == (True, 0)     # the first quote keeps it
    assert allowed(docstring, "ab", "c", 4) == (True, 0)     # no room before the token either: not steered
    assert allowed("x = (y", "", "z", 1) == (False, 1)       # the last token: the text must parse after it
    assert allowed("x = (y", "", ")", 1) == (True, 0)


def test_a_sample_steered_near_its_budget_finishes_and_parses():
    """A model that writes its docstring on past the budget: told the budget, the constrained sample closes the
    docstring with its last three tokens and parses; with a window too short for the quotes it runs to the budget
    unfinished."""
    script = 'f(x):\n    """' + "word " * 40
    data = Dataset("code", "text", string_array(["def " + script + '"""'] * 4), string_array([script]))
    model = genlab.fit(data, family="transformer", tokenizer="char", n_layer=1, n_head=2, n_embd=8, block_size=16,
                       train={"steps": 1, "batch_size": 2, "seed": 0})
    codec = model.codec_
    model.network_ = Scripted(codec.tokenize(script), 1 + len(codec.tokenize("def ")), codec.vocab_size)

    def sample(margin: int) -> str:
        constraint = PythonSyntax.for_codec(codec, max_new_tokens=60, margin=margin)
        return str(model.sample(1, prompt="def ", logits_processors=(constraint,), temperature=0.0,
                                max_new_tokens=60, use_cache=False)[0])

    finished = "def " + script[:57] + '"""'
    assert sample(8) == finished and parses(finished)
    assert sample(2) == "def " + script[:60] and not parses("def " + script[:60])


def test_the_code_benchmark_labels_failures_from_the_tokens_the_sampler_drew():
    """benchmarks/transformer_code.py counts each sample's tokens as drawn (not re-tokenized) and labels an invalid
    one ``budget`` when the sampler was still drawing at the budget, whatever its text's parser error."""
    spec = importlib.util.spec_from_file_location("transformer_code", ROOT / "benchmarks" / "transformer_code.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    script = "f(x):\n    return x\n\nclass A:\n    pass\n" + "x = 1\n" * 20
    data = Dataset("code", "text", string_array(["def " + script] * 4), string_array([script]))
    model = genlab.fit(data, family="transformer", tokenizer="char", n_layer=1, n_head=2, n_embd=8, block_size=16,
                       train={"steps": 1, "batch_size": 2, "seed": 0})
    model.network_ = Scripted(model.codec_.tokenize(script), 1 + len("def "), model.codec_.vocab_size)
    model.sample = functools.partial(model.sample, use_cache=False)   # the scripted network reads no cache
    options = dict(temperature=0.0, top_p=None, max_new_tokens=30, seed=0)
    texts, drawn = bench.completions(model, 2, **options)
    assert texts == ["def f(x):\n    return x\n"] * 2 and drawn == [(30, True)] * 2   # cut by the benchmark
    constraint = PythonSyntax.for_codec(model.codec_, max_new_tokens=30, margin=1)   # ends at the class
    texts, drawn = bench.completions(model, 2, constraint=constraint, **options)
    assert texts == ["def f(x):\n    return x\n"] * 2 and drawn == [(len("f(x):\n    return x\n\nc"), False)] * 2
    assert bench.failures(["def f(x:", "def f(x:", "def f(x):\n  x\n y\n"], [True, False, False]) == \
        {"budget": 1 / 3, "indentation": 1 / 3, "syntax": 1 / 3}


def test_a_character_split_over_byte_tokens_is_judged_once_whole():
    def utf8(ids):
        return bytes(i for i in ids if i != 256).decode("utf-8", "replace")

    constraint, prompt = PythonSyntax(utf8, eos=256), [256] + list(b"x = ")

    def allowed_after(ids: list[int], token: int) -> bool:
        constraint.update(torch.tensor([prompt + ids]))
        return constraint.allows(0, token)

    euro, e_acute = list("€".encode()), list("é".encode())   # three bytes and two
    assert allowed_after([], euro[0]) and allowed_after(euro[:1], euro[1])   # held: not a character yet
    assert not allowed_after(euro[:2], euro[2])                             # x = €: a stray character
    constraint._tokens = None                                                # a new generation
    assert allowed_after([], e_acute[0]) and allowed_after(e_acute[:1], e_acute[1])   # x = é: a name


def test_a_step_with_no_live_candidate_is_left_alone_and_counted():
    vocab = [")", "]", "}"]
    processor = PythonSyntax(lambda ids: "".join(vocab[i - 1] if i else "" for i in ids) if ids else "", eos=0)
    text_ids = torch.tensor([[0]])   # the empty prefix: a closing bracket can never start Python
    scores = torch.tensor([[-9.0, 0.5, 0.2, 0.1]])
    scores[0, 0] = float("-inf")     # the end of text is out too (as if the model never ends here)
    out = processor(text_ids, scores.clone())
    assert torch.equal(out, scores) and processor.fallbacks == 1


def test_constrained_generation_never_writes_a_dead_prefix_and_ended_rows_parse(codec):
    network = random_gpt(vocab=codec.vocab_size, block=64)   # an untrained model: most of its tokens are dead ends
    processor = PythonSyntax.for_codec(codec)
    prompts = [[codec.eos] + codec.tokenize("def ")] * 6
    config = GenerationConfig(max_new_tokens=40, logits_processors=(processor,))
    rows = generate(network, prompts, config, generator=torch.Generator().manual_seed(0), eos=codec.eos)
    free = generate(network, prompts, GenerationConfig(max_new_tokens=40), generator=torch.Generator().manual_seed(0),
                    eos=codec.eos)
    texts = ["def " + codec.detokenize(ids) for ids in rows]
    assert sum(advance(LineState(), "def " + codec.detokenize(ids)) is None for ids in free) >= 3   # it does bite
    assert processor.fallbacks == 0 and processor.masked > 0
    for ids, text in zip(rows, texts):
        assert advance(LineState(), text) is not None, text
        if len(ids) < 40:   # the row ended with the end-of-text token, which needs the whole text to parse
            assert parses(text), text


def test_python_names_verifier_levels():
    assert LEVELS["python-names"] == ("python", "python-names") and set(LEVELS) == set(VERIFIERS)
    assert names_resolve("import os\ndef f(x):\n    return os.path.join(x, str(len(x)))\n")
    assert not names_resolve("def f(x):\n    return y + x\n")
    assert not names_resolve("def f(:\n")

    class Texts:
        """A model whose samples alternate: unparsable, parsing with an undefined name, clean."""
        def __init__(self):
            self.cycle = ["def (", "def f(x):\n    return y\n", "def f(x):\n    return x\n"]

        def sample(self, n, generator=None, **options):
            return np.array([self.cycle[i % 3] for i in range(n)], dtype=object)

    verified = sample_verified(Texts(), 3, "python-names", max_draws=9)
    assert verified.levels == {"python": 6, "python-names": 3} and verified.drawn == 9
    assert verified.samples == ["def f(x):\n    return x\n"] * 3


def cli_runner(capsys):
    """``run(*argv) -> (exit code, stderr)`` of the genlab command line."""
    from genlab.cli.app import main

    def run(*argv):
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        return exit_info.value.code, capsys.readouterr().err
    return run


def fit_code_run(run, tmp_path) -> None:
    """A 5-step character model of thirty small functions, saved to ``tmp_path / "run"``."""
    corpus = tmp_path / "code.txt"
    corpus.write_text("\n\n".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(30)))
    code, err = run("fit", str(corpus), "--family", "transformer", "--steps", "5", "--set", "tokenizer=char",
                    "--set", "n_layer=1", "--set", "n_embd=32", "--set", "n_head=2", "--set", "block_size=32",
                    "--out", str(tmp_path / "run"))
    assert code == 0, err


def test_cli_constrain_and_verify_levels(capsys, tmp_path):
    run = cli_runner(capsys)
    fit_code_run(run, tmp_path)
    code, err = run("sample", str(tmp_path / "run"), "-n", "3", "--prompt", "def ", "--constrain", "python",
                    "--max-new-tokens", "20", "--out", str(tmp_path / "s.txt"))
    err = " ".join(err.split())
    assert code == 0 and "python constraint: " in err and "0 steps without a live candidate" in err, err
    for text in (tmp_path / "s.txt").read_text().split("\n<|endoftext|>\n")[:-1]:
        assert advance(LineState(), text) is not None, text
    # a sample cut by the token budget before its text parses is written as not valid, and counted
    code, err = run("sample", str(tmp_path / "run"), "-n", "4", "--prompt", "def ", "--constrain", "python",
                    "--max-new-tokens", "6", "--out", str(tmp_path / "s.jsonl"))
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert code == 0 and [row["valid"] for row in rows] == [parses(row["text"]) for row in rows]
    invalid = sum(not row["valid"] for row in rows)
    assert invalid > 0 and f"{invalid} of 4 samples reached --max-new-tokens before their text parsed" in \
        " ".join(err.split()), err
    code, err = run("sample", str(tmp_path / "run"), "-n", "2", "--prompt", "def ", "--verify", "python-names",
                    "--max-new-tokens", "20", "--out", str(tmp_path / "v.txt"))
    assert code == 0 and "python: " in err and "python-names: " in err, err
    code, err = run("sample", str(tmp_path / "run"), "--constrain", "rust", "--out", str(tmp_path / "r.txt"))
    assert code == 1 and "unknown constraint 'rust'; choose one of: python" in err, err


def test_cli_max_new_tokens_reaches_the_constraint(capsys, tmp_path, monkeypatch):
    # the constraint ends samples near the budget, so it must be told the budget the decoding runs with
    from genlab.cli import sample_command

    run = cli_runner(capsys)
    fit_code_run(run, tmp_path)
    budgets = []
    made = sample_command.text_constraint
    monkeypatch.setattr(sample_command, "text_constraint",
                        lambda *args, **options: budgets.append(options["max_new_tokens"]) or made(*args, **options))
    for flags in (["--max-new-tokens", "7"], []):
        code, err = run("sample", str(tmp_path / "run"), "-n", "1", "--prompt", "def ", "--constrain", "python",
                        *flags, "--out", str(tmp_path / "s.txt"), "--overwrite")
        assert code == 0, err
    assert budgets == [7, GenerationConfig.max_new_tokens]
