"""Rules read off a training table: dependencies between discrete columns, orders between numeric
columns, and observed ranges.

- **Dependency** ``A -> B`` (discrete ``A``, ``B``: categories, booleans, whole numbers with at most
  :data:`MAX_LEVELS` values): a value ``a`` of ``A`` seen in at least :data:`MIN_SUPPORT` rows whose
  most common ``B`` covers at least :data:`MIN_PURITY` of them may force that ``B``; the purest such
  values are taken while the rule holds in at least ``threshold`` (99.9 %) of the training rows (its
  exceptions, rows with a forcing ``a`` and another ``B``, at most 0.1 % of them). One rule per pair,
  kept when it forces at least one value and ``B`` is not itself constant to within ``threshold``
  (which a range or a condition says better). E.g. Adult's
  ``relationship -> sex (Husband -> Male, Wife -> Female)``: 1 Female husband and 2 Male wives in
  32,561 rows.
- **Inequality** ``a <= b`` for two numeric columns (integers, numbers, datetimes) where it holds on
  every row with both present, unless the ranges already imply it (``max a <= min b``).
- **Range** ``min <= x <= max`` for every numeric column, the observed ends.

Missing values are left out of every count.
"""

from __future__ import annotations

import itertools

import pandas as pd

from genlab.rules.kinds import DISCRETE_KINDS, NUMERIC_KINDS, Dependency, Inequality, Range, Rule

#: Most distinct values a whole-number column may have to count as discrete.
MAX_LEVELS = 64
#: Fewest rows a determinant value needs before it may force anything.
MIN_SUPPORT = 50
#: Least share of a determinant value's rows its forced value must cover.
MIN_PURITY = 0.99


def infer_rules(table: pd.DataFrame, kinds: dict[str, str], *, threshold: float = 0.999) -> list[Rule]:
    """The rules of the module doc that ``table`` satisfies.

    Args:
        table: the training rows.
        kinds: column -> kind (``TableCodec.column_kinds``).
        threshold: share of a value's rows a dependency must hold on, in ``(0.5, 1]``.

    Returns:
        dependencies, then inequalities, then ranges, in column order.
    """
    discrete = [c for c, k in kinds.items()
                if k in DISCRETE_KINDS and (k != "integer" or table[c].nunique() <= MAX_LEVELS)]
    rules: list[Rule] = []
    for a, b in itertools.permutations(discrete, 2):
        rule = _dependency(table, a, b, threshold)
        if rule is not None:
            rules.append(rule)
    numeric = [c for c, k in kinds.items() if k in NUMERIC_KINDS]
    lows, highs = {c: table[c].min() for c in numeric}, {c: table[c].max() for c in numeric}
    for a, b in itertools.permutations(numeric, 2):
        pair = table[[a, b]].dropna()
        if len(pair) and highs[a] > lows[b] and bool((pair[a] <= pair[b]).all()):
            rules.append(Inequality(a, b))
    rules.extend(Range(c, _plain(lows[c]), _plain(highs[c])) for c in numeric if pd.notna(lows[c]))
    return rules


def _dependency(table: pd.DataFrame, a: str, b: str, threshold: float) -> Dependency | None:
    pair = table[[a, b]].dropna()
    if not len(pair) or pair[b].value_counts(normalize=True).iloc[0] >= threshold:
        return None
    counts = pair.groupby([a, b], observed=True).size()
    totals = counts.groupby(level=0).sum()
    top = counts.groupby(level=0).max()
    purity = (top / totals)[(totals >= MIN_SUPPORT) & (top >= MIN_PURITY * totals)].sort_values(ascending=False)
    exceptions = (totals - top)[purity.index].cumsum()
    forcing = sorted(purity.index[(exceptions <= (1.0 - threshold) * len(table)).to_numpy()], key=str)
    if not forcing:
        return None
    mode = counts.groupby(level=0).idxmax()
    return Dependency(a, b, tuple((_plain(value), _plain(mode[value][1])) for value in forcing))


def _plain(value):
    """A numpy scalar as the Python value JSON and conditions take."""
    return value.item() if hasattr(value, "item") else value
