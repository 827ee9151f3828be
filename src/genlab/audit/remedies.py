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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from genlab.errors import NotSupportedError


def balanced(model: Any, n: int, sensitive: str, groups: list, *, generator: torch.Generator | None = None
             ) -> pd.DataFrame:
    """``n`` rows with the groups of ``sensitive`` in equal shares (the first ``n mod G`` get one more)."""
    counts = [n // len(groups) + (i < n % len(groups)) for i in range(len(groups))]
    parts = [model.sample(k, condition={sensitive: group}, generator=generator)
             for group, k in zip(groups, counts) if k]
    return _shuffled(pd.concat(parts, ignore_index=True), generator)


def parity(model: Any, n: int, sensitive: str, target: str, positive, negatives: list, *,
           generator: torch.Generator | None = None) -> pd.DataFrame:
    """``n`` rows whose groups all have the model's overall ``P(target = positive)`` (module doc);
    ``negatives`` are the target's other values, drawn in the model's proportions.

    Raises:
        NotSupportedError: a model that cannot condition on the group and the target together (module doc).
    """
    require_joint_conditioning(model, "parity", f"the group ({sensitive}) and the target ({target})")
    free = model.sample(n, generator=generator)
    rate = float((free[target] == positive).mean())
    parts = []
    for group, members in free.groupby(sensitive, dropna=True, sort=True).groups.items():
        count = len(members)
        hits = int(np.round(rate * count))
        if hits:
            parts.append(model.sample(hits, condition={sensitive: group, target: positive}, generator=generator))
        rest = free.loc[members, target]
        rest = rest[rest != positive]
        shares = rest.value_counts()
        for value in negatives:
            k = int(np.round((count - hits) * shares.get(value, 0) / max(len(rest), 1)))
            if k:
                parts.append(model.sample(k, condition={sensitive: group, target: value}, generator=generator))
    missing = free[free[sensitive].isna()]
    return _shuffled(pd.concat(parts + [missing], ignore_index=True), generator)


def require_joint_conditioning(model: Any, remedy: str, columns: str) -> None:
    """Refuse ``remedy`` on a model whose table conditions do not all reach its conditional
    (``conditions_tables_jointly`` is False): its rows would be relabelled, not resampled.

    Raises:
        NotSupportedError: naming the families that can.
    """
    if type(model).conditions_tables_jointly:
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


def fair_target(model: Any, n: int, sensitive: str, target: str, positive, negatives: list, kinds: dict[str, str],
                *, generator: torch.Generator | None = None) -> tuple[pd.DataFrame, list[str]]:
    """``n`` rows whose target is redrawn from a conditional that sees neither the group nor its proxies
    (as DECAF removes the edges into the target, van Breugel et al. 2021), at equal rates across groups.

    The rows come from the model; a gradient-boosting classifier fitted on them predicts the target from
    the other columns without ``sensitive`` and its :func:`proxies`; each group's predicted logits get
    the one shift that brings the group's mean to the overall positive rate (parity), and each row's
    target is drawn from its probability. The price is utility: the proxies (Adult: relationship,
    marital status, hours per week) no longer inform the target. Returns the rows and the proxies
    left out; a binary target (``negatives`` holds its one other value).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    from genlab.audit.measures import encoded

    rows = model.sample(n, generator=generator)
    blind = proxies(rows, sensitive, target, kinds)
    features = [c for c in rows.columns if c not in (sensitive, target, *blind)]
    x = encoded(rows[features], kinds)
    p_hit = (rows[target] == positive).to_numpy(int)
    classifier = HistGradientBoostingClassifier(random_state=0).fit(x, p_hit)
    p = _equal_rates(classifier.predict_proba(x)[:, 1], rows[sensitive].to_numpy(), float(p_hit.mean()))
    u = torch.rand(len(rows), generator=generator, dtype=torch.float64).numpy()
    values = np.where(u < p, positive, negatives[0])
    rows[target] = pd.Series(values, index=rows.index).astype(rows[target].dtype)
    return rows, blind


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
