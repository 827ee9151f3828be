"""The transformer on tables: the token codec (one token per column, numbers as bins), learning a mixed
table, exact conditioning on any set of columns (the order-agnostic training), save/load, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import genlab
from genlab.data.codec_state import codec_from_state
from genlab.data.table_tokens import TableTokenCodec
from genlab.errors import ConfigError, DataError
from genlab.train import TrainConfig

from tables_support import draw, split_table

FAST = TrainConfig(steps=400, batch_size=128, lr=3e-3, warmup_steps=20)
SMALL = {"n_layer": 2, "n_head": 2, "n_embd": 32, "bins": 16}


def mixed(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """A category that sets a number's mean, a second number tied to the first, a count, a number with
    missing values and a binary target."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["blue", "green", "red"], size=n, p=[0.5, 0.3, 0.2])
    x = np.select([colour == "blue", colour == "green"], [-2.0, 0.0], 2.0) + rng.normal(scale=0.5, size=n)
    y = x + rng.normal(scale=0.3, size=n)
    count = rng.poisson(3, size=n)
    gap = np.round(rng.exponential(size=n), 2)
    gap[rng.uniform(size=n) < 0.2] = np.nan
    label = np.where(x + rng.normal(size=n) > 0.5, "yes", "no")
    return pd.DataFrame({"colour": colour, "x": x, "y": y, "count": count, "gap": gap, "label": label})


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return mixed()


@pytest.fixture(scope="module")
def model(real):
    data = split_table(real, "label")
    return genlab.fit(data, family="transformer", train=FAST, **SMALL)


# ---------------------------------------------------------------------- the codec
def test_codec_round_trip_keeps_categories_bins_dtypes_and_missing(real):
    codec = TableTokenCodec(16).fit(real)
    tokens = codec.encode(real)
    assert tokens.shape == (len(real), 1 + real.shape[1]) and tokens.dtype == torch.int64
    assert (tokens[:, 0] == codec.bos).all() and codec.vocab_size == codec.ranges[-1][1] + 1
    for j, (start, stop) in enumerate(codec.ranges):        # each column in its own id range
        assert ((tokens[:, j + 1] >= start) & (tokens[:, j + 1] < stop)).all()
    back = codec.decode(tokens[:, 1:], rng=np.random.default_rng(0))
    assert list(back.columns) == list(real.columns) and back.dtypes.to_dict() == real.dtypes.to_dict()
    for column in ("colour", "label", "count"):               # categories, and a count of few values: exact
        pd.testing.assert_series_equal(back[column], real[column])
    pd.testing.assert_series_equal(back["gap"].isna(), real["gap"].isna())
    # numbers come back inside their own bin: re-encoding gives the same tokens
    torch.testing.assert_close(codec.encode(back), tokens)
    assert (back["gap"].dropna() == back["gap"].dropna().round(2)).all()
    assert back["x"].between(real["x"].min(), real["x"].max()).all()
    layout = codec.layouts[codec.modelled.index("x")]
    assert len(layout["edges"]) == 17 and codec.ranges[1][1] - codec.ranges[1][0] == 16
    # JSON state round trip
    again = codec_from_state(codec.state())
    assert isinstance(again, TableTokenCodec)
    pd.testing.assert_frame_equal(again.decode(tokens[:, 1:]), codec.decode(tokens[:, 1:]))


def test_uniform_dequantisation_fills_each_bin_and_is_seeded():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"v": rng.uniform(size=5000), "k": rng.integers(0, 1000, size=5000)})
    codec = TableTokenCodec(8).fit(frame)
    tokens = codec.encode(frame)[:, 1:]
    a = codec.decode(tokens, rng=np.random.default_rng(1))
    pd.testing.assert_frame_equal(a, codec.decode(tokens, rng=np.random.default_rng(1)))
    # inside one bin of v the decoded values are uniform, not the bin centre
    edges = codec.layouts[0]["edges"]
    first = a["v"][tokens[:, 0].numpy() == 0]
    assert first.between(edges[0], edges[1]).all() and first.std() > 0.2 * (edges[1] - edges[0])
    assert (a["k"] == a["k"].round()).all() and a["k"].between(0, 999).all()


# ---------------------------------------------------------------------- learning and conditioning
def test_learns_category_shares_and_a_mean_per_category(real, model):
    fake = draw(model)
    assert list(fake.columns) == list(real.columns) and fake.dtypes.to_dict() == real.dtypes.to_dict()
    shares = fake["colour"].value_counts(normalize=True)
    np.testing.assert_allclose(shares.reindex(["blue", "green", "red"]), [0.5, 0.3, 0.2], atol=0.05)
    means = fake.groupby("colour")["x"].mean()
    np.testing.assert_allclose(means.reindex(["blue", "green", "red"]), [-2.0, 0.0, 2.0], atol=0.3)
    assert fake["x"].corr(fake["y"]) > 0.9
    assert abs(fake["gap"].isna().mean() - 0.2) < 0.05


def test_conditions_hold_on_every_row(model):
    fake = draw(model, 400, condition={"colour": "red", "x": 1.5, "label": "no", "count": 4})
    assert (fake["colour"] == "red").all() and (fake["x"] == 1.5).all() and (fake["label"] == "no").all()
    assert (fake["count"] == 4).all()
    assert abs(fake["y"].mean() - 1.5) < 0.4          # the other column follows the imposed number
    by_target = draw(model, 400, condition="yes")
    assert (by_target["label"] == "yes").all()
    parsed = model.table_condition({"x": 0.123, "gap": 0.5})
    z = model._sample_network(200, parsed, torch.Generator().manual_seed(1))
    decoded = model.codec_.decode(z)                   # before sample() writes the values in
    assert np.allclose(decoded["x"], 0.123) and (decoded["gap"] == 0.5).all()


def test_conditioning_on_a_later_column_shifts_an_earlier_one(real, model):
    """colour comes first in the table's order, y third: p(colour | y) needs the any-order training."""
    high = draw(model, 1000, condition={"y": 2.0})
    assert (high["y"] == 2.0).all()
    assert (high["colour"] == "red").mean() > 0.7 and abs(high["x"].mean() - 1.9) < 0.35
    low = draw(model, 1000, condition={"y": -2.0})
    assert (low["colour"] == "blue").mean() > 0.8 and abs(low["x"].mean() + 1.9) < 0.35
    yes = draw(model, 1000, condition={"label": "yes"})
    truth = real.loc[real["label"] == "yes", "x"].mean()
    assert abs(yes["x"].mean() - truth) < 0.3 and yes["x"].mean() > draw(model, 1000)["x"].mean() + 0.5


def test_sampling_is_seeded_and_save_load_keeps_samples(model, tmp_path):
    first = draw(model, 200, condition={"colour": "blue"})
    pd.testing.assert_frame_equal(first, draw(model, 200, condition={"colour": "blue"}))
    assert not draw(model, 200, seed=1).equals(draw(model, 200))
    model.save_pretrained(tmp_path / "run")
    loaded = genlab.load(tmp_path / "run")
    assert isinstance(loaded.codec_, TableTokenCodec)
    pd.testing.assert_frame_equal(first, draw(loaded, 200, condition={"colour": "blue"}))
    pd.testing.assert_frame_equal(draw(model, 100, temperature=0.8), draw(loaded, 100, temperature=0.8))


def test_bad_conditions_and_options_are_clear(model):
    with pytest.raises(DataError, match="categories"):
        model.sample(5, condition={"colour": "purple"})
    with pytest.raises(DataError, match="unknown column"):
        model.sample(5, condition={"shade": "red"})
    with pytest.raises(DataError, match="training range"):
        model.sample(5, condition={"x": 100.0})
    with pytest.raises(ConfigError, match="prompt"):
        model.sample(5, prompt="red")


def test_contract_with_missing_values_and_dates(tmp_path):
    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame({
        "when": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 365, size=n), unit="D"),
        "amount": np.where(rng.uniform(size=n) < 0.25, np.nan, np.round(rng.exponential(size=n), 2)),
        "kind": np.where(rng.uniform(size=n) < 0.1, None, rng.choice(["a", "b"], size=n)),
        "count": rng.poisson(4, size=n),
    })
    model = genlab.fit(frame, family="transformer", n_layer=1, n_head=2, n_embd=16,
                       train=TrainConfig(steps=60, batch_size=128))
    fake = draw(model, 300)
    assert list(fake.columns) == list(frame.columns) and fake.dtypes.to_dict() == frame.dtypes.to_dict()
    assert fake["amount"].isna().any() and fake["kind"].isna().any()
    day = pd.Timestamp("2020-03-01")
    fixed = draw(model, 100, condition={"when": "2020-03-01", "amount": 0.5, "kind": "b"})
    assert (fixed["when"] == day).all() and (fixed["amount"] == 0.5).all() and (fixed["kind"] == "b").all()
    model.save_pretrained(tmp_path / "mixed")
    pd.testing.assert_frame_equal(draw(genlab.load(tmp_path / "mixed"), 50), draw(model, 50))
