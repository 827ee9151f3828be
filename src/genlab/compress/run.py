"""``compress(run, out, ...)``: prune and/or quantise a saved run into a new, ordinary run directory.

The order is fixed: prune (global magnitude, or structured hidden units), fine-tune the pruned network
for ``steps`` Trainer steps on ``data`` with its family's own objective (masks kept, so pruned weights
stay zero), then quantise the linear layers to int8. The result is written with ``save_pretrained``
(so ``genlab.load``, ``genlab sample`` and ``genlab eval`` read it like any run) into a temporary folder
that is renamed to ``out`` at the end: on any error nothing is written. Its ``config.json`` gains

    "compression": {"parent": {"run": ..., "family": ..., "weights_sha256": ...},
                    "transforms": [{"method": "prune", ...}, {"method": "quantize", ...}]}

naming the parent by its weights' SHA-256 and listing what was done, which loading replays
(:mod:`genlab.compress.layout`) so the int8 tensors and shrunk matrices load strictly.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any


from genlab.compress import prune as pruning
from genlab.compress.distill import distill as distill_student
from genlab.compress.quantize import DTYPES, quantize_linear
from genlab.data.dataset import Dataset
from genlab.data.registry import load as load_dataset
from genlab.errors import ConfigError, NotSupportedError, OutputExistsError, unknown_choice
from genlab.compress.layout import KEY, compression_of
from genlab.models.base import GenerativeModel, load_run, read_run_config

#: Families whose sampling network compress can transform (the Gaussian families have no such network).
FAMILIES: tuple[str, ...] = ("diffusion", "gan", "transformer", "vae")


def compress(run: str | Path, out: str | Path, *, quantize: str | None = None, prune: float | None = None,
             structured: bool = False, steps: int = 0, data: str | Path | Dataset | None = None,
             data_dir: str | Path | None = None, lr: float | None = None, distill: dict[str, Any] | None = None,
             overwrite: bool = False) -> Path:
    """Write a compressed copy of run ``run`` into ``out`` (module doc) and return ``out``.

    Args:
        run: a run directory written by ``genlab fit`` / ``save_pretrained``.
        out: the new run directory.
        quantize: ``"int8"`` for dynamic int8 linear layers, or ``None``.
        prune: share of weights (unstructured) or hidden units (``structured``) to remove, in ``(0, 1)``.
        structured: remove whole hidden units of linear pairs instead of single weights.
        steps: Trainer steps of fine-tuning after pruning (0 = none); needs ``data``.
        data: the training data of the fine-tune: a Dataset, built-in name or path.
        data_dir: folder of downloaded data such as ``mnist.npz``.
        lr: fine-tuning learning rate (default: the parent's, divided by 10).
        distill: train a smaller GPT student for ``steps`` on ``data`` instead of pruning:
            ``{"student": {"n_layer": 2}, "temperature": 2.0, "alpha": 0.5, "init": "teacher"}``
            (:func:`genlab.compress.distill.distill`); quantisation may follow.
        overwrite: replace an existing ``out``.

    Raises:
        ConfigError: no transform asked for, an unknown dtype, an amount outside ``(0, 1)``, bad ``steps``,
            ``steps`` without pruning or data, ``out`` equal to ``run``.
        NotSupportedError: a family without a compressible network, or a table model for pruning.
        OutputExistsError: ``out`` exists and ``overwrite`` is false.
        CheckpointError: ``run`` is not a valid run (e.g. its weights fail their checksum).
    """
    run, out = Path(run), Path(out)
    if quantize is None and prune is None and distill is None:
        raise ConfigError("nothing to do: pass quantize='int8', prune=AMOUNT and/or distill")
    if distill is not None and prune is not None:
        raise ConfigError("distill and prune are alternatives: compress the student in a second run")
    if distill is not None and (not steps or data is None):
        raise ConfigError("distillation trains the student: give steps > 0 and the training data")
    if quantize is not None and quantize not in DTYPES:
        raise unknown_choice("quantisation dtype", quantize, DTYPES)
    amount = None if prune is None else pruning.check_amount(prune)
    if structured and amount is None:
        raise ConfigError("structured applies to pruning: give a pruning amount too")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ConfigError(f"steps must be a non-negative integer, got {steps!r}")
    if steps and distill is None and (amount is None or data is None):
        raise ConfigError("fine-tuning (steps > 0) follows pruning and needs the training data")
    if out.resolve() == run.resolve():
        raise ConfigError(f"the compressed run must go to a new directory, not its parent {run}")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists; pass overwrite to replace it")
    family = read_run_config(run).get("family")
    if family not in FAMILIES:
        raise NotSupportedError(f"the {family} family cannot be compressed; families that can: {', '.join(FAMILIES)}")
    model = load_run(run)
    parent = {"run": str(run), "family": family, "weights_sha256": read_run_config(run)["weights_sha256"]}
    transforms: list[dict[str, Any]] = list((compression_of(model) or {}).get("transforms", []))  # a parent's own
    if distill is not None:
        dataset = data if isinstance(data, Dataset) else load_dataset(data, data_dir=data_dir)
        options = {k: v for k, v in distill.items() if k != "student"}
        train = None if lr is None else {"lr": lr}
        model, record = distill_student(model, dataset, student=distill.get("student", {}), steps=steps,
                                        train=train, **options)
        transforms = [*transforms, record]
    if amount is not None:
        transforms.append(_prune(model, amount, structured, steps, data, data_dir, lr))
    if quantize is not None:
        model.network_.cpu()
        transforms.append(quantize_linear(model.network_, quantize))
    model.network_.eval()
    _write(model, out, {"parent": parent, "transforms": transforms}, overwrite)
    return out


def _prune(model: GenerativeModel, amount: float, structured: bool, steps: int, data: Any,
           data_dir: str | Path | None, lr: float | None) -> dict[str, Any]:
    """Prune ``model.network_`` in place, fine-tune it for ``steps``; the transform's record."""
    if model.data_.modality == "tables":
        raise NotSupportedError("pruning table models is not supported (their output heads are per column)")
    network = model.network_
    before = sum(p.numel() for p in network.parameters())
    record: dict[str, Any] = {"method": pruning.METHOD, "amount": amount, "structured": structured,
                              "fine_tune_steps": steps}
    if structured:
        record["shapes"] = pruning.structured(network, amount)
        fine_tune(model, steps, data, data_dir, lr)
        record["parameters"] = [before, sum(p.numel() for p in network.parameters())]
    else:
        masked = pruning.global_magnitude(network, amount)
        fine_tune(model, steps, data, data_dir, lr)
        record["sparsity"] = pruning.make_permanent(masked)
    return record


def fine_tune(model: GenerativeModel, steps: int, data: Any, data_dir: str | Path | None = None,
              lr: float | None = None) -> None:
    """``steps`` Trainer steps of the family's own objective on ``data``'s training split (no EMA)."""
    if not steps:
        return
    dataset = data if isinstance(data, Dataset) else load_dataset(data, data_dir=data_dir)
    parent = model.train_config_ or model.default_train_config()
    train = replace(parent, steps=steps, max_time=None, lr=lr if lr is not None else parent.lr / 10,
                    warmup_steps=0, ema_decay=None, eval_every=0, checkpoint_every=0)
    model.fine_tune(dataset, train=train)
    model.network_.cpu().eval()


def _write(model: GenerativeModel, out: Path, compression: dict[str, Any], overwrite: bool) -> None:
    """``save_pretrained`` (which writes the compression record into ``config.json``) into a temporary
    sibling of ``out``, then move it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    model.extension_records_[KEY] = compression
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        if out.exists() and overwrite:
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
