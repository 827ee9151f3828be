"""Training configuration shared by every gradient-trained family."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Valid values of ``TrainConfig.precision``.
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How long and how to optimise.

    The budget is ``steps`` training steps, or ``max_time`` seconds (of wall clock, or of this process's
    CPU time with ``clock="cpu"``), or whichever ends first when both are set. The learning rate warms up linearly for ``warmup_steps`` and then follows a cosine
    from ``lr`` down to ``lr * min_lr_ratio`` over the budget (by step count when ``steps`` is set,
    otherwise by elapsed time).

    Attributes:
        steps: number of training steps (one step = every phase's repeats once), or ``None``.
        max_time: time budget in seconds, or ``None``.
        clock: what ``max_time`` counts: ``"wall"`` seconds, or ``"cpu"`` seconds of this process (all
            its threads; ``time.process_time``), which other jobs on the machine barely change, so
            budgets stated in CPU minutes can be kept on a shared machine.
        batch_size: records per batch per process.
        optimizer: ``"adam"`` or ``"adamw"`` (decoupled weight decay, Loshchilov & Hutter 2019).
        lr: peak learning rate.
        betas: Adam's moment decay rates.
        weight_decay: AdamW decay (ignored by plain Adam unless non-zero, where it is L2).
        warmup_steps: linear warm-up length in steps.
        min_lr_ratio: final learning rate as a share of ``lr``.
        grad_clip: maximum global gradient norm per phase, or ``None`` to leave gradients alone.
        ema_decay: decay of the exponential moving average of weights, or ``None`` for no EMA.
        eval_every: run the evaluation callback every this many steps (0 = never).
        checkpoint_every: write a resumable checkpoint every this many steps (0 = only at the end).
        log_every: record losses in the history every this many steps.
        seed: seed of every random draw in training (batches, noise, initialisation).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        precision: arithmetic of each phase's loss computation. ``"fp32"`` (default): no autocast, bit
            for bit what genlab always did. ``"bf16"``: ``torch.autocast`` to bfloat16 (CPU or CUDA); its
            exponent range is float32's, so no loss scaling is needed. ``"fp16"``: autocast to float16
            with a ``torch.amp.GradScaler`` per phase (Micikevicius et al. 2018), CUDA only: refused
            here with ``device="cpu"``, and by the Trainer (ConfigError) when ``"auto"`` finds no GPU.
            Weights, optimiser state, EMA and sampling stay float32 in every case.
        compile: train through ``torch.compile`` of each phase's module (the saved weights and
            checkpoints are the uncompiled module's, never ``_orig_mod.`` keys). The first step pays the
            compilation (tens of seconds on a GPU machine, minutes on a busy CPU); worth it for long
            GPU runs. Off by default: on a CPU a small GPT's float32 step is bound by its matrix
            products, which inductor leaves to the same BLAS, so compiling saved 0-3 % of a step
            against ~20 s of cold compile (benchmarks/gpt_speed.py). A CPU without a C++ compiler
            (inductor's CPU kernels are C++) trains eagerly with a warning instead.
    """

    steps: int | None = 2000
    max_time: float | None = None
    clock: Literal["wall", "cpu"] = "wall"
    batch_size: int = 256
    optimizer: Literal["adam", "adamw"] = "adamw"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0
    ema_decay: float | None = None
    eval_every: int = 0
    checkpoint_every: int = 0
    log_every: int = 50
    seed: int = 0
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    compile: bool = False

    def __post_init__(self) -> None:
        if self.steps is None and self.max_time is None:
            raise ValueError("set steps or max_time (or both)")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.max_time is not None and self.max_time <= 0:
            raise ValueError(f"max_time must be positive, got {self.max_time}")
        if self.clock not in ("wall", "cpu"):
            raise ValueError(f"clock must be wall or cpu, got {self.clock!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be positive, got {self.grad_clip}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.precision == "fp16" and self.device == "cpu":
            raise ValueError("precision fp16 needs a CUDA GPU (device cpu was asked for); "
                             "use bf16 on CPU, or fp32")
