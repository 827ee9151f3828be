"""Every family passes the same checks: shapes, finite loss, gradients, round trips, determinism, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import genlab
from genlab.errors import CheckpointError, ConfigError, DataError, NotSupportedError
from genlab.train import Batch

from contract import CASES, Case, valid_records


@pytest.fixture(scope="module", params=CASES, ids=[case.id for case in CASES])
def fitted(request):
    case: Case = request.param
    return case, case.fit()


def draw(model, n=16, seed=0, **kwargs):
    return model.sample(n, generator=torch.Generator().manual_seed(seed), **kwargs)


def test_fit_returns_model_and_samples_have_the_data_shape(fitted):
    case, model = fitted
    data = case.data()
    x = draw(model, 16)
    assert x.shape == (16, *data.shape) and valid_records(x, data.modality)
    if data.modality == "images":
        assert x.min() >= 0 and x.max() <= 1


def test_loss_is_finite_and_gradients_reach_every_parameter(fitted):
    case, model = fitted
    data = case.data()
    z = model.codec_.encode(data.x_train[:32]).to(model.device)
    y = torch.from_numpy(data.y_train[:32]).to(model.device) if data.y_train is not None else None
    for phase in model._phases():
        phase.module.zero_grad(set_to_none=True)
        losses = phase.loss(phase.module, Batch(z, y), torch.Generator(device=model.device).manual_seed(0))
        assert torch.isfinite(losses.total)
        losses.total.backward()
        for name, parameter in phase.module.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"{phase.name}: no gradient for {name}"


def test_save_load_round_trip_gives_identical_samples(fitted, tmp_path):
    case, model = fitted
    model.save_pretrained(tmp_path / "run")
    loaded = genlab.load(tmp_path / "run")
    assert type(loaded) is type(model) and loaded.config == model.config
    np.testing.assert_array_equal(draw(loaded, 32, seed=3), draw(model, 32, seed=3))
    data = case.data()
    try:
        expected = model.log_prob(data.x_test[:20])
    except NotSupportedError:
        return
    np.testing.assert_array_equal(loaded.log_prob(data.x_test[:20]), expected)


def test_seeded_sampling_is_deterministic(fitted):
    _, model = fitted
    np.testing.assert_array_equal(draw(model, 20, seed=7), draw(model, 20, seed=7))
    assert not np.array_equal(draw(model, 20, seed=7), draw(model, 20, seed=8))


def test_training_is_deterministic_for_a_seed(fitted):
    case, model = fitted
    again = case.fit()
    for (name, a), (_, b) in zip(model.network_.state_dict().items(), again.network_.state_dict().items()):
        assert torch.equal(a, b), name


def test_conditional_sampling_accepts_index_and_name_and_rejects_unknown(fitted):
    case, model = fitted
    names = case.data().class_names
    if names is None:
        with pytest.raises(ConfigError, match="without labels"):
            draw(model, 4, condition=1)
        return
    assert draw(model, 4, condition=1).shape[0] == 4
    np.testing.assert_array_equal(draw(model, 4, condition=names[1]), draw(model, 4, condition=1))
    with pytest.raises(ConfigError, match="unknown condition"):
        draw(model, 4, condition="no-such-class")


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_sample_counts_are_rejected(fitted, n):
    _, model = fitted
    with pytest.raises(ConfigError, match="positive integer"):
        model.sample(n)


def test_bad_records_are_rejected(fitted):
    case, model = fitted
    data = case.data()
    wrong_shape = np.zeros((3, *(s + 1 for s in data.shape)), dtype=np.float32)
    with pytest.raises(DataError, match="shape"):
        model.log_prob(wrong_shape)
    if data.modality == "text":
        return   # strings have no NaN
    poisoned = data.x_train[:50].copy()
    poisoned[3].flat[0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        genlab.fit(poisoned, family=case.family, **case.options)


def test_unfitted_model_says_so():
    model = genlab.models.FAMILIES["gaussian"]()
    with pytest.raises(ConfigError, match="not fitted"):
        model.sample(3)


def test_tampered_or_incomplete_run_directories_are_refused(fitted, tmp_path):
    _, model = fitted
    run = model.save_pretrained(tmp_path / "run")
    weights = run / "model.safetensors"
    original = weights.read_bytes()

    weights.write_bytes(original[:-8] + bytes(8))          # same size, last values changed
    with pytest.raises(CheckpointError, match="checksum"):
        genlab.load(run)
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="checksum"):
        genlab.load(run)
    weights.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        genlab.load(run)

    weights.write_bytes(original)
    config = json.loads((run / "config.json").read_text())
    config["model"]["no_such_option"] = 1
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="no_such_option"):
        genlab.load(run)
    (run / "config.json").write_text("{broken")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        genlab.load(run)
    with pytest.raises(CheckpointError, match="not a run directory"):
        genlab.load(tmp_path / "nowhere")
