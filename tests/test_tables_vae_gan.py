"""The VAE (TVAE) and GAN (CTGAN) families on tables: learning a mixed table, exact conditional sampling,
save/load, clear errors, and the contract on missing values, dates and tables without categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import genlab
from genlab.errors import DataError, NotSupportedError
from genlab.models.gan.tabular import TrainingBySampling
from genlab.nn.tabular import TableHeads
from genlab.train import TrainConfig

from tables_support import draw, split_table

VAE_TRAIN = TrainConfig(steps=1500, batch_size=256, lr=2e-3, min_lr_ratio=0.05)
GAN_TRAIN = TrainConfig(steps=800, batch_size=256, lr=1e-3, min_lr_ratio=0.05, grad_clip=None, optimizer="adam")


def mixed(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """A category that sets a number's mean, a second number tied to the first, a number with missing
    values and a binary target driven by the first number."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["blue", "green", "red"], size=n, p=[0.5, 0.3, 0.2])
    x = np.select([colour == "blue", colour == "green"], [-2.0, 0.0], 2.0) + rng.normal(scale=0.5, size=n)
    y = x + rng.normal(scale=0.3, size=n)
    gap = np.round(rng.exponential(size=n), 2)
    gap[rng.uniform(size=n) < 0.2] = np.nan
    label = np.where(x + rng.normal(size=n) > 0.5, "yes", "no")
    return pd.DataFrame({"colour": colour, "x": x, "y": y, "gap": gap, "label": label})


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return mixed()


@pytest.fixture(scope="module")
def data(real):
    return split_table(real, "label")


@pytest.fixture(scope="module")
def vae(data):
    return genlab.fit(data, family="vae", hidden=64, depth=2, latent_dim=8, kl_warmup=200 / 1500, train=VAE_TRAIN)


@pytest.fixture(scope="module")
def gan(data):
    return genlab.fit(data, family="gan", hidden=128, depth=2, latent_dim=16, pack=4, train=GAN_TRAIN)


@pytest.fixture(params=["vae", "gan"])
def model(request):
    return request.getfixturevalue(request.param)


# ---------------------------------------------------------------------- the pieces
def test_heads_layout_likelihood_and_activations(data):
    codec = genlab.models.FAMILIES["vae"]()._make_table_codec(None).fit(data.x_train)
    heads = TableHeads(codec)
    assert heads.columns == ["colour", "x", "y", "gap", "label"] and heads.width == codec.width
    x = torch.as_tensor(codec.encode(data.x_train.iloc[:8]))
    raw = torch.randn(8, codec.width, generator=torch.Generator().manual_seed(0))
    sigma = torch.full((heads.n_scalars,), 0.5)
    nll = heads.negative_log_likelihood(x, raw, sigma)                       # (8, C)
    colour = next(b for b in codec.blocks if b.column == "colour")
    expected = torch.nn.functional.cross_entropy(raw[:, colour.slice], x[:, colour.slice].argmax(1), reduction="none")
    torch.testing.assert_close(nll[:, 0], expected)
    scalar = next(b for b in codec.blocks if b.column == "y" and b.kind == "scalar").start
    gauss = torch.distributions.Normal(raw[:, scalar], 0.5).log_prob(x[:, scalar])
    modes = next(b for b in codec.blocks if b.column == "y" and b.kind == "modes")
    mode_ce = torch.nn.functional.cross_entropy(raw[:, modes.slice], x[:, modes.slice].argmax(1), reduction="none")
    torch.testing.assert_close(nll[:, 2], -gauss + mode_ce)
    rows = heads.activate(raw, torch.Generator().manual_seed(0), 0.2)
    assert rows[:, heads.scalar].abs().max() < 1
    torch.testing.assert_close(rows[:, colour.slice].sum(1), torch.ones(8))


def test_training_by_sampling_matches_log_frequency_and_the_condition(data):
    codec = genlab.models.FAMILIES["gan"]()._make_table_codec(None).fit(data.x_train)
    x = torch.as_tensor(codec.encode(data.x_train))
    heads = TableHeads(codec)
    tbs = TrainingBySampling(x, heads)
    cond, rows = tbs.draw(20_000, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert (cond.sum(1) == 1).all()
    offset = 0
    for column, start, stop in heads.categories:   # each row holds the category its vector names
        block = cond[:, offset:offset + stop - start]
        active = block.sum(1) == 1
        assert torch.equal(rows[active, start:stop].argmax(1), block[active].argmax(1))
        counts = x[:, start:stop].sum(0).double()
        expected = torch.log1p(counts) / torch.log1p(counts).sum() / len(heads.categories)
        torch.testing.assert_close(block.mean(0).double(), expected, atol=0.01, rtol=0)
        offset += stop - start


# ---------------------------------------------------------------------- learning a table
def test_samples_have_the_training_columns_and_shares(real, model):
    fake = draw(model)
    assert list(fake.columns) == list(real.columns) and fake.dtypes.to_dict() == real.dtypes.to_dict()
    assert set(fake["colour"]) <= {"blue", "green", "red"} and fake["gap"].isna().any()
    shares = fake["colour"].value_counts(normalize=True).reindex(["blue", "green", "red"])
    np.testing.assert_allclose(shares, [0.5, 0.3, 0.2], atol=0.08)
    np.testing.assert_allclose((fake["label"] == "yes").mean(), (real["label"] == "yes").mean(), atol=0.08)
    assert fake["x"].corr(fake["y"]) > 0.7


def test_conditions_hold_on_every_row_and_move_dependent_columns(model):
    both = draw(model, 400, condition={"colour": "red", "label": "no"})
    assert (both["colour"] == "red").all() and (both["label"] == "no").all()
    number = draw(model, 400, condition={"x": 1.5, "colour": "green"})
    assert (number["x"] == 1.5).all() and (number["colour"] == "green").all()
    assert (draw(model, 400, condition="yes")["label"] == "yes").all()      # a bare value: the target
    red, blue = draw(model, 1000, condition={"colour": "red"}), draw(model, 1000, condition={"colour": "blue"})
    assert red["x"].mean() - blue["x"].mean() > 1.5
    assert (red["label"] == "yes").mean() > (blue["label"] == "yes").mean() + 0.3


def test_sampling_is_seeded_and_save_load_keeps_samples(model, tmp_path):
    first = draw(model, 200, condition={"colour": "blue"})
    pd.testing.assert_frame_equal(first, draw(model, 200, condition={"colour": "blue"}))
    model.save_pretrained(tmp_path / "run")
    loaded = genlab.load(tmp_path / "run")
    pd.testing.assert_frame_equal(first, draw(loaded, 200, condition={"colour": "blue"}))
    pd.testing.assert_frame_equal(draw(model, 100, seed=3), draw(loaded, 100, seed=3))


def test_bad_conditions_and_verbs_are_clear(vae, gan):
    for model in (vae, gan):
        with pytest.raises(DataError, match="categories"):
            model.sample(5, condition={"colour": "purple"})
        with pytest.raises(DataError, match="colour"):
            model.sample(5, condition={"shade": "red"})
    with pytest.raises(NotSupportedError, match="condition"):
        vae.encode(np.zeros((2, 5)))
    with pytest.raises(NotSupportedError, match="condition"):
        gan.decode(np.zeros((2, 16)))


@pytest.mark.parametrize("family", ["vae", "gan"])
def test_contract_with_missing_values_dates_and_no_categories(family, tmp_path):
    rng = np.random.default_rng(1)
    n = 300
    frame = pd.DataFrame({
        "when": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 365, size=n), unit="D"),
        "amount": np.where(rng.uniform(size=n) < 0.25, np.nan, np.round(rng.exponential(size=n), 2)),
        "kind": np.where(rng.uniform(size=n) < 0.1, None, rng.choice(["a", "b"], size=n)),
        "count": rng.poisson(4, size=n),
    })
    train = TrainConfig(steps=30, batch_size=64)
    model = genlab.fit(frame, family=family, hidden=32, train=train)
    fake = draw(model, 200)
    assert list(fake.columns) == list(frame.columns) and fake.dtypes.to_dict() == frame.dtypes.to_dict()
    fixed = draw(model, 50, condition={"when": "2020-03-01", "amount": 0.5, "kind": "b"})
    assert (fixed["when"] == pd.Timestamp("2020-03-01")).all() and (fixed["amount"] == 0.5).all()
    assert (fixed["kind"] == "b").all()
    model.save_pretrained(tmp_path / family)
    pd.testing.assert_frame_equal(draw(genlab.load(tmp_path / family), 50), draw(model, 50))
    numbers = genlab.fit(frame[["amount", "count"]], family=family, hidden=16, train=train)   # no discrete column
    assert list(draw(numbers, 20, condition={"count": 3})["count"].unique()) == [3]
