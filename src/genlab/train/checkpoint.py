"""The Trainer's resumable state as one safetensors file, written atomically.

No pickle: tensors are stored by name and everything else as JSON in the safetensors header, so a
checkpoint can be inspected and loaded without executing code. Layout:

* tensors ``model.<name>``: ``model.state_dict()``;
* tensors ``ema.<name>``: the exponential moving average, when there is one;
* tensors ``optim.<phase>.<param index>.<state name>``: each optimiser's per-parameter state (Adam's
  ``exp_avg``, ``exp_avg_sq`` and scalar ``step``);
* metadata ``genlab_trainer_state`` (JSON): format version, step, elapsed seconds, history, pending
  log sums, each optimiser's ``param_groups``, each phase's fp16 loss-scaler state (scale and growth
  tracker; absent before mixed precision existed, read as none) and the caller's fingerprint (the full
  run config).

A write goes to a temporary file in the same folder, is flushed to disk, and replaces the previous
checkpoint with one rename, so a crash at any moment leaves either the old or the new file, never half
of one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from genlab.errors import CheckpointError
from genlab.io import atomic_path

FORMAT_VERSION = 1
_METADATA_KEY = "genlab_trainer_state"
_MISSING = object()


@dataclass
class TrainerCheckpoint:
    """Everything needed to continue training exactly where it stopped.

    Attributes:
        step: training steps completed.
        elapsed: seconds of training so far.
        history: the Trainer's log records so far.
        pending: loss sums and counts accumulated since the last log record.
        model: ``model.state_dict()`` (CPU tensors when loaded).
        ema: the EMA state keyed like ``model``, or ``None``.
        optimizers: ``optimizer.state_dict()`` per phase name.
        fingerprint: the caller's JSON-compatible description of the run (its full config).
        scalers: ``GradScaler.state_dict()`` per phase name (fp16 training only; plain numbers).
    """

    step: int
    elapsed: float
    history: list[dict[str, Any]]
    pending: dict[str, Any]
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None
    optimizers: dict[str, dict[str, Any]]
    fingerprint: dict[str, Any]
    scalers: dict[str, dict[str, Any]] = field(default_factory=dict)


def save_checkpoint(path: Path, checkpoint: TrainerCheckpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically (creating the folder if needed).

    Raises:
        OSError: when the disk refuses the write; the previous file at ``path`` is then untouched.
    """
    path = Path(path)
    tensors = {f"model.{name}": _cpu_copy(value) for name, value in checkpoint.model.items()}
    if checkpoint.ema is not None:
        tensors.update({f"ema.{name}": _cpu_copy(value) for name, value in checkpoint.ema.items()})
    param_groups = {}
    for phase, state_dict in checkpoint.optimizers.items():
        param_groups[phase] = state_dict["param_groups"]
        for index, param_state in state_dict["state"].items():
            for name, value in param_state.items():
                tensors[f"optim.{phase}.{index}.{name}"] = _cpu_copy(value)
    header = {
        "version": FORMAT_VERSION,
        "step": checkpoint.step,
        "elapsed": checkpoint.elapsed,
        "history": checkpoint.history,
        "pending": checkpoint.pending,
        "has_ema": checkpoint.ema is not None,
        "param_groups": param_groups,
        "fingerprint": checkpoint.fingerprint,
        "scalers": checkpoint.scalers,
    }
    metadata = {_METADATA_KEY: json.dumps(header)}

    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)


def load_checkpoint(path: Path) -> TrainerCheckpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: when ``path`` does not exist, or is not a complete genlab trainer checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"nothing to resume at {path}: the checkpoint file does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        header = json.loads(metadata[_METADATA_KEY])
        version = header["version"]
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint {path} has format version {version}; this genlab reads version {FORMAT_VERSION}"
            )
        optimizers = {
            phase: {"state": {}, "param_groups": [_group_from_json(group) for group in groups]}
            for phase, groups in header["param_groups"].items()
        }
        model, ema = {}, {}
        for key, value in tensors.items():
            kind, _, rest = key.partition(".")
            if kind == "model":
                model[rest] = value
            elif kind == "ema":
                ema[rest] = value
            elif kind == "optim":
                phase, index, name = rest.rsplit(".", 2)
                optimizers[phase]["state"].setdefault(int(index), {})[name] = value
            else:
                raise ValueError(f"unexpected tensor {key!r}")
        return TrainerCheckpoint(
            step=int(header["step"]),
            elapsed=float(header["elapsed"]),
            history=list(header["history"]),
            pending=dict(header["pending"]),
            model=model,
            ema=ema if header["has_ema"] else None,
            optimizers=optimizers,
            fingerprint=dict(header["fingerprint"]),
            scalers=dict(header.get("scalers", {})),
        )
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a genlab trainer checkpoint "
            f"({type(error).__name__}: {error})"
        ) from None


def check_fingerprint(path: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse to resume a run whose configuration changed since the checkpoint was written.

    Nested dicts are compared key by key (``"train.steps"``); both sides must be JSON-normalised.

    Raises:
        CheckpointError: naming the first differing keys with both values.
    """
    old, new = _flatten(saved), _flatten(current)
    keys = list(new) + [key for key in old if key not in new]
    differing = [key for key in keys if old.get(key, _MISSING) != new.get(key, _MISSING)]
    if not differing:
        return
    shown = "; ".join(
        f"{key}: checkpoint {_show(old.get(key, _MISSING))}, now {_show(new.get(key, _MISSING))}"
        for key in differing[:5]
    )
    more = f" (and {len(differing) - 5} more)" if len(differing) > 5 else ""
    raise CheckpointError(
        f"cannot resume from {path}: the configuration differs from the one that wrote it: {shown}{more}. "
        "Resume with the original configuration, or start a new run."
    )


def _show(value: Any) -> str:
    return "(absent)" if value is _MISSING else json.dumps(value)


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; an empty dict stays as a leaf."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _group_from_json(group: dict[str, Any]) -> dict[str, Any]:
    """JSON turned tuples (Adam's ``betas``) into lists; turn them back, except the parameter indices."""
    return {
        key: tuple(value) if isinstance(value, list) and key != "params" else value
        for key, value in group.items()
    }


def _cpu_copy(value: torch.Tensor) -> torch.Tensor:
    """A contiguous CPU copy: safetensors refuses tensors that share memory (e.g. tied weights)."""
    return value.detach().to("cpu", copy=True).contiguous()
