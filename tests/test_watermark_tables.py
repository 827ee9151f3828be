"""The keyed row-hash table watermark: detection after shuffling, subsetting, column reordering and a
CSV round trip, the green share the strength asks for, a calibrated null on real rows, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import genlab
from genlab.errors import ConfigError, NotSupportedError
from genlab.provenance import Watermark
from genlab.provenance.detect import detect
from genlab.provenance.table_watermark import green_rows

from tables_support import split_table


def frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue", "grey"], n)
    size = rng.choice(["S", "M", "L"], n)
    return pd.DataFrame({"colour": colour, "size": size, "age": rng.integers(18, 90, n),
                         "income": np.round(np.exp(rng.normal(10, 1, n)), 2),
                         "score": rng.normal(0, 1, n) + (colour == "red")})


@pytest.fixture(scope="module")
def model():
    return genlab.fit(split_table(frame(600)), family="gaussian", n_components=1)


def test_marked_rows_are_detected_after_shuffle_subset_reorder_and_csv(model, tmp_path):
    marked = model.sample(300, processors=[Watermark(key=42)], generator=torch.Generator().manual_seed(0))
    assert len(marked) == 300 and list(marked.columns) == list(frame(1).columns)
    assert green_rows(marked, Watermark(key=42)).all()           # strength 1: green rows only
    path = tmp_path / "rows.csv"
    marked.to_csv(path, index=False)
    back = pd.read_csv(path)
    attacked = back.sample(frac=0.5, random_state=0)[list(reversed(back.columns))]
    for table in (marked, back, attacked):
        result = detect(table, key=42).combined
        assert result.watermarked and result.p_value < 1e-4 and result.score > 10
    plain = model.sample(300, generator=torch.Generator().manual_seed(0))
    assert not detect(plain, key=42).combined.watermarked
    assert not detect(marked, key=43).combined.watermarked
    report = detect(marked, key="42").to_dict()      # the string of digits is the same key
    assert report["method"] == "table-row-hash" and report["fpr"] == 1e-4 and report["items"][0]["watermarked"]


def test_strength_sets_the_green_share(model):
    mark = Watermark(key="k", strength=0.5)
    rows = model.sample(600, processors=[mark], generator=torch.Generator().manual_seed(1))
    share = green_rows(rows, mark).mean()
    # target 0.25 + 0.75 * 0.5 = 0.625; the kept share is a ratio of binomial counts: sd < 0.02 at 600 rows
    assert abs(share - 0.625) < 0.08


def test_false_positive_rate_on_real_rows_matches_the_nominal_rate():
    real = frame(400, seed=5)
    flagged = [detect(real, key=k, fpr=0.05).combined.watermarked for k in range(1, 201)]
    # 200 keys: the count of false alarms is at most Binomial(200, 0.05) (mean 10, sd 3.1); the exact test
    # is conservative, so the count may fall below the mean but not far above it
    assert sum(flagged) <= 10 + 3 * math.sqrt(200 * 0.05 * 0.95)
    assert sum(flagged) >= 2


def test_bad_input(model):
    few = detect(frame(5), key=1).combined
    assert not few.watermarked and few.note == "too short to test: 5 distinct rows, need 7"
    with pytest.raises(ConfigError, match="empty"):
        detect(frame(50), key="")
    with pytest.raises(genlab.GenlabError, match="tables"):
        detect(np.array(["some text here"], dtype=object), key=1, model=model)
    points = genlab.fit(np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32), family="gaussian",
                        n_components=1)
    with pytest.raises(NotSupportedError, match="tables from every family"):
        points.sample(10, processors=[Watermark(key=1)])


def test_cli_sample_with_a_key_then_detect_without_the_run(model, tmp_path, capsys):
    import json
    from genlab.cli.app import main

    def cli(*argv):
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        return exit_info.value.code, capsys.readouterr().err

    run = tmp_path / "run"
    model.save_pretrained(run)
    status, err = cli("sample", str(run), "-n", "200", "--watermark-key", "table key", "--out", str(tmp_path / "rows.csv"))
    assert status == 0, err
    status, err = cli("detect", str(tmp_path / "rows.csv"), "--key", "table key", "--out", str(tmp_path / "d.json"))
    assert status == 0 and "watermarked" in err
    assert json.loads((tmp_path / "d.json").read_text())["combined"]["watermarked"]
    points = genlab.fit(np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32), family="gaussian",
                        n_components=1)
    points.save_pretrained(tmp_path / "points")
    status, err = cli("sample", str(tmp_path / "points"), "-n", "5", "--watermark-key", "k", "--out",
                      str(tmp_path / "p.npy"))
    assert status == 1 and err.count("genlab: error:") == 1 and "supported: text from the transformer" in err
