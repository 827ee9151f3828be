"""Diffusion on tables (TabDDPM): the multinomial forward process against its closed form, learning a
mixed table, exact conditional sampling, save/load, and the contract on missing values and dates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import genlab
from genlab.errors import ConfigError, DataError
from genlab.sampling import multinomial
from genlab.sampling.schedules import NoiseSchedule
from genlab.train import TrainConfig

from tables_support import draw, split_table

FAST = TrainConfig(steps=1500, batch_size=256, lr=2e-3, warmup_steps=50, ema_decay=0.99)


def mixed(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """A category that sets a number's mean, a second number tied to the first, and a binary target."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["blue", "green", "red"], size=n, p=[0.5, 0.3, 0.2])
    x = np.select([colour == "blue", colour == "green"], [-2.0, 0.0], 2.0) + rng.normal(scale=0.5, size=n)
    y = x + rng.normal(scale=0.3, size=n)
    label = np.where(x + rng.normal(size=n) > 0.5, "yes", "no")
    return pd.DataFrame({"colour": colour, "x": x, "y": y, "label": label})


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return mixed()


@pytest.fixture(scope="module")
def model(real):
    data = split_table(real, "label")
    return genlab.fit(data, family="diffusion", hidden=64, timesteps=200, train=FAST)


# ---------------------------------------------------------------------- the discrete maths
def test_forward_marginal_matches_closed_form():
    """Composing T one-step kernels Cat(alpha_t x + (1 - alpha_t) / K) gives q(x_t | x_0) of eq. 12."""
    schedule = NoiseSchedule.create("cosine", 50)
    K = 4
    probs = torch.nn.functional.one_hot(torch.tensor([2]), K).double()
    for t in range(50):
        alpha = float(schedule.alphas[t])
        probs = alpha * probs + (1 - alpha) / K          # one forward step on a probability row
        closed = multinomial.log_q_xt_given_x0(multinomial.one_hot_log(
            torch.nn.functional.one_hot(torch.tensor([2]), K).double()), float(schedule.alpha_bar[t])).exp()
        torch.testing.assert_close(closed, probs, rtol=1e-9, atol=1e-12)


def test_forward_draws_match_the_marginal():
    K, alpha_bar = 5, 0.3
    x0 = torch.nn.functional.one_hot(torch.full((40_000,), 1), K).float()
    draws = multinomial.sample_one_hot(multinomial.log_q_xt_given_x0(multinomial.one_hot_log(x0), alpha_bar),
                                       torch.Generator().manual_seed(0))
    expected = torch.full((K,), (1 - alpha_bar) / K)
    expected[1] += alpha_bar
    torch.testing.assert_close(draws.mean(0), expected, atol=0.01, rtol=0)


def test_posterior_is_bayes_rule_and_reduces_to_x0_at_the_end():
    """q(x_s | x_t, x_0) ∝ q(x_t | x_s) q(x_s | x_0), enumerated by hand for a strided step."""
    K, abar_t, abar_s = 3, 0.2, 0.7
    x0 = torch.tensor([[0.1, 0.6, 0.3]])                 # a probability row, as the network predicts
    x_t = torch.tensor([[0.0, 0.0, 1.0]])
    a_ts = abar_t / abar_s
    prior = abar_s * x0 + (1 - abar_s) / K              # q(x_s | x_0)
    likelihood = a_ts * x_t + (1 - a_ts) / K            # q(x_t | x_s) as a function of x_s
    expected = prior * likelihood / (prior * likelihood).sum()
    got = multinomial.log_posterior(x0.log(), x_t, abar_t, abar_s).exp()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    at_end = multinomial.log_posterior(x0.log(), x_t, abar_t, 1.0).exp()   # s = -1: x_0 times the step kernel
    step = abar_t * x_t + (1 - abar_t) / K
    torch.testing.assert_close(at_end, x0 * step / (x0 * step).sum())
    assert float(multinomial.kl(got.log(), got.log())) == pytest.approx(0.0, abs=1e-7)


# ---------------------------------------------------------------------- learning a table
def test_learns_category_shares_and_a_mean_per_category(real, model):
    fake = draw(model)
    assert list(fake.columns) == list(real.columns)
    shares = fake["colour"].value_counts(normalize=True)
    np.testing.assert_allclose(shares.reindex(["blue", "green", "red"]), [0.5, 0.3, 0.2], atol=0.05)
    np.testing.assert_allclose(fake["label"].value_counts(normalize=True)["yes"],
                               real["label"].value_counts(normalize=True)["yes"], atol=0.05)
    means = fake.groupby("colour")["x"].mean()
    np.testing.assert_allclose(means.reindex(["blue", "green", "red"]), [-2.0, 0.0, 2.0], atol=0.3)
    assert fake["x"].corr(fake["y"]) > 0.9


def test_conditions_hold_on_every_row(model):
    fake = draw(model, 400, condition={"colour": "red", "x": 1.5, "label": "no"})
    assert (fake["colour"] == "red").all() and (fake["x"] == 1.5).all() and (fake["label"] == "no").all()
    assert abs(fake["y"].mean() - 1.5) < 0.4          # the other column follows the imposed number
    by_target = draw(model, 400, condition="yes")
    assert (by_target["label"] == "yes").all()
    green = draw(model, 400, condition={"colour": "green"})
    assert (green["colour"] == "green").all() and abs(green["x"].mean()) < 0.4


def test_sampling_is_seeded_and_save_load_keeps_samples(model, tmp_path):
    first = draw(model, 200, steps=20, condition={"colour": "blue"})
    pd.testing.assert_frame_equal(first, draw(model, 200, steps=20, condition={"colour": "blue"}))
    model.save_pretrained(tmp_path / "run")
    loaded = genlab.load(tmp_path / "run")
    pd.testing.assert_frame_equal(first, draw(loaded, 200, steps=20, condition={"colour": "blue"}))
    pd.testing.assert_frame_equal(draw(model, 100, steps=10, sampler="ddpm"),
                                  draw(loaded, 100, steps=10, sampler="ddpm"))


def test_bad_conditions_and_options_are_clear(model):
    with pytest.raises(DataError, match="categories"):
        model.sample(5, condition={"colour": "purple"})
    with pytest.raises(ConfigError, match="guidance"):
        model.sample(5, guidance=2.0)


def test_contract_with_missing_values_and_dates(tmp_path):
    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame({
        "when": pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 365, size=n), unit="D"),
        "amount": np.where(rng.uniform(size=n) < 0.25, np.nan, np.round(rng.exponential(size=n), 2)),
        "kind": np.where(rng.uniform(size=n) < 0.1, None, rng.choice(["a", "b"], size=n)),
        "count": rng.poisson(4, size=n),
    })
    model = genlab.fit(frame, family="diffusion", hidden=32, timesteps=100,
                       train=TrainConfig(steps=60, batch_size=128))
    fake = draw(model, 300, steps=10)
    assert list(fake.columns) == list(frame.columns) and fake.dtypes.to_dict() == frame.dtypes.to_dict()
    assert fake["amount"].isna().any() and fake["kind"].isna().any()
    day = pd.Timestamp("2020-03-01")
    fixed = draw(model, 100, steps=10, condition={"when": "2020-03-01", "amount": 0.5, "kind": "b"})
    assert (fixed["when"] == day).all() and (fixed["amount"] == 0.5).all() and (fixed["kind"] == "b").all()
    model.save_pretrained(tmp_path / "mixed")
    pd.testing.assert_frame_equal(draw(genlab.load(tmp_path / "mixed"), 50, steps=10), draw(model, 50, steps=10))
