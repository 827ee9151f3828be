"""The top-level verbs: ``genlab.fit`` trains a family on data, ``genlab.load`` reads a run directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from genlab.compress.layout import CompressionLayout
from genlab.data.dataset import Dataset
from genlab.data.registry import load as load_dataset
from genlab.defaults import Resolved, recommend_family, resolve
from genlab.errors import unknown_choice
from genlab.models import FAMILIES, GenerativeModel
from genlab.models.base import load_run, training_arrays
from genlab.rules.attach import RulesFile
from genlab.train import Callback, TrainConfig

#: Features that keep a share of a run directory; each registers its run extension when imported, so
#: ``genlab.load`` restores them (:mod:`genlab.models.hooks`).
RUN_EXTENSIONS = (CompressionLayout, RulesFile)


def family_class(name: str) -> type[GenerativeModel]:
    """The model class of family ``name``, or a ConfigError listing the families."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise unknown_choice("family", name, list(FAMILIES)) from None


def fit(
    data: Dataset | np.ndarray | str | Path,
    *,
    family: str | None = None,
    train: TrainConfig | dict[str, Any] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    data_dir: str | Path | None = None,
    **options: Any,
) -> GenerativeModel:
    """Train a model of ``family`` on ``data`` with the settings genlab chose for such data, and return it.

    Options the user does not pass are chosen per modality from the data (:mod:`genlab.defaults`: the
    settings the benchmarks measured), and are saved in the run's ``config.json`` like every other.

    Args:
        data: a :class:`Dataset`, raw records, a built-in dataset name or a path (see ``genlab.datasets``).
        family: one of ``genlab.models.FAMILIES``; ``None`` picks the family the benchmarks rank best for
            the data's modality (:func:`genlab.defaults.recommend_family`).
        train: a TrainConfig (used as it is), or a dict of fields over the chosen training settings; a
            ``steps`` or ``max_time`` in it replaces the default budget.
        run_dir: where resumable checkpoints go; ``resume=True`` continues from them.
        callbacks: Trainer callbacks.
        data_dir: folder holding downloaded data such as ``mnist.npz``.
        **options: the family's config fields, e.g. ``n_components=8``.
    """
    if isinstance(data, (str, Path)):
        data = load_dataset(data, data_dir=data_dir)
    budget = train.get("max_time") if isinstance(train, dict) else getattr(train, "max_time", None)
    settings = configure(data, family=family, options=options,
                         train=train if isinstance(train, dict) else None, max_time=budget)
    model = family_class(settings.family)(**settings.resolved.model)
    train = train if isinstance(train, TrainConfig) else settings.resolved.train
    return model.fit(data, train=train, run_dir=run_dir, resume=resume, callbacks=callbacks)


@dataclass(frozen=True)
class Settings:
    """A family and its resolved settings for one dataset (what :func:`configure` returns).

    Attributes:
        family: the family to fit.
        resolved: its model options and TrainConfig, with the values chosen from the data.
        family_why: why the family was picked, or ``None`` when the user named it.
    """

    family: str
    resolved: Resolved
    family_why: str | None


def configure(data: Dataset | np.ndarray, *, family: str | None, options: dict[str, Any] | None = None,
              train: dict[str, Any] | None = None, max_time: float | None = None) -> Settings:
    """Choose the family (when ``family`` is ``None``) and the settings a fit of ``data`` will use.

    Returns:
        :class:`Settings`: the family, the resolved model options and TrainConfig with the data-chosen
        values (``resolved.chosen``), and why the family was picked (``None`` when the user named it).
    """
    _, _, info = training_arrays(data, None)
    family_why = None
    if family is None:
        pick = recommend_family(info.modality, max_time=max_time)
        family, family_why = pick.family, pick.why
    x = data.x_train if isinstance(data, Dataset) else data
    resolved = resolve(family_class(family), info, x, model_options=options, train_options=train)
    return Settings(family, resolved, family_why)


def load(directory: str | Path) -> GenerativeModel:
    """Load the model saved in run directory ``directory``, whatever its family (rules, compression and
    every other feature's share of the run included)."""
    return load_run(directory)
