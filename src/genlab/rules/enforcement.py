"""Enforcing rules on sampled rows without losing any: every requested row comes back, every returned
row satisfies every rule and the condition.

Two methods, both through the family's exact conditional sampling (``model.sample(k, condition=...)``),
so they work for every table family without touching its network:

1. **Assignment rules** (``dependency``, ``fixed_combinations``): a row that breaks one is redrawn
   *given* values that satisfy all of them: for each such rule the row keeps its own values when they
   are allowed, else its determinant (the first column of a combination) with the value it forces;
   these values join the caller's condition, and the family draws the rest of the row given them.
   The redrawn row satisfies every assignment rule by construction, in one round. The determinant keeps
   the model's marginal; the other columns follow the model's conditional given the kept values.
2. **Every other rule** (inequality, range, positive/negative, unique, predicate): the row is redrawn
   under the same condition and the draws that break a rule are discarded, which is exact rejection
   sampling from ``p(row | condition, rules)``. Each round draws ``2^round`` candidates per row still
   broken; after :data:`ROUNDS` rounds the rows still broken raise a :class:`RuleError` naming the rule
   and how often the model satisfies it, instead of looping.

Before sampling, :func:`check_rules` refuses rules that contradict each other (disjoint ranges on one
column, an inequality that the ranges make impossible, dependencies that force two values) or the
condition (a conditioned value that breaks a rule), naming both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from genlab.rules.kinds import Dependency, FixedCombinations, Inequality, Positive, Range, Rule, RuleError

#: Redraw rounds before the rows that still break a rule raise (method 2 of the module doc).
ROUNDS = 12
#: Most candidate rows one redraw asks of the family, so one rare rule cannot exhaust memory.
MAX_DRAW = 200_000


@dataclass(frozen=True)
class Enforced:
    """Rows after enforcement and what it took.

    Attributes:
        table: the ``n`` rows, every one satisfying every rule and the condition.
        violations: rule description -> rows of the first draw that broke it.
        redrawn: rows replaced (each counted once).
        drawn: rows the family drew in all, the first draw included.
    """

    table: pd.DataFrame
    violations: dict[str, int]
    redrawn: int
    drawn: int


def count_violations(table: pd.DataFrame, rules: Sequence[Rule]) -> dict[str, int]:
    """Rule description -> number of rows of ``table`` that break it."""
    return {rule.describe(): int(rule.violations(table).sum()) for rule in rules}


def broken_rows(table: pd.DataFrame, rules: Sequence[Rule]) -> np.ndarray:
    """Bool ``(n,)``: rows that break at least one rule."""
    broken = np.zeros(len(table), dtype=bool)
    for rule in rules:
        broken |= rule.violations(table)
    return broken


def check_rules(rules: Sequence[Rule], condition: dict[str, Any] | None) -> None:
    """Refuse rules that contradict each other or a (parsed) condition (module doc).

    Raises:
        RuleError: naming the rules, or the rule and the condition, that cannot hold together.
    """
    condition = condition or {}
    if condition:
        row = pd.DataFrame({column: [value] for column, value in condition.items()})
        for rule in rules:
            if isinstance(rule, FixedCombinations):
                fixed = {c: condition[c] for c in rule.columns if c in condition}
                if fixed and rule.assign(fixed, fixed, lambda k: 0) is None:
                    raise RuleError(f"the condition {fixed} contradicts rule {rule.describe()!r}: "
                                    "no allowed combination has these values")
            elif set(rule.columns) and set(rule.columns) <= set(condition) and rule.violations(row[list(rule.columns)]).any():
                raise RuleError(f"the condition {condition} contradicts rule {rule.describe()!r}")
    bounds: dict[str, tuple[float, float, Rule]] = {}
    for rule in rules:
        if isinstance(rule, (Range, Positive)):
            low, high, low_strict, high_strict = rule.bounds()
            column = rule.column
            old_low, old_high, other = bounds.get(column, (-math.inf, math.inf, rule))
            new_low, new_high = max(low, old_low), min(high, old_high)
            if new_low > new_high or (new_low == new_high and (low_strict or high_strict)):
                raise RuleError(f"rules {other.describe()!r} and {rule.describe()!r} leave no value of {column!r}")
            bounds[column] = (new_low, new_high, rule)
    for rule in rules:
        if isinstance(rule, Inequality) and rule.low in bounds and rule.high in bounds:
            low_min, high_max = bounds[rule.low][0], bounds[rule.high][1]
            if low_min > high_max or (rule.strict and low_min == high_max):
                raise RuleError(f"rule {rule.describe()!r} cannot hold with {bounds[rule.low][2].describe()!r} "
                                f"and {bounds[rule.high][2].describe()!r}")
    forced: dict[tuple[str, str, Any], tuple[Any, Rule]] = {}
    for rule in rules:
        if isinstance(rule, Dependency):
            for a, b in rule.mapping:
                key = (rule.determinant, rule.dependent, a)
                if key in forced and forced[key][0] != b:
                    raise RuleError(f"rules {forced[key][1].describe()!r} and {rule.describe()!r} force "
                                    f"{rule.dependent} to both {forced[key][0]!r} and {b!r} when "
                                    f"{rule.determinant} is {a!r}")
                forced[key] = (b, rule)


def enforce(sample: Callable[[int, dict[str, Any] | None], pd.DataFrame], table: pd.DataFrame,
            rules: Sequence[Rule], condition: dict[str, Any] | None,
            generator: torch.Generator | None = None) -> Enforced:
    """Replace the rows of ``table`` that break a rule (module doc).

    Args:
        sample: ``sample(k, condition) -> k`` rows from the model, without rules; ``condition`` a dict
            of parsed values or ``None``.
        table: the model's first draw, ``n`` rows.
        rules: bound rules (``Rule.bind``), checked by :func:`check_rules`.
        condition: the caller's parsed condition, kept in every redraw.
        generator: picks replacement combinations (the family's draws use it too).

    Returns:
        :class:`Enforced`, its table in ``table``'s order and index.

    Raises:
        RuleError: rules that contradict each other or the condition, or rows still broken after
            :data:`ROUNDS` rounds.
    """
    check_rules(rules, condition)
    index = table.index
    table = table.reset_index(drop=True)
    first = count_violations(table, rules)
    assigning = [rule for rule in rules if isinstance(rule, (Dependency, FixedCombinations))]
    broken = broken_rows(table, rules)
    redrawn = np.zeros(len(table), dtype=bool)
    drawn = len(table)
    for round_ in range(ROUNDS):
        if not broken.any():
            break
        rows = np.flatnonzero(broken)
        groups: dict[tuple, list[int]] = {}
        for i in rows:
            fixed = _assignment(table.iloc[i].to_dict(), assigning, dict(condition or {}), generator)
            groups.setdefault(tuple(sorted(fixed.items(), key=lambda item: item[0])), []).append(int(i))
        for key, members in groups.items():
            want = len(members)
            fresh = sample(min(want * 2 ** round_, MAX_DRAW), dict(key) or None)
            drawn += len(fresh)
            kept = _fitting(fresh, table.drop(index=members), rules).head(want)
            if len(kept):
                for column in table.columns:   # column by column, so each keeps its dtype
                    table.loc[members[:len(kept)], column] = kept[column].to_numpy()
                redrawn[members[:len(kept)]] = True
        broken = broken_rows(table, rules)
    if broken.any():
        still = {name: count for name, count in count_violations(table, rules).items() if count}
        total = sum(first.values())
        raise RuleError(f"after {ROUNDS} rounds of redrawing, {int(broken.sum())} of {len(table)} rows still break "
                        f"{', '.join(repr(name) for name in still)} (the first draw broke rules {total} times); "
                        "the model almost never satisfies them: relax or remove the rule")
    table.index = index
    return Enforced(table=table, violations=first, redrawn=int(redrawn.sum()), drawn=drawn)


def _fitting(fresh: pd.DataFrame, others: pd.DataFrame, rules: Sequence[Rule]) -> pd.DataFrame:
    """The rows of ``fresh`` that break no rule, and for ``unique`` rules repeat no value of ``others``
    (the rows that stay) nor of an earlier fresh row."""
    kept = fresh[~broken_rows(fresh, [rule for rule in rules if rule.kind != "unique"])]
    for rule in rules:
        if rule.kind == "unique":
            kept = kept[~(kept[rule.column].isin(others[rule.column].dropna()) | rule.violations(kept))]
    return kept


def _assignment(row: dict[str, Any], rules: Sequence[Rule], condition: dict[str, Any],
                generator: torch.Generator | None) -> dict[str, Any]:
    """``condition`` plus the values every assignment rule needs in ``row`` (module doc, method 1).

    When one rule's values clash with those an earlier rule chose (not the condition's), the clashing
    columns are freed (no rule fixes them any more) and the assignment restarts, so it ends after at
    most one restart per column; the redraw then decides the freed columns, and rejection (method 2)
    keeps only rows that satisfy every rule.
    """
    def choose(k: int) -> int:
        return int(torch.randint(k, (1,), generator=generator)) if k > 1 else 0

    row, freed = dict(row), set()
    while True:
        fixed, clash = dict(condition), None
        for rule in rules:
            values = rule.assign(row, fixed, choose)
            if values is None:
                clash = rule
                break
            if not freed.intersection(values):
                fixed.update(values)
        if clash is None:
            return fixed
        new = [column for column in clash.columns if column not in condition and column not in freed]
        if not new:
            raise RuleError(f"rule {clash.describe()!r} cannot hold with the condition {condition}")
        freed.update(new)
        row.update({column: math.nan for column in new})
