"""The top-level verbs: ``genlab.fit`` trains a family on data, ``genlab.load`` reads a run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from genlab.config import from_dict, to_dict
from genlab.data.dataset import Dataset
from genlab.data.registry import load as load_dataset
from genlab.errors import CheckpointError, unknown_choice
from genlab.models import FAMILIES, GenerativeModel
from genlab.models.base import read_run_config
from genlab.train import Callback, TrainConfig


def family_class(name: str) -> type[GenerativeModel]:
    """The model class of family ``name``, or a ConfigError listing the families."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise unknown_choice("family", name, list(FAMILIES)) from None


def fit(
    data: Dataset | np.ndarray | str | Path,
    *,
    family: str = "gaussian",
    train: TrainConfig | dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    data_dir: str | Path | None = None,
    **options: Any,
) -> GenerativeModel:
    """Train a model of ``family`` on ``data`` and return it.

    Args:
        data: a :class:`Dataset`, raw records, a built-in dataset name or a path (see ``genlab.datasets``).
        family: one of ``genlab.models.FAMILIES``.
        train: a TrainConfig, or a dict of fields overriding the family's default training settings.
        run_dir: where resumable checkpoints go; ``resume=True`` continues from them.
        callbacks: Trainer callbacks.
        data_dir: folder holding downloaded data such as ``mnist.npz``.
        **options: the family's config fields, e.g. ``n_components=8``.
    """
    if isinstance(data, (str, Path)):
        data = load_dataset(data, data_dir=data_dir)
    model = family_class(family)(**options)
    if isinstance(train, dict):
        train = from_dict(TrainConfig, {**to_dict(model.default_train_config()), **train}, what="training")
    return model.fit(data, train=train, run_dir=run_dir, resume=resume, callbacks=callbacks)


def load(directory: str | Path) -> GenerativeModel:
    """Load the model saved in run directory ``directory``, whatever its family."""
    config = read_run_config(Path(directory))
    family = config.get("family")
    if family not in FAMILIES:
        raise CheckpointError(f"{directory}/config.json names an unknown family {family!r}; "
                              f"known: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[family].from_pretrained(directory)
