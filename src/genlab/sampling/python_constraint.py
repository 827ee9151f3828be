"""Python-constrained decoding (``genlab sample --constrain python``): a token constraint that keeps every
sample a prefix of valid Python, and lets it end only where the whole text parses.

Each row carries its text and the checker's state (:mod:`genlab.sampling.python_syntax`) from token to token, so
a check reads the token's piece, the current row of the unfinished logical line and one compile of that line,
whatever the length of the text. Greedy decoding and sampling ask about the drawn token only
(:mod:`genlab.sampling.checked_draw`: the distribution of masking every dead candidate, about one check a row a
step when the model mostly writes valid Python). Beam search uses the logits-processor form, which checks the
candidates by probability until the checked ones hold ``coverage`` of it and one is alive, and masks the dead
ones (unchecked candidates keep their scores).

Where a sample may end: the end-of-text token only where the whole text parses (``ast.parse``); with stop
strings, a token that completes one only where the text before the stop string parses, since the sample is cut
there. A sample also ends at the end of its first complete top-level statement, as Codex and HumanEval cut a
function completion, but knowing the tokenizer's state: when it starts a new logical line at column 0 (outside
any string or bracket; not an ``else``/``elif``/``except``/``finally`` clause, decided once the line's first
word is whole; blank and comment lines are no statement) after a logical line it wrote at least in part, and
the text up to the end of that logical line parses, the sample is that text: the new line, and the blank and
comment lines before it, are not part of it. :meth:`ends` tells the caller, which ends the row and cuts it as
for a stop string (the prompt's own lines never end a sample); the row itself reads on, checked as before, so
beam search (which cuts nothing: its beams end with end-of-text) is constrained as it was. Where that text does
not parse the line is judged as any other: after ``def f():`` with no body it is dead and its token refused;
after a decorator the ``def`` goes on.

Near the token budget (``max_new_tokens``, when the constraint is told it) a sample also ends at the end of any
logical line, at whatever indentation: a token among the last ``margin`` of the budget that completes a logical
line (its NEWLINE, outside strings and brackets) after which the whole text parses ends the sample there, with
everything up to that newline kept (what the token writes past it is dropped). A model trained on whole files
writes method after method inside its first function and may never come back to column 0; this ends such a
sample valid instead of cutting it mid-line at the budget.

In the last :data:`STEERING_WINDOW` of those tokens a sample is also steered to finish: once its text has a
completion that fits in the tokens left (:func:`~genlab.sampling.python_syntax.completion`: the closing quote,
operand, brackets, colon and ``pass`` body the unfinished line needs, counted in the codec's tokens;
:data:`UNKNOWN_NEED` tokens for a text none of those finishes), a token after which no completion fits any
more is refused. The model's
distribution is kept on the tokens that still leave room to finish, and on the last token the text must parse
as it stands. The suffix's own first token always keeps the room, so a fitting row is never left without an
allowed token by this rule (unless the codec tokenizes the suffix differently token by token, then the row
falls back as below); a row whose text has no such completion when the window opens is left to the line-end
rule until it gains one. Both rules act only in the last ``margin`` tokens: before them the allowed tokens are
those of the syntax alone. A sample that neither rule ends reaches the budget unfinished: callers report it as
not valid (:func:`~genlab.sampling.python_syntax.parses` of the text).

A byte-level token that ends inside a character is held until the character is whole; the whole character is
checked then. A row whose text is dead (a dead prompt, or a step with no allowed token: a fallback, counted)
is no longer constrained.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch

from genlab.errors import ConfigError, DataError, unknown_choice
from genlab.sampling.constraint import TokenConstraint
from genlab.sampling.python_syntax import LineState, TopLevel, advance, completion, parses

#: Constraints ``genlab sample --constrain NAME`` can put on text decoding.
CONSTRAINTS = ("python",)
#: Tokens before the budget from which a sample ends at the next logical line end where its text parses (module
#: doc). Measured on the standard library's function bodies (300 files of ``pystdlib``, 204,000 token positions
#: after a file's first ``def``, the 2,048-id BPE of benchmarks/transformer_code.py): from a position, a line end
#: after which the text parses comes within 16 tokens at 45 % of them, 32 at 67 %, 48 at 77 %, 64 at 83 % (a
#: logical line is 12 tokens at the median, 35 at the 90th percentile; docstrings and multi-line brackets make
#: the long tail). 48 ends about three in four samples that reach the window, and leaves more than four fifths
#: of a 256-token budget untouched.
BUDGET_MARGIN = 48
#: Tokens a text is taken to need near the budget when none of the suffixes :func:`completion` tries finishes it
#: (``def`` still needs a name, parameters, a colon and a body; ``for x`` needs `` in y:`` and a body): about
#: eight BPE tokens for those, so such states are left before the last eight tokens rather than refused at once.
UNKNOWN_NEED = 8
#: The last tokens of the budget in which a sample is steered to finish (module doc), at most ``margin``. A
#: completion is short: on the 10-minute ``pystdlib`` model of benchmarks/transformer_code.py, the 8,506 known
#: completions in a 48-token window took 0 to 5 tokens (99.5 % at most 4), so a token can take away the room to
#: finish only near the end; looking for completions earlier (up to five parses of the text each) took about a
#: tenth of the constraint's time and changed no sample (200 samples, two seeds).
STEERING_WINDOW = 16


class _Row(NamedTuple):
    """One row: the checker's state (``None``: dead, unconstrained), the text so far in whole characters, the
    ids of a character not yet whole, where the sample starts in the text (after the prompt), whether it has
    ended, and, when the constraint ended it (a stop string, a top-level statement or a line end near the budget),
    the sample's text."""

    state: LineState | None
    text: str = ""
    held: tuple[int, ...] = ()
    start: int = 0
    ended: bool = False
    end: str | None = None


class PythonSyntax(TokenConstraint):
    """The Python constraint (module doc), for greedy decoding, sampling and, as a logits processor
    ``(tokens (B, T), scores (B, V)) -> scores``, beam search.

    Args:
        detokenize: ids -> text (the model's codec; it drops the end-of-text id).
        tokenize: text -> ids (the same codec), to count a completion's tokens near the budget; ``None`` counts
            its characters (a character-level codec's tokens).
        eos: the end-of-text id (also the left padding and start token of genlab's text decoding).
        coverage: beam search only: probability the checked candidates must hold before a step stops checking,
            in (0, 1].
        stop: the stop strings of the decoding: a sample that meets one ends before it.
        max_new_tokens: the decoding's token budget, or ``None`` (no end near the budget).
        margin: how many tokens before the budget a sample ends at a logical line end where its text parses
            (module doc); it is steered to finish in the last ``min(margin, STEERING_WINDOW)``.

    Attributes:
        fallbacks: steps left unconstrained because no candidate was alive.
        checks: candidate checks made; ``masked``: candidates found dead; ``steps``: rows x steps constrained;
        ``steered``: candidates refused near the budget because no completion would fit after them.
    """

    masks = False

    def __init__(self, detokenize: Callable[[Sequence[int]], str], eos: int, *,
                 tokenize: Callable[[str], Sequence[int]] | None = None, coverage: float = 0.999,
                 stop: Sequence[str] = (), max_new_tokens: int | None = None, margin: int = BUDGET_MARGIN) -> None:
        if not 0 < coverage <= 1:
            raise ValueError(f"coverage must be in (0, 1], got {coverage}")
        if margin < 1:
            raise ValueError(f"margin must be at least 1, got {margin}")
        if any(not s for s in stop):
            raise ValueError("stop strings must not be empty")
        super().__init__()
        self.detokenize, self.eos, self.coverage, self.stop = detokenize, eos, coverage, tuple(stop)
        self.tokenize = tokenize or list
        self.max_new_tokens, self.margin = max_new_tokens, margin
        self._near_budget = False   # whether this step's token is among the last ``margin`` of the budget
        self._steering = False      # ... and among the last STEERING_WINDOW
        self._left = 0              # near the budget: the tokens left after this step's
        self._fits: dict[int, bool] = {}   # this step: whether each row's text has a completion that fits now
        self._firsts = {s[0] for s in self.stop}
        self.checks = self.masked = self.steps = self.steered = 0
        self._pieces: dict[int, str] = {}
        self._rows: list[_Row] = []
        self._next: dict[tuple[int, int], _Row | None] = {}   # this step's answers: the row after each token

    @classmethod
    def for_codec(cls, codec, **options) -> "PythonSyntax":
        """A constraint for a genlab text codec (:class:`~genlab.data.text.BPECodec` or ``CharCodec``)."""
        return cls(codec.detokenize, codec.eos, tokenize=codec.tokenize, **options)

    def update(self, tokens: torch.Tensor) -> None:
        super().update(tokens)   # advances each row by the last step's token, still judged as near the budget or not
        self._next, self._fits = {}, {}
        drawn = tokens.shape[1] - self._width   # tokens drawn before this step's
        self._near_budget = self.max_new_tokens is not None and drawn >= self.max_new_tokens - self.margin
        self._left = (self.max_new_tokens or 0) - drawn - 1
        self._steering = self._near_budget and self._left < STEERING_WINDOW
        self.steps += sum(row.state is not None and not row.ended for row in self._rows)

    def allows(self, row: int, token: int) -> bool:
        current = self._rows[row]
        if current.state is None or current.ended:
            return True
        if (row, token) not in self._next:
            self.checks += 1
            self._next[row, token] = after = self._after(current, token)
            self.masked += after is None
            if after is not None and self._steering and not self._room(after, self._left) \
                    and self._room_now(row):   # the text had room to finish and this token takes it away
                self._next[row, token] = None
                self.steered += 1
        return self._next[row, token] is not None

    def ends(self, row: int, token: int) -> str | None:
        """The sample's text when ``token`` ends it at a stop string, a top-level statement or, near the budget, a
        logical line end (module doc)."""
        if (row, token) not in self._next or self._next[row, token] is None:
            return None
        return self._next[row, token].end

    def fallback(self, row: int) -> None:
        self.fallbacks += 1
        self._rows[row] = self._rows[row]._replace(state=None)

    def __call__(self, tokens: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.update(tokens)
        probs = scores.float().softmax(-1)
        keep = torch.ones_like(scores, dtype=torch.bool)
        for row, current in enumerate(self._rows):
            if current.state is None or current.ended:
                continue
            dead, alive, covered = [], False, 0.0
            values, order = torch.sort(probs[row], descending=True)
            for p, token in zip(values.tolist(), order.tolist()):
                if (covered >= self.coverage and alive) or p <= 0:
                    break
                covered += p
                if self.allows(row, token):
                    alive = True
                else:
                    dead.append(token)
            if not alive:
                self.fallback(row)
                continue
            keep[row, dead] = False
        return scores.masked_fill(~keep, float("-inf"))

    def summary(self) -> str:
        """One line: steps constrained, candidates checked and removed, fallbacks."""
        return (f"python constraint: {self.steps} steps, {self.checks} candidates checked, {self.masked} removed, "
                f"{self.steered} refused to leave room to finish before the budget, "
                f"{self.fallbacks} steps without a live candidate (left unconstrained)")

    def _room(self, row: _Row, left: int) -> bool:
        """Whether ``row``'s text ends here, or its completion (:data:`UNKNOWN_NEED` tokens when none is known)
        fits in ``left`` tokens (module doc)."""
        if row.ended or row.end is not None or row.held:
            return True
        need = self._need(row)
        return (UNKNOWN_NEED if need is None else need) <= left

    def _room_now(self, row: int) -> bool:
        """Whether row ``row``'s text, before this step's token, has a known completion that fits in this step's
        token and the ``_left`` after it: only then are this step's tokens steered."""
        if row not in self._fits:
            current = self._rows[row]
            need = 0 if current.held else self._need(current)
            self._fits[row] = need is not None and need <= self._left + 1
        return self._fits[row]

    def _need(self, row: _Row) -> int | None:
        """The tokens of ``row``'s completion, or ``None`` when none is known or the codec cannot write it (a
        character vocabulary without its characters)."""
        suffix = completion(row.text, row.state)
        if suffix is None:
            return None
        try:
            return len(self.tokenize(suffix))
        except DataError:
            return None

    def _after(self, current: _Row, token: int) -> _Row | None:
        """The row after ``token``, or ``None`` when ``token`` may not come next (module doc)."""
        if token == self.eos:   # (an end a row holds belongs to the token that made it: not carried on)
            return _Row(current.state, current.text, (), current.start, ended=True) \
                if not current.held and parses(current.text) else None
        ids = current.held + (token,)
        piece = self._piece(ids)
        if piece.endswith("\ufffd") and len(ids) < 4:   # a character not yet whole: judged once it is
            return _Row(current.state, current.text, ids, current.start)
        text = current.text + piece
        cut = self._stop_at(text, current)
        if cut is not None:   # the sample ends here, before the stop string
            kept = text[:cut]
            return _Row(current.state, kept, (), current.start, True, kept[current.start:]) if parses(kept) else None
        offset = len(current.text) - len(current.state.pending)   # where the checker's unfinished line starts
        state = advance(current.state, piece, top_after=current.start - offset)
        while isinstance(state, TopLevel):   # a new top-level statement: the sample ends before it if it parses
            kept = text[:offset + state.end]
            if parses(kept):   # the row reads on, checked as before, for a caller that does not end it (beams)
                return _Row(advance(current.state, piece), text, (), current.start, end=kept[current.start:])
            state = advance(current.state, piece, top_after=state.end)   # a decorator's def, say: read on
        if state is None:
            return None
        if self._near_budget:   # a logical line this piece completed ends the sample if the text up to it parses
            line_end = len(text) - len(state.pending) - state.gap
            if line_end > offset and parses(text[:line_end]):
                return _Row(state, text, (), current.start, end=text[current.start:line_end])
        return _Row(state, text, (), current.start)

    def _piece(self, ids: tuple[int, ...]) -> str:
        if len(ids) > 1:
            return self.detokenize(list(ids))
        if ids[0] not in self._pieces:
            self._pieces[ids[0]] = self.detokenize([ids[0]])
        return self._pieces[ids[0]]

    def _stop_at(self, text: str, current: _Row) -> int | None:
        """Where the first stop string in the sample's part of ``text`` begins, if the newest piece completed one."""
        if not self.stop:
            return None
        since = max(current.start, len(current.text) - max(map(len, self.stop)) + 1)
        if not any(first in text[since:] for first in self._firsts):   # cheap: most pieces complete none
            return None
        found = [at for at in (text.find(s, since) for s in self.stop) if at >= 0]
        return min(found) if found else None

    def _replay(self, tokens: torch.Tensor) -> None:
        self._rows = [self._start(ids) for ids in tokens.tolist()]

    def _start(self, ids: list[int]) -> _Row:
        """A row from its ids: left padding and the start token (``eos``), the prompt, what was drawn since."""
        begun = next((i for i, t in enumerate(ids) if t != self.eos), len(ids))
        if self.eos in ids[begun:]:
            return _Row(None, ended=True)
        held = 0
        while held < 3 and held < len(ids) - begun and self.detokenize(ids[:len(ids) - held]).endswith("\ufffd"):
            held += 1
        text = self.detokenize(ids[:len(ids) - held])
        prompt = self.detokenize(ids[:min(self._width, len(ids) - held)])
        return _Row(advance(LineState(), text), text, tuple(ids[len(ids) - held:]), len(prompt))

    def _reorder(self, parent: torch.Tensor) -> None:
        self._rows = [self._rows[i] for i in parent.tolist()]
        self._next = {}   # its answers were for the old rows: the new tokens are checked again

    def _advance(self, token: torch.Tensor) -> None:
        for row, value in enumerate(token.tolist()):
            current = self._rows[row]
            if current.ended:
                continue
            if current.state is None:   # unconstrained: only its end matters
                self._rows[row] = current._replace(ended=value == self.eos)
                continue
            after = self._next[row, value] if (row, value) in self._next else self._after(current, value)
            self._rows[row] = after if after is not None else _Row(None, ended=value == self.eos)


def text_constraint(model, name: str, *, stop: Sequence[str] = (), max_new_tokens: int | None = None) -> PythonSyntax:
    """The constraint ``name`` for a fitted text ``model``, with the decoding's ``stop`` strings and token budget.

    Raises:
        ConfigError: an unknown constraint (listing them) or a model that does not make text.
    """
    if name not in CONSTRAINTS:
        raise unknown_choice("constraint", name, CONSTRAINTS)
    if model.data_.modality != "text" or "logits_processors" not in model.sample_options:
        raise ConfigError(f"--constrain {name} constrains text decoding; this {model.family} model makes "
                          f"{model.data_.modality}")
    return PythonSyntax.for_codec(model.codec_, stop=stop, max_new_tokens=max_new_tokens)
