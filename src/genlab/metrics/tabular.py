"""Synthetic tables scored against real ones: quality, detection, machine-learning efficacy, privacy.

- :func:`quality` -> :class:`Quality`: SDMetrics' Quality Report for one table (SDMetrics 0.32 docs,
  "Quality Report", properties Column Shapes and Column Pair Trends), re-implemented to match its
  source:

  * *Column Shapes*, per column with missing values dropped: the KS complement ``1 - D`` (``D`` the
    two-sample Kolmogorov-Smirnov statistic, values rounded to 14 decimals, datetimes as nanoseconds)
    for numeric, integer and datetime columns; the TV complement ``1 - 1/2 sum_v |s_v - r_v|`` over the
    categories ``v`` of the real column (frequencies ``r_v``, ``s_v``; a synthetic-only category
    counts ``1e-6`` times in the real one) for categorical and boolean columns.
  * *Column Pair Trends*, per pair: for two continuous columns the correlation similarity
    ``1 - |rho_real - rho_syn| / 2`` (Pearson, rows with a missing value dropped, a constant column
    gives no score); otherwise the contingency similarity ``1 - 1/2 sum_(a,b) |R_ab - S_ab|`` over the
    joint frequencies, missing values counted as a category, and a continuous column replaced by its
    bin among 10 equal-width bins spanning *that table's* own range (``numpy.digitize``: its maximum
    and missing values share bin 11).
  * Each property is the mean of its scores; ``score`` is the mean of the two properties. SDMetrics
    0.32's ``QualityReport`` averages only pairs whose real Pearson ``|rho| > 0.5`` or real Cramér's
    V ``> 0.3``; ``real_correlation_threshold=0.5, real_association_threshold=0.3`` reproduce it,
    the defaults ``0`` average every pair (the definition of earlier SDMetrics releases).
    SDMetrics subsamples contingency tables to 50,000 rows; here every row is used.

- :func:`detection` -> :class:`Detection`: cross-validated ROC AUC of a logistic regression telling
  real rows from synthetic ones (SDMetrics' ``LogisticDetection`` reports ``2 (1 - max(AUC, 0.5))``
  instead). ``0.5``: indistinguishable; ``1``: told apart perfectly.
- :func:`efficacy` -> :class:`Efficacy`: machine-learning efficacy, "train on synthetic, test on
  real" (Esteban et al., 2017; SDGym): macro-F1 on real test rows of a scikit-learn
  ``HistGradientBoostingClassifier`` trained on the synthetic rows, beside the same trained on real rows.
- :func:`privacy` -> :class:`Privacy`: distance to the closest record (DCR) as in TabDDPM (Kotelnikov
  et al., 2023, Sec. 5): numeric columns min-max scaled by the real table, categorical columns one-hot,
  Euclidean distance from each synthetic row to its nearest real training row; the median, beside the
  median for real held-out rows (what a model that generalises would score), and the exact-copy rate.

Every function takes the tables as keyword arguments ``real=``, ``synthetic=`` (and ``test=``,
``target=`` where needed) with the same columns; column kinds are those of
:func:`genlab.data.table_columns.infer_kind` on the real table unless ``kinds`` overrides them.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp, pearsonr
from scipy.stats.contingency import association
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from genlab.data.table_columns import KINDS, infer_kind
from genlab.errors import DataError, unknown_choice

CONTINUOUS = ("numeric", "integer", "datetime")
#: SDMetrics' ``KSComplement`` rounds values to ``sys.float_info.dig - 1`` decimals.
KS_DECIMALS = 14
#: SDMetrics' ``ColumnPairTrends`` bins continuous columns with ``numpy.histogram_bin_edges`` (10 bins).
PAIR_BINS = 10
#: HistGradientBoosting takes a categorical column natively up to this many categories.
MAX_NATIVE_CATEGORIES = 250


@dataclass(frozen=True)
class Quality:
    """SDMetrics-style quality of a synthetic table, every score in ``[0, 1]`` (1 is best).

    ``columns``: column -> Column Shapes score; ``pairs``: ``(column_a, column_b)`` -> Column Pair Trends
    score, only the pairs that count towards ``column_pair_trends`` (NaN where a score is undefined).
    """

    score: float
    column_shapes: float
    column_pair_trends: float
    columns: dict[str, float]
    pairs: dict[tuple[str, str], float]


@dataclass(frozen=True)
class Detection:
    """ROC AUC of a classifier telling real from synthetic rows: mean over ``folds`` (0.5 is perfect)."""

    auc: float
    folds: tuple[float, ...]


@dataclass(frozen=True)
class Efficacy:
    """Macro-F1 on real test rows of a classifier trained on synthetic rows and, if given, on real rows."""

    f1_synthetic: float
    f1_real: float | None


@dataclass(frozen=True)
class Privacy:
    """Median distance to the closest real training row of synthetic rows and of real test rows (if
    given), and the share of synthetic rows equal to some training row in every column."""

    median_dcr: float
    median_dcr_test: float | None
    exact_copy_rate: float


def quality(*, real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str] | None = None,
            real_correlation_threshold: float = 0.0, real_association_threshold: float = 0.0) -> Quality:
    """Column Shapes, Column Pair Trends and their mean, as SDMetrics' Quality Report (module doc)."""
    kinds = _column_kinds(real, synthetic, kinds)
    real_num, synthetic_num = _datetimes_as_numbers(real, kinds), _datetimes_as_numbers(synthetic, kinds)
    columns = {name: (_ks_complement(real_num[name], synthetic_num[name]) if kind in CONTINUOUS
                      else _tv_complement(real[name], synthetic[name])) for name, kind in kinds.items()}
    real_codes, synthetic_codes = _pair_codes(real_num, synthetic_num, kinds)
    pairs = {}
    for a, b in itertools.combinations(kinds, 2):
        if kinds[a] in CONTINUOUS and kinds[b] in CONTINUOUS:
            score, counts = _correlation_similarity(real_num[[a, b]], synthetic_num[[a, b]], real_correlation_threshold)
        else:
            score, counts = _contingency_similarity(real_codes[[a, b]], synthetic_codes[[a, b]],
                                                    real_association_threshold)
        if counts:
            pairs[(a, b)] = score
    column_shapes, column_pair_trends = _nanmean(columns.values()), _nanmean(pairs.values())
    return Quality(score=_nanmean([column_shapes, column_pair_trends]), column_shapes=column_shapes,
                   column_pair_trends=column_pair_trends, columns=columns, pairs=pairs)


def detection(*, real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str] | None = None,
              folds: int = 5, seed: int = 0) -> Detection:
    """Stratified ``folds``-fold ROC AUC of a logistic regression on standardised one-hot features."""
    kinds = _column_kinds(real, synthetic, kinds)
    x_real, x_synthetic = _features([real, synthetic], kinds)
    x = np.concatenate([x_real, x_synthetic])
    y = np.r_[np.zeros(len(x_real)), np.ones(len(x_synthetic))]
    if min(len(x_real), len(x_synthetic)) < folds:
        raise DataError(f"detection needs at least {folds} real and {folds} synthetic rows")
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(classifier, x, y, cv=split, scoring="roc_auc")
    return Detection(auc=float(scores.mean()), folds=tuple(float(s) for s in scores))


def efficacy(*, synthetic: pd.DataFrame, test: pd.DataFrame, target: str, real: pd.DataFrame | None = None,
             kinds: dict[str, str] | None = None, seed: int = 0) -> Efficacy:
    """Train-on-synthetic, test-on-real macro-F1 for predicting column ``target`` (rows whose target is
    missing are dropped); with ``real=`` also the train-on-real score."""
    frames = [synthetic, test] + ([] if real is None else [real])
    if target not in test.columns:
        raise DataError(f"target column {target!r} is not in the test table")
    kinds = _column_kinds(test, synthetic, kinds)
    frames = [frame[frame[target].notna()] for frame in frames]
    features = [name for name in kinds if name != target]
    x = _model_inputs(frames, {name: kinds[name] for name in features})
    labels = [frame[target].astype(str).to_numpy() for frame in frames]

    def f1(train: int) -> float:
        classifier = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
        classifier.fit(x[train], labels[train])
        return float(f1_score(labels[1], classifier.predict(x[1]), average="macro"))

    return Efficacy(f1_synthetic=f1(0), f1_real=None if real is None else f1(2))


def privacy(*, real: pd.DataFrame, synthetic: pd.DataFrame, test: pd.DataFrame | None = None,
            kinds: dict[str, str] | None = None) -> Privacy:
    """Median DCR of synthetic rows (and of ``test`` rows) to the real training rows, and the exact-copy rate."""
    kinds = _column_kinds(real, synthetic, kinds)
    frames = [real, synthetic] + ([] if test is None else [test])
    x = _features(frames, kinds)
    index = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(x[0])
    seen = {row.tobytes() for row in x[0]}
    copies = np.array([row.tobytes() in seen for row in x[1]])
    dcr = index.kneighbors(x[1])[0][:, 0]
    dcr[copies] = 0.0       # the brute-force distance of an exact copy is ~1e-8, not 0
    median_test = None if test is None else float(np.median(index.kneighbors(x[2])[0][:, 0]))
    return Privacy(median_dcr=float(np.median(dcr)), median_dcr_test=median_test,
                   exact_copy_rate=float(copies.mean()))


# ---------------------------------------------------------------------- Column Shapes
def _ks_complement(real: pd.Series, synthetic: pd.Series) -> float:
    real, synthetic = real.dropna().astype(np.float64), synthetic.dropna().astype(np.float64)
    if len(real) == 0 or len(synthetic) == 0:
        return float("nan")
    return float(1.0 - ks_2samp(real.round(KS_DECIMALS), synthetic.round(KS_DECIMALS)).statistic)


def _tv_complement(real: pd.Series, synthetic: pd.Series) -> float:
    real_counts = real.dropna().value_counts().astype(np.float64)
    synthetic_counts = synthetic.dropna().value_counts().astype(np.float64)
    if len(real_counts) == 0 or len(synthetic_counts) == 0:
        return float("nan")
    unseen = synthetic_counts.index.difference(real_counts.index)
    real_counts = pd.concat([real_counts, pd.Series(1e-6, index=unseen)])
    r = real_counts / real_counts.sum()
    s = synthetic_counts.reindex(r.index, fill_value=0.0) / synthetic_counts.sum()
    return float(1.0 - 0.5 * np.abs(s - r).sum())


# ---------------------------------------------------------------------- Column Pair Trends
def _correlation_similarity(real: pd.DataFrame, synthetic: pd.DataFrame, threshold: float) -> tuple[float, bool]:
    """``(score, counts)``: the score and whether the pair counts towards the average."""
    if (real.nunique() == 1).any() or (synthetic.nunique() == 1).any():
        return float("nan"), False
    real, synthetic = real.dropna(), synthetic.dropna()
    if len(real) < 2 or len(synthetic) < 2:
        return float("nan"), False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # a constant column after dropping rows: rho is NaN
        rho_real = pearsonr(real.iloc[:, 0], real.iloc[:, 1]).statistic
        if abs(rho_real) <= threshold:
            return float("nan"), False
        rho_synthetic = pearsonr(synthetic.iloc[:, 0], synthetic.iloc[:, 1]).statistic
    counts = threshold <= 0 or (not np.isnan(rho_real) and abs(rho_real) > threshold)
    return float(1.0 - abs(rho_real - rho_synthetic) / 2.0), bool(counts)


def _contingency_similarity(real: pd.DataFrame, synthetic: pd.DataFrame, threshold: float) -> tuple[float, bool]:
    """Codes ``(n, 2)`` (non-negative ints) -> ``(score, counts)``, see :func:`_correlation_similarity`."""
    a, b = real.to_numpy().T
    if threshold > 0:
        _, a_index = np.unique(a, return_inverse=True)
        _, b_index = np.unique(b, return_inverse=True)
        table = np.zeros((a_index.max() + 1, b_index.max() + 1), dtype=np.int64)
        np.add.at(table, (a_index, b_index), 1)
        if min(table.shape) < 2 or association(table, method="cramer") <= threshold:
            return float("nan"), False
    width = int(max(real.to_numpy().max(), synthetic.to_numpy().max())) + 1
    cells = [np.bincount(frame.iloc[:, 0].to_numpy() * width + frame.iloc[:, 1].to_numpy(),
                         minlength=width * width) / len(frame) for frame in (real, synthetic)]
    return float(1.0 - 0.5 * np.abs(cells[0] - cells[1]).sum()), True


def _pair_codes(real: pd.DataFrame, synthetic: pd.DataFrame,
                kinds: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each column as non-negative int codes shared by both tables: categories (missing its own code)
    for discrete columns, each table's own 10-bin ``numpy.digitize`` index for continuous ones."""
    real_codes, synthetic_codes = {}, {}
    for name, kind in kinds.items():
        if kind in CONTINUOUS:
            real_codes[name], synthetic_codes[name] = (
                np.digitize(values, np.histogram_bin_edges(values.dropna(), bins=PAIR_BINS))
                for values in (real[name].astype(np.float64), synthetic[name].astype(np.float64)))
        else:
            codes, _ = pd.factorize(pd.concat([real[name], synthetic[name]], ignore_index=True).astype(object),
                                    use_na_sentinel=False)
            real_codes[name], synthetic_codes[name] = codes[:len(real)], codes[len(real):]
    return pd.DataFrame(real_codes), pd.DataFrame(synthetic_codes)


# ---------------------------------------------------------------------- features
def _column_kinds(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str] | None) -> dict[str, str]:
    """Column -> kind for every column of ``real``, checking that ``synthetic`` has the same columns."""
    for name, frame in (("real", real), ("synthetic", synthetic)):
        if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
            raise DataError(f"the {name} table must be a non-empty pandas DataFrame")
    if set(real.columns) != set(synthetic.columns):
        raise DataError(f"the tables' columns differ: {sorted(set(real.columns) ^ set(synthetic.columns))}")
    kinds = dict(kinds or {})
    for name, kind in kinds.items():
        if name not in real.columns:
            raise DataError(f"column {name!r} is not in the table; its columns are: {', '.join(real.columns)}")
        if kind not in KINDS:
            raise unknown_choice(f"kind for column {name!r}", kind, KINDS)
    return {name: kinds.get(name) or infer_kind(real[name]) for name in real.columns}


def _datetimes_as_numbers(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """A copy with datetime columns as float nanoseconds since 1970 (missing as NaN)."""
    frame = frame.copy()
    for name, kind in kinds.items():
        if kind == "datetime":
            stamps = pd.to_datetime(frame[name])
            frame[name] = stamps.astype("datetime64[ns]").astype(np.int64).where(stamps.notna()).astype(np.float64)
    return frame


def _features(frames: list[pd.DataFrame], kinds: dict[str, str]) -> list[np.ndarray]:
    """Tables -> float64 matrices: continuous columns min-max scaled by ``frames[0]`` (missing as 0 plus
    a missing-indicator column), categorical columns one-hot over the categories of all frames
    (missing as a category)."""
    frames = [_datetimes_as_numbers(frame, kinds) for frame in frames]
    blocks: list[list[np.ndarray]] = [[] for _ in frames]
    for name, kind in kinds.items():
        if kind in CONTINUOUS:
            reference = frames[0][name].astype(np.float64)
            low, span = reference.min(), reference.max() - reference.min()
            has_missing = any(frame[name].isna().any() for frame in frames)
            for out, frame in zip(blocks, frames):
                x = frame[name].astype(np.float64).to_numpy()
                x = (x - low) / (span if span > 0 else 1.0)
                out.append(np.nan_to_num(x, nan=0.0)[:, None])
                if has_missing:
                    out.append(np.isnan(x)[:, None].astype(np.float64))
        else:
            codes, uniques = pd.factorize(pd.concat([f[name] for f in frames], ignore_index=True).astype(object),
                                          use_na_sentinel=False)
            eye = np.eye(len(uniques))
            start = 0
            for out, frame in zip(blocks, frames):
                out.append(eye[codes[start:start + len(frame)]])
                start += len(frame)
    return [np.concatenate(parts, axis=1) + 0.0 for parts in blocks]


def _model_inputs(frames: list[pd.DataFrame], kinds: dict[str, str]) -> list[pd.DataFrame]:
    """Tables -> frames for HistGradientBoosting: continuous columns as floats, categorical columns as
    pandas categoricals over the categories of all frames (integer codes beyond 250 categories)."""
    frames = [_datetimes_as_numbers(frame, kinds) for frame in frames]
    out: list[dict[str, pd.Series]] = [{} for _ in frames]
    for name, kind in kinds.items():
        if kind in CONTINUOUS:
            for columns, frame in zip(out, frames):
                columns[name] = frame[name].astype(np.float64).reset_index(drop=True)
            continue
        categories = pd.unique(pd.concat([f[name] for f in frames], ignore_index=True).dropna().astype(str))
        dtype = pd.CategoricalDtype(sorted(categories))
        for columns, frame in zip(out, frames):
            values = frame[name].astype(str).where(frame[name].notna()).astype(dtype).reset_index(drop=True)
            columns[name] = values if len(categories) <= MAX_NATIVE_CATEGORIES else values.cat.codes.astype(np.float64)
    return [pd.DataFrame(columns) for columns in out]


def _nanmean(values) -> float:
    values = np.asarray(list(values), dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
