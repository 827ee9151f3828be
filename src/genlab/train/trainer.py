"""The training loop shared by every gradient-trained family; it knows nothing about any of them.

A family hands over its network and its :class:`~genlab.train.phase.Phase` list; the Trainer owns the
optimisers, learning-rate schedule, gradient clipping, EMA, logging, evaluation, checkpoints,
DistributedDataParallel, mixed precision and ``torch.compile``.

Mixed precision (``TrainConfig.precision``): only each phase's loss computation runs under
``torch.autocast``; the backward pass, weights, optimiser state, EMA, evaluation and sampling stay
float32. With ``"fp16"`` each phase has its own ``GradScaler`` (a discriminator's and a generator's
gradients differ in size), gradients are unscaled before clipping, and the scalers are checkpointed.

Determinism: no random state is carried from one step to the next. Every draw of step ``s``, phase
``i``, repeat ``r`` on process ``k`` (batch indices, the loss's noise generator, and the global RNG that
dropout uses) comes from a seed that is a pure function of ``(seed, k, s, i, r)``. A run resumed from
the checkpoint of step ``s`` therefore repeats exactly what the uninterrupted run did (bit for bit on
CPU), and the caller's global RNG is left as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import torch
from torch import nn

from genlab.errors import CheckpointError, ConfigError, DataError
from genlab.train import distributed
from genlab.train.callbacks import Callback, TrainState
from genlab.train.checkpoint import TrainerCheckpoint, check_fingerprint, load_checkpoint, save_checkpoint
from genlab.train.config import TrainConfig
from genlab.train.ema import EMA
from genlab.train.phase import Batch, Phase
from genlab.train.schedule import budget_progress, lr_multiplier

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        steps: training steps completed (including those before a resume).
        elapsed: seconds of training (including those before a resume).
        history: log records ``{"step", "lr", "elapsed", "<phase>", "<phase>/<part>"}`` averaged over the
            steps since the previous record, and evaluation records ``{"step", "eval/<metric>"}``.
        ema_state: the averaged ``model.state_dict()`` as CPU tensors, or ``None`` without EMA.
        stopped_by: ``"steps"`` or ``"time"``, whichever budget ended training.
    """

    steps: int
    elapsed: float
    history: list[dict[str, float]]
    ema_state: dict[str, torch.Tensor] | None
    stopped_by: Literal["steps", "time"]


def build_optimizer(parameters: Any, *, kind: str = "adamw", lr: float, betas: tuple[float, float],
                    weight_decay: float) -> torch.optim.Optimizer:
    """Adam or AdamW (``kind``) over ``parameters``, weight decay on matrices and embeddings only (``dim >= 2``).

    The update runs as torch's *fused* kernel where torch has one for the parameters' device and dtype
    (CPU and CUDA float tensors on recent torch): one kernel over every tensor instead of a chain of
    elementwise ops per step, the same Adam update up to float rounding. Elsewhere (an older torch, a
    device or dtype without the kernel) it falls back to torch's default implementation.
    """
    optimizer_class = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    parameters = list(parameters)
    groups = [{"params": [p for p in parameters if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0}]
    groups = [group for group in groups if group["params"]]
    try:
        return optimizer_class(groups, lr=lr, betas=betas, fused=True)
    except (RuntimeError, ValueError, TypeError) as why:   # no fused kernel for this device/dtype/torch
        logger.debug("fused %s unavailable (%s): the default implementation", optimizer_class.__name__, why)
        return optimizer_class(groups, lr=lr, betas=betas)


def _inductor_builds_on(device: torch.device) -> bool:
    """Whether ``torch.compile``'s default backend (inductor) can build kernels for ``device``: on a CPU it
    writes C++ and needs a compiler (``$CXX`` or g++). Without one it warns and ``False`` (train eagerly)."""
    if device.type != "cpu":
        return True
    from torch._inductor.cpp_builder import get_cpp_compiler   # here: inductor loads only when compiling

    try:
        get_cpp_compiler()
    except RuntimeError as why:   # torch._inductor.exc.InvalidCxxCompiler
        logger.warning("compile=True but no C++ compiler for inductor's CPU kernels (%s): training eagerly", why)
        return False
    return True


class Trainer:
    """Optimise a model's phases for a step or time budget, resumably.

    One training step runs every phase in order, each ``phase.repeats`` times: draw ``batch_size``
    records uniformly with replacement, compute ``phase.loss`` (under autocast unless ``precision`` is
    ``"fp32"``), back-propagate (the loss scaled by the phase's GradScaler with ``"fp16"``), clip the
    phase's global gradient norm to ``grad_clip``, and take an Adam/AdamW step with the scheduled
    learning rate.

    Args:
        config: the optimisation settings.
        callbacks: hooks called during :meth:`fit`, e.g. the CLI's progress bar.
    """

    def __init__(self, config: TrainConfig, *, callbacks: Sequence[Callback] = ()) -> None:
        self.config = config
        self.callbacks = tuple(callbacks)

    def fit(
        self,
        model: nn.Module,
        phases: Sequence[Phase],
        x: torch.Tensor,
        y: torch.Tensor | None = None,
        *,
        checkpoint_path: Path | None = None,
        resume: bool = False,
        fingerprint: dict[str, Any] | None = None,
        evaluate: Callable[[int], dict[str, float]] | None = None,
    ) -> TrainResult:
        """Train ``model`` on ``x`` (and ``y``) until the budget is spent.

        Args:
            model: the whole network; every phase's module must be a submodule. Moved to the training
                device and left in the mode it had.
            phases: the family's phases, run in this order every step.
            x: ``(N, *shape)`` float training records (moved to the device whole).
            y: ``(N,)`` int64 labels, or ``None``.
            checkpoint_path: file to write the resumable state to (every ``checkpoint_every`` steps and
                at the end, by rank 0 only), or ``None`` for no checkpoints.
            resume: continue from ``checkpoint_path`` instead of starting afresh.
            fingerprint: JSON-compatible description of the run (the caller's full config), saved in
                the checkpoint; resuming requires it to be unchanged.
            evaluate: ``evaluate(step) -> {metric: value}``, called on rank 0 with the model in eval mode
                every ``eval_every`` steps and at the end.

        Returns:
            The steps, time, history, EMA state and which budget ended training.

        Raises:
            ConfigError: on duplicate phase names, a phase whose parameters are not in ``model``,
                ``repeats < 1``, a fingerprint that is not JSON, ``resume`` without a path, or
                ``precision="fp16"`` on a device that is not a CUDA GPU.
            DataError: on empty ``x`` or ``y`` of the wrong length.
            CheckpointError: when resuming from a missing, corrupt or mismatched checkpoint.
        """
        config = self.config
        phases = tuple(phases)
        _check_arguments(model, phases, x, y)
        fingerprint = _json_normalised(fingerprint or {})
        if resume and checkpoint_path is None:
            raise ConfigError("resume=True needs a checkpoint_path to resume from")

        device = distributed.setup(config.device)
        _check_precision(config.precision, device)
        model.to(device)
        run = _Run(
            model=model,
            phases=phases,
            optimizers={phase.name: self._optimizer(phase) for phase in phases},
            ema=EMA(model, config.ema_decay) if config.ema_decay is not None else None,
            # bf16 has float32's exponent range; only fp16 gradients need loss scaling not to underflow
            scalers={phase.name: torch.amp.GradScaler(device.type) for phase in phases if config.precision == "fp16"},
            x=x.to(device),
            y=None if y is None else y.to(device),
            device=device,
            checkpoint_path=None if checkpoint_path is None else Path(checkpoint_path),
            fingerprint=fingerprint,
        )
        if resume:
            self._restore(run)
        stopped_by = self._stop_reason(run.step, run.elapsed)
        if stopped_by is not None:
            return run.result(stopped_by)

        # The compiled wrapper only runs the losses; checkpoints and EMA read ``model`` itself, whose
        # state_dict keys carry no ``_orig_mod.`` prefix.
        compiling = config.compile and _inductor_builds_on(device)
        modules = [distributed.wrap(torch.compile(phase.module) if compiling else phase.module, device)
                   for phase in phases]
        main = distributed.is_main_process()
        evaluating = evaluate is not None and config.eval_every > 0 and main
        state = TrainState(
            step=run.step, total_steps=config.steps, elapsed=run.elapsed, max_time=config.max_time
        )
        was_training = model.training
        model.train()
        for callback in self.callbacks:
            callback.on_train_start(self, state)

        clock = time.monotonic if config.clock == "wall" else time.process_time
        started = clock() - run.elapsed
        evaluated_at = None
        while (stopped_by := self._stop_reason(run.step, run.elapsed)) is None:
            multiplier = self._schedule(run)
            losses = self._train_step(run, modules)
            run.step += 1
            if run.ema is not None:
                run.ema.update(model)
            run.elapsed = clock() - started
            if config.max_time is not None:
                # Every process must agree on the time-based learning rate and on the last step.
                run.elapsed = distributed.broadcast_float(run.elapsed, device)
            run.meter.add(losses)
            state.step, state.elapsed, state.losses = run.step, run.elapsed, losses
            state.lr = config.lr * multiplier

            if config.log_every > 0 and run.step % config.log_every == 0:
                run.history.append(run.meter.record(step=run.step, lr=state.lr, elapsed=run.elapsed))
            for callback in self.callbacks:
                callback.on_step_end(self, state)
            if evaluating and run.step % config.eval_every == 0:
                self._evaluate(run, evaluate, state)
                evaluated_at = run.step
            final_step = config.steps is not None and run.step >= config.steps
            if config.checkpoint_every > 0 and run.step % config.checkpoint_every == 0 and not final_step:
                self._save(run)

        if run.meter.counts:
            run.history.append(run.meter.record(step=run.step, lr=state.lr, elapsed=run.elapsed))
        if evaluating and evaluated_at != run.step:
            self._evaluate(run, evaluate, state)
        self._save(run)
        model.train(was_training)
        for callback in self.callbacks:
            callback.on_train_end(self, state)
        logger.info("training stopped by %s after %d steps, %.1f s", stopped_by, run.step, run.elapsed)
        return run.result(stopped_by)

    def _optimizer(self, phase: Phase) -> torch.optim.Optimizer:
        """Adam or AdamW over the phase's parameters, with the phase's lr and betas when it sets them.

        Weight decay applies to matrices and embeddings only (``dim >= 2``), never to biases or
        normalisation gains, as in GPT-2/nanoGPT: shrinking a LayerNorm gain towards 0 is not a prior
        anyone wants.
        """
        config = self.config
        return build_optimizer(phase.module.parameters(), kind=config.optimizer,
                               lr=phase.lr if phase.lr is not None else config.lr,
                               betas=phase.betas if phase.betas is not None else config.betas,
                               weight_decay=config.weight_decay)

    def _stop_reason(self, step: int, elapsed: float) -> Literal["steps", "time"] | None:
        """Which budget is spent, if any."""
        if self.config.steps is not None and step >= self.config.steps:
            return "steps"
        if self.config.max_time is not None and elapsed >= self.config.max_time:
            return "time"
        return None

    def _schedule(self, run: _Run) -> float:
        """Set every phase's learning rate for the coming step; return the schedule's multiplier."""
        config = self.config
        progress = budget_progress(
            run.step,
            run.elapsed,
            steps=config.steps,
            max_time=config.max_time,
            warmup_steps=config.warmup_steps,
        )
        multiplier = lr_multiplier(
            run.step, progress, warmup_steps=config.warmup_steps, min_lr_ratio=config.min_lr_ratio
        )
        for phase in run.phases:
            base = phase.lr if phase.lr is not None else config.lr
            for group in run.optimizers[phase.name].param_groups:
                group["lr"] = base * multiplier
        return multiplier

    def _train_step(self, run: _Run, modules: Sequence[nn.Module]) -> dict[str, float]:
        """Run every phase's repeats once; return each phase's mean loss and mean loss parts."""
        config = self.config
        batches = torch.Generator()
        noise = torch.Generator(device=run.device)
        cuda_devices = [run.device.index] if run.device.type == "cuda" else []
        losses: dict[str, float] = {}
        with torch.random.fork_rng(devices=cuda_devices, device_type="cuda"):
            for phase_index, (phase, module) in enumerate(zip(run.phases, modules)):
                optimizer = run.optimizers[phase.name]
                sums: dict[str, float] = {}
                for repeat in range(phase.repeats):
                    key = (config.seed, distributed.rank(), run.step, phase_index, repeat)
                    batches.manual_seed(_seed(*key, "batch"))
                    noise.manual_seed(_seed(*key, "noise"))
                    _seed_global_rng(_seed(*key, "global"), run.device)

                    index = torch.randint(len(run.x), (config.batch_size,), generator=batches).to(run.device)
                    batch = Batch(x=run.x[index], y=None if run.y is None else run.y[index])
                    with _autocast(config.precision, run.device):
                        result = phase.loss(module, batch, noise)
                    optimizer.zero_grad(set_to_none=True)
                    scaler = run.scalers.get(phase.name)
                    if scaler is None:
                        result.total.backward()
                        if config.grad_clip is not None:
                            nn.utils.clip_grad_norm_(phase.module.parameters(), config.grad_clip)
                        optimizer.step()
                    else:
                        scaler.scale(result.total).backward()
                        if config.grad_clip is not None:
                            scaler.unscale_(optimizer)   # clip the true gradients, not the scaled ones
                            nn.utils.clip_grad_norm_(phase.module.parameters(), config.grad_clip)
                        scaler.step(optimizer)           # skipped when a gradient overflowed
                        scaler.update()

                    values = {phase.name: float(result.total.detach())}
                    values.update({f"{phase.name}/{name}": float(v) for name, v in result.parts.items()})
                    for name, value in values.items():
                        sums[name] = sums.get(name, 0.0) + value
                losses.update({name: total / phase.repeats for name, total in sums.items()})
        return losses

    def _evaluate(
        self, run: _Run, evaluate: Callable[[int], dict[str, float]], state: TrainState
    ) -> None:
        """Call the caller's evaluation in eval mode and record its metrics."""
        run.model.eval()
        metrics = {name: float(value) for name, value in evaluate(run.step).items()}
        run.model.train()
        run.history.append({"step": run.step, **{f"eval/{name}": value for name, value in metrics.items()}})
        for callback in self.callbacks:
            callback.on_eval(self, state, metrics)

    def _save(self, run: _Run) -> None:
        """Write the checkpoint (rank 0 only; the others hold identical weights)."""
        if run.checkpoint_path is None or not distributed.is_main_process():
            return
        save_checkpoint(
            run.checkpoint_path,
            TrainerCheckpoint(
                step=run.step,
                elapsed=run.elapsed,
                history=run.history,
                pending=run.meter.state(),
                model=run.model.state_dict(),
                ema=None if run.ema is None else run.ema.shadow,
                optimizers={name: optimizer.state_dict() for name, optimizer in run.optimizers.items()},
                fingerprint=run.fingerprint,
                scalers={name: scaler.state_dict() for name, scaler in run.scalers.items()},
            ),
        )
        logger.info("checkpoint of step %d written to %s", run.step, run.checkpoint_path)

    def _restore(self, run: _Run) -> None:
        """Load the checkpoint into the model, EMA, optimisers and loss scalers; continue its step count.

        Raises:
            CheckpointError: when the file is missing or corrupt, its fingerprint differs from the
                caller's, or its tensors do not fit the model.
        """
        path = run.checkpoint_path
        assert path is not None
        saved = load_checkpoint(path)
        check_fingerprint(path, saved.fingerprint, run.fingerprint)
        try:
            run.model.load_state_dict(saved.model)
            if (saved.ema is None) != (run.ema is None):
                raise ValueError("one of the checkpoint and this run has an EMA and the other has not")
            if run.ema is not None and saved.ema is not None:
                run.ema.load_state_dict(saved.ema)
            if set(saved.optimizers) != set(run.optimizers):
                raise ValueError(f"phases {sorted(saved.optimizers)} != {sorted(run.optimizers)}")
            for name, optimizer in run.optimizers.items():
                optimizer.load_state_dict(saved.optimizers[name])
            if set(saved.scalers) != set(run.scalers):
                raise ValueError(f"loss scalers of phases {sorted(saved.scalers)} != {sorted(run.scalers)} "
                                 "(only fp16 training has them)")
            for name, scaler in run.scalers.items():
                scaler.load_state_dict(saved.scalers[name])
            run.meter = _LossMeter(sums=dict(saved.pending["sums"]), counts=dict(saved.pending["counts"]))
        except (RuntimeError, ValueError, KeyError, TypeError) as error:
            raise CheckpointError(f"checkpoint {path} does not fit this model: {error}") from None
        run.step, run.elapsed, run.history = saved.step, saved.elapsed, saved.history
        logger.info("resumed from %s at step %d (%.1f s)", path, run.step, run.elapsed)


@dataclass
class _LossMeter:
    """Running sums of each logged loss since the last history record."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, losses: dict[str, float]) -> None:
        for name, value in losses.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.counts[name] = self.counts.get(name, 0) + 1

    def record(self, **fields: float) -> dict[str, float]:
        """Return ``fields`` plus the mean of every loss, and start the next interval."""
        means = {name: total / self.counts[name] for name, total in self.sums.items()}
        self.sums, self.counts = {}, {}
        return {**fields, **means}

    def state(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}


@dataclass
class _Run:
    """Everything one call of :meth:`Trainer.fit` works on."""

    model: nn.Module
    phases: tuple[Phase, ...]
    optimizers: dict[str, torch.optim.Optimizer]
    ema: EMA | None
    scalers: dict[str, torch.amp.GradScaler]
    x: torch.Tensor
    y: torch.Tensor | None
    device: torch.device
    checkpoint_path: Path | None
    fingerprint: dict[str, Any]
    step: int = 0
    elapsed: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    meter: _LossMeter = field(default_factory=_LossMeter)

    def result(self, stopped_by: Literal["steps", "time"]) -> TrainResult:
        return TrainResult(
            steps=self.step,
            elapsed=self.elapsed,
            history=self.history,
            ema_state=None if self.ema is None else self.ema.state_dict(),
            stopped_by=stopped_by,
        )


def _check_precision(precision: str, device: torch.device) -> None:
    """Refuse fp16 off CUDA: CPU float16 kernels are slow or missing, and bf16 needs no loss scaling."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"precision fp16 needs a CUDA GPU, but training runs on {device.type} here; "
                          "use bf16 (CPU or GPU) or fp32")


def _autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast to ``precision``'s dtype on ``device``; no context at all for fp32, which stays bit for bit
    what it was before mixed precision existed."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _seed(*parts: int | str) -> int:
    """A 63-bit seed that is a pure function of ``parts``, stable across processes and Python versions."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _seed_global_rng(seed: int, device: torch.device) -> None:
    """Seed the global CPU RNG and the training GPU's RNG only (``torch.manual_seed`` seeds every GPU)."""
    torch.random.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def _json_normalised(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint as it will read back from the checkpoint (tuples become lists)."""
    try:
        return json.loads(json.dumps(fingerprint))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"fingerprint must be JSON-compatible: {error}") from None


def _check_arguments(
    model: nn.Module, phases: tuple[Phase, ...], x: torch.Tensor, y: torch.Tensor | None
) -> None:
    """Fail early, with a clear message, on inputs the loop cannot use."""
    if not phases:
        raise ConfigError("fit needs at least one phase")
    names = [phase.name for phase in phases]
    if len(set(names)) != len(names):
        raise ConfigError(f"phase names must be unique, got {names}")
    owned = {id(parameter) for parameter in model.parameters()}
    for phase in phases:
        if phase.repeats < 1:
            raise ConfigError(f"phase {phase.name!r} has repeats={phase.repeats}; it must be at least 1")
        if any(id(parameter) not in owned for parameter in phase.module.parameters()):
            raise ConfigError(
                f"phase {phase.name!r} updates parameters that are not in model; "
                "pass the whole network as model"
            )
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"x must hold at least one record, got shape {tuple(x.shape)}")
    if y is not None and y.shape != (len(x),):
        raise DataError(f"y must have shape ({len(x)},) to match x, got {tuple(y.shape)}")
