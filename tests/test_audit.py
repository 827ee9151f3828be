"""Bias audit (genlab.audit): shares, rate gaps and downstream fairness through fairlearn, the
balance / parity / fair remedies through exact conditional sampling, the HTML page, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import genlab
from genlab.audit import audit, render_html
from genlab.audit.remedies import balanced, fair_target, parity, proxies
from genlab.cli.app import main
from tables_support import biased_incomes
from genlab.errors import ConfigError, DataError, NotSupportedError


def biased(n: int, seed: int) -> pd.DataFrame:
    return biased_incomes(n, seed, fourth="city")


@pytest.fixture(scope="module")
def model():
    return genlab.fit(biased(1500, 0), family="gaussian")


@pytest.fixture(scope="module")
def real():
    return biased(1200, 1)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_audit_measures_shares_rates_and_downstream_fairness(model, real):
    result = audit(model, real, sensitive="group", target="income", n=1500, test_rows=600, generator=gen())
    assert result.groups == ["A", "B"] and result.positive == "high"   # the rarer income value
    samples = result.representation["samples"]
    assert abs(sum(s.share for s in samples.values()) - 1) < 1e-12
    assert all(s.low <= s.share <= s.high for s in samples.values())
    # the rates against an independent pandas computation on the real rows
    expected = real.assign(hit=real["income"] == "high").groupby("group")["hit"].mean()
    assert result.rates["test"] == pytest.approx(expected.to_dict(), abs=1e-12)
    assert result.gaps["test"] == pytest.approx(abs(expected["A"] - expected["B"]), abs=1e-12)
    real_scores = result.downstream["real"]["boosting"]
    assert real_scores["auroc"][0] > 0.6                    # the income is learnable from role and hours
    assert real_scores["demographic_parity"][0] > 0.1       # and role carries the group
    assert 0 <= real_scores["ftu"][0] <= 1
    page = render_html(result)
    assert page.count("<img") == 2 and "genlab-audit" in page


def test_balance_gives_equal_group_shares(model):
    rows = balanced(model, 301, "group", ["A", "B"], generator=gen())
    assert len(rows) == 301 and sorted(rows["group"].value_counts()) == [150, 151]   # the extra row: either


def test_parity_gives_equal_target_rates_and_keeps_group_shares(model):
    rows = parity(model, 2000, "group", "income", "high", ["low"], generator=gen())
    rates = rows.assign(hit=rows["income"] == "high").groupby("group")["hit"].mean()
    counts = rows["group"].value_counts()
    # each group's count of positives is rate * n_g rounded up or down: equal rates up to one row per group
    assert abs(rates["A"] - rates["B"]) < 1 / counts["A"] + 1 / counts["B"]
    assert len(rows) == 2000


def test_fair_target_leaves_out_the_proxy_and_equalises_rates(model):
    free = model.sample(2000, generator=gen())
    assert "role" in proxies(free, "group", "income", model.codec_.column_kinds)
    rows, blind = fair_target(model, 2000, "group", "income", "high", ["low"], model.codec_.column_kinds,
                              generator=gen())
    assert "role" in blind and "city" not in blind
    rates = rows.assign(hit=rows["income"] == "high").groupby("group")["hit"].mean()
    # equal expected rates; the realised ones differ by Bernoulli noise (sd about 0.02 for these counts)
    assert abs(rates["A"] - rates["B"]) < 0.08


def test_bad_audits_name_the_problem(model, real):
    with pytest.raises(ConfigError, match="'hours' is integer, not categorical.*categorical columns: group, role"):
        audit(model, real, sensitive="hours")
    with pytest.raises(DataError, match="unknown sensitive column 'sex'"):
        audit(model, real, sensitive="sex")
    with pytest.raises(ConfigError, match="unknown remedy 'erase'"):
        audit(model, real, sensitive="group", remedy="erase")
    with pytest.raises(ConfigError, match="give a target"):
        audit(model, real, sensitive="group", remedy="parity")
    points = genlab.fit(np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32), family="gaussian")
    with pytest.raises(NotSupportedError, match="makes points"):
        audit(points, real, sensitive="group")


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    return exit_info.value.code, capsys.readouterr().err


def test_cli_writes_the_report_and_refuses_bad_input(capsys, tmp_path, model, real):
    run = tmp_path / "run"
    model.save_pretrained(run)
    real.to_csv(tmp_path / "real.csv", index=False)
    out = tmp_path / "audit.html"
    code, err = run_cli(capsys, "audit", str(run), "--real", str(tmp_path / "real.csv"), "--sensitive", "group",
                        "--target", "income", "-n", "800", "--parity", "income:group", "--out", str(out))
    assert code == 0, err
    assert "downstream boosting trained on synthetic" in err and "<img" in out.read_text()
    bad = tmp_path / "bad.html"
    for argv, match in ((["--sensitive", "hours"], "not categorical"),
                        (["--sensitive", "group", "--parity", "income:role"], "TARGET:COL"),
                        (["--sensitive", "group", "--balance", "group", "--parity", "income:group"], "one remedy")):
        code, err = run_cli(capsys, "audit", str(run), "--real", str(tmp_path / "real.csv"), "--out", str(bad), *argv)
        lines = err.strip().splitlines()
        assert code == 1 and lines[-1].startswith("genlab: error:") and match in lines[-1], err
        assert not bad.exists()


def test_ftu_flips_a_boolean_sensitive_column():
    # the target follows the boolean group alone: flipping it changes most predictions (true FTU near 1)
    from genlab.audit.measures import downstream
    rng = np.random.default_rng(0)
    n = 800
    woman = rng.random(n) < 0.5
    hired = np.where(rng.random(n) < 0.9, woman, ~woman)
    table = pd.DataFrame({"woman": woman, "noise": rng.normal(size=n), "hired": np.where(hired, "yes", "no")})
    kinds = {"woman": "boolean", "noise": "numeric", "hired": "categorical"}
    scores = downstream(table.iloc[:600], table.iloc[600:], "woman", "hired", "yes", kinds)
    assert scores.ftu > 0.8


@pytest.fixture(scope="module")
def gan():
    from genlab.train import TrainConfig
    train = TrainConfig(steps=300, batch_size=256, lr=1e-3, min_lr_ratio=0.05, grad_clip=None, optimizer="adam")
    return genlab.fit(biased(1500, 0), family="gan", hidden=64, depth=2, latent_dim=8, pack=4, train=train)


def test_two_column_remedies_refuse_a_gan_and_name_the_families_that_can(gan, real):
    # CTGAN conditions on one category and writes the others in: parity would relabel, not resample
    for call in (lambda: parity(gan, 200, "group", "income", "high", ["low"], generator=gen()),
                 lambda: audit(gan, real, sensitive="group", target="income", n=200, remedy="parity")):
        with pytest.raises(NotSupportedError, match="gan.*diffusion, gaussian, transformer, vae") as caught:
            call()
        assert "\n" not in str(caught.value)


def test_cli_refuses_parity_on_a_gan_in_one_line(capsys, tmp_path, gan, real):
    gan.save_pretrained(tmp_path / "run")
    real.to_csv(tmp_path / "real.csv", index=False)
    code, err = run_cli(capsys, "audit", str(tmp_path / "run"), "--real", str(tmp_path / "real.csv"), "--sensitive",
                        "group", "--parity", "income:group", "-n", "200", "--out", str(tmp_path / "audit.html"))
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("genlab: error:"), err
    assert "families that condition jointly: diffusion, gaussian, transformer, vae" in lines[0]
    assert not (tmp_path / "audit.html").exists()


def test_balance_on_a_gan_resamples_the_group_natively(gan):
    # one category is what CTGAN's conditional vector carries: the group's proxy follows the group
    rows = balanced(gan, 2000, "group", ["A", "B"], generator=gen())
    assert rows["group"].value_counts().to_dict() == {"A": 1000, "B": 1000}
    lead = rows.assign(lead=rows["role"] == "lead").groupby("group")["lead"].mean()
    assert lead["A"] - lead["B"] > 0.3     # real rows 0.92 - 0.07; this GAN 0.92 - 0.19
