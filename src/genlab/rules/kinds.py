"""The rule kinds a synthetic table must never break (SDV's constraint vocabulary, plus inferred ones).

Every rule names its columns, reports which rows of a table break it (``violations``: bool ``(n,)``),
checks itself against a fitted :class:`~genlab.data.tables.TableCodec` (``bind``: unknown columns, wrong
kinds, unseen categories and impossible ranges are :class:`RuleError`), and round-trips through JSON
(``state`` / :func:`rule_from_state`), except :class:`Predicate`, which is Python only. A missing
value in a rule's column leaves that row unchecked by the rule (as SDV does).

Kinds:

- ``fixed_combinations``: the values of ``columns`` form one of the listed tuples (SDV's
  FixedCombinations; the listed tuples are the training ones when inferred);
- ``dependency``: ``determinant = a`` forces ``dependent = mapping[a]`` for each ``a`` in ``mapping``
  (a functional dependency that holds on some values, e.g. ``relationship = Husband -> sex = Male``);
- ``inequality``: ``low <= high`` (``low < high`` when ``strict``), SDV's Inequality;
- ``range``: ``low <= column <= high`` (either end may be omitted), SDV's ScalarRange;
- ``positive`` / ``negative``: ``column > 0`` / ``< 0`` (``>= 0`` / ``<= 0`` unless ``strict``);
- ``unique``: no two rows share a value of ``column``;
- ``predicate``: ``function(row) -> bool`` on a row (a ``pandas.Series``), from Python only.

``dependency`` and ``fixed_combinations`` are *assignment* rules: :meth:`assign` gives the values their
columns must take in a row, which enforcement then conditions on (see :mod:`genlab.rules.enforcement`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np
import pandas as pd

from genlab.data.tables import TableCodec
from genlab.errors import ConfigError, DataError

NUMERIC_KINDS = ("integer", "numeric", "datetime")
#: Column kinds whose values can be listed (categories, booleans, and whole numbers).
DISCRETE_KINDS = ("categorical", "boolean", "integer")


class RuleError(ConfigError):
    """A rule that names an unknown column, a value its column cannot hold, an impossible range, or
    rules that contradict each other or the requested condition."""


class Rule(ABC):
    """One rule on the rows of a table (module doc)."""

    kind: ClassVar[str]

    @property
    @abstractmethod
    def columns(self) -> tuple[str, ...]:
        """The columns the rule reads."""

    @abstractmethod
    def violations(self, table: pd.DataFrame) -> np.ndarray:
        """Bool ``(n,)``: the rows of ``table`` that break the rule."""

    @abstractmethod
    def describe(self) -> str:
        """The rule in one line, e.g. ``age <= hours-per-week``."""

    def state(self) -> dict[str, Any]:
        """The rule as a JSON object (``{"kind": ..., ...}``)."""
        return {"kind": self.kind, **{name: _json_value(value) for name, value in self.__dict__.items()}}

    def bind(self, codec: TableCodec) -> "Rule":
        """The rule checked against a fitted codec, values cast to their columns' types.

        Raises:
            RuleError: an unknown column, a column of the wrong kind, or a value it cannot hold.
        """
        kinds = codec.column_kinds
        for column in self.columns:
            if column not in kinds:
                raise RuleError(f"rule {self.describe()!r} names the unknown column {column!r}; "
                                f"the table's columns are: {', '.join(kinds)}")
        return self

    def _need_numeric(self, codec: TableCodec, column: str) -> None:
        kind = codec.column_kinds[column]
        if kind not in NUMERIC_KINDS:
            raise RuleError(f"rule {self.describe()!r} compares numbers, but column {column!r} is {kind}; "
                            f"numeric columns: {', '.join(c for c, k in codec.column_kinds.items() if k in NUMERIC_KINDS)}")


def _cast(codec: TableCodec, rule: Rule, column: str, value: Any) -> Any:
    """``value`` read as ``column``'s type (``TableCodec.parse_condition``), or a RuleError."""
    try:
        return codec.parse_condition({column: value})[column]
    except DataError as error:
        raise RuleError(f"rule {rule.describe()!r}: {error}") from None


@dataclass(frozen=True)
class FixedCombinations(Rule):
    """The values of ``columns`` form one of ``combinations`` (tuples in the columns' order)."""

    kind: ClassVar[str] = "fixed_combinations"
    names: tuple[str, ...]
    combinations: tuple[tuple[Any, ...], ...]

    def __post_init__(self) -> None:
        if len(self.names) < 2 or len(set(self.names)) != len(self.names):
            raise RuleError(f"fixed_combinations needs two or more distinct columns, got {list(self.names)}")
        if not self.combinations or any(len(c) != len(self.names) for c in self.combinations):
            raise RuleError(f"fixed_combinations on {list(self.names)} needs combinations of {len(self.names)} "
                            "values each")

    @property
    def columns(self) -> tuple[str, ...]:
        return self.names

    def violations(self, table: pd.DataFrame) -> np.ndarray:
        values = table[list(self.names)]
        allowed = pd.MultiIndex.from_tuples(self.combinations, names=list(self.names))
        inside = pd.MultiIndex.from_frame(values).isin(allowed)
        return ~inside & values.notna().all(axis=1).to_numpy()

    def describe(self) -> str:
        return f"({', '.join(self.names)}) in {len(self.combinations)} combinations"

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": list(self.names),
                "combinations": [[_json_value(v) for v in c] for c in self.combinations]}

    def bind(self, codec: TableCodec) -> "FixedCombinations":
        super().bind(codec)
        combos = tuple(dict.fromkeys(tuple(_cast(codec, self, c, v) for c, v in zip(self.names, combo))
                                     for combo in self.combinations))
        return FixedCombinations(self.names, combos)

    def assign(self, row: dict[str, Any], fixed: dict[str, Any],
               choose: Callable[[int], int]) -> dict[str, Any] | None:
        """Values of the rule's columns for a row that must satisfy it, agreeing with ``fixed``.

        The row's own tuple when allowed; else an allowed tuple that keeps the row's first column (when
        one agrees with ``fixed``), chosen by ``choose(k) -> index < k``. ``None``: no allowed tuple
        agrees with ``fixed``.
        """
        agree = [c for c in self.combinations
                 if all(fixed.get(name, value) == value for name, value in zip(self.names, c))]
        if not agree:
            return None
        own = tuple(fixed.get(name, row[name]) for name in self.names)
        if any(_missing(value) for value in own):
            return {}   # a missing value is not checked; the redraw decides it
        if own in agree:
            return dict(zip(self.names, own))
        keeping = [c for c in agree if c[0] == own[0]] or agree
        return dict(zip(self.names, keeping[choose(len(keeping))]))


@dataclass(frozen=True)
class Dependency(Rule):
    """``determinant = a`` implies ``dependent = mapping[a]`` for each ``a`` in ``mapping``."""

    kind: ClassVar[str] = "dependency"
    determinant: str
    dependent: str
    mapping: tuple[tuple[Any, Any], ...]

    def __post_init__(self) -> None:
        if self.determinant == self.dependent:
            raise RuleError(f"dependency of {self.determinant!r} on itself")
        if not self.mapping:
            raise RuleError(f"dependency {self.determinant!r} -> {self.dependent!r} maps no value")

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.determinant, self.dependent)

    def violations(self, table: pd.DataFrame) -> np.ndarray:
        expected = table[self.determinant].map(dict(self.mapping))
        present = expected.notna() & table[self.dependent].notna()
        return (present & (table[self.dependent] != expected)).to_numpy()

    def describe(self) -> str:
        shown = ", ".join(f"{a}->{b}" for a, b in self.mapping[:4]) + (", ..." if len(self.mapping) > 4 else "")
        return f"{self.determinant} -> {self.dependent} ({shown})"

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "determinant": self.determinant, "dependent": self.dependent,
                "mapping": [[_json_value(a), _json_value(b)] for a, b in self.mapping]}

    def bind(self, codec: TableCodec) -> "Dependency":
        super().bind(codec)
        mapping = tuple((_cast(codec, self, self.determinant, a), _cast(codec, self, self.dependent, b))
                        for a, b in self.mapping)
        if len(dict(mapping)) != len(mapping):
            raise RuleError(f"rule {self.describe()!r} maps one value of {self.determinant!r} to two values")
        return Dependency(self.determinant, self.dependent, mapping)

    def assign(self, row: dict[str, Any], fixed: dict[str, Any],
               choose: Callable[[int], int]) -> dict[str, Any] | None:
        """The determinant kept (``fixed``'s value, else the row's) and the dependent it forces; ``{}``
        when the determinant forces nothing or the dependent is fixed and the determinant is not (left to
        resampling); ``None`` when ``fixed`` holds both and they disagree."""
        mapping = dict(self.mapping)
        a = fixed.get(self.determinant, row[self.determinant])
        if a not in mapping or _missing(a):
            return {}
        if self.dependent in fixed and fixed[self.dependent] != mapping[a]:
            return None if self.determinant in fixed else {}
        return {self.determinant: a, self.dependent: mapping[a]}


@dataclass(frozen=True)
class Inequality(Rule):
    """``low <= high`` (``<`` when ``strict``) between two numeric or datetime columns."""

    kind: ClassVar[str] = "inequality"
    low: str
    high: str
    strict: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.low, self.high)

    def violations(self, table: pd.DataFrame) -> np.ndarray:
        a, b = table[self.low], table[self.high]
        broken = a >= b if self.strict else a > b
        return (broken & a.notna() & b.notna()).to_numpy()

    def describe(self) -> str:
        return f"{self.low} {'<' if self.strict else '<='} {self.high}"

    def bind(self, codec: TableCodec) -> "Inequality":
        super().bind(codec)
        if self.low == self.high:
            raise RuleError(f"rule {self.describe()!r} compares a column with itself")
        for column in self.columns:
            self._need_numeric(codec, column)
        return self


@dataclass(frozen=True)
class Range(Rule):
    """``low <= column <= high``; ``None`` leaves an end open."""

    kind: ClassVar[str] = "range"
    column: str
    low: Any = None
    high: Any = None

    def __post_init__(self) -> None:
        if self.low is None and self.high is None:
            raise RuleError(f"range on {self.column!r} needs a low or a high end")

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def violations(self, table: pd.DataFrame) -> np.ndarray:
        x = table[self.column]
        broken = pd.Series(False, index=table.index)
        if self.low is not None:
            broken |= x < self.low
        if self.high is not None:
            broken |= x > self.high
        return (broken & x.notna()).to_numpy()

    def describe(self) -> str:
        return f"{'-inf' if self.low is None else self.low} <= {self.column} <= {'inf' if self.high is None else self.high}"

    def bind(self, codec: TableCodec) -> "Range":
        super().bind(codec)
        self._need_numeric(codec, self.column)
        low, high = (None if v is None else _number(codec, self, v) for v in (self.low, self.high))
        if low is not None and high is not None and low > high:
            raise RuleError(f"rule {self.describe()!r} is an impossible range: low {self.low!r} > high {self.high!r}")
        spec = codec.spec(self.column)
        if spec["kind"] != "datetime" and ((high is not None and _as_number(high) < spec["low"])
                or (low is not None and _as_number(low) > spec["high"])):
            raise RuleError(f"rule {self.describe()!r} excludes every training value of {self.column!r}")
        return Range(self.column, low, high)

    def bounds(self) -> tuple[float, float, bool, bool]:
        """``(low, high, low_strict, high_strict)`` as floats (datetimes as nanoseconds)."""
        return (-math.inf if self.low is None else _as_number(self.low),
                math.inf if self.high is None else _as_number(self.high), False, False)


@dataclass(frozen=True)
class Positive(Rule):
    """``column > 0`` (``>= 0`` unless ``strict``)."""

    kind: ClassVar[str] = "positive"
    column: str
    strict: bool = True

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def violations(self, table: pd.DataFrame) -> np.ndarray:
        x = table[self.column]
        return ((x <= 0 if self.strict else x < 0) & x.notna()).to_numpy()

    def describe(self) -> str:
        return f"{self.column} {'>' if self.strict else '>='} 0"

    def bind(self, codec: TableCodec) -> "Positive":
        super().bind(codec)
        self._need_numeric(codec, self.column)
        return self

    def bounds(self) -> tuple[float, float, bool, bool]:
        """``(low, high, low_strict, high_strict)``."""
        return 0.0, math.inf, self.strict, False


@dataclass(frozen=True)
class Negative(Positive):
    """``column < 0`` (``<= 0`` unless ``strict``)."""

    kind: ClassVar[str] = "negative"

    def violations(self, table: pd.DataFrame) -> np.ndarray:
        x = table[self.column]
        return ((x >= 0 if self.strict else x > 0) & x.notna()).to_numpy()

    def describe(self) -> str:
        return f"{self.column} {'<' if self.strict else '<='} 0"

    def bounds(self) -> tuple[float, float, bool, bool]:
        return -math.inf, 0.0, False, self.strict


@dataclass(frozen=True)
class Unique(Rule):
    """No two rows share a value of ``column`` (the later copies break the rule)."""

    kind: ClassVar[str] = "unique"
    column: str

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def violations(self, table: pd.DataFrame) -> np.ndarray:
        x = table[self.column]
        return (x.duplicated(keep="first") & x.notna()).to_numpy()

    def describe(self) -> str:
        return f"{self.column} unique"


@dataclass(frozen=True)
class Predicate(Rule):
    """``function(row) -> bool`` holds on every row; ``reads`` lists the columns it looks at (for the
    error messages and the conflict checks; empty means any)."""

    kind: ClassVar[str] = "predicate"
    function: Callable[[pd.Series], bool]
    name: str = "predicate"
    reads: tuple[str, ...] = field(default=())

    @property
    def columns(self) -> tuple[str, ...]:
        return self.reads

    def violations(self, table: pd.DataFrame) -> np.ndarray:
        if len(table) == 0:
            return np.zeros(0, dtype=bool)
        return ~table.apply(lambda row: bool(self.function(row)), axis=1).to_numpy(dtype=bool)

    def describe(self) -> str:
        return self.name

    def state(self) -> dict[str, Any]:
        raise RuleError(f"the predicate rule {self.name!r} is Python code, which a rules file never holds; "
                        "pass it to model.sample(..., rules=...) instead of saving it")


#: Rule kinds a JSON rules file may name, by their ``kind``.
KINDS: dict[str, type[Rule]] = {cls.kind: cls for cls in (FixedCombinations, Dependency, Inequality, Range,
                                                          Positive, Negative, Unique)}
#: The fields each kind's JSON object takes: required, then optional.
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fixed_combinations": (("columns", "combinations"), ()),
    "dependency": (("determinant", "dependent", "mapping"), ()),
    "inequality": (("low", "high"), ("strict",)),
    "range": (("column",), ("low", "high")),
    "positive": (("column",), ("strict",)),
    "negative": (("column",), ("strict",)),
    "unique": (("column",), ()),
}


def rule_from_state(state: Any) -> Rule:
    """A rule from its JSON object; a RuleError names a bad kind or field and the valid ones."""
    if not isinstance(state, dict) or "kind" not in state:
        raise RuleError(f"a rule is a JSON object with a \"kind\"; got {state!r}")
    kind = state["kind"]
    if kind == "predicate":
        raise RuleError("predicate rules are Python functions: pass them to model.sample(..., rules=...); "
                        f"a rules file holds only: {', '.join(KINDS)}")
    if kind not in FIELDS:
        raise RuleError(f"unknown rule kind {kind!r}; choose one of: {', '.join(KINDS)}")
    required, optional = FIELDS[kind]
    given = set(state) - {"kind"}
    missing, unknown = set(required) - given, given - set(required) - set(optional)
    if missing or unknown:
        raise RuleError(f"rule {state!r}: {'missing ' + ', '.join(sorted(missing)) if missing else ''}"
                        f"{'; ' if missing and unknown else ''}{'unknown ' + ', '.join(sorted(unknown)) if unknown else ''}"
                        f"; a {kind} rule takes {', '.join(required + optional)}")
    values = {name: state[name] for name in required + optional if name in state}
    try:
        if kind == "fixed_combinations":
            return FixedCombinations(tuple(map(str, values["columns"])),
                                     tuple(tuple(c) for c in values["combinations"]))
        if kind == "dependency":
            return Dependency(str(values["determinant"]), str(values["dependent"]),
                              tuple((a, b) for a, b in values["mapping"]))
        for flag in ("strict",):
            if flag in values and not isinstance(values[flag], bool):
                raise RuleError(f"rule {state!r}: {flag} must be true or false")
        return KINDS[kind](**values)
    except (TypeError, ValueError) as error:
        raise RuleError(f"rule {state!r} is malformed ({error})") from None


def _number(codec: TableCodec, rule: Rule, value: Any) -> Any:
    """A range end read as its column's type, without the training-range check of conditions."""
    kind = codec.column_kinds[rule.columns[0]]
    try:
        if kind == "datetime":
            return pd.Timestamp(value)
        number = float(value)
        return int(number) if kind == "integer" and number == round(number) else number
    except (TypeError, ValueError):
        raise RuleError(f"rule {rule.describe()!r}: cannot read {value!r} as a {kind} value") from None


def _as_number(value: Any) -> float:
    return float(value.value) if isinstance(value, pd.Timestamp) else float(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _json_value(value: Any) -> Any:
    """A value as JSON holds it: numpy scalars as Python ones, timestamps as ISO text."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value
