"""Settings chosen from the data: what ``genlab fit DATA`` and :func:`genlab.fit` use when the user
passes none.

A family's config dataclass holds settings that are right for no modality in particular; what its
benchmarks measured to work differs between points, images, tables and text (a GAN on 2-D mixtures
needs packing, a high decaying learning rate and rejection sampling; on MNIST it needs DCGAN's).
Each family declares those per modality in ``data_defaults(info, x)``, and :func:`resolve` layers, from
weakest to strongest:

    config dataclass defaults  <  family.default_train_config()  <  family.data_defaults(...)  <  the user's options

so any option the user passes wins, and the values the data chose are returned (``Resolved.chosen``) for
the CLI to print; they are saved in ``config.json`` like every other setting.

A budget on the command line or in ``train`` (``steps`` or ``max_time``) replaces the family's default
budget whole: ``max_time=120`` alone means "two minutes", not "two minutes or 5,000 steps".

:func:`recommend_family` is what ``genlab fit DATA`` without ``--family`` uses: per modality, the family
genlab's own benchmarks rank best within the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genlab.config import from_dict, to_dict
from genlab.train import TrainConfig

#: Training fields that make up a budget: given either, the family's default budget is dropped.
BUDGET_FIELDS = ("steps", "max_time")


@dataclass(frozen=True)
class DataDefaults:
    """What a family chooses for one kind of data.

    Attributes:
        model: config fields of the family, e.g. ``{"pack": 4, "drs": True}``.
        train: :class:`~genlab.train.TrainConfig` fields other than the budget.
        why: where the values come from (the benchmark that measured them), one short sentence.
    """

    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    why: str = ""


@dataclass(frozen=True)
class Resolved:
    """The settings a fit will use.

    Attributes:
        model: keyword options to build the family's model with (data defaults plus the user's).
        train: the complete training configuration.
        chosen: the data-chosen values the user did not override, ``{"model.pack": 4, "train.lr": 2e-3}``.
        why: the family's reason for them (empty when nothing was chosen).
    """

    model: dict[str, Any]
    train: TrainConfig
    chosen: dict[str, Any]
    why: str

    def describe(self) -> str:
        """One line for the CLI: ``"pack=4, drs=True, lr=0.002 (why)"``, or ``""`` when nothing was chosen."""
        if not self.chosen:
            return ""
        values = ", ".join(f"{name.split('.', 1)[1]}={value}" for name, value in self.chosen.items())
        return f"{values} ({self.why})" if self.why else values


def resolve(model_class: Any, info: Any, x: Any, *, model_options: dict[str, Any] | None = None,
            train_options: dict[str, Any] | None = None) -> Resolved:
    """Layer the family's defaults for data ``info`` (records ``x``) under the user's options.

    Args:
        model_class: a :class:`~genlab.models.base.GenerativeModel` subclass.
        info: the training data's :class:`~genlab.models.base.DataInfo`.
        x: the raw training records (some defaults look at them, e.g. the number of mixture components).
        model_options: config fields the user set.
        train_options: TrainConfig fields the user set; ``steps`` or ``max_time`` replaces the budget.

    Raises:
        ConfigError: an unknown option or a value of the wrong type (listing the valid ones).
    """
    model_options, train_options = dict(model_options or {}), dict(train_options or {})
    bare = model_class(**model_options)   # unknown or ill-typed options fail here, before any data-driven work
    defaults = model_class.data_defaults(info, x)
    train = to_dict(bare.default_train_config())
    train.update(defaults.train)
    if any(name in train_options for name in BUDGET_FIELDS):
        for name in BUDGET_FIELDS:
            train[name] = None
    train.update(train_options)
    chosen = {f"model.{key}": value for key, value in defaults.model.items() if key not in model_options}
    chosen.update({f"train.{key}": value for key, value in defaults.train.items() if key not in train_options})
    return Resolved(model={**defaults.model, **model_options},
                    train=from_dict(TrainConfig, train, what="training"), chosen=chosen,
                    why=defaults.why if chosen else "")


@dataclass(frozen=True)
class Recommendation:
    """The family to fit and why, in one line."""

    family: str
    why: str


def recommend_family(modality: str, *, max_time: float | None = None) -> Recommendation:
    """The family genlab's benchmarks rank best for ``modality`` within a budget of ``max_time`` seconds.

    - points: diffusion (ring8/grid25, 120 CPU s: all modes, 97-98 % high-quality samples, reverse KL
      <= 0.006; the GAN with rejection sampling is as good but needs 110 s and a critic).
    - images: diffusion (MNIST: Fréchet 9.3 against the GAN's 24.8 and the VAE's 45.5).
    - tables: the Gaussian copula, fitted in seconds (Adult quality 0.966); given at least 10 minutes,
      diffusion (TabDDPM, quality 0.979 and efficacy F1 0.786 in 10 CPU minutes).
    - text, smiles, music: the transformer, the only family that models token sequences.
    """
    if modality in ("text", "smiles", "music"):
        return Recommendation("transformer", f"{modality} is modelled as token sequences, by the transformer")
    if modality == "tables":
        if max_time is not None and max_time >= 600:
            return Recommendation("diffusion", "TabDDPM led on Adult in 10 CPU minutes (quality 0.979, "
                                               "efficacy F1 0.786; benchmarks/tables_adult.py)")
        return Recommendation("gaussian", "the Gaussian copula fits in seconds (Adult quality 0.966; diffusion "
                                          "needs --max-time 10m for 0.979)")
    if modality == "images":
        return Recommendation("diffusion", "diffusion led on MNIST (Fréchet 9.3 vs GAN 24.8, VAE 45.5; "
                                           "benchmarks/mnist_families.py)")
    return Recommendation("diffusion", "diffusion covered every mode of ring8 and grid25 in 120 CPU s "
                                       "(benchmarks/diffusion_points.py)")
