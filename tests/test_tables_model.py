"""Tables through the model contract: the Gaussian copula, exact conditional sampling, save/load,
table evaluation, loading CSV files as tables, and the CLI on good and bad tables."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy.stats import ks_2samp

import genlab
from genlab.cli.app import main
from genlab.data.table_files import read_table
from genlab.data.dataset import Dataset
from genlab.data.registry import load as load_dataset
from genlab.errors import ConfigError, DataError, NotSupportedError
from genlab.evaluation import evaluate
from genlab.report.html import RunResult, render_html

from tables_support import draw as draw_rows, split_table
from genlab.models import copula


def mixed_table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Correlated numbers, a category driven by them, an integer, a boolean and missing values."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 2.0 * x + rng.normal(scale=0.5, size=n)
    colour = np.where(x > 0.5, "red", np.where(x < -0.5, "blue", "green"))
    count = rng.poisson(3 + 2 * (x > 0), size=n)
    gap = np.round(rng.exponential(size=n), 2)
    gap[rng.uniform(size=n) < 0.2] = np.nan
    label = np.where(y + rng.normal(size=n) > 1.0, "yes", "no")
    return pd.DataFrame({"x": x, "y": y, "colour": pd.Categorical(colour), "count": count, "flag": x > 0,
                         "gap": gap, "label": label})


def draw(model, n=4000, seed=0, **kwargs) -> pd.DataFrame:
    return draw_rows(model, n, seed, **kwargs)


def table_dataset(frame: pd.DataFrame, target: str | None = None) -> Dataset:
    return split_table(frame, target)


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return mixed_table()


@pytest.fixture(scope="module")
def plain(real):
    """One copula for the whole table (a DataFrame has no target)."""
    return genlab.fit(real, family="gaussian")


@pytest.fixture(scope="module")
def per_class(real):
    """One copula per class of the target ``label``."""
    return genlab.fit(table_dataset(real, "label"), family="gaussian")


# ---------------------------------------------------------------------- the copula
def test_copula_learns_marginals_correlation_and_missing_rates(real, plain):
    fake = draw(plain)
    assert list(fake.columns) == list(real.columns) and fake.dtypes.to_dict() == real.dtypes.to_dict()
    assert list(fake["colour"].cat.categories) == list(real["colour"].cat.categories)
    for column in ("x", "y", "count"):
        assert ks_2samp(fake[column], real[column]).statistic < 0.05, column
    for column in ("colour", "flag", "label"):
        shares = fake[column].value_counts(normalize=True)
        expected = real[column].value_counts(normalize=True)
        np.testing.assert_allclose(shares.reindex(expected.index), expected, atol=0.03, err_msg=column)
    assert abs(fake["x"].corr(fake["y"]) - real["x"].corr(real["y"])) < 0.03
    assert abs(fake["gap"].isna().mean() - 0.2) < 0.03
    assert fake["gap"].dropna().min() >= 0 and (fake["gap"].dropna() == fake["gap"].dropna().round(2)).all()


def test_table_models_say_what_they_are(plain, per_class):
    assert plain.codec_.strata is None and plain.network_.class_logits.numel() == 1
    assert per_class.codec_.strata == "label" and per_class.network_.class_logits.numel() == 2
    assert {b.kind for b in plain.codec_.blocks} == {"scalar", "interval"}
    assert plain.codec_.width == len(plain.codec_.blocks) == 8     # 7 columns + gap's missing indicator
    with pytest.raises(NotSupportedError, match="no log_prob"):
        plain.log_prob(pd.DataFrame())


def test_condition_is_satisfied_exactly_without_imposing_values(real, plain, per_class):
    for model in (plain, per_class):
        for condition in ({"colour": "red"}, {"count": 5}, {"colour": "blue", "count": 2, "flag": False},
                          {"label": "yes", "gap": 0.5}, {"x": 0.25}):
            parsed = model.table_condition(condition)
            z = model._sample_network(500, parsed, torch.Generator().manual_seed(1))
            decoded = model.codec_.decode(z)                       # before sample() writes the values in
            for column, value in parsed.items():
                agree = np.isclose(decoded[column].astype(float), float(value)) if column in ("x", "gap") \
                    else decoded[column] == value
                assert agree.all(), (condition, column)
            fake = draw(model, 300, condition=condition)
            assert all((fake[column] == value).all() for column, value in parsed.items())


def test_conditional_distribution_shifts_like_the_data(real, plain, per_class):
    for model in (plain, per_class):
        red = draw(model, condition={"colour": "red"})
        # Red means x > 0.5 in the data (mean 1.13); a copula sees the linear part of that: its
        # intervals are ordered blue, green, red by the fitted order, so red's scores sit high.
        assert model.codec_.spec("colour")["order"][-1] == 2
        assert red["x"].mean() > 0.8 and (red["x"] > 0).mean() > 0.85
        assert abs(red["y"].mean() - real.loc[real["colour"] == "red", "y"].mean()) < 0.5
        assert red["flag"].mean() > 0.7 and abs(draw(model)["x"].mean()) < 0.1
    yes = draw(per_class, condition={"label": "yes"})
    truth = real[real["label"] == "yes"]
    assert ks_2samp(yes["y"], truth["y"]).statistic < 0.06     # the class's own marginals
    # Without naming the class, the class follows its exact posterior p(label | colour).
    blue = draw(per_class, condition={"colour": "blue"})
    expected = (real.loc[real["colour"] == "blue", "label"] == "yes").mean()
    assert abs((blue["label"] == "yes").mean() - expected) < 0.04


def test_truncated_gaussian_sampler_against_scipy():
    cov = torch.tensor([[1.0, 0.8, 0.3], [0.8, 1.0, 0.5], [0.3, 0.5, 1.0]], dtype=torch.float64)
    one = copula.sample(cov, 20000, {0: (0.5, np.inf)}, torch.Generator().manual_seed(0))
    assert one[:, 0].min() >= 0.5
    # E[z1 | z0 > 0.5] = 0.8 E[z0 | z0 > 0.5] = 0.8 phi(0.5) / (1 - Phi(0.5))
    from scipy.stats import norm
    assert abs(one[:, 1].mean() - 0.8 * norm.pdf(0.5) / norm.sf(0.5)) < 0.02
    two = copula.sample(cov, 4000, {0: (0.0, 1.0), 1: (-0.5, 0.2)}, torch.Generator().manual_seed(0))
    assert ((two[:, 0] >= 0) & (two[:, 0] <= 1) & (two[:, 1] >= -0.5) & (two[:, 1] <= 0.2)).all()
    rows = np.random.default_rng(0).multivariate_normal(np.zeros(3), cov.numpy(), size=400000)
    inside = rows[(rows[:, 0] >= 0) & (rows[:, 0] <= 1) & (rows[:, 1] >= -0.5) & (rows[:, 1] <= 0.2)]
    np.testing.assert_allclose(two.mean(0).numpy(), inside.mean(0), atol=0.03)
    np.testing.assert_allclose(np.exp(copula.log_likelihood(cov, {0: (0.0, 1.0), 1: (-0.5, 0.2)})),
                               len(inside) / len(rows), rtol=0.02)


def test_save_load_gives_identical_samples(per_class, tmp_path):
    run = per_class.save_pretrained(tmp_path / "run")
    assert json.loads((run / "codec.json").read_text())["strata"] == "label"
    assert json.loads((run / "config.json").read_text())["data"]["target"] == "label"
    loaded = genlab.load(run)
    pd.testing.assert_frame_equal(draw(loaded, 200, seed=3), draw(per_class, 200, seed=3))
    pd.testing.assert_frame_equal(draw(loaded, 50, seed=3, condition={"colour": "green"}),
                                  draw(per_class, 50, seed=3, condition={"colour": "green"}))
    assert not draw(per_class, 50, seed=3).equals(draw(per_class, 50, seed=4))


def test_bad_conditions_name_the_choices(plain, per_class):
    with pytest.raises(DataError, match="unknown column 'nope'.*x, y, colour"):
        draw(plain, 5, condition={"nope": 1})
    with pytest.raises(DataError, match="no category 'purple'.*blue, green, red"):
        draw(plain, 5, condition={"colour": "purple"})
    with pytest.raises(DataError, match="outside the training range"):
        draw(plain, 5, condition={"count": 1000})
    with pytest.raises(DataError, match="whole numbers"):
        draw(plain, 5, condition={"count": 2.5})
    with pytest.raises(DataError, match="missing value"):
        draw(plain, 5, condition={"gap": None})
    with pytest.raises(ConfigError, match="dict"):
        draw(plain, 5, condition="red")
    assert (draw(per_class, 5, condition="yes")["label"] == "yes").all()       # a bare value: the target
    rng = np.random.default_rng(0)
    label = rng.choice(["a", "b"], size=200)
    colour = np.where(label == "a", rng.choice(["red", "green"], size=200), rng.choice(["blue", "green"], size=200))
    frame = pd.DataFrame({"label": label, "colour": colour, "v": rng.normal(size=200)})
    strict = genlab.fit(table_dataset(frame, "label"), family="gaussian")
    with pytest.raises(DataError, match="probability zero"):
        draw(strict, 5, condition={"label": "a", "colour": "blue"})
    assert (draw(strict, 100, condition={"colour": "blue"})["label"] == "b").all()   # the exact class posterior


def test_the_copula_refuses_a_mixture(real):
    with pytest.raises(ConfigError, match="n_components=1"):
        genlab.fit(real, family="gaussian", n_components=3)


def test_evaluation_of_tables(per_class, real):
    data = table_dataset(real, "label")
    report = evaluate(per_class, data, seed=0)
    assert {"quality", "column_shapes", "column_pair_trends", "detection_auc", "efficacy_f1", "dcr",
            "exact_copies"} <= set(report.metrics)
    assert report.metrics["column_shapes"] > 0.9 and report.metrics["quality"] > 0.85
    assert 0.4 < report.metrics["detection_auc"] < 0.7
    assert report.floor["efficacy_f1"] > 0.5 and report.floor["quality"] > report.metrics["quality"] - 0.1
    assert report.intervals == {} and "bootstrap" in report.notes["quality"]


# ---------------------------------------------------------------------- loading
def test_csv_files_load_as_tables_when_not_purely_numeric(tmp_path):
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(10)))
    assert load_dataset(numbers).modality == "points"
    assert load_dataset(numbers, modality="tables").modality == "tables"
    labelled = load_dataset(numbers, target="b")
    assert labelled.modality == "tables" and labelled.target == "b" and labelled.y_train is None
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("a,kind\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(10)))
    data = load_dataset(mixed)
    assert data.modality == "tables" and len(data.x_train) == 8 and list(data.x_test.columns) == ["a", "kind"]
    data = load_dataset(mixed, target="kind")
    assert data.class_names == ("a", "b") and data.y_train.dtype == np.int64
    with pytest.raises(DataError, match="target column 'nope'"):
        load_dataset(mixed, target="nope")
    with pytest.raises(DataError, match="not a number"):     # asked for points, read as points
        load_dataset(mixed, modality="points")


def test_adult_builtin(shared_data):
    data = load_dataset("adult", data_dir=shared_data)
    assert data.modality == "tables" and data.target == "income" and data.class_names == ("<=50K", ">50K")
    assert (len(data.x_train), len(data.x_test)) == (32561, 16281)


# ---------------------------------------------------------------------- the CLI
def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def one_line_error(capsys, *argv: str, match: str) -> None:
    status, _, err = run_cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert status != 0 and len(lines) >= 1 and lines[-1].startswith("genlab: error:"), err
    assert sum(line.startswith("genlab: error:") for line in lines) == 1, err
    assert match in lines[-1], lines[-1]


def robust_csv(path, n: int = 80) -> str:
    """Semicolons, missing values, non-ASCII names and values, a constant, a date and an ID column."""
    rng = np.random.default_rng(0)
    cities = ["Zürich", "Köln", "München", "Århus"]
    lines = ["kunden_id;Größe;Stadt;konstant;Datum;Betrag €"]
    for i in range(n):
        size = "" if i % 7 == 0 else f"{rng.normal(170, 10):.1f}"
        city = "" if i % 11 == 0 else cities[i % 4]
        lines.append(f"K-{i:04d};{size};{city};7;2021-{1 + i % 12:02d}-{1 + i % 28:02d};{int(rng.integers(0, 500))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_cli_robust_table_fits_and_samples(tmp_path, capsys, caplog):
    data = robust_csv(tmp_path / "robust.csv")
    run, out = str(tmp_path / "run"), tmp_path / "synth.csv"
    status, _, err = run_cli(capsys, "fit", data, "--out", run)
    assert status == 0, err
    assert "'kunden_id' looks like an identifier" in caplog.text     # the CLI shows library warnings
    status, _, err = run_cli(capsys, "sample", run, "-n", "200", "--out", str(out), "--condition", "Stadt=Köln",
                             "--condition", "Betrag €=250")
    assert status == 0, err
    fake = read_table(out)
    real = read_table(data)
    assert list(fake.columns) == list(real.columns) and len(fake) == 200
    assert (fake["Stadt"] == "Köln").all() and (fake["Betrag €"] == 250).all()
    assert fake["kunden_id"].is_unique and not set(fake["kunden_id"]) & set(real["kunden_id"])
    assert (fake["konstant"] == 7).all() and fake["Größe"].isna().any()
    assert pd.to_datetime(fake["Datum"]).between("2021-01-01", "2021-12-28").all()
    status, _, err = run_cli(capsys, "sample", run, "-n", "50", "--out", str(tmp_path / "all.csv"))
    assert status == 0 and fake["Stadt"].notna().all()


def test_cli_fit_sample_eval_with_target(tmp_path, capsys, real):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    real.iloc[:2000].to_csv(train, index=False)
    real.iloc[2000:].to_csv(test, index=False)
    run = str(tmp_path / "run")
    assert run_cli(capsys, "fit", str(train), "--target", "label", "--out", run)[0] == 0
    status, _, err = run_cli(capsys, "sample", run, "-n", "100", "--condition", "label=yes", "--condition",
                             "flag=true", "--out", str(tmp_path / "s.csv"))
    assert status == 0, err
    fake = pd.read_csv(tmp_path / "s.csv")
    assert (fake["label"] == "yes").all() and fake["flag"].all()
    status, out, err = run_cli(capsys, "eval", run, "--real", str(test), "--train", str(train), "--out",
                               str(tmp_path / "m.json"))
    assert status == 0, err
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["n_real"] == 1000 and "efficacy_f1" in metrics["metrics"] and "quality" in out


def test_cli_bad_tables_give_one_line(tmp_path, capsys):
    out = str(tmp_path / "run")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    one_line_error(capsys, "fit", str(empty), "--modality", "tables", "--out", out, match="empty")
    header = tmp_path / "header.csv"
    header.write_text("name;city\n")
    one_line_error(capsys, "fit", str(header), "--modality", "tables", "--out", out, match="no data rows")
    one_line_error(capsys, "fit", str(header), "--target", "city", "--out", out, match="no data rows")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("name,city\nAnna,Köln\nBen,Bonn,extra\nCleo,Ulm\n")
    one_line_error(capsys, "fit", str(ragged), "--out", out, match="line 3")
    one_line_error(capsys, "fit", str(ragged), "--modality", "tables", "--out", out, match="line 3 has 3 fields")
    one_line_error(capsys, "fit", str(ragged), "--modality", "tabels", "--out", out, match="unknown modality")
    data = robust_csv(tmp_path / "robust.csv")
    assert run_cli(capsys, "fit", data, "--out", out)[0] == 0
    target = str(tmp_path / "s.csv")
    one_line_error(capsys, "sample", out, "--condition", "Land=CH", "--out", target, match="unknown column 'Land'")
    one_line_error(capsys, "sample", out, "--condition", "Stadt=Bern", "--out", target,
                   match="no category 'Bern'; its categories are: Köln, München, Zürich, Århus")
    one_line_error(capsys, "sample", out, "--condition", "Stadt", "--condition", "x=1", "--out", target,
                   match="column=value")
    one_line_error(capsys, "sample", out, "--condition", "Größe=abc", "--out", target, match="cannot read 'abc'")
    one_line_error(capsys, "sample", out, "--out", str(tmp_path / "s.png"), match=".csv")
    assert not (tmp_path / "s.csv").exists()


def test_fitting_a_table_is_deterministic(real, plain):
    again = genlab.fit(real, family="gaussian")
    assert again.codec_.state() == plain.codec_.state()
    for (name, a), (_, b) in zip(plain.network_.state_dict().items(), again.network_.state_dict().items()):
        assert torch.equal(a, b), name


def test_the_html_report_draws_every_column_of_a_table_run(per_class, real):
    data = table_dataset(real, "label")
    report = genlab.evaluate(per_class, data, n=200, seed=0)
    page = render_html([RunResult("mixed-copula", per_class, data, report)])
    pictures = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert pictures and "generated rows (blue) against the real test rows" in page
    width, height = Image.open(io.BytesIO(base64.b64decode(pictures[0]))).size
    assert width > 800 and height > 400          # 7 columns: two rows of four panels
    for name in ("quality", "detection_auc", "dcr"):
        assert name in report.metrics and f"<td>{name}" in page
