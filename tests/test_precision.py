"""Mixed precision and torch.compile in the Trainer (``TrainConfig.precision``, ``TrainConfig.compile``).

bf16 autocast runs on CPU, so it is tested here; fp16 needs CUDA (its tests skip without a GPU, and
benchmarks/cuda_training.py exercises it on one). fp32 must stay exactly what it was: it runs no
autocast at all, which the dtype check below sees from inside the loss.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import nn

import genlab
import genlab.train.trainer as trainer_module
from genlab.cli.app import main
from genlab.config import from_dict, to_dict
from genlab.errors import CheckpointError, ConfigError
from genlab.train import Batch, Callback, Losses, Phase, TrainConfig, Trainer
from genlab.train.checkpoint import TrainerCheckpoint, load_checkpoint, save_checkpoint

CUDA = torch.cuda.is_available()


pytestmark = pytest.mark.usefixtures("single_thread")


class Regressor(nn.Module):
    """A small MLP with dropout that learns ``y = sin(3 x)`` from noisy inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Dropout(0.1), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Crash(Exception):
    """Raised by :class:`CrashAt25` to stand for a killed process."""


class CrashAt25(Callback):
    def on_step_end(self, trainer, state):
        if state.step == 25:
            raise Crash


def regression_loss(module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
    # batch.x: (B, 1) -> prediction (B, 1); its dtype shows whether autocast is on
    eps = torch.randn(batch.x.shape, generator=generator, device=batch.x.device)
    prediction = module(batch.x + 0.01 * eps)
    mse = ((prediction.float() - torch.sin(3 * batch.x)) ** 2).mean()
    return Losses(mse, {"output_is_bf16": float(prediction.dtype == torch.bfloat16)})


def inputs(n: int = 512) -> torch.Tensor:
    return torch.rand(n, 1, generator=torch.Generator().manual_seed(0)) * 2 - 1


def config(**overrides: object) -> TrainConfig:
    values: dict = dict(steps=200, batch_size=64, lr=3e-2, log_every=40, device="cpu", grad_clip=1.0)
    values.update(overrides)
    return TrainConfig(**values)


def fit_regressor(cfg: TrainConfig, **kwargs: object) -> tuple[Regressor, object]:
    torch.manual_seed(0)
    model = Regressor()
    result = Trainer(cfg).fit(model, [Phase("model", model, regression_loss)], inputs(), **kwargs)
    return model, result


# ------------------------------------------------------------------------------------------- config


def test_precision_defaults_to_fp32_without_compile() -> None:
    assert TrainConfig().precision == "fp32" and TrainConfig().compile is False


def test_unknown_precision_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match="fp32, bf16, fp16"):
        from_dict(TrainConfig, {"precision": "fp8"})
    with pytest.raises(ValueError, match="fp32, bf16, fp16"):
        TrainConfig(precision="half")
    with pytest.raises(ConfigError, match="compile"):
        from_dict(TrainConfig, {"compile": "yes"})


def test_fp16_on_cpu_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        from_dict(TrainConfig, {"precision": "fp16", "device": "cpu"}, what="training")


@pytest.mark.skipif(CUDA, reason="device auto picks the GPU here")
def test_fp16_where_auto_finds_no_gpu_fails_before_training() -> None:
    model = Regressor()
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU.*bf16"):
        Trainer(config(precision="fp16", device="auto")).fit(model, [Phase("model", model, regression_loss)],
                                                              inputs())


def test_precision_and_compile_round_trip_through_dicts() -> None:
    cfg = config(precision="bf16", compile=True)
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg
    assert from_dict(TrainConfig, {"steps": 5}).precision == "fp32"   # configs saved before the field


def test_cli_train_options_set_precision(tmp_path: Path) -> None:
    run = tmp_path / "ring"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "ring8", "--family", "vae", "--steps", "3", "--device", "cpu", "--out", str(run),
              "--train", "precision=bf16", "--train", "compile=false"])
    assert exit_info.value.code == 0
    model = genlab.load(run)
    assert model.train_config_.precision == "bf16" and model.train_config_.compile is False


# ----------------------------------------------------------------------------------------- training


def test_fp32_runs_no_autocast_and_bf16_does() -> None:
    _, fp32 = fit_regressor(config(steps=5, log_every=5))
    model, bf16 = fit_regressor(config(steps=5, log_every=5, precision="bf16"))
    assert fp32.history[-1]["model/output_is_bf16"] == 0.0
    assert bf16.history[-1]["model/output_is_bf16"] == 1.0
    assert all(value.dtype == torch.float32 for value in model.state_dict().values())  # weights stay fp32


def test_bf16_on_cpu_learns_with_finite_losses() -> None:
    model, result = fit_regressor(config(precision="bf16", ema_decay=0.9))
    losses = [record["model"] for record in result.history]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(value.dtype == torch.float32 for value in result.ema_state.values())
    assert not torch.is_autocast_enabled("cpu")   # nothing leaks out of the loop


def test_bf16_follows_fp32_closely() -> None:
    _, fp32 = fit_regressor(config())
    _, bf16 = fit_regressor(config(precision="bf16"))
    assert bf16.history[-1]["model"] == pytest.approx(fp32.history[-1]["model"], rel=0.5, abs=5e-3)


def test_a_bf16_gan_trains_both_phases_on_cpu() -> None:
    points = genlab.datasets.load("ring8").x_train[:512]
    model = genlab.fit(points, family="gan", hidden=32, r1=1.0,
                       train={"steps": 20, "batch_size": 64, "log_every": 10, "device": "cpu", "precision": "bf16"})
    last = model.history_[-1]
    assert all(math.isfinite(last[name]) for name in ("discriminator", "generator", "discriminator/r1"))
    assert np.isfinite(model.sample(16, generator=torch.Generator().manual_seed(0))).all()


def test_an_interrupted_bf16_run_resumes_bit_identically(tmp_path: Path) -> None:
    cfg = config(steps=40, precision="bf16", ema_decay=0.9, checkpoint_every=10)
    path = tmp_path / "trainer_state.safetensors"
    full, full_result = fit_regressor(cfg)

    torch.manual_seed(0)
    model = Regressor()
    with pytest.raises(Crash):
        Trainer(cfg, callbacks=[CrashAt25()]).fit(model, [Phase("model", model, regression_loss)], inputs(),
                                                  checkpoint_path=path)
    resumed, resumed_result = fit_regressor(cfg, checkpoint_path=path, resume=True)
    for name, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert load_checkpoint(path).scalers == {}                # bf16 needs no loss scaling


# ---------------------------------------------------------------------------------------- compile


def test_compiled_training_saves_the_uncompiled_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # aot_eager traces forward and backward like inductor but generates no C++, which takes minutes here
    calls, compile_ = [], torch.compile

    def compile_eagerly(module):
        calls.append(type(module).__name__)
        return compile_(module, backend="aot_eager")

    monkeypatch.setattr(torch, "compile", compile_eagerly)
    path = tmp_path / "trainer_state.safetensors"
    model, result = fit_regressor(config(steps=30, compile=True, precision="bf16", ema_decay=0.9),
                                  checkpoint_path=path)
    assert calls == ["Regressor"]
    assert type(model) is Regressor and list(model.state_dict()) == list(Regressor().state_dict())
    with safe_open(str(path), framework="pt") as handle:
        names = list(handle.keys())
    assert names and not any("_orig_mod" in name for name in names)
    assert all(math.isfinite(record["model"]) for record in result.history)


def test_compile_without_a_cpp_compiler_trains_eagerly(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    # inductor builds CPU kernels with a C++ compiler; a CI machine without one must still train
    import torch._inductor.cpp_builder as cpp_builder
    from torch._inductor.exc import InvalidCxxCompiler

    def no_compiler() -> str:
        raise InvalidCxxCompiler

    def refuse(module):
        raise AssertionError("torch.compile called without a C++ compiler")

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", no_compiler)
    monkeypatch.setattr(torch, "compile", refuse)
    with caplog.at_level("WARNING", logger="genlab.train.trainer"):
        compiled, _ = fit_regressor(config(steps=20, compile=True))
    eager, _ = fit_regressor(config(steps=20))
    assert "no C++ compiler" in caplog.text
    for name, value in eager.state_dict().items():
        assert torch.equal(value, compiled.state_dict()[name]), name


# ------------------------------------------------------------------------------------ fp16 scalers


def test_scaler_state_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    scaler = {"scale": 1024.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000,
              "_growth_tracker": 17}
    checkpoint = TrainerCheckpoint(step=3, elapsed=1.0, history=[], pending={"sums": {}, "counts": {}},
                                   model={"w": torch.ones(2)}, ema=None, optimizers={}, fingerprint={},
                                   scalers={"discriminator": scaler, "generator": {**scaler, "scale": 8.0}})
    save_checkpoint(tmp_path / "c.safetensors", checkpoint)
    loaded = load_checkpoint(tmp_path / "c.safetensors")
    assert loaded.scalers == checkpoint.scalers


def test_resuming_with_another_precision_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "trainer_state.safetensors"
    fit_regressor(config(steps=5, precision="bf16"), checkpoint_path=path)
    state = load_checkpoint(path)
    state.scalers = {"model": {"scale": 4.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                               "growth_interval": 2000, "_growth_tracker": 0}}
    save_checkpoint(path, state)
    with pytest.raises(CheckpointError, match="loss scalers"):
        fit_regressor(config(steps=10, precision="bf16"), checkpoint_path=path, resume=True)


@pytest.mark.skipif(not CUDA, reason="fp16 training needs a CUDA GPU")
def test_fp16_on_cuda_learns_and_resumes_its_scaler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "trainer_state.safetensors"
    _, first = fit_regressor(config(steps=100, precision="fp16", device="cuda"), checkpoint_path=path)
    losses = [record["model"] for record in first.history]
    assert all(math.isfinite(loss) for loss in losses[1:]) and losses[-1] < losses[1]
    saved = load_checkpoint(path).scalers["model"]
    assert saved["scale"] > 0 and {"scale", "_growth_tracker"} <= set(saved)

    restored = []
    load = torch.amp.GradScaler.load_state_dict
    monkeypatch.setattr(torch.amp.GradScaler, "load_state_dict",
                        lambda scaler, state: (restored.append(dict(state)), load(scaler, state))[1])
    _, resumed = fit_regressor(config(steps=150, precision="fp16", device="cuda"), checkpoint_path=path, resume=True)
    assert restored == [saved] and resumed.steps == 150
    assert math.isfinite(resumed.history[-1]["model"])


def large_loss(module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
    """The regression loss times 10^4: scaled by GradScaler's initial 2^16, its float16 gradients overflow
    until the scale has backed off, so the scale in a checkpoint is not the initial one."""
    return Losses(1e4 * regression_loss(module, batch, generator).total)


@pytest.mark.skipif(CUDA, reason="runs the fp16 machinery on the CPU, where no GPU can take it")
def test_fp16_loss_scaling_backs_off_clips_and_resumes_bit_identically(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # fp16 is refused off CUDA; lifting that check runs the very same scaler code under CPU autocast.
    monkeypatch.setattr(trainer_module, "_check_precision", lambda precision, device: None)
    cfg = config(steps=40, precision="fp16", device="auto", checkpoint_every=10, grad_clip=0.5, log_every=10)
    path = tmp_path / "trainer_state.safetensors"

    def fit(**kwargs: object) -> tuple[Regressor, object]:
        torch.manual_seed(0)
        model = Regressor()
        return model, Trainer(cfg, callbacks=kwargs.pop("callbacks", ())).fit(
            model, [Phase("model", model, large_loss)], inputs(), **kwargs)

    full, result = fit()
    losses = [record["model"] for record in result.history]
    assert all(math.isfinite(loss) for loss in losses[1:]) and losses[-1] < losses[1]
    with pytest.raises(Crash):
        fit(callbacks=[CrashAt25()], checkpoint_path=path)
    saved = load_checkpoint(path).scalers["model"]
    assert 0 < saved["scale"] < 2.0**16          # it backed off from its initial scale
    resumed, _ = fit(checkpoint_path=path, resume=True)
    for name, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
