"""Tabular metrics: the quality report against SDMetrics, detection, efficacy and privacy on UCI Adult."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from genlab.data.table_columns import infer_kind
from genlab.errors import ConfigError, DataError
from genlab.metrics.tabular import detection, efficacy, privacy, quality

SDTYPES = {"numeric": "numerical", "integer": "numerical", "datetime": "datetime", "categorical": "categorical",
           "boolean": "boolean"}
#: SDMetrics 0.32.0's QualityReport thresholds; (0, 0) scores every pair.
THRESHOLDS = [(0.0, 0.0), (0.5, 0.3)]
#: (score, column shapes, column pair trends) of SDMetrics 0.32.0's QualityReport on the tables below,
#: recorded so the anchor holds where SDMetrics is not installed.
SDMETRICS_0_32 = {
    ("independent", 0.0, 0.0): (0.9563448598216058, 0.9781557072237795, 0.934534012419432),
    ("independent", 0.5, 0.3): (0.9658278536118898, 0.9781557072237795, 0.9535),
    ("perturbed", 0.0, 0.0): (0.9626222460111373, 0.9981249824692244, 0.9271195095530503),
    ("perturbed", 0.5, 0.3): (0.9311009527730738, 0.9981249824692244, 0.8640769230769231),
    ("kinds", 0.0, 0.0): (0.8913537433912972, 0.9186897934011716, 0.864017693381423),
    ("kinds", 0.5, 0.3): (0.9559881597845261, 0.9186897934011716, 0.9932865261678806),
}


@pytest.fixture(autouse=True)
def one_thread():
    """HistGradientBoosting's OpenMP threads crawl on a shared 2-core machine; one thread is ~40x faster."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def adult(shared_data) -> pd.DataFrame:
    return pd.read_csv(shared_data / "adult_train.csv")


@pytest.fixture(scope="module")
def adult_test(shared_data) -> pd.DataFrame:
    return pd.read_csv(shared_data / "adult_test.csv").sample(3000, random_state=0).reset_index(drop=True)


def perturbed(real: pd.DataFrame) -> pd.DataFrame:
    """``real`` with 30% of each column permuted, ages jittered and missing values added."""
    rng = np.random.default_rng(0)
    out = real.copy()
    for column in out.columns:
        rows = rng.choice(len(out), 600, replace=False)
        out.loc[rows, column] = out[column].to_numpy()[rng.permutation(rows)]
    out["age"] = out["age"] + rng.integers(-3, 4, len(out))
    out.loc[rng.choice(len(out), 200, replace=False), "hours-per-week"] = np.nan
    out.loc[rng.choice(len(out), 300, replace=False), "workclass"] = np.nan
    return out


def every_kind(seed: int, n: int = 500) -> pd.DataFrame:
    """Datetimes, booleans, floats, a category, a constant column; missing dates and floats."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 400, n), unit="D"),
        "flag": rng.random(n) < 0.3 + 0.1 * seed, "x": rng.normal(seed * 0.2, 1, n),
        "c": rng.choice(list("abc"), n), "k": np.ones(n)})
    table["y"] = table["x"] * 2 + rng.normal(0, 1, n)
    table.loc[rng.choice(n, 40, replace=False), "when"] = pd.NaT
    table.loc[rng.choice(n, 30, replace=False), "x"] = np.nan
    return table


def case(name: str, adult: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(real, synthetic) tables of the cases in :data:`SDMETRICS_0_32`."""
    real = adult.sample(2000, random_state=0).reset_index(drop=True)
    if name == "independent":
        return real, adult.sample(2000, random_state=1).reset_index(drop=True)
    if name == "perturbed":
        return real, perturbed(real)
    return every_kind(0), every_kind(1)


@pytest.mark.parametrize("name", ["independent", "perturbed", "kinds"])
@pytest.mark.parametrize("thresholds", THRESHOLDS)
def test_quality_agrees_with_sdmetrics(adult, name, thresholds):
    sdmetrics = pytest.importorskip("sdmetrics.reports")
    real, synthetic = case(name, adult)
    metadata = {"tables": {"t": {"columns": {c: {"sdtype": SDTYPES[infer_kind(real[c])]} for c in real}}}}
    report = sdmetrics.QualityReport()
    report.real_correlation_threshold, report.real_association_threshold = thresholds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate({"t": real}, {"t": synthetic}, metadata, verbose=False)
    ours = quality(real=real, synthetic=synthetic, real_correlation_threshold=thresholds[0],
                   real_association_threshold=thresholds[1])
    properties = report.get_properties().set_index("Property")["Score"]
    assert ours.score == pytest.approx(report.get_score(), abs=1e-9)
    assert ours.column_shapes == pytest.approx(properties["Column Shapes"], abs=1e-9)
    assert ours.column_pair_trends == pytest.approx(properties["Column Pair Trends"], abs=1e-9)
    shapes = report.get_details("Column Shapes").set_index("Column")["Score"].to_dict()
    assert ours.columns == pytest.approx(shapes, abs=1e-9)
    pairs = report.get_details("Column Pair Trends")
    counted = pairs[pairs["Meets Threshold?"].fillna(False).astype(bool) & pairs["Score"].notna()]
    assert {k: v for k, v in ours.pairs.items() if not np.isnan(v)} == pytest.approx(
        {(a, b): s for a, b, s in zip(counted["Column 1"], counted["Column 2"], counted["Score"])}, abs=1e-9)


@pytest.mark.parametrize("key", list(SDMETRICS_0_32))
def test_quality_matches_recorded_sdmetrics_scores(adult, key):
    real, synthetic = case(key[0], adult)
    ours = quality(real=real, synthetic=synthetic, real_correlation_threshold=key[1],
                   real_association_threshold=key[2])
    assert (ours.score, ours.column_shapes, ours.column_pair_trends) == pytest.approx(SDMETRICS_0_32[key], abs=1e-9)


def test_quality_of_a_table_against_itself_is_one(adult):
    real = adult.sample(1000, random_state=2)
    result = quality(real=real, synthetic=real.sample(frac=1.0, random_state=3))
    assert result.score == result.column_shapes == result.column_pair_trends == pytest.approx(1.0)
    assert len(result.pairs) == 15 * 14 // 2


def test_detection(adult):
    rows = adult.sample(3000, random_state=4)
    halves = detection(real=rows.iloc[:1500], synthetic=rows.iloc[1500:])
    assert abs(halves.auc - 0.5) < 0.06 and len(halves.folds) == 5
    rng = np.random.default_rng(0)
    garbage = pd.DataFrame({c: rng.normal(size=1500) * 1e5 if rows[c].dtype.kind in "if"
                            else rng.choice(["x", "y"], 1500) for c in rows.columns})
    assert detection(real=rows.iloc[:1500], synthetic=garbage).auc > 0.99


def test_efficacy(adult, adult_test):
    rows = adult.sample(4000, random_state=5)
    same = efficacy(synthetic=rows.iloc[:2000], real=rows.iloc[2000:], test=adult_test, target="income")
    assert 0.7 < same.f1_real < 0.85 and abs(same.f1_synthetic - same.f1_real) < 0.04
    rng = np.random.default_rng(0)
    shuffled = rows.iloc[:2000].apply(lambda column: column.to_numpy()[rng.permutation(len(column))])
    broken = efficacy(synthetic=shuffled, test=adult_test, target="income")
    assert broken.f1_real is None and broken.f1_synthetic < same.f1_real - 0.15


def test_privacy(adult, adult_test):
    train = adult.sample(2000, random_state=6)
    copied = privacy(real=train, synthetic=train.sample(frac=1.0, random_state=7), test=adult_test.head(1000))
    assert copied.exact_copy_rate == 1.0 and copied.median_dcr == 0.0
    assert copied.median_dcr_test > 0.1
    rng = np.random.default_rng(0)
    shuffled = train.apply(lambda column: column.to_numpy()[rng.permutation(len(column))])
    fresh = privacy(real=train, synthetic=shuffled)
    assert fresh.exact_copy_rate < 0.01 and fresh.median_dcr > copied.median_dcr_test and fresh.median_dcr_test is None


def test_bad_inputs(adult):
    real = adult.head(50)
    with pytest.raises(DataError, match="columns differ"):
        quality(real=real, synthetic=real.drop(columns="age"))
    with pytest.raises(DataError, match="non-empty"):
        detection(real=real, synthetic=real.head(0))
    with pytest.raises(ConfigError, match="unknown kind"):
        privacy(real=real, synthetic=real, kinds={"age": "decimal"})
    with pytest.raises(DataError, match="'nope' is not in the table"):
        quality(real=real, synthetic=real, kinds={"nope": "integer"})
    with pytest.raises(DataError, match="target column 'label'"):
        efficacy(synthetic=real, test=real, target="label")
