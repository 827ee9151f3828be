"""Defaults chosen from the data: the layering under the user's options, the family picked per modality,
what `genlab fit` prints and saves, and budgets that a time limit follows as a step count does."""

from __future__ import annotations

import json

import numpy as np
import pytest

import genlab
from genlab.api import configure
from genlab.cli.app import main
from genlab.defaults import recommend_family, resolve
from genlab.errors import ConfigError
from genlab.models.base import DataInfo
from genlab.models.gan import GANModel
from genlab.models.gaussian import bic_components
from genlab.models.vae import VAEModel
from genlab.models.vae.model import _WarmupClock
from genlab.train import TrainConfig, TrainState

POINTS = DataInfo("points", (2,))


def test_user_options_win_and_only_the_rest_is_reported_as_chosen():
    resolved = resolve(GANModel, POINTS, None, model_options={"pack": 2}, train_options={"lr": 1e-3})
    assert resolved.model["pack"] == 2 and resolved.model["drs"] is True
    assert resolved.train.lr == 1e-3 and resolved.train.batch_size == 512
    assert "model.pack" not in resolved.chosen and "train.lr" not in resolved.chosen
    assert resolved.chosen["model.drs"] is True and "drs=True" in resolved.describe()


def test_a_budget_replaces_the_default_one_whole():
    default = resolve(GANModel, POINTS, None)
    assert default.train.steps == 5000 and default.train.max_time is None
    timed = resolve(GANModel, POINTS, None, train_options={"max_time": 120.0})
    assert timed.train.steps is None and timed.train.max_time == 120.0
    both = resolve(GANModel, POINTS, None, train_options={"max_time": 120.0, "steps": 10})
    assert (both.train.steps, both.train.max_time) == (10, 120.0)


def test_images_and_tables_get_their_own_settings():
    images = resolve(GANModel, DataInfo("images", (1, 28, 28), tuple("0123456789")), None)
    assert images.model == {"channels": 32, "latent_dim": 64} and images.train.batch_size == 64
    assert resolve(GANModel, DataInfo("tables", (5,)), None).chosen == {}
    from genlab.models.diffusion import DiffusionModel

    odd = resolve(DiffusionModel, DataInfo("images", (1, 7, 7)), None)
    assert odd.model["patch"] == 1 and odd.model["sampler"] == "dpm++"   # an odd side cannot be halved


def test_captioned_images_get_the_caption_defaults():
    from genlab.data import shapes
    from genlab.models.diffusion import DiffusionModel

    data = shapes.shapes(0, n_train=8, n_test=4)
    captioned = configure(data, family=None).resolved
    assert captioned.model["patch"] == 2 and captioned.model["guidance"] == 3.0
    assert "caption" in captioned.describe()
    # the same pictures without their captions are plain images, sampled at the images' guidance
    plain = resolve(DiffusionModel, DataInfo("images", data.shape), data.x_train)
    assert plain.model["patch"] == 2 and plain.model["guidance"] == 1.5
    odd = resolve(DiffusionModel, DataInfo("images", (3, 7, 7), captioned=True), None)
    assert odd.model["patch"] == 1 and odd.model["guidance"] == 3.0   # an odd side cannot be halved


def test_bad_options_fail_before_any_data_driven_work():
    with pytest.raises(ConfigError, match="pack"):
        resolve(GANModel, POINTS, None, model_options={"pak": 4})


def test_recommended_family_per_modality_and_budget():
    assert recommend_family("points").family == "diffusion"
    assert recommend_family("images").family == "diffusion"
    assert recommend_family("text").family == "transformer"
    assert recommend_family("tables").family == "gaussian"
    assert recommend_family("tables", max_time=900).family == "diffusion"
    settings = configure(genlab.datasets.load("moons"), family=None)
    assert settings.family == "diffusion" and "mode" in settings.family_why


def test_bic_finds_the_number_of_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    x = (centres[rng.integers(0, 3, 900)] + 0.3 * rng.standard_normal((900, 2)))
    assert bic_components(x) == 3
    assert bic_components(x * 1000 + 7) == 3     # BIC is unchanged by an affine map of the records


def test_kl_warm_up_follows_a_time_budget_as_it_follows_steps():
    model = VAEModel(kl_warmup=0.5)
    clock = _WarmupClock(model)
    clock.on_step_end(None, TrainState(step=9, total_steps=None, elapsed=30.0, max_time=120.0))
    assert model._kl_progress == pytest.approx(0.25)
    clock.on_step_end(None, TrainState(step=9, total_steps=20, elapsed=1.0, max_time=None))
    assert model._kl_progress == pytest.approx(0.5)          # the coming step, 10 of 20
    clock.on_step_end(None, TrainState(step=2, total_steps=20, elapsed=90.0, max_time=100.0))
    assert model._kl_progress == pytest.approx(0.9)          # whichever budget ends first leads


def test_fit_prints_and_saves_the_chosen_family_and_settings(tmp_path, capsys, single_thread):
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "moons", "--steps", "3", "--set", "hidden=16", "--out", str(run)])
    assert exit_info.value.code == 0
    err = capsys.readouterr().err
    assert "family: diffusion, chosen for points" in err and "budget: 3 steps (as given)" in err
    config = json.loads((run / "config.json").read_text())
    assert config["family"] == "diffusion" and config["model"]["hidden"] == 16

    gan = tmp_path / "gan"
    with pytest.raises(SystemExit):
        main(["fit", "moons", "--family", "gan", "--steps", "2", "--set", "pack=2", "--out", str(gan)])
    err = capsys.readouterr().err
    assert "settings for points:" in err and "drs=True" in err and "pack=" not in err
    config = json.loads((gan / "config.json").read_text())
    assert config["model"]["pack"] == 2 and config["model"]["drs"] is True and config["train"]["lr"] == 2e-3


def test_fit_without_a_budget_names_the_default_and_estimates_its_time(tmp_path, capsys, monkeypatch, single_thread):
    from genlab.cli import progress

    monkeypatch.setattr(progress, "ESTIMATE_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(progress, "ESTIMATE_AFTER_STEPS", 2)
    monkeypatch.setattr(VAEModel, "default_train_config", lambda self: TrainConfig(steps=4, batch_size=64))
    with pytest.raises(SystemExit):
        main(["fit", "moons", "--family", "vae", "--set", "hidden=8", "--out", str(tmp_path / "v")])
    err = capsys.readouterr().err
    assert "budget: 4 steps (the family's default; --steps or --max-time to change)" in err
    assert "s a step: about" in err and "to go" in err
