"""Syntax-constrained decoding for Python: a logits processor that removes the candidate tokens after
which the text can no longer be completed into valid Python.

A prefix is *dead* when no continuation makes it parse. The check works one logical line at a time,
with Python's own machinery:

- ``tokenize`` splits the text into logical lines (it knows brackets, strings and continuations) and
  gives the last token of the unfinished line;
- the indentation of each new logical line is checked against the stack of open blocks: deeper only
  after a line ending in ``:`` (which must be followed by a deeper one), otherwise equal to an open
  level: a dedent to a level never opened, or an unexpected indent, is dead;
- Python's parser judges the logical line itself, compiled alone with ``PyCF_ALLOW_INCOMPLETE_INPUT``
  (``codeop``'s flag): an unfinished line gets a trailing line continuation (``\\``), so the parser
  reads "more may follow" instead of "the statement ends here". ``incomplete input`` is alive; another
  error is dead unless it lies in a last token that more characters could still change (a name, a
  number, ``-`` before ``->`` ...). This catches unbalanced closing brackets, ``def`` without a name, an
  unterminated single-quoted string at a newline, ``x = 1 +`` at a newline, ``x == = 1`` mid-line.
  ``else``/``elif``/``except``/``finally`` lines are compiled after a dummy block they may follow.

The end-of-text token is allowed only when the whole text parses (``ast.parse``).

Which candidates are checked: a step sorts the candidates by probability and checks them in that order
until the checked ones hold ``coverage`` of the probability and one of them is alive; dead ones get
``-inf``. The others keep their scores, so the distribution over the allowed tokens is the model's own,
renormalised (what temperature, top-k and top-p then see). When no candidate at all is alive the step
is left unconstrained and counted in :attr:`PythonSyntax.fallbacks`: nothing removes every candidate.
Once a row's text is dead (a fallback step, or a dead prompt) that row is no longer constrained.
"""

from __future__ import annotations

import ast
import codeop
import io
import keyword
import re
import tokenize
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

#: ``compile`` flags: an AST only (no compiler checks such as ``return`` outside a function), no
#: implied dedent at the end, and ``incomplete input`` reported apart from other errors.
FLAGS = ast.PyCF_ONLY_AST | codeop.PyCF_DONT_IMPLY_DEDENT | codeop.PyCF_ALLOW_INCOMPLETE_INPUT
#: Parser messages that mean "valid so far".
INCOMPLETE = ("incomplete input", "unexpected EOF while parsing")
_OPERATORS = [op for op in tokenize.EXACT_TOKEN_TYPES if not op.isalnum()]
#: Operators that more characters can turn into another one (``-`` into ``->``, ``*`` into ``**``).
GROWABLE = frozenset(op for op in _OPERATORS if any(o != op and o.startswith(op) for o in _OPERATORS)) | {"!"}
#: Dummy blocks a continuation keyword may follow, so that its line can be compiled alone.
HEADERS = {"else": "if 1:\n pass\n", "elif": "if 1:\n pass\n", "except": "try:\n pass\n",
           "finally": "try:\n pass\n"}
#: Keywords and soft keywords a partial name may still become.
KEYWORDS = tuple(keyword.kwlist) + tuple(getattr(keyword, "softkwlist", ()))
_BLANK = re.compile(r"[ \t\f]*(?:#[^\r\n]*)?\r?\n")
_INDENT = re.compile(r"[ \t\f]*")
_SKIPPED = (tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT)


@dataclass(frozen=True)
class LineState:
    """Where a prefix stands: its unfinished logical line (from the line's first character), the
    indentation widths of the open blocks, and whether the next line must open a deeper block."""

    pending: str = ""
    indents: tuple[int, ...] = (0,)
    expect_indent: bool = False


def advance(state: LineState, piece: str) -> LineState | None:
    """The state after ``piece`` is appended, or ``None`` when the text is dead (module doc)."""
    text, indents, expect = state.pending + piece, state.indents, state.expect_indent
    while True:
        while (blank := _BLANK.match(text)) is not None:   # blank and comment-only lines: no indentation
            text = text[blank.end():]
        space = _INDENT.match(text).group()
        body = text[len(space):]
        width = len(space.expandtabs(8))
        if not body or body[0] == "#":   # only indentation (or a comment) so far: it may still grow
            return LineState(text, indents, expect) if expect or width <= indents[-1] else None
        if expect:
            if width <= indents[-1]:
                return None
            opened = indents + (width,)
        elif width in indents:
            opened = indents[:indents.index(width) + 1]
        else:
            return None
        line = _logical_line(body)
        if line is None:
            return None
        end, last, colon = line
        if end is None:   # the line goes on
            return LineState(text, indents, expect) if _parses_so_far(body, False, last) else None
        if not _parses_so_far(body[:end], True, None):
            return None
        text, indents, expect = body[end:], opened, colon


def _logical_line(body: str) -> tuple[int | None, tokenize.TokenInfo | None, bool] | None:
    """Tokenize ``body`` (a logical line starting at column 0) up to its first NEWLINE: the offset just
    after that newline (``None`` if the line is unfinished), its last token, and whether it ends in
    ``:``. ``None`` when tokenize meets a stray character before the end."""
    last = None
    starts = [0]
    for line in body.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    try:
        for token in tokenize.generate_tokens(io.StringIO(body).readline):
            if token.type == tokenize.NEWLINE:
                if token.string:   # a real newline, not the one tokenize adds at the end of the text
                    return starts[token.end[0] - 1] + token.end[1], last, last is not None and last.string == ":"
                continue
            if token.type == tokenize.ERRORTOKEN and not token.string.isspace():
                at_end = starts[token.end[0] - 1] + token.end[1] >= len(body.rstrip("\r\n"))
                if not at_end and token.string[:1] not in "'\"":
                    return None
            if token.type not in _SKIPPED:
                last = token
    except tokenize.TokenError:   # EOF inside brackets or a multi-line string: unfinished
        pass
    return None, last, False


def _parses_so_far(line: str, complete: bool, last: tokenize.TokenInfo | None) -> bool:
    """Whether Python's parser accepts the logical ``line`` as complete, or as the start of a longer one
    (module doc). A name that ends an unfinished line may still grow into a keyword (``i`` -> ``if``),
    so the line is also tried with each keyword the name begins."""
    if complete:
        return _parser_error(line, True) is None
    lines = [line]
    if last is not None and last.type == tokenize.NAME and line.rstrip("\\").endswith(last.string):
        stem = line[:len(line.rstrip("\\")) - len(last.string)]
        lines += [stem + word for word in KEYWORDS if word.startswith(last.string) and word != last.string]
    for candidate in lines:
        error = _parser_error(candidate, False)
        if error is None:
            return True
        if last is None or error.lineno is None:
            continue
        if last.type in (tokenize.NAME, tokenize.NUMBER):   # the whole trailing word may change ("1e" -> "1e5")
            row = last.start[0]
            physical = candidate.splitlines()[row - 1] if row <= len(candidate.splitlines()) else ""
            start = (row, re.search(r"[\w.]*$", physical[:last.end[1]]).start())
        elif last.string in GROWABLE or (last.type == tokenize.ERRORTOKEN and last.string[:1] in "'\""):
            start = last.start
        else:
            continue
        if error.lineno is not None and (error.lineno, (error.offset or 1) - 1) >= start:
            return True
    return False


def _parser_error(line: str, complete: bool) -> SyntaxError | None:
    """The parser's error on the logical ``line`` (with a trailing continuation when unfinished, after
    the dummy block a continuation keyword needs), line numbers those of ``line``; ``None`` when it is
    valid or incomplete."""
    word = line.split(None, 1)[0].rstrip(":") if line.strip() else ""
    header = HEADERS.get(word, "")
    ending = "" if complete else ("\n" if line.endswith("\\") else "\\\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # SyntaxWarnings of generated text (e.g. "invalid escape sequence")
        try:
            compile(header + line + ending, "<line>", "exec", FLAGS)
            return None
        except SyntaxError as error:
            if error.msg in INCOMPLETE:
                return None
            if error.lineno is not None:
                error.lineno -= header.count("\n")
            return error
        except (ValueError, OverflowError, MemoryError, RecursionError):   # e.g. a NUL byte
            return SyntaxError("not Python source")


def parses(text: str) -> bool:
    """Whether ``text`` is a whole valid Python module (``ast.parse``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(text)
            return True
        except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError):
            return False


def names_resolve(text: str) -> bool:
    """Whether ``text`` parses and pyflakes (static analysis; nothing is run) reports no undefined
    name in it: every name it reads is a builtin, imported, defined or assigned."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError):
        return False
    from pyflakes import checker, messages   # imported here: only this check needs it

    undefined = (messages.UndefinedName, messages.UndefinedLocal, messages.UndefinedExport)
    return not any(isinstance(m, undefined) for m in checker.Checker(tree, filename="<sample>").messages)


class PythonSyntax:
    """Logits processor ``(tokens (B, T), scores (B, V)) -> scores`` that removes dead candidates.

    Args:
        detokenize: ids -> text (the model's codec; it drops the end-of-text id).
        eos: the end-of-text id (also the left padding and start token of genlab's text decoding).
        coverage: probability the checked candidates must hold before a step stops checking, in (0, 1].

    Attributes:
        fallbacks: steps left unconstrained because no candidate was alive.
        checks: candidate checks made; ``masked``: candidates removed; ``steps``: rows x steps seen.
    """

    def __init__(self, detokenize: Callable[[Sequence[int]], str], eos: int, *, coverage: float = 0.999) -> None:
        if not 0 < coverage <= 1:
            raise ValueError(f"coverage must be in (0, 1], got {coverage}")
        self.detokenize, self.eos, self.coverage = detokenize, eos, coverage
        self.fallbacks = self.checks = self.masked = self.steps = 0
        self._pieces: dict[int, str] = {}
        self._rows: dict[int, tuple[str, LineState | None]] = {}

    @classmethod
    def for_codec(cls, codec, **options) -> "PythonSyntax":
        """A processor for a genlab text codec (:class:`~genlab.data.text.BPECodec` or ``CharCodec``)."""
        return cls(codec.detokenize, codec.eos, **options)

    def __call__(self, tokens: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        probs = scores.float().softmax(-1)
        keep = torch.ones_like(scores, dtype=torch.bool)
        for row, ids in enumerate(tokens.tolist()):
            started = next((i for i, t in enumerate(ids) if t != self.eos), len(ids))
            if self.eos in ids[started:]:
                continue   # this row has ended; decoding ignores its token
            text = self.detokenize(ids)
            state = self._state(row, text)
            if state is None:
                continue
            self.steps += 1
            dead, alive, covered = [], False, 0.0
            order = torch.argsort(probs[row], descending=True).tolist()
            for token in order:
                if (covered >= self.coverage and alive) or probs[row, token] <= 0:
                    break
                covered += float(probs[row, token])
                self.checks += 1
                if self._alive(state, text, token):
                    alive = True
                else:
                    dead.append(token)
            if not alive:
                self.fallbacks += 1
                continue
            keep[row, dead] = False
            self.masked += len(dead)
        return scores.masked_fill(~keep, float("-inf"))

    def _alive(self, state: LineState, text: str, token: int) -> bool:
        if token == self.eos:
            return parses(text)
        if token not in self._pieces:
            self._pieces[token] = self.detokenize([token])
        piece = self._pieces[token]
        if "\ufffd" in piece:   # part of a multi-byte character: judged once it is whole
            return True
        return advance(state, piece) is not None

    def _state(self, row: int, text: str) -> LineState | None:
        """The row's state, advanced from its previous step's when the text only grew."""
        previous = self._rows.get(row)
        if previous is not None and text.startswith(previous[0]):
            state = None if previous[1] is None else advance(previous[1], text[len(previous[0]):])
        else:
            state = advance(LineState(), text)
        self._rows[row] = (text, state)
        return state

    def summary(self) -> str:
        """One line: steps constrained, candidates checked and removed, fallbacks."""
        return (f"python constraint: {self.steps} steps, {self.checks} candidates checked, {self.masked} removed, "
                f"{self.fallbacks} steps without a live candidate (left unconstrained)")


#: Constraints ``genlab sample --constrain NAME`` can put on text decoding.
CONSTRAINTS = ("python",)


def text_constraint(model, name: str) -> PythonSyntax:
    """The logits processor of constraint ``name`` for a fitted text ``model``.

    Raises:
        ConfigError: an unknown constraint (listing them) or a model that does not make text.
    """
    from genlab.errors import ConfigError, unknown_choice

    if name not in CONSTRAINTS:
        raise unknown_choice("constraint", name, CONSTRAINTS)
    if model.data_.modality != "text" or "logits_processors" not in model.sample_options:
        raise ConfigError(f"--constrain {name} constrains text decoding; this {model.family} model makes "
                          f"{model.data_.modality}")
    return PythonSyntax.for_codec(model.codec_)
