"""Whether a prefix of text can still become valid Python: the check behind Python-constrained decoding
(:mod:`genlab.sampling.python_constraint`).

A prefix is *dead* when no continuation makes it parse. The check works one logical line at a time,
with Python's own machinery:

- ``tokenize`` splits the text into logical lines (it knows brackets, strings and continuations) and
  gives the last token of the unfinished line;
- the indentation of each new logical line is checked against the stack of open blocks: deeper only
  after a line ending in ``:`` (which must be followed by a deeper one), otherwise equal to an open
  level: a dedent to a level never opened, or an unexpected indent, is dead;
- Python's parser judges the logical line itself, compiled alone with ``PyCF_ALLOW_INCOMPLETE_INPUT``
  (``codeop``'s flag): an unfinished line gets a trailing line continuation (``\\``), so the parser
  reads "more may follow" instead of "the statement ends here". ``incomplete input`` is alive (unless a
  sentinel shows an error before the end, below). Otherwise
  the line is alive if it parses once its last token has grown into what more characters may still make
  of it (a name into a keyword or a longer name, ``r`` into a string, ``=`` into ``==``, ``1e`` or ``2e-``
  into a whole number); a last token that anything follows, even a space, can no longer grow (``x = 1e `` is
  dead). ``incomplete input`` is also the parser's answer to any error at the last token before the end
  (``x = a b``), so the line is compiled once more followed by a sentinel no prefix can precede, and a
  generic syntax error before the sentinel is dead. A line that ends inside a string is judged with that string
  closed at once (``def f('x`` is dead; the continuation alone would only continue the string), and a newline
  after the row of a single-quoted string left open is dead, inside brackets too. This catches unbalanced
  closing brackets, ``def`` without a name, an unterminated single-quoted string at a newline, ``x = 1 +`` at
  a newline, ``x == = 1`` mid-line. ``else``/``elif``/``except``/``finally`` lines are compiled after a dummy
  block they may follow, ``case`` lines also under a dummy ``match``.

The check is incremental: a :class:`LineState` carries the unfinished logical line with a :class:`Mark`, the
last point where tokenize's state is known, so :func:`advance` re-tokenizes only from there (the row's last
token after a space, the current row, or a multi-line string from its start) and compiles the one logical line;
a piece that only lengthens a comment or a triple-quoted string the parser already reads as valid so far is taken
without a check. Starting from an empty :class:`LineState` gives the same answer for any text
(tests/test_python_constraint.py compares the two on every prefix of standard-library modules).

Asked to, :func:`advance` also says where a new top-level statement starts (:class:`TopLevel`): a logical line
at column 0, outside any string or bracket since tokenize found the line before it complete, that is not an
``else``/``elif``/``except``/``finally`` clause of the statement before. Blank and comment lines are no
statements: a comment at column 0 inside a function's body does not end it.
"""

from __future__ import annotations

import ast
import codeop
import io
import keyword
import re
import tokenize
import warnings
from dataclasses import dataclass, field, replace
from typing import NamedTuple

#: ``compile`` flags: an AST only (no compiler checks such as ``return`` outside a function), no
#: implied dedent at the end, and ``incomplete input`` reported apart from other errors.
FLAGS = ast.PyCF_ONLY_AST | codeop.PyCF_DONT_IMPLY_DEDENT | codeop.PyCF_ALLOW_INCOMPLETE_INPUT
#: Parser messages that mean "valid so far".
INCOMPLETE = ("incomplete input", "unexpected EOF while parsing")
_OPERATORS = [op for op in tokenize.EXACT_TOKEN_TYPES if not op.isalnum()]
#: Operators that more characters can turn into another one (``-`` into ``->``, ``*`` into ``**``).
GROWABLE = frozenset(op for op in _OPERATORS if any(o != op and o.startswith(op) for o in _OPERATORS)) | {"!"}
#: Dummy blocks a line starting with a keyword may follow, so that it can be compiled alone, each tried in
#: turn: a continuation keyword after its block; a ``case`` line (a soft keyword: also a name) alone, or one
#: column in under a ``match``.
HEADERS = {"else": ("if 1:\n pass\n",), "elif": ("if 1:\n pass\n",), "except": ("try:\n pass\n",),
           "finally": ("try:\n pass\n",), "case": ("", "match 1:\n ")}
#: Keywords that open a clause of the statement before them at its indentation: a column-0 line that starts
#: with one of them continues the top-level statement rather than starting the next (:class:`TopLevel`).
CLAUSES = ("else", "elif", "except", "finally")
#: What the parser cannot read after any prefix of a statement (:func:`_error_before_sentinel`).
SENTINEL = "pass pass"
#: The parser's messages that say where it could read no further; its specific messages may point back.
GENERIC_ERRORS = ("invalid syntax", "invalid syntax. Perhaps you forgot a comma?")
#: A number at the end of a line, maybe unfinished: a word that starts with a digit (or a point and a digit), maybe
#: with the sign of an exponent after its ``e``; not part of a name or an attribute.
_NUMBER_START = re.compile(r"(?<![\w.])\.?\d[\w.]*(?:(?<=[eE])[+-])?\Z")
#: Names a quote turns into the start of a string literal.
STRING_PREFIXES = frozenset({"r", "u", "b", "f", "br", "rb", "fr", "rf"})
#: Keywords and soft keywords a partial name may still become.
KEYWORDS = tuple(keyword.kwlist) + tuple(getattr(keyword, "softkwlist", ()))
_BLANK = re.compile(r"[ \t\f]*(?:#[^\r\n]*)?\r?\n")
_INDENT = re.compile(r"[ \t\f]*")
_WORD = re.compile(r"\w*")
_SKIPPED = (tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT)
_CLOSING = str.maketrans("([{", ")]}")
_TRIPLE = re.compile("[A-Za-z]*('''|\"\"\")")   # a string prefix, then a triple quote
#: Pieces that only lengthen a comment (``#``) or a triple-quoted string (its quote): no character that ends
#: it or escapes, reads as a newline to the parser but not to tokenize, or is not Python source.
_PLAIN = {"#": re.compile(r"[^\n\r\x00\ud800-\udfff]*"), "'": re.compile(r"[^'\\\r\x00\ud800-\udfff]*"),
          '"': re.compile(r'[^"\\\r\x00\ud800-\udfff]*')}


class Mark(NamedTuple):
    """Where tokenizing an unfinished logical line may resume: a row start in the line's ``body`` that no
    token spans (not inside a multi-line string), or on the line's last row the start of a token after a space
    or tab, outside strings. Tokens before it are final: nothing appended can change them (a token can grow
    into the next only where no space parts them: ``1e`` ``-`` ``5`` is one number once whole).

    Attributes:
        start: offset in ``body``; rows: the rows before its row; column: its column in that row.
        brackets: the brackets open there, outermost first (``"(["``).
        last: the last significant token before it (positions in ``body``'s rows), or ``None``.
        stray: end offset of the first stray character before it (an error token outside a string), -1 for
            none: the text is dead once anything but newlines follows it.
    """

    start: int = 0
    rows: int = 0
    column: int = 0
    brackets: str = ""
    last: tokenize.TokenInfo | None = None
    stray: int = -1


@dataclass(frozen=True)
class LineState:
    """Where a prefix stands: its unfinished logical line (from the line's first character), the
    indentation widths of the open blocks, and whether the next line must open a deeper block.

    ``mark`` and ``inside`` only make the next :func:`advance` cheaper (they take no part in equality): where
    tokenizing the line resumes, and ``"#"`` or a triple quote when the text ends inside a comment or a
    triple-quoted string whose line the parser reads as valid so far. ``gap`` (no part in equality either) is
    the length of the blank and comment lines between the last complete logical line and ``pending``: where
    that line ends, for :class:`TopLevel`."""

    pending: str = ""
    indents: tuple[int, ...] = (0,)
    expect_indent: bool = False
    mark: Mark = field(default=Mark(), compare=False)
    inside: str = field(default="", compare=False)
    gap: int = field(default=0, compare=False)


class TopLevel(NamedTuple):
    """What :func:`advance` returns, when asked, once a new statement starts at column 0: a logical line at
    column 0 whose first word is not a clause that continues the statement before it (:data:`CLAUSES`), after
    a complete logical line and no block header waiting for its body.

    Attributes:
        end: offset in ``state.pending + piece`` where the logical line before it ends (just after its
            newline; the blank and comment lines between the two are not counted).
    """

    end: int


class _Line(NamedTuple):
    """What tokenizing a logical line found (:func:`_logical_line`)."""

    end: int | None                      # offset just after its NEWLINE; None: the line goes on
    last: tokenize.TokenInfo | None      # its last significant token
    colon: bool                          # it ends in ":"
    mark: Mark = Mark()                  # where tokenizing it may resume (unfinished lines)
    inside: str = ""                     # "#" or a triple quote: the text ends inside a comment or that string
    closers: str = ""                    # what closes the brackets left open, innermost first
    string: tuple[int, str] | None = None      # a string the text ends inside: where it starts in the line
                                               # (its prefix included), and its quote


def advance(state: LineState, piece: str, *, top_after: int | None = None) -> LineState | TopLevel | None:
    """The state after ``piece`` is appended, or ``None`` when the text is dead (module doc).

    With ``top_after``, the first new statement at column 0 whose preceding logical line ends past offset
    ``top_after`` of ``state.pending + piece`` is returned as a :class:`TopLevel` instead, without reading
    further. It is known once the line's first word can no longer become a clause keyword or is one, whole
    (``e`` may still become ``else``, ``ef`` not): at the piece that starts the line, or that settles its first
    word. The check reads a few characters of each new line, O(1) a piece.
    """
    if state.inside and _PLAIN[state.inside[0]].fullmatch(piece):   # more of the comment or string only
        return replace(state, pending=state.pending + piece)
    text, indents, expect, mark = state.pending + piece, state.indents, state.expect_indent, state.mark
    whole, gap, before = len(text), state.gap, len(state.pending)   # before: the line's characters already read
    while True:
        while (blank := _BLANK.match(text)) is not None:   # blank and comment-only lines: no indentation
            text, gap, before = text[blank.end():], gap + blank.end(), 0
        space = _INDENT.match(text).group()
        body = text[len(space):]
        width = len(space.expandtabs(8))
        if not body or body[0] == "#":   # only indentation or a comment so far: it may still be a blank or
            return LineState(text, indents, expect, gap=gap)   # comment line, whose indentation does not count
        ended = whole - len(text) - gap   # where the logical line before this one ends
        if top_after is not None and ended > top_after and not space and not expect \
                and _starts_statement(body, before):
            return TopLevel(ended)
        if expect:
            if width <= indents[-1]:
                return None
            opened = indents + (width,)
        elif width in indents:
            opened = indents[:indents.index(width) + 1]
        else:
            return None
        line = _logical_line(body, mark)
        if line is None:
            return None
        if line.end is None:   # the line goes on
            alive, plain = _parses_so_far(body, False, line.last, line.closers, line.string)
            return LineState(text, indents, expect, line.mark, line.inside if plain else "", gap) if alive else None
        if not _parses_so_far(body[:line.end], True, None)[0]:
            return None
        text, indents, expect, mark, gap, before = body[line.end:], opened, line.colon, Mark(), 0, 0


def _starts_statement(body: str, before: int) -> bool:
    """Whether the newest piece shows that the logical line ``body`` (at column 0; its first ``before``
    characters were read before the piece) starts a new statement: its first word was a possible clause
    keyword (:data:`CLAUSES`) or not there before the piece, and is now known and not a clause keyword."""
    return before <= len(max(CLAUSES, key=len)) and _maybe_clause(body[:before]) and not _maybe_clause(body) \
        and _WORD.match(body).group() not in CLAUSES


def _maybe_clause(start: str) -> bool:
    """Whether a line that starts with ``start`` (and nothing more yet) may still open a clause (:data:`CLAUSES`)."""
    return any(clause.startswith(start) for clause in CLAUSES)


def _logical_line(body: str, mark: Mark = Mark()) -> _Line | None:
    """Tokenize ``body`` (a logical line starting at column 0) up to its first NEWLINE, resuming at ``mark``
    (from an earlier call on a prefix of ``body``) rather than at its start. ``None`` when tokenize meets a
    stray character before the end (outside a string left open on its row: ``'a$b`` may still close).

    Resuming feeds tokenize the text from ``mark.start`` after one made-up row that puts it in the state it
    was in there: the open brackets, or a line continuation when none is open. The tokens come out as from
    the whole line, one row lower and, on the mark's row, ``mark.column`` columns to the left. The mark it
    returns is the latest it can be (:class:`Mark`), so a piece re-reads a few tokens, not its row."""
    limit = len(body.rstrip("\r\n"))
    if 0 <= mark.stray < limit:
        return None
    prefix = (mark.brackets + "\n" if mark.brackets else "\\\n") if mark.start else ""
    skip = 1 if prefix else 0
    starts = [mark.start]                                  # body offset of each row from the mark on
    while (newline := body.find("\n", starts[-1])) >= 0:
        starts.append(newline + 1)
    shift = mark.rows - skip                               # body row of a token's row in what tokenize reads
    last, brackets, stray, balanced = None, mark.brackets, mark.stray, True   # last: this read's, else mark.last

    def placed(token: tokenize.TokenInfo | None) -> tokenize.TokenInfo | None:   # in body's rows and columns
        return mark.last if token is None else _moved(token, shift, mark.column, skip + 1)

    reach, quoted, quote_at, comment, string_at = 0, 0, None, False, None
    resume = [(brackets, last, stray, True)]   # each row's start: brackets, last, stray, and whether resumable
    spaced = None   # on the last row, the state before its last token after a space: (offset, brackets, last, stray)
    try:
        for token in tokenize.generate_tokens(io.StringIO(prefix + body[mark.start:]).readline):
            row, end_row = token.start[0] - skip, token.end[0] - skip
            if row <= 0 or token.type in (tokenize.ENDMARKER, tokenize.DEDENT):
                continue
            while len(resume) < min(row, len(starts)):   # rows begun since: resumable unless a token spans them
                resume.append((brackets, last, stray, balanced and reach <= len(resume)))
            end = starts[min(end_row, len(starts)) - 1] + token.end[1]
            if token.type in (tokenize.NL, tokenize.NEWLINE) and token.string and row == quoted:
                return None   # a newline ends the row of a single-quoted string left open: it can never close
            if token.type == tokenize.NEWLINE:
                if token.string:   # a real newline, not the one tokenize adds at the end of the text
                    last = placed(last)
                    return _Line(end, last, last is not None and last.string == ":")
                continue
            if row == len(starts) and balanced and token.start[1] and body[end - len(token.string) - 1] in " \t":
                spaced = end - len(token.string), brackets, last, stray
            if token.type == tokenize.ERRORTOKEN and not token.string.isspace():
                if token.string in ("'", '"'):   # a string left open: the rest of its row is inside it
                    quoted, quote_at = row, (starts[row - 1] + token.start[1], token.string)
                elif token.string[:1] not in "'\"" and row != quoted:
                    if end < limit:
                        return None
                    stray = end if stray < 0 else stray
            if token.type == tokenize.OP and token.string in "([{":
                brackets += token.string
            elif token.type == tokenize.OP and token.string in ")]}":
                balanced, brackets = balanced and bool(brackets), brackets[:-1]
            if token.type not in _SKIPPED:
                last = token
            reach, comment = max(reach, end_row), token.type == tokenize.COMMENT and end == len(body) and row != quoted
    except tokenize.TokenError as error:   # EOF inside brackets or a multi-line string: unfinished
        if error.args[0] == "EOF in multi-line string":
            string_at = error.args[1][0] - skip, starts[error.args[1][0] - skip - 1] + error.args[1][1]
    while len(resume) < len(starts):
        resume.append((brackets, last, stray, balanced and reach <= len(resume)))
    row = max(r for r in range(1, (string_at[0] if string_at else len(starts)) + 1) if resume[r - 1][3])
    inside, string = "#" if comment else "", None
    if string_at is not None:
        quote = _TRIPLE.match(body, string_at[1])
        inside = quote.group(1) if quote else ""
        string = (string_at[1], inside) if quote else None
    elif quote_at is not None and quoted == len(starts):   # a single-quoted string open on the last row
        prefix = re.search(r"\w*$", body[:quote_at[0]]).group()
        string = (quote_at[0] - (len(prefix) if prefix.lower() in STRING_PREFIXES else 0), quote_at[1])
    at, (at_brackets, at_last, at_stray, _) = starts[row - 1], resume[row - 1]
    if row == len(starts) and row != quoted and spaced is not None:   # after the last space of the last row
        at, at_brackets, at_last, at_stray = spaced
    column = at - starts[row - 1] + (mark.column if row == 1 else 0)
    final = placed(last)
    at_last = final if at_last is last else placed(at_last)
    resumed = Mark(at, mark.rows + row - 1, column, at_brackets, at_last, at_stray)
    return _Line(None, final, False, resumed, inside, brackets[::-1].translate(_CLOSING), string)


def _moved(token: tokenize.TokenInfo | None, rows: int, columns: int = 0, row: int = 0) -> tokenize.TokenInfo | None:
    """``token`` ``rows`` rows lower, and the ends of it that lie on row ``row`` ``columns`` columns to the right."""
    if token is None or (rows == 0 and columns == 0):
        return token
    (start_row, start_column), (end_row, end_column) = token.start, token.end
    return token._replace(start=(start_row + rows, start_column + (columns if start_row == row else 0)),
                          end=(end_row + rows, end_column + (columns if end_row == row else 0)))


def _parses_so_far(line: str, complete: bool, last: tokenize.TokenInfo | None, closers: str = "",
                   string: tuple[int, str] | None = None) -> tuple[bool, bool]:
    """Whether Python's parser accepts the logical ``line`` as complete, or as the start of a longer one
    (module doc), and whether it does so for ``line`` as written (not only for a longer last token).
    ``string``: where the string the line ends inside starts, and its quote (:func:`_string_may_close`)."""
    if complete:
        return (valid := _parser_error(line, True) is None), valid
    if string is not None:   # whatever the string holds: more of it leaves the answer as it is
        return _string_may_close(line, closers, *string), True
    if _reads_on(line, closers):
        return True, True
    if last is None or not _ends_with(line, last):   # a token something follows can no longer grow
        return False, False
    return any(_reads_on(candidate, closers) for candidate in _grown(line, last)), False


def _error_before_sentinel(line: str, closers: str) -> SyntaxError | None:
    """The parser's error on ``line`` followed by :data:`SENTINEL`, when it lies before the sentinel; ``None``
    when it lies at the sentinel or later (or is one of the parser's specific messages, which may point back
    at an earlier token: ``expected 'else' after 'if' expression``).

    ``incomplete input`` is the parser's answer to any error at the last token before the end of the text, so
    ``x = a b`` reads as incomplete although nothing after it can make it parse. After the sentinel, a token no
    prefix can be followed by, the parser fails at the sentinel when it could read the whole line and earlier
    when it could not. The sentinel goes on a new row inside brackets or after a line continuation; after a
    comment outside brackets it is part of the comment and shows nothing."""
    escaped = (len(line) - len(line.rstrip("\\"))) % 2 == 1
    newline = bool(closers) or escaped
    error = _parser_error(line + ("\n" if newline else " ") + SENTINEL, True, closers)
    if error is None or error.lineno is None or error.msg not in GENERIC_ERRORS:
        return None
    rows = line.split("\n")
    at = (len(rows) + 1, 0) if newline else (len(rows), len(rows[-1]) + 1)
    return error if (error.lineno, (error.offset or 1) - 1) < at else None


def _ends_with(line: str, token: tokenize.TokenInfo) -> bool:
    """Whether ``token`` (positions in ``line``'s rows) is the end of ``line``: nothing, not even a space,
    follows it."""
    rows = line.split("\n")
    return sum(len(row) + 1 for row in rows[:token.end[0] - 1]) + token.end[1] >= len(line)


def _string_may_close(line: str, closers: str, start: int, quote: str) -> bool:
    """Whether the unfinished logical ``line``, which ends inside a string that starts at offset ``start`` (its
    prefix included) and opens with ``quote``, may still parse: whether it reads on with that string closed at
    once (``import a import "x`` and ``def f(x)'''doc`` do not; the continuation alone would only continue the
    string). A string's characters do not change how the parser reads what is around it, and an f-string's
    braces still open inside it may close later."""
    opening = line[start:line.index(quote, start) + len(quote)]
    return _reads_on(line[:start] + opening + quote, closers)


def _reads_on(line: str, closers: str) -> bool:
    """Whether the parser reads all of the unfinished logical ``line`` (its open brackets closed by
    ``closers``), as the start of a longer one: valid or incomplete input, and no error before a sentinel."""
    return _parser_error(line, False, closers) is None and _error_before_sentinel(line, closers) is None


def _grown(line: str, last: tokenize.TokenInfo) -> list[str]:
    """``line`` with its last token grown into what it may still become: a name into each keyword it begins
    (``i`` -> ``if``), a keyword into a longer name (``in`` -> ``int``), a string prefix into a string (``r``
    -> ``r''``), an operator into each longer one (``=`` -> ``==``); a number in the making (``1e``, ``0x``,
    ``2e-``) that some characters make whole becomes the whole number ``0``, which the parser reads as any
    other number."""
    kept = line.rstrip("\\")
    number = _NUMBER_START.search(kept)
    if number is not None and any(re.fullmatch(tokenize.Number, number.group() + more) for more in ("", "0")):
        return [kept[:number.start()] + "0"]   # a number in the making, as the whole number 0
    if not kept.endswith(last.string):
        return []
    stem, word = kept[:len(kept) - len(last.string)], last.string
    if last.type == tokenize.NAME:
        lines = [stem + w for w in KEYWORDS if w.startswith(word) and w != word]
        if keyword.iskeyword(word):
            lines.append(stem + word + "_")
        if word.lower() in STRING_PREFIXES:   # a string, maybe after another one (implicit concatenation)
            lines.append(stem + word + "''")
        return lines
    return [stem + op for op in _OPERATORS if op.startswith(word) and op != word] if word in GROWABLE else []


def _parser_error(line: str, complete: bool, closers: str = "") -> SyntaxError | None:
    """The parser's error on the logical ``line`` (with a trailing continuation when unfinished, after each
    dummy block its first word may need until one takes it), positions those of ``line``; ``None`` when it
    is valid or incomplete. Python 3.11 reports an error inside brackets that are still open as "'(' was
    never closed" at the bracket; then the line is compiled again with its ``closers`` on a new row, which
    gives the error where it lies (or none: then those closers complete it)."""
    word = line.split(None, 1)[0].rstrip(":") if line.strip() else ""
    escaped = (len(line) - len(line.rstrip("\\"))) % 2 == 1   # a last backslash that escapes what follows
    ending = "" if complete else ("\n" if escaped else "\\\n")
    for header in HEADERS.get(word, ("",)):
        error = _compile_error(header + line + ending)
        if error is not None and closers and error.msg.endswith("was never closed"):
            error = _compile_error(header + line + "\n" + closers + "\n")
        if error is None:
            return None
        if error.lineno is not None:
            error.lineno -= header.count("\n")
            if error.lineno == 1 and error.offset is not None:   # the columns a header's indentation added
                error.offset -= len(header) - 1 - header.rfind("\n")
    return error


def _compile_error(source: str) -> SyntaxError | None:
    """``compile``'s error on ``source`` (:data:`FLAGS`); ``None`` when it is valid or incomplete."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # SyntaxWarnings of generated text (e.g. "invalid escape sequence")
        try:
            compile(source, "<line>", "exec", FLAGS)
            return None
        except SyntaxError as error:
            return None if error.msg in INCOMPLETE else error
        except (ValueError, OverflowError, MemoryError, RecursionError):   # e.g. a NUL byte
            return SyntaxError("not Python source")


def completion(text: str, state: LineState) -> str | None:
    """A short suffix after which ``text`` (alive, its checker state ``state``) parses, or ``None`` when none of
    those tried does; ``""`` when it parses already.

    The suffix closes what the unfinished logical line left open, in the order the line needs it: the string it
    ends inside (its quote), an operand after an operator (`` 0``), the open brackets (innermost first), a ``:``
    after a block header, and a body (``pass`` one level deeper) after a header; a text at the start of a line
    that must open a block gets the body alone. At most four candidates are parsed after the text itself, the
    shortest first. What they miss (``for x`` needs `` in y:``, ``@decorator`` a ``def``) has no completion here."""
    if parses(text):
        return ""
    line = state.pending
    while (blank := _BLANK.match(line)) is not None:
        line = line[blank.end():]
    space = _INDENT.match(line).group()
    body = line[len(space):]
    width = len(space.expandtabs(8))
    if not body or body[0] == "#":   # a line not begun (or a comment): only a block's body may be missing
        if not state.expect_indent:
            return None
        if body:   # after a comment line: the body on a new line, one level deeper than the open block
            suffix = "\n" + " " * (state.indents[-1] + 4) + "pass"
        else:      # the indentation written so far, deepened to one level past the open block if short of it
            suffix = " " * (0 if width > state.indents[-1] else state.indents[-1] + 4 - width) + "pass"
        return suffix if parses(text + suffix) else None
    tokens = _logical_line(body)
    if tokens is None or tokens.end is not None:
        return None
    last = tokens.last
    # what ends the string or comment the text ends inside: a comment ends at the newline (which the parser then
    # reads as the end of the line unless a bracket is open)
    quote = "\n" if tokens.inside == "#" else tokens.string[1] if tokens.string else ""
    if len(quote) == 3:   # quotes the text already ends with count towards a triple quote's end
        quote = quote[min(len(body) - len(body.rstrip(quote[0])), 2):]
    body_after = "\n" + " " * (width + 4) + "pass"
    for operand in ("", " 0"):
        for colon in ("", ":"):
            header = colon or (not (quote or operand or tokens.closers) and last is not None and last.string == ":")
            suffix = quote + operand + tokens.closers + colon + (body_after if header else "")
            if parses(text + suffix):
                return suffix
    return None


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
