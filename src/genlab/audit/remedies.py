"""Remedies for a biased table model, through its exact conditional sampling (nothing rejected).

- :func:`balanced` (``--balance COL``): ``n / G`` rows drawn given each of the ``G`` groups, so every
  group has the same share.
- :func:`parity` (``--parity TARGET:COL``): the groups keep the model's own shares (from an
  unconditional draw) and every group gets the same ``P(target = positive)``, the model's overall rate;
  each group's positives and negatives are drawn given both the group and the target value, so the
  other columns follow the model's conditional given both. Equal rates in the samples do not carry
  over downstream: columns such as relationship carry the group, and a classifier learns the target
  from them (Adult, copula: demographic parity difference 0.28 downstream after parity, 0.32 without).
- :func:`fair_target` (``--fair TARGET:COL``): the target redrawn from a conditional blind to the group
  and its proxies, at equal rates across groups; what parity leaves downstream, at a utility cost.

Which families can: a remedy must resample, never relabel. ``parity`` conditions on two columns at
once, which only a family with ``conditions_tables_jointly`` does; the GAN (CTGAN) feeds one category
through its conditional vector and writes the other in, so the other columns would follow the group
alone and the target would be a label pasted over them: :func:`parity` refuses it, naming the families
that can. ``balance`` conditions on one categorical column, which is exactly what CTGAN's conditional
vector carries (every categorical or boolean column is a one-hot block the generator was trained
against by training-by-sampling), so on a GAN the other columns follow the group: allowed
(``tests/test_audit.py`` checks that the group's proxy moves with it). ``fair`` conditions on nothing:
its rows are the model's unconditional draws and the target is redrawn by a classifier on every family
alike (that redraw is the remedy), so it needs nothing of the family either.

The functions draw through ``model.sample(k, condition=..., generator=...)`` alone, so
:mod:`genlab.audit.processors` runs them on a model's inner chain of sample processors: that is how
``model.sample(n, processors=[Parity(...)])``, ``genlab sample --parity`` and ``genlab audit`` remedy rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from genlab.errors import ConfigError, DataError, NotSupportedError


def categories(model: Any, column: str, role: str) -> list:
    """The categories of ``model``'s categorical (or boolean) ``column``, which a remedy or an audit
    groups rows by or takes as its target (``role``: ``"sensitive"`` or ``"target"``, for messages).

    Raises:
        NotSupportedError: a model that does not make tables.
        DataError / ConfigError: an unknown column, or a column that is not categorical (naming those that are).
    """
    if model.data_.modality != "tables":
        raise NotSupportedError(f"bias audits and remedies group table rows; this {model.family} model makes "
                                f"{model.data_.modality}")
    kinds = model.codec_.column_kinds
    if column not in kinds:
        raise DataError(f"unknown {role} column {column!r}; the table's columns are: {', '.join(kinds)}")
    if kinds[column] not in ("categorical", "boolean"):
        discrete = [c for c, k in kinds.items() if k in ("categorical", "boolean")]
        raise ConfigError(f"the {role} column {column!r} is {kinds[column]}, not categorical: bin it into "
                          f"categories first; categorical columns: {', '.join(discrete)}")
    return list(model.codec_.spec(column)["categories"])


def balanced(model: Any, n: int, sensitive: str, groups: list, *, generator: torch.Generator | None = None
             ) -> pd.DataFrame:
    """``n`` rows with the groups of ``sensitive`` in equal shares: ``n // G`` rows of each of the ``G``
    groups, and one more for ``n mod G`` groups chosen at random, so that a draw of a few rows (a rule's
    redraw) favours no group."""
    base, extra = divmod(n, len(groups))
    lucky = set(torch.randperm(len(groups), generator=generator)[:extra].tolist()) if extra else set()
    counts = [base + (i in lucky) for i in range(len(groups))]
    parts = [model.sample(k, condition={sensitive: group}, generator=generator)
             for group, k in zip(groups, counts) if k]
    return _shuffled(pd.concat(parts, ignore_index=True), generator)


#: Fewest rows of the free draw from which :func:`parity` estimates the overall rate and the shares.
RATE_ROWS = 256


def parity(model: Any, n: int, sensitive: str, target: str, positive, negatives: list, *,
           generator: torch.Generator | None = None) -> pd.DataFrame:
    """``n`` rows whose groups all have the model's overall ``P(target = positive)`` (module doc);
    ``negatives`` are the target's other values, drawn in the model's proportions.

    A free draw of at least :data:`RATE_ROWS` rows gives the overall rate and each group's shares of the
    negatives; its first ``n`` rows (independent draws) give each group's count ``n_g``. A group gets
    ``rate * n_g`` positives rounded up or down at random (so its rate is within ``1 / n_g`` of the
    overall one, and equal to it in expectation however small the draw: a rule's redraw of one row is
    remedied too) and the rest split between the negatives by their shares in the group's free rows
    (largest remainders, so the counts add up to ``n``).

    Raises:
        NotSupportedError: a model that cannot condition on the group and the target together (module doc).
    """
    require_joint_conditioning(model, "parity", f"the group ({sensitive}) and the target ({target})")
    free = model.sample(max(n, RATE_ROWS), generator=generator)
    hit = free[target] == positive
    rate = float(hit.mean())
    overall = _shares(free.loc[~hit, target], negatives)
    first = free.iloc[:n]
    parts = []
    for group, members in first.groupby(sensitive, dropna=True, sort=True).groups.items():
        count = len(members)
        hits = _rounded(rate * count, generator)
        shares = _shares(free.loc[(free[sensitive] == group) & ~hit, target], negatives)
        counts = _apportioned(count - hits, shares if shares.sum() > 0 else overall)
        for value, k in ((positive, hits), *zip(negatives, counts)):
            if k:
                parts.append(model.sample(k, condition={sensitive: group, target: value}, generator=generator))
    missing = first[first[sensitive].isna()]
    return _shuffled(pd.concat(parts + [missing], ignore_index=True), generator)


def _rounded(x: float, generator: torch.Generator | None) -> int:
    """``x`` rounded up with probability ``x - floor(x)``, else down: ``x`` in expectation."""
    whole = math.floor(x)
    return whole + int(torch.rand(1, generator=generator, dtype=torch.float64).item() < x - whole)


def _shares(values: pd.Series, categories: list) -> np.ndarray:
    """How often each of ``categories`` occurs in ``values``, float64 ``(len(categories),)``."""
    return np.array([(values == value).sum() for value in categories], dtype=np.float64)


def _apportioned(total: int, weights: np.ndarray) -> list[int]:
    """``total`` split in proportion to ``weights`` by largest remainders: the parts add up to ``total``
    and a zero weight gets nothing (uniform when every weight is zero)."""
    if total == 0:
        return [0] * len(weights)
    weights = weights if weights.sum() > 0 else np.ones(len(weights))
    quotas = total * weights / weights.sum()
    counts = np.floor(quotas).astype(int)
    remainders = np.where(weights > 0, quotas - counts, -1.0)
    for i in np.argsort(-remainders, kind="stable")[:total - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


def require_joint_conditioning(model: Any, remedy: str, columns: str) -> None:
    """Refuse ``remedy`` on a model whose table conditions do not all reach its conditional
    (``conditions_tables_jointly`` is False): its rows would be relabelled, not resampled.

    Raises:
        NotSupportedError: naming the families that can.
    """
    if model.conditions_tables_jointly:
        return
    from genlab.models import FAMILIES

    able = ", ".join(sorted(name for name, family in FAMILIES.items()
                            if family.supports_tables and family.conditions_tables_jointly))
    raise NotSupportedError(f"the {remedy} remedy draws rows given {columns} at once; the {model.family} family "
                            f"conditions on one category and writes the others in, which would relabel rows "
                            f"instead of resampling them; families that condition jointly: {able}")


def _shuffled(table: pd.DataFrame, generator: torch.Generator | None) -> pd.DataFrame:
    order = torch.randperm(len(table), generator=generator).numpy()
    return table.iloc[order].reset_index(drop=True)


#: Cramér's V with the sensitive column above which :func:`fair_target` treats a column as its proxy.
PROXY_ASSOCIATION = 0.1


def proxies(table: pd.DataFrame, sensitive: str, target: str, kinds: dict[str, str],
            threshold: float = PROXY_ASSOCIATION) -> list[str]:
    """Columns whose Cramér's V with ``sensitive`` (``scipy.stats.contingency.association``; numbers cut
    into 5 quantile bins) is at least ``threshold``: the columns that carry the group."""
    from scipy.stats.contingency import association

    found = []
    for column in table.columns:
        if column in (sensitive, target):
            continue
        values = table[column]
        if kinds[column] in ("integer", "numeric"):
            values = pd.qcut(values.rank(method="first"), 5, labels=False)
        pair = pd.DataFrame({"a": values.astype(str), "b": table[sensitive].astype(str)})
        counts = pd.crosstab(pair["a"], pair["b"]).to_numpy()
        if counts.shape[0] > 1 and counts.shape[1] > 1 and association(counts, method="cramer") >= threshold:
            found.append(column)
    return found


#: Fewest rows :func:`fair_target` fits its proxies and classifier on: Cramér's V of a column unrelated to
#: two groups (five bins) is about ``sqrt(4 / rows)`` by chance, 0.13 at 256 rows, above
#: :data:`PROXY_ASSOCIATION`, and 0.06 at 1000.
FIT_ROWS = 1000


def fair_target(model: Any, n: int, sensitive: str, target: str, positive, negatives: list, kinds: dict[str, str],
                *, generator: torch.Generator | None = None) -> tuple[pd.DataFrame, list[str]]:
    """``n`` rows whose target is redrawn from a conditional that sees neither the group nor its proxies
    (as DECAF removes the edges into the target, van Breugel et al. 2021), at equal rates across groups.

    The rows come from the model; a gradient-boosting classifier fitted on them predicts the target from
    the other columns without ``sensitive`` and its :func:`proxies`; each group's predicted logits get
    the one shift that brings the group's mean to the overall positive rate (parity), and each row's
    target is drawn from its probability. The price is utility: the proxies (Adult: relationship,
    marital status, hours per week) no longer inform the target. Proxies and classifier are fitted on at
    least :data:`FIT_ROWS` rows (the first ``n`` are returned), so a small draw is remedied alike. Returns
    the rows and the proxies left out; a binary target (``negatives`` holds its one other value).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    from genlab.audit.measures import encoded

    rows = model.sample(max(n, FIT_ROWS), generator=generator)
    blind = proxies(rows, sensitive, target, kinds)
    p_hit = (rows[target] == positive).to_numpy(int)
    if p_hit.min() == p_hit.max():   # one value only (a narrow condition): every group's rate is already 0 or 1
        return rows.iloc[:n], blind
    features = [c for c in rows.columns if c not in (sensitive, target, *blind)]
    if features:
        x = encoded(rows[features], kinds)
        p = HistGradientBoostingClassifier(random_state=0).fit(x, p_hit).predict_proba(x)[:, 1]
    else:   # every other column carries the group: the blind conditional is the overall rate
        p = np.full(len(rows), p_hit.mean())
    p = _equal_rates(p, rows[sensitive].to_numpy(), float(p_hit.mean()))
    u = torch.rand(len(rows), generator=generator, dtype=torch.float64).numpy()
    values = np.where(u < p, positive, negatives[0])
    rows[target] = pd.Series(values, index=rows.index).astype(rows[target].dtype)
    return rows.iloc[:n], blind


def _equal_rates(p: np.ndarray, groups: np.ndarray, rate: float) -> np.ndarray:
    """``sigmoid(logit p + b_g)`` with each group's shift ``b_g`` found by bisection so that the group's
    mean probability is ``rate``: parity between groups, the order of rows within a group kept."""
    logit = np.log(np.clip(p, 1e-9, 1 - 1e-9)) - np.log1p(-np.clip(p, 1e-9, 1 - 1e-9))
    out = p.copy()
    for group in pd.unique(groups):
        rows = groups == group
        low, high = -30.0, 30.0
        for _ in range(60):
            mid = 0.5 * (low + high)
            low, high = (mid, high) if (1 / (1 + np.exp(-(logit[rows] + mid)))).mean() < rate else (low, mid)
        out[rows] = 1 / (1 + np.exp(-(logit[rows] + 0.5 * (low + high))))
    return out
