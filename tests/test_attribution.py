"""Attribution: copies of training records are found among the nearest ones and flagged; fresh real
records are flagged at about the 5 % the threshold is set to; text copies are found by their spans."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import genlab
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, DataError
from genlab.provenance.attribution import attribute

from tables_support import split_table


def points_data(n: int = 1200, seed: int = 0) -> Dataset:
    x = np.random.default_rng(seed).normal(size=(n, 2)).astype(np.float32)
    return Dataset("blob", "points", x[:800], x[800:])


@pytest.fixture(scope="module")
def points_model():
    return genlab.fit(points_data(), family="gaussian", n_components=1)


def test_copies_are_flagged_with_their_source_and_fresh_records_are_not(points_model):
    data = points_data()
    rng = np.random.default_rng(1)
    source = rng.choice(len(data.x_train), 100, replace=False)
    copies = data.x_train[source] + rng.normal(0, 1e-4, (100, 2)).astype(np.float32)
    result = attribute(points_model, copies, data=data, k=3)
    assert result.indices.shape == (100, 3) and np.all(np.diff(result.distances, axis=1) >= 0)
    assert result.flag_rate == 1.0 and np.all(result.indices[:, 0] == source)
    fresh = np.random.default_rng(7).normal(size=(1000, 2)).astype(np.float32)
    # the threshold is the 5th percentile of 400 test-to-train distances: fresh records from the same
    # distribution are flagged at ~5 % (binomial sd 0.7 % at 1000, plus the percentile's own noise)
    assert 0.01 < attribute(points_model, fresh, data=data).flag_rate < 0.10
    assert abs(result.real_flag_rate - 0.05) < 0.01
    report = result.to_dict()
    assert report["items"][0]["memorised"] and len(report["items"][0]["neighbours"]) == 3


def test_table_rows_are_attributed_in_the_codec_space():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"colour": rng.choice(["a", "b", "c"], 500), "x": rng.normal(size=500),
                          "n": rng.integers(0, 1000, 500)})
    data = split_table(frame)
    model = genlab.fit(data, family="gaussian", n_components=1)
    copied = data.x_train.iloc[[3, 10, 50]][["n", "x", "colour"]]    # columns in another order
    result = attribute(model, copied, data=data, k=2)
    assert list(result.indices[:, 0]) == [3, 10, 50] and result.memorised.all()
    assert result.flag_rate == 1.0 and "table codec" in result.space


def test_values_the_training_rows_lack_are_mismatches_not_errors():
    # as Adult's one Holand-Netherlands row in the test split: a category (and a missing number) that
    # only the test rows and the records hold must cost distance, not stop the attribution
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"country": rng.choice(["us", "mx"], 300), "x": rng.normal(size=300),
                          "n": rng.integers(0, 1000, 300)})
    frame.loc[290, "country"] = "nl"
    frame.loc[295, "x"] = np.nan
    data = split_table(frame)
    model = genlab.fit(data, family="gaussian", n_components=1)
    records = data.x_train.iloc[[3, 10, 10]].reset_index(drop=True)
    records.loc[2, "country"] = "atlantis"       # in neither split
    result = attribute(model, records, data=data, k=2)
    assert list(result.indices[:, 0]) == [3, 10, 10]
    assert result.distances[0, 0] == 0 and result.distances[2, 0] == pytest.approx(np.sqrt(2))   # one one-hot apart
    assert 0 < result.real_flag_rate < 0.2


def test_text_copies_are_found_by_their_longest_span():
    rng = np.random.default_rng(0)
    words = np.array(["alpha", "beta", "gamma", "delta", "omega", "sigma", "theta"])
    train = " ".join(rng.choice(words, 3000))
    test = " ".join(rng.choice(words, 1000))
    data = Dataset("words", "text", np.array([train], dtype=object), np.array([test], dtype=object))
    model = type("TextModel", (), {"data_": data})()     # attribution reads only the modality of the model
    copy = train[1000:1150]
    fresh = " ".join(rng.choice(words, 30))
    result = attribute(model, np.array([copy, fresh], dtype=object), data=data, k=2)
    assert result.indices[0, 0] <= 1000 and result.distances[0, 0] == 0     # the whole sample is one span
    assert train[result.indices[0, 0]:result.indices[0, 0] + 50] == copy[:50]
    assert list(result.memorised) == [True, False]


def test_bad_input(points_model):
    data = points_data()
    with pytest.raises(ConfigError, match="k must be"):
        attribute(points_model, data.x_test[:3], data=data, k=0)
    with pytest.raises(DataError, match="shape"):
        attribute(points_model, np.zeros((3, 5), dtype=np.float32), data=data)
    text = Dataset("t", "text", np.array(["abc"], dtype=object), np.array(["abd"], dtype=object))
    with pytest.raises(DataError, match="makes points"):
        attribute(points_model, np.array(["abc"], dtype=object), data=text)


def test_cli_attribute_writes_attr_json(tmp_path, capsys):
    import json
    from genlab.cli.app import main

    data = genlab.datasets.load("ring8")
    model = genlab.fit(data, family="gaussian", n_components=1, train={"steps": 5})
    run = tmp_path / "run"
    model.save_pretrained(run)
    np.save(tmp_path / "copies.npy", data.x_train[:20])
    with pytest.raises(SystemExit) as exit_info:
        main(["attribute", str(run), str(tmp_path / "copies.npy"), "--real", "ring8", "--k", "2",
              "--out", str(tmp_path / "attr.json")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 0 and "100.0% of 20 samples" in err
    report = json.loads((tmp_path / "attr.json").read_text())
    assert [item["neighbours"][0]["index"] for item in report["items"]] == list(range(20))
    assert report["flag_rate"] == 1.0 and report["space"] == "raw values"
    with pytest.raises(SystemExit) as exit_info:
        main(["attribute", str(run), str(tmp_path / "missing.npy"), "--real", "ring8"])
    assert exit_info.value.code == 1 and "no such file" in capsys.readouterr().err


def test_cli_attribute_on_the_runs_own_training_file(tmp_path, capsys):
    # the run and the attribution split the file alike; the one row of a rare category lands in the
    # test split, which the model's codec never saw
    from genlab.cli.app import main

    from genlab.data.dataset import fixed_split

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"country": rng.choice(["us", "mx"], 300), "x": rng.normal(size=300)})
    frame.loc[fixed_split(300)[1][0], "country"] = "nl"
    frame.to_csv(tmp_path / "train.csv", index=False)
    model = genlab.fit(str(tmp_path / "train.csv"), family="gaussian", n_components=1)
    assert set(model.codec_.spec("country")["categories"]) == {"mx", "us"}
    run = tmp_path / "run"
    model.save_pretrained(run)
    frame.iloc[:20].to_csv(tmp_path / "samples.csv", index=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["attribute", str(run), str(tmp_path / "samples.csv"), "--real", str(tmp_path / "train.csv"),
              "--out", str(tmp_path / "attr.json")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 0 and "of 20 samples" in err, err
