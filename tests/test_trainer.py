"""The Trainer: schedule, learning, phases, clipping, EMA, determinism, checkpoints, resume and DDP.

Every model here is a toy defined in this file (or in tests/scripts/train_toy.py for the tests that
need a separate process), so the Trainer is checked without any family.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import genlab.train.checkpoint as checkpoint_module
from genlab.errors import CheckpointError, ConfigError
from genlab.train import Batch, Callback, Losses, Phase, TrainConfig, Trainer, TrainState
from genlab.train.checkpoint import load_checkpoint
from genlab.train.schedule import budget_progress, lr_multiplier
from genlab.train.trainer import build_optimizer

SCRIPT = Path(__file__).parent / "scripts" / "train_toy.py"
#: Subprocesses run single-threaded: on a busy machine, threads spinning over tiny tensors cost far
#: more than they save.
SINGLE_THREAD_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("single_thread")


# ---------------------------------------------------------------------------------------------- toys


class Gaussian(nn.Module):
    """A 1-D Gaussian with learnable mean and log standard deviation."""

    def __init__(self) -> None:
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(()))
        self.log_sigma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 1) -> (B,) negative log-likelihood
        z = (x[:, 0] - self.mu) / self.log_sigma.exp()
        return 0.5 * z**2 + self.log_sigma + 0.5 * math.log(2 * math.pi)


def gaussian_nll(module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
    nll = module(batch.x).mean()
    return Losses(total=nll, parts={"nll": float(nll.detach())})


class Denoiser(nn.Module):
    """A small MLP with dropout; its loss draws noise from the step's generator."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def denoising_loss(module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
    # batch.x: (B, 2)
    eps = torch.randn(batch.x.shape, generator=generator, device=batch.x.device)
    return Losses(total=((module(batch.x + 0.3 * eps) - batch.x) ** 2).mean())


def gaussian_data(n: int = 2000) -> torch.Tensor:
    """``(n, 1)`` draws from N(3, 0.5^2)."""
    return 3.0 + 0.5 * torch.randn(n, 1, generator=torch.Generator().manual_seed(0))


def points(n: int = 256) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(1))


def new_denoiser() -> Denoiser:
    torch.manual_seed(0)
    return Denoiser()


def config(**overrides: object) -> TrainConfig:
    values: dict = dict(steps=20, batch_size=16, lr=1e-2, log_every=10, device="cpu", grad_clip=None)
    values.update(overrides)
    return TrainConfig(**values)


class SimulatedCrash(Exception):
    """Raised by :class:`Recorder` to stop training as a crash would."""


class Recorder(Callback):
    """Records the hooks' calls; optionally raises after a given step to simulate a crash."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.crash_at = crash_at
        self.events: list[tuple[str, int]] = []

    def on_train_start(self, trainer: Trainer, state: TrainState) -> None:
        self.events.append(("start", state.step))

    def on_step_end(self, trainer: Trainer, state: TrainState) -> None:
        self.events.append(("step", state.step))
        if state.step == self.crash_at:
            raise SimulatedCrash(f"crash after step {state.step}")

    def on_eval(self, trainer: Trainer, state: TrainState, metrics: dict[str, float]) -> None:
        self.events.append(("eval", state.step))

    def on_train_end(self, trainer: Trainer, state: TrainState) -> None:
        self.events.append(("end", state.step))


def fit_denoiser(cfg: TrainConfig, **kwargs: object) -> tuple[Denoiser, object]:
    model = new_denoiser()
    callbacks = kwargs.pop("callbacks", ())
    phases = [Phase("model", model, denoising_loss)]
    result = Trainer(cfg, callbacks=callbacks).fit(model, phases, points(), **kwargs)
    return model, result


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


# ------------------------------------------------------------------------------------------ schedule


def test_the_optimiser_is_fused_where_torch_has_the_kernel_and_decays_matrices_only() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    fused = build_optimizer(model.parameters(), kind="adamw", lr=1e-2, betas=(0.9, 0.99), weight_decay=0.1)
    assert fused.defaults["fused"]   # torch >= 2.4 has a fused AdamW for CPU float32
    assert [g["weight_decay"] for g in fused.param_groups] == [0.1, 0.0]
    assert all(p.dim() >= 2 for p in fused.param_groups[0]["params"])
    # the same update as the default implementation, up to float rounding
    reference = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    reference.load_state_dict(model.state_dict())
    ps = list(reference.parameters())
    plain = torch.optim.AdamW([{"params": [p for p in ps if p.dim() >= 2], "weight_decay": 0.1},
                               {"params": [p for p in ps if p.dim() < 2], "weight_decay": 0.0}],
                              lr=1e-2, betas=(0.9, 0.99))
    x = torch.randn(16, 4)
    for net, optimiser in ((model, fused), (reference, plain)):
        for _ in range(5):
            optimiser.zero_grad(set_to_none=True)
            net(x).square().mean().backward()
            optimiser.step()
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    half = build_optimizer([nn.Parameter(torch.zeros(2, 2, dtype=torch.float16))],
                           kind="adam", lr=1e-3, betas=(0.9, 0.99), weight_decay=0.0)
    assert isinstance(half, torch.optim.Adam)   # built, fused or not, whatever torch offers for float16


def test_lr_multiplier_warms_up_linearly_then_follows_a_cosine_to_min_ratio() -> None:
    kwargs = dict(warmup_steps=10, min_lr_ratio=0.1)
    assert lr_multiplier(0, 0.0, **kwargs) == pytest.approx(0.1)
    assert lr_multiplier(4, 0.0, **kwargs) == pytest.approx(0.5)
    assert lr_multiplier(9, 0.0, **kwargs) == pytest.approx(1.0)  # peak at the end of warm-up
    assert lr_multiplier(50, 0.5, **kwargs) == pytest.approx(0.55)  # cosine midpoint: r + (1 - r) / 2
    assert lr_multiplier(99, 1.0, **kwargs) == pytest.approx(0.1)
    assert lr_multiplier(0, 1.0, warmup_steps=0, min_lr_ratio=0.0) == pytest.approx(0.0)


def test_budget_progress_counts_decay_steps_or_wall_clock() -> None:
    assert budget_progress(10, 99.0, steps=110, max_time=None, warmup_steps=10) == 0.0
    assert budget_progress(60, 0.0, steps=110, max_time=None, warmup_steps=10) == pytest.approx(0.5)
    assert budget_progress(500, 0.0, steps=110, max_time=None, warmup_steps=10) == 1.0
    assert budget_progress(7, 30.0, steps=None, max_time=120.0, warmup_steps=0) == pytest.approx(0.25)


def test_history_records_the_scheduled_lr() -> None:
    _, result = fit_denoiser(config(steps=40, warmup_steps=10, min_lr_ratio=0.2, log_every=10))
    logged = {record["step"]: record["lr"] for record in result.history}
    for step in (10, 20, 30, 40):
        p = budget_progress(step - 1, 0.0, steps=40, max_time=None, warmup_steps=10)
        multiplier = lr_multiplier(step - 1, p, warmup_steps=10, min_lr_ratio=0.2)
        assert logged[step] == pytest.approx(1e-2 * multiplier)


# ---------------------------------------------------------------------------------------- learning


def test_a_gaussian_density_learns_its_mean_and_scale() -> None:
    model = Gaussian()
    cfg = config(steps=400, batch_size=256, lr=0.05, log_every=100, grad_clip=1.0)
    result = Trainer(cfg).fit(model, [Phase("model", model, gaussian_nll)], gaussian_data())
    assert model.mu.item() == pytest.approx(3.0, abs=0.05)
    assert model.log_sigma.exp().item() == pytest.approx(0.5, abs=0.05)
    assert result.steps == 400 and result.stopped_by == "steps"
    assert [record["step"] for record in result.history] == [100, 200, 300, 400]
    assert set(result.history[-1]) == {"step", "lr", "elapsed", "model", "model/nll"}
    assert result.history[-1]["model"] < result.history[0]["model"]


def test_two_phases_alternate_with_repeats() -> None:
    generator, critic = nn.Linear(1, 1), nn.Linear(1, 1)
    model = nn.ModuleDict({"generator": generator, "critic": critic})
    calls: list[str] = []

    def critic_loss(module: nn.Module, batch: Batch, rng: torch.Generator) -> Losses:
        calls.append("d")
        fake = generator(torch.randn(batch.x.shape, generator=rng)).detach()
        return Losses(total=module(fake).mean() - module(batch.x).mean())

    def generator_loss(module: nn.Module, batch: Batch, rng: torch.Generator) -> Losses:
        calls.append("g")
        return Losses(total=-critic(module(torch.randn(batch.x.shape, generator=rng))).mean())

    before = {name: value.clone() for name, value in model.state_dict().items()}
    moved = ["generator.weight", "generator.bias", "critic.weight"]  # the critic's bias gets no gradient
    phases = [Phase("d", critic, critic_loss, repeats=2), Phase("g", generator, generator_loss, lr=1e-3)]
    result = Trainer(config(steps=5, log_every=5)).fit(model, phases, gaussian_data(64))
    assert calls == ["d", "d", "g"] * 5
    assert all(not torch.equal(before[name], model.state_dict()[name]) for name in moved)
    assert {"d", "g"} <= set(result.history[0])


def test_gradient_clipping_bounds_the_global_norm() -> None:
    def norms_seen(grad_clip: float | None) -> list[float]:
        model = nn.Linear(3, 3)
        seen: list[float] = []

        def steep_loss(module: nn.Module, batch: Batch, rng: torch.Generator) -> Losses:
            # The gradients still hold the previous step's, after clipping.
            grads = [p.grad for p in module.parameters() if p.grad is not None]
            if grads:
                seen.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())
            return Losses(total=1000.0 * (module(batch.x) ** 2).mean())

        x = torch.randn(32, 3, generator=torch.Generator().manual_seed(2))
        Trainer(config(steps=6, grad_clip=grad_clip)).fit(model, [Phase("m", model, steep_loss)], x)
        return seen

    assert max(norms_seen(None)) > 10.0
    clipped = norms_seen(0.5)
    assert len(clipped) == 5 and max(clipped) <= 0.5 * (1 + 1e-5)


def test_ema_matches_the_hand_computed_average() -> None:
    model = Gaussian()
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    seen: list[dict[str, torch.Tensor]] = []

    class Snapshot(Callback):
        def on_step_end(self, trainer: Trainer, state: TrainState) -> None:
            seen.append({name: value.clone() for name, value in model.state_dict().items()})

    result = Trainer(config(steps=4, ema_decay=0.75), callbacks=[Snapshot()]).fit(
        model, [Phase("model", model, gaussian_nll)], gaussian_data(64)
    )
    expected = initial
    for state in seen:
        expected = {name: 0.75 * expected[name] + 0.25 * state[name] for name in expected}
    assert result.ema_state is not None and result.ema_state.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(result.ema_state[name], expected[name], rtol=1e-6, atol=1e-7)
    assert not torch.equal(result.ema_state["mu"], model.mu.detach())


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_a_time_budget_stops_training(clock: str) -> None:
    cpu_started = time.process_time()
    _, result = fit_denoiser(config(steps=None, max_time=0.3, clock=clock))
    assert result.stopped_by == "time"
    assert result.elapsed >= 0.3 and result.steps > 0
    if clock == "cpu":   # the budget was counted in this process's CPU seconds
        assert time.process_time() - cpu_started >= 0.3


def test_evaluation_runs_every_eval_every_steps_and_at_the_end() -> None:
    recorder = Recorder()
    steps_seen: list[int] = []

    def evaluate(step: int) -> dict[str, float]:
        steps_seen.append(step)
        return {"score": float(step)}

    fit_denoiser(config(steps=10, eval_every=4), callbacks=[recorder], evaluate=evaluate)
    assert steps_seen == [4, 8, 10]
    assert [step for event, step in recorder.events if event == "eval"] == [4, 8, 10]
    assert recorder.events[0] == ("start", 0) and recorder.events[-1] == ("end", 10)


def test_phases_must_belong_to_the_model_and_have_unique_names() -> None:
    model, stranger = Denoiser(), nn.Linear(2, 2)
    with pytest.raises(ConfigError, match="not in model"):
        Trainer(config()).fit(model, [Phase("model", stranger, denoising_loss)], points())
    with pytest.raises(ConfigError, match="unique"):
        Trainer(config()).fit(model, [Phase("a", model, denoising_loss)] * 2, points())


# ------------------------------------------------------------------------------------- determinism


def test_seeded_runs_are_identical_and_leave_the_global_rng_alone() -> None:
    cfg = config(steps=30, ema_decay=0.9, warmup_steps=5)
    first, result_a = fit_denoiser(cfg)
    second, result_b = fit_denoiser(cfg)
    assert_same_state(first.state_dict(), second.state_dict())
    assert_same_state(result_a.ema_state, result_b.ema_state)

    model = new_denoiser()
    torch.manual_seed(123)
    global_state = torch.get_rng_state()
    Trainer(cfg).fit(model, [Phase("model", model, denoising_loss)], points())
    assert torch.equal(torch.get_rng_state(), global_state)
    other, _ = fit_denoiser(config(steps=30, ema_decay=0.9, warmup_steps=5, seed=1))
    assert not torch.equal(other.net[0].weight, first.net[0].weight)


def test_an_interrupted_run_resumes_bit_identically(tmp_path: Path) -> None:
    cfg = config(steps=60, ema_decay=0.9, warmup_steps=5, checkpoint_every=10, log_every=25)
    path = tmp_path / "checkpoint" / "trainer_state.safetensors"
    full, full_result = fit_denoiser(cfg)

    with pytest.raises(SimulatedCrash):
        fit_denoiser(cfg, callbacks=[Recorder(crash_at=35)], checkpoint_path=path, fingerprint={"steps": 60})
    assert load_checkpoint(path).step == 30

    recorder = Recorder()
    resumed, resumed_result = fit_denoiser(
        cfg, callbacks=[recorder], checkpoint_path=path, resume=True, fingerprint={"steps": 60}
    )
    assert recorder.events[0] == ("start", 30)
    assert resumed_result.steps == 60
    assert_same_state(full.state_dict(), resumed.state_dict())
    assert_same_state(full_result.ema_state, resumed_result.ema_state)

    def without_time(history: list[dict]) -> list[dict]:
        return [{k: v for k, v in record.items() if k != "elapsed"} for record in history]

    assert without_time(resumed_result.history) == without_time(full_result.history)

    # Resuming a finished run returns at once, with nothing trained.
    again, again_result = fit_denoiser(cfg, checkpoint_path=path, resume=True, fingerprint={"steps": 60})
    assert again_result.steps == 60
    assert_same_state(again.state_dict(), full.state_dict())


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_process_resumes_bit_identically(tmp_path: Path) -> None:
    path = tmp_path / "trainer_state.safetensors"
    steps = ["--steps", "100", "--checkpoint-every", "10"]
    slow = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "killed.safetensors"),
         "--checkpoint", str(path), "--step-sleep", "0.02", *steps],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=SINGLE_THREAD_ENV,
    )
    reference = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "reference.safetensors"), *steps],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=SINGLE_THREAD_ENV,
    )
    deadline = time.monotonic() + 60
    while not path.exists() and slow.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), slow.communicate()[1].decode()
    slow.send_signal(signal.SIGKILL)
    slow.communicate(timeout=30)
    assert slow.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(path).step
    assert 0 < killed_at < 100

    resumed = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "resumed.safetensors"),
         "--checkpoint", str(path), "--resume", *steps],
        capture_output=True,
        timeout=60,
        env=SINGLE_THREAD_ENV,
    )
    assert resumed.returncode == 0, resumed.stderr.decode()
    _, reference_err = reference.communicate(timeout=60)
    assert reference.returncode == 0, reference_err.decode()
    assert not (tmp_path / "killed.safetensors").exists()
    reference_weights = load_file(tmp_path / "reference.safetensors")
    assert_same_state(reference_weights, load_file(tmp_path / "resumed.safetensors"))


# ------------------------------------------------------------------------------------- checkpoints


def test_resume_without_a_checkpoint_says_there_is_nothing_to_resume(tmp_path: Path) -> None:
    path = tmp_path / "missing.safetensors"
    with pytest.raises(CheckpointError, match="nothing to resume"):
        fit_denoiser(config(), checkpoint_path=path, resume=True)
    with pytest.raises(ConfigError, match="checkpoint_path"):
        fit_denoiser(config(), resume=True)


def test_resume_with_a_changed_config_names_the_differing_keys(tmp_path: Path) -> None:
    path = tmp_path / "trainer_state.safetensors"
    before = {"train": {"lr": 0.01, "steps": 5}, "seed": 0}
    fit_denoiser(config(steps=5), checkpoint_path=path, fingerprint=before)
    changed = {"train": {"lr": 0.02, "steps": 5}}
    with pytest.raises(CheckpointError, match=r"train\.lr: checkpoint 0\.01, now 0\.02") as info:
        fit_denoiser(config(steps=5), checkpoint_path=path, resume=True, fingerprint=changed)
    assert "seed: checkpoint 0, now (absent)" in str(info.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_resume_from_a_corrupt_file_raises_a_checkpoint_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "trainer_state.safetensors"
    if damage == "garbage":
        path.write_bytes(os.urandom(64) + b"not a checkpoint")
    else:
        fit_denoiser(config(steps=5), checkpoint_path=path)
        path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupt"):
        fit_denoiser(config(steps=5), checkpoint_path=path, resume=True)


def test_a_failed_write_leaves_the_previous_checkpoint_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "trainer_state.safetensors"
    real_save = checkpoint_module.save_file
    writes = []

    def failing_save(tensors: dict, filename: str, metadata: dict) -> None:
        writes.append(filename)
        if len(writes) == 1:
            real_save(tensors, filename, metadata=metadata)
            return
        Path(filename).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", failing_save)
    with pytest.raises(OSError, match="disk full"):
        fit_denoiser(config(steps=30, checkpoint_every=10), checkpoint_path=path)
    assert load_checkpoint(path).step == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


# ----------------------------------------------------------------------------------- distributed


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_keeps_weights_in_sync(tmp_path: Path) -> None:
    torchrun = Path(sys.executable).parent / "torchrun"
    launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    out, path = tmp_path / "out" / "weights.safetensors", tmp_path / "out" / "trainer_state.safetensors"
    out.parent.mkdir()
    finished = subprocess.run(
        [*launcher, "--standalone", "--nproc_per_node=2", str(SCRIPT),
         "--out", str(out), "--checkpoint", str(path), "--steps", "30"],
        capture_output=True,
        timeout=120,
        env=SINGLE_THREAD_ENV,
    )
    assert finished.returncode == 0, finished.stderr.decode()[-3000:]
    lines = re.findall(r"rank=(\d) steps=(\d+) checksum=(\w+)", finished.stdout.decode())
    assert sorted(rank for rank, _, _ in lines) == ["0", "1"]
    assert {steps for _, steps, _ in lines} == {"30"}
    assert len({checksum for _, _, checksum in lines}) == 1  # identical weights although batches differ
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([out.name, path.name])
    assert load_checkpoint(path).step == 30
