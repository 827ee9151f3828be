"""The contract every generative family implements, and its safe on-disk format.

A family is an objective and a sampler over a network; a codec maps the modality's raw records to
the tensors the network sees (see ``genlab.data.codecs``). The public verbs work on raw records:

- ``fit(data)`` learns the codec and the network, returns ``self``;
- ``sample(n, condition=..., generator=...)`` returns ``n`` raw records (a DataFrame for tables);
- ``log_prob(x)``, ``encode(x)``, ``decode(z)`` where the family defines them, else
  :class:`~genlab.errors.NotSupportedError`;
- ``save_pretrained(dir)`` / ``from_pretrained(dir)`` write and read ``config.json``,
  ``model.safetensors`` and ``codec.json``. No pickle: weights are safetensors, everything else JSON.
  ``config.json`` records the SHA-256 of the weights so a truncated or edited file is refused.

A subclass supplies ``family``, ``config_class``, ``_build_network`` and either ``_phases`` (gradient
training by the :class:`~genlab.train.Trainer`) or its own ``_fit_network`` (e.g. EM), plus
``_sample_network`` and, where defined, ``_log_prob_network``.

Tables: a family that models them sets ``supports_tables = True`` and may override
``_make_table_codec`` (the default is the CTGAN-style :class:`~genlab.data.tables.TableCodec`: mode
normalisation and one-hot categories). The family sees the encoded float matrix ``(n, codec.width)``
and reads its layout from ``self.codec_.blocks`` (column, kind, start, stop of each block: ``scalar``,
``modes``, ``categories``, ``missing``, ``interval``), already set when ``_build_network`` runs. A table
condition reaches ``_sample_network`` as a dict ``{column: value}`` already checked and cast by
``TableCodec.parse_condition``; a family that cannot condition tables raises NotSupportedError.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence, TypeVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from genlab.config import from_dict, to_dict
from genlab.data.codecs import CODECS as CONTINUOUS_CODECS, Codec, codec_for
from genlab.data.dataset import Dataset
from genlab.data.tables import TableCodec
from genlab.defaults import DataDefaults
from genlab.errors import ConfigError, DataError, NotSupportedError
from genlab.models.data_info import DataInfo, check_count, class_log_prior, data_digest, training_arrays
from genlab.models.hooks import SampleProcessor, SampleRequest, compose
from genlab.models.options import SampleOption
from genlab.models.persistence import (CHECKPOINT_FILE, Persistence, families, load_run, read_run_config,
                                       register_family)
from genlab.train import Batch, Callback, Phase, TrainConfig, Trainer

#: Names other modules import from here: the contract's vocabulary, wherever it is defined.
__all__ = ["DataInfo", "FitContext", "GenerativeModel", "NotFittedError", "check_count", "class_log_prior",
           "load_run", "read_run_config", "training_arrays"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound="GenerativeModel")

#: Test records scored at each periodic validation (``TrainConfig.eval_every > 0``).
VALIDATION_RECORDS = 1024


@dataclass
class FitContext:
    """Everything ``_fit_network`` needs besides the data: training settings and where to checkpoint."""

    train: TrainConfig
    callbacks: Sequence[Callback] = ()
    checkpoint_path: Path | None = None
    resume: bool = False
    fingerprint: dict[str, Any] = field(default_factory=dict)
    #: Held-out encoded records and labels for periodic validation (``TrainConfig.eval_every``), or None.
    validation: tuple[torch.Tensor, torch.Tensor | None] | None = None


class GenerativeModel(Persistence, ABC):
    """Base class of every family. ``__init__`` only stores the config; learned state ends in ``_``."""

    family: ClassVar[str]
    config_class: ClassVar[type]
    #: Keyword options ``sample`` accepts beyond ``condition`` and ``generator`` (e.g. ``steps``,
    #: ``sampler``, ``guidance`` for diffusion; ``temperature``, ``top_p`` for a transformer).
    sample_options: ClassVar[frozenset[str]] = frozenset()
    #: The options a person or a client may set, declared once with types, ranges and defaults
    #: (:mod:`genlab.models.options`); a subset of :attr:`sample_options`.
    declared_options: ClassVar[dict[str, SampleOption]] = {}
    #: Whether the family models tables (see the module docstring).
    supports_tables: ClassVar[bool] = False
    #: Whether ``sample(condition={...})`` on tables draws the other columns from the model's conditional
    #: given *every* conditioned column (True), or conditions on one and writes the others in (a GAN).
    conditions_tables_jointly: ClassVar[bool] = True
    #: Whether ``encode`` maps records to latents (a VAE); a GAN has latents but no encoder.
    encodes_records: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "family" in cls.__dict__:
            register_family(cls)

    def __init__(self, config: Any = None, **options: Any) -> None:
        if config is not None and options:
            raise ConfigError("pass either a config object or keyword options, not both")
        if config is None:
            config = from_dict(self.config_class, options, what=f"{self.family} model")
        elif not isinstance(config, self.config_class):
            raise ConfigError(f"{self.family} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self.network_: nn.Module | None = None
        self.codec_: Codec | None = None
        self.data_: DataInfo | None = None
        self.train_config_: TrainConfig | None = None
        self.history_: list[dict[str, Any]] = []
        #: The model's own sample processors by slot (:mod:`genlab.models.hooks`), e.g. a run's saved rules.
        self.processors_: dict[str, SampleProcessor] = {}
        #: Records of run extensions by ``config.json`` key (:mod:`genlab.models.hooks`), e.g. ``compression``.
        self.extension_records_: dict[str, Any] = {}

    # ------------------------------------------------------------------ family hooks
    def default_train_config(self) -> TrainConfig:
        """Training settings used when ``fit`` gets none; families tune their own defaults."""
        return TrainConfig()

    @classmethod
    def data_defaults(cls, info: DataInfo, x: Any) -> DataDefaults:
        """Model options and training settings this family's benchmarks measured for data like ``info``
        (raw training records ``x``), applied by :func:`genlab.fit` and ``genlab fit`` under the user's
        own options (see :mod:`genlab.defaults`). The base family chooses nothing."""
        return DataDefaults()

    def _make_codec(self, data: DataInfo) -> Codec:
        """A new, unfitted codec for ``data``: the modality's continuous codec unless a family needs
        another representation (token sequences for an autoregressive family)."""
        if data.modality == "tables":
            if not self.supports_tables:
                able = ", ".join(sorted(name for name, family in families().items() if family.supports_tables))
                raise NotSupportedError(f"the {self.family} family does not model tables yet; "
                                        f"families that do: {able}")
            return self._make_table_codec(data)
        if data.modality not in CONTINUOUS_CODECS:
            raise ConfigError(f"the {self.family} family needs continuous records and {data.modality} has none; "
                              f"model {data.modality} with the transformer family")
        return codec_for(data.modality, data.shape)

    def _make_table_codec(self, data: DataInfo) -> TableCodec:
        """A new, unfitted codec for tables: CTGAN's mode-specific normalisation and one-hot categories."""
        return TableCodec()

    @abstractmethod
    def _build_network(self, data: DataInfo) -> nn.Module:
        """A freshly initialised network for records described by ``data`` (``self.codec_`` is set)."""

    def _phases(self) -> list[Phase]:
        """The Trainer phases of a gradient-trained family."""
        raise NotImplementedError(f"{type(self).__name__} must define _phases or override _fit_network")

    def _fit_network(self, x: torch.Tensor, y: torch.Tensor | None, context: FitContext) -> None:
        """Fit ``self.network_`` on encoded records ``x (n, *shape)`` and labels ``y (n,)``.

        The default trains ``self._phases()`` with the Trainer and keeps the EMA weights when there are any.
        """
        phases = self._phases()
        evaluate = None if context.validation is None else self._validation_losses(phases, *context.validation)
        result = Trainer(context.train, callbacks=context.callbacks).fit(
            self.network_, phases, x, y,
            checkpoint_path=context.checkpoint_path, resume=context.resume, fingerprint=context.fingerprint,
            evaluate=evaluate,
        )
        self.history_ = result.history
        if result.ema_state is not None:
            self.network_.load_state_dict(result.ema_state)

    def _validation_losses(self, phases: Sequence[Phase], x: torch.Tensor,
                           y: torch.Tensor | None) -> Callable[[int], dict[str, float]]:
        """``evaluate(step)`` for the Trainer: every phase's objective on held-out records ``x (n, *shape)``.

        The noise is drawn from the same seed at every evaluation, so the curve moves only with the weights.
        Gradients stay enabled because some objectives (R1, WGAN-GP) differentiate with respect to inputs.
        """
        def evaluate(step: int) -> dict[str, float]:
            device = self.device
            batch = Batch(x.to(device), None if y is None else y.to(device))
            generator = torch.Generator(device=device).manual_seed(0)
            return {f"val_{phase.name}": float(phase.loss(phase.module, batch, generator).total.detach())
                    for phase in phases}

        return evaluate

    @abstractmethod
    def _sample_network(self, n: int, condition: int | dict[str, Any] | None, generator: torch.Generator | None,
                        **options: Any) -> torch.Tensor:
        """``n`` records in model space, ``(n, *shape)`` (tables: ``(n, codec.width)``); ``condition`` is a
        class index, or for tables a checked dict ``{column: value}``; ``options`` are among
        :attr:`sample_options`."""

    def _log_prob_network(self, z: torch.Tensor, condition: int | None) -> torch.Tensor:
        """``log p(z)`` in model space, ``(n,)``; families without a likelihood keep this default."""
        raise NotSupportedError(f"the {self.family} family has no log_prob")

    # ------------------------------------------------------------------ public verbs
    def fit(
        self: M,
        data: Dataset | np.ndarray,
        *,
        labels: np.ndarray | None = None,
        train: TrainConfig | None = None,
        run_dir: str | Path | None = None,
        resume: bool = False,
        callbacks: Sequence[Callback] = (),
    ) -> M:
        """Learn the data distribution.

        Args:
            data: a :class:`Dataset` (its training split is used) or raw records: float array
                ``(n, d)`` of points or ``(n, C, H, W)`` of images in ``[0, 1]``, or a pandas DataFrame.
            labels: int ``(n,)`` class labels when ``data`` is an array.
            train: optimisation settings for gradient-trained families (default ``TrainConfig()``).
            run_dir: where resumable checkpoints go (``run_dir/checkpoint/``); ``None`` keeps none.
            resume: continue from the checkpoint in ``run_dir``.
            callbacks: Trainer callbacks (progress bars, logging).

        Returns:
            ``self``, fitted.
        """
        x, y, info = training_arrays(data, labels)
        train = train if train is not None else self.default_train_config()
        if resume and run_dir is None:
            raise ConfigError("resume needs the run directory that holds the checkpoint")
        codec = self._make_codec(info).fit(x)
        self.initialise(codec, info, seed=train.seed)
        self.train_config_ = train
        z = torch.as_tensor(codec.encode(x))
        y_tensor = None if y is None else torch.from_numpy(y)
        validation = None
        if train.eval_every > 0 and isinstance(data, Dataset) and len(data.x_test):
            held_out = slice(0, VALIDATION_RECORDS)
            test = data.x_test.iloc[held_out] if info.modality == "tables" else data.x_test[held_out]
            try:
                validation = (torch.as_tensor(codec.encode(test)),
                              None if data.y_test is None else torch.from_numpy(data.y_test[held_out]))
            except DataError as error:   # e.g. a test category unseen in training
                log.warning("no periodic validation: the test records cannot be encoded (%s)", error)
        context = FitContext(
            train=train,
            callbacks=callbacks,
            checkpoint_path=None if run_dir is None else Path(run_dir) / CHECKPOINT_FILE,
            resume=resume,
            fingerprint={
                "family": self.family,
                "model": to_dict(self.config),
                "train": to_dict(train),
                "data": {"modality": info.modality, "shape": list(info.shape),
                         "sha256": data_digest(x, y)},
            },
            validation=validation,
        )
        self._fit_network(z, y_tensor, context)
        self.network_.eval()
        return self

    def initialise(self: M, codec: Codec, data: DataInfo, *, seed: int) -> M:
        """Take a fitted ``codec`` and the description ``data`` of its records and build freshly initialised
        weights, a function of ``seed`` alone (``fit`` starts here; so does a distilled student, which
        shares its teacher's codec). Returns ``self``."""
        self.codec_, self.data_ = codec, data
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.network_ = self._build_network(data)
        return self

    def fine_tune(self: M, data: Dataset, *, train: TrainConfig) -> M:
        """Train the fitted network further on ``data``'s training split with ``train`` (same codec, no
        re-initialisation): e.g. after pruning (:mod:`genlab.compress`). Returns ``self``.

        Raises:
            ConfigError: ``data`` of another modality or record shape than the model's.
        """
        self._check_fitted()
        x, y, info = training_arrays(data, None)
        if info.modality != self.data_.modality or tuple(info.shape) != tuple(self.data_.shape):
            raise ConfigError(f"the data are {info.modality} of shape {tuple(info.shape)}; the model was trained "
                              f"on {self.data_.modality} of shape {tuple(self.data_.shape)}")
        y_tensor = None if y is None or not self.data_.class_names else torch.from_numpy(y)
        self.network_.train()
        self._fit_network(torch.as_tensor(self.codec_.encode(x)), y_tensor, FitContext(train=train))
        self.network_.eval()
        return self

    def sample(
        self, n: int, *, condition: int | str | dict[str, Any] | None = None,
        generator: torch.Generator | None = None, processors: Sequence[SampleProcessor] = (), **options: Any,
    ) -> np.ndarray | pd.DataFrame:
        """Draw ``n`` new raw records: float32 ``(n, *shape)``, for text an object array ``(n,)`` of
        ``str``, for tables a DataFrame with the training columns, dtypes and categories.

        Args:
            n: how many records (a positive integer).
            condition: a class index or class name for class-conditional models; for tables a dict
                ``{column: value}`` that every returned row satisfies (a bare value means the target
                column); ``None`` samples from the whole distribution.
            generator: source of randomness; the same seeded generator gives the same samples.
            processors: features that wrap the draw (:mod:`genlab.models.hooks`), e.g.
                ``genlab.rules.Rules([...])`` (every table row satisfies them; replaces the run's own rules,
                ``Rules([])`` drops them) or ``genlab.Watermark(key=...)``. The model's own
                :attr:`processors_` apply too, unless one given here takes their slot.
            **options: family-specific sampling options, listed in :attr:`sample_options`.
        """
        self._check_fitted()
        n = check_count(n)
        parsed = self.parse_condition(condition)
        self.check_sample_options(options)
        given: dict[str, SampleProcessor] = {}
        for processor in processors:
            if not isinstance(processor, SampleProcessor):
                raise ConfigError(f"processors must be sample processors (e.g. genlab.rules.Rules, "
                                  f"genlab.Watermark), got {type(processor).__name__}")
            if processor.slot in given:
                raise ConfigError(f"two {processor.slot} processors in one call ({type(given[processor.slot]).__name__} "
                                  f"and {type(processor).__name__}); pass one")
            given[processor.slot] = processor
        active = {**self.processors_, **given}
        for processor in active.values():
            processor.check(self)
        draw = compose(self._draw, list(active.values()))
        return draw(n, SampleRequest(self, parsed, generator, dict(options)))

    def check_sample_options(self, options: dict[str, Any]) -> None:
        """Raise a ConfigError naming the family's options when ``options`` holds one it does not take."""
        unknown = sorted(set(options) - self.sample_options)
        if unknown:
            valid = ", ".join(sorted(self.sample_options)) or "none"
            raise ConfigError(f"the {self.family} family has no sampling option {', '.join(unknown)}; "
                              f"its options: {valid}")

    def sampling_options(self) -> dict[str, SampleOption]:
        """The declared options this fitted model takes, by name, with its own defaults
        (:mod:`genlab.models.options`); what ``GET /v1/models`` and the playground show."""
        self._check_fitted()
        return {name: option for name, option in sorted(self.declared_options.items())
                if option.modalities is None or self.data_.modality in option.modalities}

    def check_declared_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` checked against :meth:`sampling_options` (name, type, range, choices).

        Raises:
            ConfigError: an option this model does not declare (listing those it does) or a bad value.
        """
        declared = self.sampling_options()
        for name, value in options.items():
            if name not in declared:
                raise ConfigError(f"the {self.family} family's {self.data_.modality} model has no sampling option "
                                  f"{name!r}; its options: {', '.join(declared) or 'none'}")
            declared[name].check(name, value)
        return dict(options)

    @property
    def record_modality(self) -> str:
        """The modality of what :meth:`sample` returns: the data's, unless the family draws another from it
        (a captioner of images returns text)."""
        self._check_fitted()
        return self.data_.modality

    def _draw(self, n: int, request: SampleRequest) -> np.ndarray | pd.DataFrame:
        """The family's own draw of ``n`` raw records, innermost of the processors' chain."""
        self.check_sample_options(request.options)
        with torch.no_grad():
            z = self._sample_network(n, request.condition, request.generator, **request.options)
        records = self.codec_.decode(z)
        if self.data_.modality == "tables" and isinstance(request.condition, dict):
            _impose(records, request.condition, self.codec_)
        return records

    def parse_condition(self, condition: Any) -> Any:
        """``condition`` of :meth:`sample` checked and resolved: a table's dict (:meth:`table_condition`) or
        a class index (:meth:`condition_index`); a family whose modality conditions otherwise overrides it."""
        self._check_fitted()
        return self.table_condition(condition) if self.data_.modality == "tables" else self.condition_index(condition)

    def table_condition(self, condition: Any) -> dict[str, Any] | None:
        """Check a table condition and cast its values (``TableCodec.parse_condition``); a bare value
        conditions the target column. ``None`` stays ``None``.

        Raises:
            DataError: an unknown column or category, or a value that does not fit its column.
            ConfigError: a bare value for a model without a target column.
        """
        self._check_fitted()
        if condition is None:
            return None
        if not isinstance(condition, dict):
            if self.data_.target is None:
                raise ConfigError(f"condition a table with a dict {{column: value}}; got {condition!r}")
            condition = {self.data_.target: condition}
        return self.codec_.parse_condition(condition)

    def log_prob(self, x: np.ndarray, *, condition: int | str | None = None) -> np.ndarray:
        """``log p(x)`` in nats per record, in the raw data's own units, float64 ``(n,)``.

        With a ``condition``, the class-conditional density ``log p(x | c)``.
        """
        self._check_fitted()
        if self.data_.modality == "tables":
            raise NotSupportedError("tables mix discrete and continuous columns, so they have no log_prob")
        index = self.condition_index(condition)
        z = self.codec_.encode(x)
        with torch.no_grad():
            log_p = self._log_prob_network(z, index)
        return log_p.double().cpu().numpy() + self.codec_.log_abs_det_jacobian()

    def variations(self, x: np.ndarray | None, *, n: int, strength: float, generator: torch.Generator | None = None,
                   condition: int | str | None = None, latent: np.ndarray | None = None,
                   **options: Any) -> np.ndarray:
        """``n`` variations ``(n, *shape)`` of one point or image ``x (1, *shape)`` at ``strength`` in
        ``[0, 1]`` (0 = the record, 1 = unrelated): a latent family mixes the record's latent with noise, a
        diffusion model runs SDEdit (:mod:`genlab.interaction` for text and tables, which every family has)."""
        raise NotSupportedError(f"the {self.family} family has no variations of {self.data_.modality}")

    def latent_noise_scale(self, condition: Any, options: dict[str, Any]) -> float | None:
        """``s`` when ``sample(n, condition=condition, **options)`` is ``decode(s * eps)`` with ``eps (n, *latent_shape)``
        drawn from the call's generator as one ``randn`` (so draws of several requests can share one decoder
        call, :mod:`genlab.serve.batcher`); None where it is not (the default)."""
        return None

    def invert(self, x: np.ndarray, *, steps: int | None = None) -> torch.Tensor:
        """The initial noise ``(n, *shape)`` the sampler maps to raw records ``x (n, *shape)``, where the
        sampler can be run backwards (diffusion: DDIM inversion)."""
        raise NotSupportedError(f"the {self.family} family's sampler cannot be inverted")

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Latent codes of raw records; only families with a latent space define it."""
        raise NotSupportedError(f"the {self.family} family has no encoder")

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Raw records from latent codes; only families with a latent space define it."""
        raise NotSupportedError(f"the {self.family} family has no decoder")

    def condition_index(self, condition: int | str | None) -> int | None:
        """Resolve a class index or class name to an index, or raise listing the valid classes."""
        self._check_fitted()
        if condition is None:
            return None
        names = self.data_.class_names
        if not names:
            raise ConfigError("this model was trained without labels, so it cannot be conditioned")
        if isinstance(condition, str) and condition in names:
            return names.index(condition)
        try:
            index = int(condition)
        except (TypeError, ValueError):
            index = -1
        if 0 <= index < len(names) and not isinstance(condition, bool):
            return index
        raise ConfigError(f"unknown condition {condition!r}; choose a class index 0..{len(names) - 1} "
                          f"or one of: {', '.join(names)}")

    @property
    def device(self) -> torch.device:
        """Where the network's parameters live (its buffers, for a network with none: an int8 run whose
        every layer was linear keeps its weights as buffers)."""
        self._check_fitted()
        tensor = next(self.network_.parameters(), None)
        if tensor is None:
            tensor = next(self.network_.buffers(), None)
        return tensor.device if tensor is not None else torch.device("cpu")

    # ------------------------------------------------------------------ helpers
    def _check_fitted(self) -> None:
        if self.network_ is None:
            raise NotFittedError(f"this {self.family} model is not fitted yet: call fit() or from_pretrained()")


class NotFittedError(ConfigError):
    """A model was used before ``fit`` or ``from_pretrained``."""


def _impose(table: pd.DataFrame, condition: dict[str, Any], codec: TableCodec) -> None:
    """Write each conditioned value into its column, in the column's dtype.

    A family that conditions exactly already decodes these values; this removes float round-off at
    an interval's edge (e.g. ``Phi(Phi^-1(b))`` landing a hair beyond ``b``) and keeps dtypes exact.
    Datetime columns are left as decoded (their text form is the codec's).
    """
    for column, value in condition.items():
        if codec.spec(column)["kind"] == "datetime":
            continue
        table[column] = pd.Series([value] * len(table), index=table.index).astype(table[column].dtype)


