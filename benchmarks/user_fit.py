"""Fit as a user would, through ``genlab.fit``, and record what the run was: the benchmarks' shared first step.

``fit_as_user`` calls ``genlab.fit(data, family=..., train={**train, "max_time": T}, run_dir=..., **options)`` (what
``genlab fit DATA --max-time T`` runs: genlab's defaults under the options given) and writes into the benchmark's
report its wall-clock and CPU seconds, the steps taken, the model options with the parameter count, and the
training settings; with a run directory it also saves the loadable run there, as ``genlab fit --out`` does.
"""

from __future__ import annotations

import ast
import time
from pathlib import Path
from typing import Any

import genlab
from genlab.config import to_dict


def literal_options(items: list[str]) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` from the command line as a dict, each value a Python literal."""
    return {key: ast.literal_eval(value) for key, value in (item.split("=", 1) for item in items)}


def fit_as_user(report: dict, data: str, *, max_time: float, family: str | None = None, train: dict | None = None,
                run_dir: Path | None = None, **options: Any) -> Any:
    """The fitted model; ``report`` gains ``train_wall_s``, ``train_cpu_s``, ``train_steps``, ``model`` and
    ``train`` (module doc)."""
    start, cpu = time.perf_counter(), time.process_time()
    model = genlab.fit(data, family=family, train={**(train or {}), "max_time": max_time}, run_dir=run_dir, **options)
    report["train_wall_s"], report["train_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
    if run_dir is not None:   # as genlab fit --out leaves it: the checkpoint and the loadable model
        model.save_pretrained(run_dir)
    report["train_steps"] = model.history_[-1]["step"] if model.history_ else None
    report["model"] = {**to_dict(model.config), "parameters": sum(p.numel() for p in model.network_.parameters())}
    report["train"] = to_dict(model.train_config_)
    return model
