"""Audit remedies as sampling options (genlab.audit.processors): ``Balance``, ``Parity`` and ``Fair`` give a
debiased table from ``model.sample`` and ``genlab sample``, compose with a watermark and rules, and refuse
what they cannot do (a GAN's parity, a model of points, a bad column) in one line."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import genlab
from genlab.audit import Balance, Fair, Parity
from genlab.audit.processors import default_positive
from genlab.cli.app import main
from tables_support import biased_incomes
from genlab.errors import ConfigError, DataError, NotSupportedError
from genlab.provenance import Watermark
from genlab.provenance.table_watermark import green_rows
from genlab.rules import Range, Rules, broken_rows


def biased(n: int, seed: int) -> pd.DataFrame:
    return biased_incomes(n, seed, fourth="amount")


@pytest.fixture(scope="module")
def model():
    return genlab.fit(biased(1500, 0), family="gaussian")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rates(rows: pd.DataFrame, value: str = "high") -> pd.Series:
    return rows.assign(hit=rows["income"] == value).groupby("group")["hit"].mean()


def three_se(rows: pd.DataFrame, value: str = "high") -> float:
    """Three binomial standard errors of the difference of the two groups' rates at these group sizes,
    sqrt(p (1 - p) (1/n_A + 1/n_B)) with p the pooled rate: a gap of two independent binomial estimates of
    one rate stays inside it with probability 0.997."""
    p = float((rows["income"] == value).mean())
    counts = rows["group"].value_counts()
    return 3 * math.sqrt(p * (1 - p) * (1 / counts["A"] + 1 / counts["B"]))


def test_parity_gives_every_group_the_same_positive_rate(model):
    free = model.sample(4000, generator=gen(1))
    rows = model.sample(4000, processors=[Parity("income", "group")], generator=gen())
    assert len(rows) == 4000 and list(rows.columns) == ["group", "role", "hours", "amount", "income"]
    # the model keeps the bias: its gap is far outside the binomial tolerance, so the check below can fail
    assert abs(rates(free)["A"] - rates(free)["B"]) > three_se(free)
    gap = abs(rates(rows)["A"] - rates(rows)["B"])
    assert gap < three_se(rows)
    # by construction (rate * n_g positives per group, rounded up or down) the gap is rounding only
    counts = rows["group"].value_counts()
    assert gap < 1 / counts["A"] + 1 / counts["B"]
    # the groups keep the model's shares (B is 30 % of training rows; binomial sd at 4000 rows < 0.01)
    assert abs(counts["B"] / 4000 - 0.3) < 0.04


def test_positive_defaults_to_the_rarer_training_value_as_the_audit_takes_it(model):
    assert default_positive(model, "income") == "high"      # about 45 % of the training rows
    rows = model.sample(1000, processors=[Parity("income", "group", positive="low")], generator=gen())
    counts = rows["group"].value_counts()
    assert abs(rates(rows, "low")["A"] - rates(rows, "low")["B"]) < 1 / counts["A"] + 1 / counts["B"]
    with pytest.raises(DataError, match="no category 'rich'.*high, low"):
        model.sample(10, processors=[Parity("income", "group", positive="rich")])


def test_balance_gives_equal_group_shares_and_resamples_the_rows(model):
    rows = model.sample(301, processors=[Balance("group")], generator=gen())
    assert len(rows) == 301 and sorted(rows["group"].value_counts()) == [150, 151]
    lead = rows.assign(lead=rows["role"] == "lead").groupby("group")["lead"].mean()
    # the group's proxy moves with it (the copula: 0.77 vs 0.39): rows drawn given the group, not relabelled,
    # which would leave the same lead share in both (a gap within 3 sd = 3 sqrt(0.25 * 2 / 150) = 0.17)
    assert lead["A"] - lead["B"] > 0.2


def test_fair_redraws_the_target_at_equal_rates(model):
    rows = model.sample(2000, processors=[Fair("income", "group")], generator=gen())
    assert len(rows) == 2000
    # equal expected rates; the realised ones differ by the Bernoulli draw of each row's target
    assert abs(rates(rows)["A"] - rates(rows)["B"]) < three_se(rows)


def test_small_draws_and_seeds(model):
    # a draw smaller than the remedy needs to estimate from (a rule's redraw of a few rows) still works
    for remedy in (Balance("group"), Parity("income", "group"), Fair("income", "group")):
        assert len(model.sample(3, processors=[remedy], generator=gen())) == 3
    first = model.sample(50, processors=[Parity("income", "group")], generator=gen(5))
    again = model.sample(50, processors=[Parity("income", "group")], generator=gen(5))
    pd.testing.assert_frame_equal(first, again)


def test_watermark_parity_and_rules_compose_to_n_rows(model):
    mark, rule = Watermark(key=7), Range("hours", low=34)        # the rule breaks about a fifth of the rows
    assert Watermark.order < Parity.order < Rules.order        # rules see the remedy's rows, all marked
    rows = model.sample(1500, processors=[mark, Parity("income", "group"), Rules([rule])], generator=gen())
    assert len(rows) == 1500
    assert not broken_rows(rows, [rule]).any()
    assert green_rows(rows, mark).all()
    # rows the rules redrew come from parity draws too: equal rates up to the redraws' binomial noise
    assert abs(rates(rows)["A"] - rates(rows)["B"]) < three_se(rows)


def test_conditions_are_kept(model):
    rows = model.sample(600, condition={"role": "aide"}, processors=[Parity("income", "group")], generator=gen())
    assert len(rows) == 600 and (rows["role"] == "aide").all()
    counts = rows["group"].value_counts()
    assert abs(rates(rows)["A"] - rates(rows)["B"]) < 1 / counts["A"] + 1 / counts["B"]
    # a condition on the remedy's own column (as a rule's redraw may set) leaves the model's draw
    plain = model.sample(20, condition={"group": "B"}, generator=gen())
    for remedy in (Balance("group"), Parity("income", "group")):
        rows = model.sample(20, condition={"group": "B"}, processors=[remedy], generator=gen())
        pd.testing.assert_frame_equal(rows, plain)


def test_bad_remedies_name_the_problem(model):
    with pytest.raises(DataError, match="unknown sensitive column 'sex'.*group, role, hours, amount, income"):
        model.sample(10, processors=[Balance("sex")])
    with pytest.raises(ConfigError, match="'hours' is integer, not categorical"):
        model.sample(10, processors=[Parity("income", "hours")])
    with pytest.raises(ConfigError, match="two different columns"):
        model.sample(10, processors=[Fair("group", "group")])
    points = genlab.fit(np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32), family="gaussian")
    with pytest.raises(NotSupportedError, match="makes points"):
        points.sample(10, processors=[Balance("group")])


def test_parity_refuses_a_gan_and_balance_does_not():
    from genlab.train import TrainConfig
    train = TrainConfig(steps=20, batch_size=128, optimizer="adam")
    gan = genlab.fit(biased(400, 0), family="gan", hidden=16, depth=1, latent_dim=4, pack=2, train=train)
    with pytest.raises(NotSupportedError, match="gan family.*families that condition jointly: diffusion, gaussian"):
        gan.sample(10, processors=[Parity("income", "group")])
    assert sorted(gan.sample(10, processors=[Balance("group")], generator=gen())["group"].value_counts()) == [5, 5]


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_cli_writes_a_fair_table(capsys, tmp_path, model):
    model.save_pretrained(tmp_path / "run")
    out = tmp_path / "fair.csv"
    code, stdout, err = run_cli(capsys, "sample", str(tmp_path / "run"), "--parity", "income:group", "-n", "2000",
                                "--out", str(out))
    assert code == 0, err
    # only the usual line (rich may wrap the long path)
    assert stdout == "" and "".join(err.split()) == f"wrote2000samplesto{out}"
    rows = pd.read_csv(out)
    counts = rows["group"].value_counts()
    assert len(rows) == 2000
    assert abs(rates(rows)["A"] - rates(rows)["B"]) < 1 / counts["A"] + 1 / counts["B"]
    marked = tmp_path / "balanced.csv"
    code, _, err = run_cli(capsys, "sample", str(tmp_path / "run"), "--balance", "group", "--watermark-key", "k",
                           "-n", "100", "--out", str(marked))
    assert code == 0, err
    rows = pd.read_csv(marked)
    assert rows["group"].value_counts().to_dict() == {"A": 50, "B": 50}
    assert green_rows(rows, Watermark(key="k")).all()


def test_cli_refuses_bad_remedies_in_one_line(capsys, tmp_path, model):
    model.save_pretrained(tmp_path / "run")
    points = genlab.fit(np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32), family="gaussian")
    points.save_pretrained(tmp_path / "points")
    out = tmp_path / "bad.csv"
    for run, argv, match in (("run", ["--parity", "income"], "TARGET:COL"),
                             ("run", ["--fair", "income:"], "TARGET:COL"),
                             ("run", ["--balance", "sex"], "unknown sensitive column 'sex'"),
                             ("run", ["--balance", "group", "--parity", "income:group"], "one remedy"),
                             ("run", ["--balance", "group", "--condition", "group=A"], "--condition"),
                             ("points", ["--balance", "group"], "makes points")):
        code, stdout, err = run_cli(capsys, "sample", str(tmp_path / run), "-n", "10", "--out", str(out), *argv)
        lines = err.strip().splitlines()
        assert code != 0 and len(lines) == 1 and lines[0].startswith("genlab: error:") and match in lines[0], err
        assert stdout == "" and not out.exists()


def test_two_processors_of_one_slot_in_one_call_are_refused(model):
    """Two remedies in one call used to keep the last one silently."""
    with pytest.raises(ConfigError, match="two remedy processors"):
        model.sample(10, processors=[Balance("group"), Parity("income", "group")])
