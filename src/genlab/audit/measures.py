"""What a bias audit measures on a table model's samples, with fairlearn for every fairness metric.

- **Representation**: each group of the sensitive column, its share of the samples, of the training
  rows and of the test rows, with 95 % Wilson intervals (``scipy.stats.binomtest``).
- **Amplification**: ``P(target = positive | group)`` in the samples and in the real rows
  (fairlearn ``MetricFrame`` of ``selection_rate`` with the target as the "prediction"), and the gap
  between the groups (``MetricFrame.difference``, the demographic parity difference of the data itself):
  a wider gap in the samples is amplified bias.
- **Fidelity per group**: Column Shapes (:func:`genlab.metrics.tabular.quality`) of each group's samples
  against that group's real test rows.
- **Downstream fairness**: a classifier trained on the samples (and, for reference, on the real training
  rows) predicts the target on the real test rows: ROC AUC, fairlearn's
  ``demographic_parity_difference`` and ``equalized_odds_difference``, and FTU as DECAF reports it (the
  share of test predictions that change when the sensitive attribute is flipped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from fairlearn.metrics import (MetricFrame, demographic_parity_difference, equalized_odds_difference,
                               selection_rate)
from scipy.stats import binomtest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from genlab.metrics.tabular import quality

#: Downstream classifiers, by name.
CLASSIFIERS = ("boosting", "mlp")


@dataclass(frozen=True)
class Share:
    """A group's share of some rows with its 95 % Wilson interval."""

    share: float
    low: float
    high: float


def shares(values: pd.Series, groups: list) -> dict[str, Share]:
    """Each group's share of ``values`` with a 95 % Wilson interval."""
    n = int(values.notna().sum())
    result = {}
    for group in groups:
        k = int((values == group).sum())
        interval = binomtest(k, n).proportion_ci(method="wilson") if n else None
        result[str(group)] = Share(k / n if n else float("nan"), *(interval if interval else (np.nan, np.nan)))
    return result


def target_rates(table: pd.DataFrame, sensitive: str, target: str, positive) -> tuple[dict[str, float], float]:
    """``P(target = positive | group)`` per group and the largest gap between groups (fairlearn)."""
    present = table[[sensitive, target]].dropna()
    hit = (present[target] == positive).astype(int)
    frame = MetricFrame(metrics=selection_rate, y_true=hit, y_pred=hit, sensitive_features=present[sensitive])
    return {str(k): float(v) for k, v in frame.by_group.items()}, float(frame.difference())


def group_shapes(real: pd.DataFrame, synthetic: pd.DataFrame, sensitive: str, groups: list,
                 kinds: dict[str, str]) -> dict[str, float]:
    """Column Shapes of each group's samples against the group's real rows (the other columns)."""
    others = [c for c in real.columns if c != sensitive]
    scores = {}
    for group in groups:
        a, b = real[real[sensitive] == group][others], synthetic[synthetic[sensitive] == group][others]
        scores[str(group)] = (quality(real=a.reset_index(drop=True), synthetic=b.reset_index(drop=True),
                                      kinds={c: kinds[c] for c in others}).column_shapes
                              if len(a) and len(b) else float("nan"))
    return scores


@dataclass(frozen=True)
class Downstream:
    """A classifier trained on some rows and scored on the real test rows."""

    auroc: float
    demographic_parity: float
    equalized_odds: float
    ftu: float


def downstream(train: pd.DataFrame, test: pd.DataFrame, sensitive: str, target: str, positive, kinds: dict[str, str],
               *, classifier: str = "boosting", seed: int = 0) -> Downstream:
    """Train ``classifier`` on ``train`` to predict ``target == positive``; score it on ``test`` (module doc)."""
    features = [c for c in train.columns if c != target]
    categorical = [c for c in features if kinds[c] not in ("integer", "numeric")]
    numeric = [c for c in features if c not in categorical]
    x_train, x_test = _inputs(train[features], categorical), _inputs(test[features], categorical)
    y_train, y_test = (train[target] == positive).to_numpy(int), (test[target] == positive).to_numpy(int)
    encode = ColumnTransformer([("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
                                ("numbers", StandardScaler(), numeric)])
    if classifier == "mlp":
        model = make_pipeline(encode, MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=200, early_stopping=True,
                                                    random_state=seed))
    else:
        model = make_pipeline(encode, HistGradientBoostingClassifier(random_state=seed))
    model.fit(x_train, y_train)
    proba = model.predict_proba(x_test)[:, 1]
    predicted = (proba >= 0.5).astype(int)
    flipped = x_test.copy()
    # the groups as the classifier sees them (after _inputs: a category as text, so a boolean True is
    # "True"), else the map misses every value and nothing flips
    seen = _inputs(train[[sensitive]].dropna(), [sensitive] if sensitive in categorical else [])[sensitive]
    groups = sorted(seen.unique(), key=str)
    flip = {g: groups[(i + 1) % len(groups)] for i, g in enumerate(groups)}   # binary: swap; else: the next group
    flipped[sensitive] = flipped[sensitive].map(lambda v: flip.get(v, v))
    changed = (model.predict_proba(flipped)[:, 1] >= 0.5).astype(int) != predicted
    groups_test = test[sensitive].astype(str).fillna("missing")
    return Downstream(
        auroc=float(roc_auc_score(y_test, proba)),
        demographic_parity=float(demographic_parity_difference(y_test, predicted, sensitive_features=groups_test)),
        equalized_odds=float(equalized_odds_difference(y_test, predicted, sensitive_features=groups_test)),
        ftu=float(changed.mean()))


def encoded(frame: pd.DataFrame, kinds: dict[str, str]) -> np.ndarray:
    """``frame`` as a float matrix: categories one-hot (missing its own category), numbers as they are
    (missing at the median)."""
    categorical = [c for c in frame.columns if kinds[c] not in ("integer", "numeric")]
    inputs = _inputs(frame, categorical)
    return pd.get_dummies(inputs, columns=categorical, dtype=float).to_numpy(dtype=float)


def _inputs(frame: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """Categories as text (missing as its own value), numbers as floats with missing values at the median."""
    frame = frame.copy()
    for column in frame.columns:
        if column in categorical:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), "missing").astype(str)
        else:
            values = pd.to_numeric(frame[column], errors="coerce").astype(float)
            frame[column] = values.fillna(values.median() if values.notna().any() else 0.0)
    return frame
