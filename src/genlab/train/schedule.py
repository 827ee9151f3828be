"""The learning-rate schedule: linear warm-up, then a cosine decay over the training budget.

Both functions are pure, so the learning rate of any step can be recomputed after a resume from the
step number (or the elapsed time) alone.
"""

from __future__ import annotations

import math


def budget_progress(
    step: int,
    elapsed: float,
    *,
    steps: int | None,
    max_time: float | None,
    warmup_steps: int,
) -> float:
    """Return how far through the decay part of the budget training is.

    With a step budget the decay starts after warm-up: ``p = (step - warmup_steps) / (steps -
    warmup_steps)``. With only a time budget it is the share of wall clock used, ``p = elapsed /
    max_time``.

    Args:
        step: index of the step about to run, from 0.
        elapsed: seconds of training so far.
        steps: step budget, or ``None`` to schedule by time.
        max_time: time budget in seconds (used only when ``steps`` is ``None``).
        warmup_steps: linear warm-up length in steps.

    Returns:
        ``p`` in ``[0, 1]``.
    """
    if steps is not None:
        p = (step - warmup_steps) / max(1, steps - warmup_steps)
    else:
        assert max_time is not None, "TrainConfig guarantees steps or max_time"
        p = elapsed / max_time
    return min(1.0, max(0.0, p))


def lr_multiplier(step: int, progress: float, *, warmup_steps: int, min_lr_ratio: float) -> float:
    """Return the factor applied to every base learning rate at this step.

    ``m = min(warm, cos)`` with the linear warm-up ``warm = (step + 1) / warmup_steps`` (1 without
    warm-up) and the cosine decay (Loshchilov & Hutter 2017, SGDR, eq. 5 without restarts)
    ``cos = r + (1 - r) * (1 + cos(pi * p)) / 2`` from 1 at ``p = 0`` to ``r = min_lr_ratio`` at ``p = 1``.
    Taking the minimum keeps the schedule continuous when the cosine runs on wall clock and has already
    started during warm-up.

    Args:
        step: index of the step about to run, from 0.
        progress: ``p`` in ``[0, 1]`` from :func:`budget_progress`.
        warmup_steps: linear warm-up length in steps (0 for none).
        min_lr_ratio: ``r``, the final factor, in ``[0, 1]``.

    Returns:
        The multiplier, in ``(0, 1]``.
    """
    warm = 1.0 if warmup_steps <= 0 else min(1.0, (step + 1) / warmup_steps)
    cosine = min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return min(warm, cosine)
