"""Scoring a model of tables against held-out real rows (``genlab.evaluate`` dispatches here for tables).

The model draws ``n`` rows (default: as many as the test split) with a seeded generator; every metric
compares them with the *test* split, through :mod:`genlab.metrics.tabular`:

- ``quality``, ``column_shapes``, ``column_pair_trends``: SDMetrics' Quality Report (every pair of
  columns counts, the definition of SDMetrics before 0.32);
- ``detection_auc``: 5-fold ROC AUC of a logistic regression telling real test rows from samples
  (0.5: indistinguishable, the best; ranked by distance from 0.5, see :mod:`genlab.report.ranking`);
- ``efficacy_f1``: macro-F1 on the test rows of a gradient-boosting classifier of the target column
  trained on the samples ("train on synthetic, test on real"), when the data has a categorical target;
- ``dcr``: median distance from a sample to its closest real training row (TabDDPM's DCR, min-max
  scaled numbers and one-hot categories); ``exact_copies``: share of samples equal to a training row.

The *floor* is the same metric with real rows in place of the samples: a random subset of the
training split of the same size for quality, detection and efficacy (what a perfect model scores at
this sample size), and the test rows themselves for ``dcr`` and ``exact_copies`` (what a model that
generalises scores). ID-like columns (kind ``id``: not modelled, fresh values) are left out of every
metric. There are no bootstrap intervals here: one replicate means refitting a classifier or
recomputing every pair statistic; the notes say so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from genlab.data.dataset import Dataset
from genlab.errors import DataError
from genlab.evaluation.report import LEVEL, Report
from genlab.metrics.tabular import detection, efficacy, privacy, quality
from genlab.models.base import GenerativeModel, check_count

NO_INTERVALS = "no bootstrap interval (each replicate refits a model); floor: a real training subset"


def evaluate_table(model: GenerativeModel, data: Dataset, *, n: int | None = None, seed: int = 0,
                   n_bootstrap: int = 0) -> Report:
    """Sample ``n`` rows from ``model`` and score them against ``data``'s test split (module doc).

    Args:
        model: a fitted model of tables with ``data``'s columns.
        data: a ``tables`` Dataset; a ``target`` adds machine-learning efficacy.
        n: rows to draw (default: the size of the test split).
        seed: seed of the samples, of the floor's training subset and of the classifiers.
        n_bootstrap: accepted for the common signature; no intervals are computed (module doc).

    Returns:
        A :class:`~genlab.evaluation.Report` with ``intervals`` empty and ``n_bootstrap = 0``.
    """
    if data.modality != "tables" or model.data_.modality != "tables":
        raise DataError(f"table evaluation needs a model of tables and a table; got a model of "
                        f"{model.data_.modality} and {data.modality}")
    codec = model.codec_
    columns = [c for c in codec.columns if c not in codec.id_columns]
    absent = [c for c in codec.columns if c not in data.x_test.columns]
    if absent:
        raise DataError(f"{data.name} lacks the model's column(s) {', '.join(map(repr, absent))}")
    kinds = {c: k for c, k in codec.column_kinds.items() if c in columns}
    test = data.x_test[columns].reset_index(drop=True)
    n = check_count(n) if n is not None else len(test)
    fake = model.sample(n, generator=torch.Generator().manual_seed(seed))[columns]
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(data.x_train), size=min(n, len(data.x_train)), replace=False)
    train = data.x_train[columns].reset_index(drop=True)
    floor_rows = train.iloc[rows].reset_index(drop=True)

    metrics = _quality_and_detection(test, fake, kinds, seed)
    floor = _quality_and_detection(test, floor_rows, kinds, seed)
    # Efficacy is a classifier's macro-F1: only a categorical target (one with class names) has it.
    target = data.target if (data.target in columns and data.class_names) else None
    if target is not None:
        metrics["efficacy_f1"] = efficacy(synthetic=fake, test=test, target=target, kinds=kinds, seed=seed).f1_synthetic
        floor["efficacy_f1"] = efficacy(synthetic=floor_rows, test=test, target=target, kinds=kinds,
                                        seed=seed).f1_synthetic
    close = privacy(real=train, synthetic=fake, test=test, kinds=kinds)
    metrics.update(dcr=close.median_dcr, exact_copies=close.exact_copy_rate)
    floor["dcr"] = close.median_dcr_test
    floor["exact_copies"] = float(test.merge(train.drop_duplicates(), how="inner").shape[0] / len(test)) \
        if len(test) else float("nan")
    notes = {name: NO_INTERVALS for name in metrics}
    notes["detection_auc"] = "logistic regression, 5-fold ROC AUC; 0.5 is best; " + NO_INTERVALS
    notes["dcr"] = "median distance to the closest training row; floor: the real test rows"
    notes["exact_copies"] = "share of samples equal to a training row; floor: the real test rows"
    if codec.id_columns:
        notes["columns"] = f"ID-like column(s) left out: {', '.join(codec.id_columns)}"
    return Report(metrics=metrics, n_samples=n, n_real=len(test), seed=seed, dataset=data.name, intervals={},
                  floor=floor, n_bootstrap=0, level=LEVEL, notes=notes)


def _quality_and_detection(test: pd.DataFrame, rows: pd.DataFrame, kinds: dict[str, str],
                           seed: int) -> dict[str, float]:
    """Quality Report scores and detection AUC of ``rows`` against ``test``."""
    scores = quality(real=test, synthetic=rows, kinds=kinds)
    return {"quality": scores.score, "column_shapes": scores.column_shapes,
            "column_pair_trends": scores.column_pair_trends,
            "detection_auc": detection(real=test, synthetic=rows, kinds=kinds, seed=seed).auc}
