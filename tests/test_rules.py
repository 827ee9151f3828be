"""Table rules: inference, JSON files, enforcement on the Gaussian copula (every row back, none broken,
conditions kept), saving with the run, and every bad input as one clear error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import genlab
from genlab.cli.app import main
from genlab.rules import enforcement
from genlab.rules import (Rules, attach_rules, bind_rules, rules_of, Dependency, FixedCombinations, Inequality, Predicate, Range, RuleError, Unique, combine,
                          count_violations, infer_rules, parse_rules, rule_from_state)


def household(n: int = 800, seed: int = 0) -> pd.DataFrame:
    """A table with a partial dependency (role -> sex for husband/wife), an order (start <= end), a
    positive amount and a free category: the copula, which sees only pairwise correlations of scores,
    breaks the dependency and the order on some rows."""
    rng = np.random.default_rng(seed)
    role = rng.choice(["husband", "wife", "child", "single"], size=n, p=[0.35, 0.25, 0.2, 0.2])
    sex = np.where(role == "husband", "M", np.where(role == "wife", "F", rng.choice(["M", "F"], size=n)))
    start = rng.integers(0, 50, size=n)
    end = start + rng.integers(0, 30, size=n)
    return pd.DataFrame({"role": role, "sex": sex, "start": start, "end": end,
                         "amount": np.round(rng.lognormal(3, 1, size=n), 2),
                         "city": rng.choice(["a", "b", "c"], size=n)})


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return household()


@pytest.fixture(scope="module")
def copula(table):
    return genlab.fit(table, family="gaussian")


@pytest.fixture(scope="module")
def inferred(copula, table):
    return bind_rules(copula, infer_rules(table, copula.codec_.column_kinds))


def draw(model, n, seed=0, **kwargs):
    return model.sample(n, generator=torch.Generator().manual_seed(seed), **kwargs)


def test_inference_finds_the_dependency_the_order_and_the_ranges(inferred):
    described = [rule.describe() for rule in inferred]
    assert "role -> sex (husband->M, wife->F)" in described
    assert "start <= end" in described
    assert "0 <= start <= 49" in described
    # no dependency the data does not have: city is independent of everything, sex does not force role
    assert not any(rule.kind == "dependency" and "city" in rule.columns for rule in inferred)
    assert not any(rule.kind == "dependency" and rule.determinant == "sex" for rule in inferred)


def test_copula_breaks_rules_and_enforcement_returns_every_row_unbroken(copula, inferred):
    free = draw(copula, 2000, processors=[Rules([])])
    before = count_violations(free, inferred)
    assert before["role -> sex (husband->M, wife->F)"] > 0 and before["start <= end"] > 0
    kept = draw(copula, 2000, processors=[Rules(inferred)])
    assert len(kept) == 2000 and list(kept.index) == list(range(2000))
    assert sum(count_violations(kept, inferred).values()) == 0
    assert dict(kept.dtypes) == dict(free.dtypes)
    # the rows that were fine stay as drawn: enforcement replaces only broken rows
    fine = ~np.any([rule.violations(free) for rule in inferred], axis=0)
    pd.testing.assert_frame_equal(kept[fine], free[fine])


def test_a_condition_still_holds_under_rules_and_a_contradicting_one_is_refused(copula, inferred):
    rows = draw(copula, 300, condition={"sex": "F"}, processors=[Rules(inferred)])
    assert len(rows) == 300 and (rows["sex"] == "F").all()
    assert sum(count_violations(rows, inferred).values()) == 0
    assert "husband" not in set(rows["role"])
    with pytest.raises(RuleError, match="contradicts rule 'role -> sex"):
        draw(copula, 10, condition={"role": "husband", "sex": "F"}, processors=[Rules(inferred)])


def test_conditioning_on_assignments_alone_also_returns_every_row_unbroken(copula, inferred, monkeypatch):
    # method 2 of genlab.rules.enforcement, which rejection otherwise leaves little to do on this table
    monkeypatch.setattr(enforcement, "REJECTION_ROUNDS", 0)
    combos = FixedCombinations(("role", "city"), (("husband", "a"), ("wife", "b"), ("child", "c"), ("single", "a")))
    rules = inferred + bind_rules(copula, [combos])
    rows = draw(copula, 400, condition={"city": "a"}, processors=[Rules(rules)])
    assert len(rows) == 400 and (rows["city"] == "a").all()
    assert sum(count_violations(rows, rules).values()) == 0
    assert set(rows["role"]) == {"husband", "single"}


def test_rules_in_the_model_are_saved_with_the_run_and_applied_on_load(copula, inferred, tmp_path):
    attach_rules(copula, inferred)
    try:
        copula.save_pretrained(tmp_path / "run")
    finally:
        attach_rules(copula, [])
    saved = json.loads((tmp_path / "run" / "rules.json").read_text())
    assert {"kind": "inequality", "low": "start", "high": "end", "strict": False} in saved["rules"]
    loaded = genlab.load(tmp_path / "run")
    assert [r.describe() for r in rules_of(loaded)] == [r.describe() for r in inferred]
    assert sum(count_violations(draw(loaded, 1000), inferred).values()) == 0


def test_each_kind_is_enforced(copula):
    rules = [FixedCombinations(("role", "city"), (("husband", "a"), ("wife", "b"), ("child", "c"), ("single", "a"),
                                                  ("single", "b"))),
             Range("amount", high=40), Inequality("end", "amount"),
             Predicate(lambda row: row["start"] % 2 == 0, name="even start", reads=("start",))]
    rows = draw(copula, 400, processors=[Rules(bind_rules(copula, rules))])
    assert len(rows) == 400
    assert sum(count_violations(rows, rules).values()) == 0
    ids = bind_rules(copula, [Unique("start")])
    assert draw(copula, 40, processors=[Rules(ids)])["start"].is_unique


def test_json_round_trip_and_bad_rule_files():
    state = {"rules": [{"kind": "dependency", "determinant": "role", "dependent": "sex", "mapping": [["husband", "M"]]},
                       {"kind": "range", "column": "amount", "low": 0}], "remove": ["city"]}
    rules, removed = parse_rules(state)
    assert [rule_from_state(rule.state()) for rule in rules] == rules and removed == ["city"]
    with pytest.raises(RuleError, match="unknown rule kind 'between'; choose one of: fixed_combinations"):
        parse_rules([{"kind": "between", "column": "a"}])
    with pytest.raises(RuleError, match="missing high"):
        parse_rules([{"kind": "inequality", "low": "a"}])
    with pytest.raises(RuleError, match="predicate rules are Python functions"):
        parse_rules([{"kind": "predicate", "function": "lambda row: True"}])
    with pytest.raises(RuleError, match="never holds"):
        Predicate(lambda row: True).state()


def test_bad_rules_for_the_model_name_the_problem(copula):
    with pytest.raises(RuleError, match="unknown column 'salary'; the table's columns are: role"):
        bind_rules(copula, [Range("salary", low=0)])
    with pytest.raises(RuleError, match="impossible range"):
        bind_rules(copula, [Range("amount", low=10, high=5)])
    with pytest.raises(RuleError, match="column 'role' is categorical"):
        bind_rules(copula, [Inequality("role", "end")])
    with pytest.raises(RuleError, match="has no category 'x'"):
        bind_rules(copula, [Dependency("role", "sex", (("husband", "x"),))])
    with pytest.raises(RuleError, match="leave no value of 'amount'"):
        draw(copula, 5, processors=[Rules(bind_rules(copula, [Range("amount", low=50), Range("amount", high=20)]))])
    with pytest.raises(RuleError, match="force sex to both 'M' and 'F'"):
        draw(copula, 5, processors=[Rules(bind_rules(copula, [Dependency("role", "sex", (("husband", "M"),)),
                                                 Dependency("role", "sex", (("husband", "F"),))]))])
    never = Predicate(lambda row: False, name="never")
    with pytest.raises(RuleError, match="still break 'never'"):
        draw(copula, 3, processors=[Rules([never])])


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.err


def test_cli_infers_prints_removes_and_enforces(capsys, tmp_path, table):
    data = tmp_path / "household.csv"
    table.to_csv(data, index=False)
    (tmp_path / "rules.json").write_text(json.dumps({"rules": [{"kind": "positive", "column": "amount"}],
                                                     "remove": ["amount", "start <= end"]}))
    run = tmp_path / "run"
    code, err = run_cli(capsys, "fit", str(data), "--family", "gaussian", "--out", str(run), "--infer-rules",
                        "--rules", str(tmp_path / "rules.json"))
    assert code == 0, err
    assert "rule: role -> sex (husband->M, wife->F)" in err and "rule: amount > 0" in err
    assert "rule: start <= end" not in err and "<= amount <=" not in err   # removed, by description and by column
    code, err = run_cli(capsys, "sample", str(run), "-n", "500", "--out", str(tmp_path / "rows.csv"))
    assert code == 0, err
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert len(rows) == 500 and not ((rows["role"] == "husband") & (rows["sex"] == "F")).any()
    assert (rows["amount"] > 0).all()
    with pytest.raises(RuleError, match="no inferred rule is or reads it"):
        combine([], [], ["city"])


@pytest.mark.parametrize("content, match", [
    ({"rules": [{"kind": "range", "column": "salary", "low": 0}]}, "unknown column 'salary'"),
    ({"rules": [], "remove": ["city"]}, "add --infer-rules"),
    ({"rules": [{"kind": "range", "column": "amount"}]}, "needs a low or a high end"),
])
def test_cli_bad_rules_give_one_line_and_write_nothing(capsys, tmp_path, table, content, match):
    data = tmp_path / "household.csv"
    table.to_csv(data, index=False)
    (tmp_path / "rules.json").write_text(json.dumps(content))
    code, err = run_cli(capsys, "fit", str(data), "--family", "gaussian", "--out", str(tmp_path / "run"),
                        "--rules", str(tmp_path / "rules.json"))
    lines = err.strip().splitlines()
    assert code == 1 and lines[-1].startswith("genlab: error:") and match in lines[-1], err
    assert not (tmp_path / "run").exists()


def test_rules_given_at_sampling_time_hold_under_a_watermark(copula, inferred):
    """Issue 22, bug 3: a watermark used to return before the call's rules were enforced."""
    rows = draw(copula, 300, processors=[genlab.Watermark(key=7), Rules(inferred)])
    assert len(rows) == 300
    assert sum(count_violations(rows, inferred).values()) == 0
    assert genlab.detect(rows, key=7).combined.watermarked
