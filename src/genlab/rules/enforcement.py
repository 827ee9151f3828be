"""Enforcing rules on sampled rows without losing any: every requested row comes back, every returned
row satisfies every rule and the condition.

0. **Deriving the dependent** of a broken ``dependency`` (``relationship = Husband`` forces
   ``sex = Male``): under the rule, the offending column's conditional given the rest of the row is a
   point mass on the forced value, so that column alone is set to it and the row is otherwise kept (no
   draw). Skipped when the condition fixes the dependent (then the row is redrawn).

The other methods go through the family's exact conditional sampling (``model.sample(k, condition=...)``),
so they work for every table family without touching its network:

1. **Rejection**: the broken rows are redrawn whole under the caller's condition and the draws that
   break a rule are discarded: exact sampling from ``p(row | condition, rules)``, the model restricted
   to the rows the rules allow. Each round draws ``1.25 / acceptance`` candidates per row still broken
   (the acceptance measured so far, at most :data:`MAX_OVERSAMPLE`), for :data:`REJECTION_ROUNDS` rounds.
2. **Conditioning on assignments**, for the rows left: a row is redrawn *given* values that satisfy
   every assignment rule (``dependency``, ``fixed_combinations``): for each such rule the row keeps its
   own values when they are allowed, else its determinant (the first column of a combination) with the
   value it forces; these values join the condition and the family draws the rest of the row given
   them, so the redraw satisfies every assignment rule by construction. The other rules (inequality,
   range, positive/negative, unique, predicate) are still met by discarding the draws that break them,
   drawing ``2^round`` candidates per row. This is exact given the kept values, but keeping a
   determinant moves the dependent column's marginal (Adult's copula, conditioned this way on every
   broken row, lost 0.04 of quality: ``Husband`` kept, ``Never-married`` turned ``Married``), which is why
   it comes last.

After :data:`ROUNDS` rounds in all, rows still broken raise a :class:`RuleError` naming the rule and
how often the model satisfies it, instead of looping.

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

#: Rounds of plain rejection (method 1 of the module doc) before assignments are conditioned on.
REJECTION_ROUNDS = 3
#: Redraw rounds in all before the rows that still break a rule raise.
ROUNDS = 12
#: Most candidates a rejection round draws per row still broken (its draws follow the acceptance rate).
MAX_OVERSAMPLE = 64
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
                if fixed and not any(all(fixed.get(name, value) == value for name, value in zip(rule.columns, combo))
                                     for combo in rule.combinations):
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
    redrawn = _derive(table, [rule for rule in assigning if isinstance(rule, Dependency)], condition or {})
    broken = broken_rows(table, rules)
    drawn = len(table)
    accepted, tried = len(table) - int(broken.sum()), len(table)   # rejection's acceptance so far
    for round_ in range(ROUNDS):
        if not broken.any():
            break
        rows = np.flatnonzero(broken).tolist()
        rejecting = round_ < REJECTION_ROUNDS
        if rejecting:     # method 1: whole rows under the condition alone
            groups = {tuple(sorted((condition or {}).items())): rows}
        else:             # method 2: given values that satisfy every assignment rule
            groups = {}
            for i in rows:
                fixed = _assignment(table.iloc[i].to_dict(), assigning, dict(condition or {}), generator)
                groups.setdefault(tuple(sorted(fixed.items(), key=lambda item: item[0])), []).append(i)
        for key, members in groups.items():
            want = len(members)
            if rejecting:
                count = math.ceil(1.25 * want / max(accepted / tried, 1.0 / MAX_OVERSAMPLE))
            else:
                count = want * 2 ** (round_ - REJECTION_ROUNDS)
            fresh = sample(min(count, MAX_DRAW), dict(key) or None)
            drawn += len(fresh)
            fitting = _fitting(fresh, table.drop(index=members), rules)
            if rejecting:
                accepted, tried = accepted + len(fitting), tried + len(fresh)
            kept = fitting.head(want)
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


def _derive(table: pd.DataFrame, dependencies: Sequence[Dependency], condition: dict[str, Any]) -> np.ndarray:
    """Method 0 of the module doc, in place: each broken dependency's dependent set to the value its
    determinant forces (unless the condition fixes the dependent), repeated while that breaks another
    dependency (at most once per rule). Returns bool ``(n,)``: the rows changed."""
    changed = np.zeros(len(table), dtype=bool)
    for _ in range(len(dependencies)):
        touched = False
        for rule in dependencies:
            if rule.dependent in condition:
                continue
            rows = rule.violations(table)
            if rows.any():
                forced = table.loc[rows, rule.determinant].map(dict(rule.mapping))
                table.loc[rows, rule.dependent] = forced.astype(table[rule.dependent].dtype)
                changed |= rows
                touched = True
        if not touched:
            break
    return changed


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
    """``condition`` plus the values every assignment rule needs in ``row`` (module doc, method 2).

    When one rule's values clash with those an earlier rule chose (not the condition's), the clashing
    columns are freed (no rule fixes them any more) and the assignment restarts, so it ends after at
    most one restart per column; the redraw then decides the freed columns, and the rejection of method 2
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
