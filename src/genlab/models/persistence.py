"""A run directory on disk: ``save_pretrained`` / ``from_pretrained`` of every family, and :func:`load_run`.

A run holds ``config.json`` (family, model options, data description, training settings, the weights'
SHA-256, and each run extension's record), ``model.safetensors``, ``codec.json`` and ``history.json``.
No pickle: weights are safetensors, everything else JSON. Loading is strict: unknown options, a wrong
checksum, a ``config.json`` key no feature reads, or weights that do not fit the rebuilt network are
:class:`~genlab.errors.CheckpointError`s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import safetensors
import safetensors.torch
import torch

from genlab.config import from_dict, to_dict
from genlab.data.codec_state import codec_from_state
from genlab.data.dataset import MODALITIES
from genlab.errors import CheckpointError, ConfigError
from genlab.io import atomic_path, sha256_file, write_json
from genlab.models.data_info import DataInfo
from genlab.models.hooks import extensions
from genlab.train import TrainConfig
from genlab.version import __version__

M = TypeVar("M", bound="Persistence")

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CODEC_FILE = "codec.json"
CHECKPOINT_FILE = Path("checkpoint") / "trainer_state.safetensors"
#: The keys of ``config.json`` the contract itself writes; the others belong to run extensions.
RUN_CONFIG_KEYS = frozenset({"genlab_version", "family", "model", "data", "train", "weights_sha256"})


class Persistence:
    """``save_pretrained`` and ``from_pretrained`` of :class:`~genlab.models.base.GenerativeModel` (a mixin)."""

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors`` and ``codec.json`` into ``directory``.

        Each file is written atomically; ``config.json`` last, carrying the weights' SHA-256, so a
        directory whose config can be read always has matching, complete weights.
        """
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = directory / WEIGHTS_FILE
        with atomic_path(weights) as tmp:
            safetensors.torch.save_model(self.network_, str(tmp), metadata={"format": "pt"})
        write_json(directory / CODEC_FILE, self.codec_.state())
        records = {extension.key: extension.record(self, directory) for extension in extensions()}
        self.extension_records_ = {key: record for key, record in records.items() if record is not None}
        write_json(directory / CONFIG_FILE, {
            "genlab_version": __version__,
            "family": self.family,
            "model": to_dict(self.config),
            "data": {"modality": self.data_.modality, "shape": list(self.data_.shape),
                     "class_names": None if self.data_.class_names is None else list(self.data_.class_names),
                     "target": self.data_.target, "captioned": self.data_.captioned},
            "train": None if self.train_config_ is None else to_dict(self.train_config_),
            "weights_sha256": sha256_file(weights),
            **self.extension_records_,
        })
        write_json(directory / "history.json", self.history_)
        return directory

    @classmethod
    def from_pretrained(cls: type[M], directory: str | Path) -> M:
        """Load a model saved by :meth:`save_pretrained`, strictly.

        Raises:
            CheckpointError: the directory or a file is missing, the config names another family or
                unknown options, the weights fail their checksum, or tensor names/shapes differ.
        """
        directory = Path(directory)
        config = read_run_config(directory)
        if config.get("family") != cls.family:
            raise CheckpointError(f"{directory} holds a {config.get('family')!r} model, not {cls.family!r}")
        try:
            model = cls(from_dict(cls.config_class, config["model"], what=f"{cls.family} model"))
            data = config["data"]
            info = DataInfo(data["modality"], tuple(data["shape"]),
                            None if data["class_names"] is None else tuple(data["class_names"]), data.get("target"),
                            captioned=data.get("captioned", False))
            train = None if config.get("train") is None else from_dict(TrainConfig, config["train"])
            expected_sha = config["weights_sha256"]
        except (KeyError, TypeError) as error:
            raise CheckpointError(f"{directory / CONFIG_FILE} is incomplete: missing {error!s}") from None
        except ConfigError as error:
            raise CheckpointError(f"{directory / CONFIG_FILE}: {error}") from None
        if info.modality not in MODALITIES:
            raise CheckpointError(f"{directory / CONFIG_FILE}: unknown modality {info.modality!r}")
        codec = codec_from_state(_read_json(directory / CODEC_FILE))
        if codec.modality != info.modality or codec.shape != info.shape:
            raise CheckpointError(f"{directory / CODEC_FILE} does not match the data described in config.json")
        weights = directory / WEIGHTS_FILE
        if not weights.is_file():
            raise CheckpointError(f"{weights} is missing")
        if sha256_file(weights) != expected_sha:
            raise CheckpointError(f"{weights} does not match the checksum recorded in config.json "
                                  "(it was modified, truncated or replaced)")
        model.codec_ = codec
        with torch.random.fork_rng(devices=[]):
            network = model._build_network(info)
        owned = {extension.key: extension for extension in extensions()}
        unknown = sorted(set(config) - RUN_CONFIG_KEYS - set(owned))
        if unknown:
            raise CheckpointError(f"{directory / CONFIG_FILE} holds {', '.join(map(repr, unknown))}, which no loaded "
                                  "feature reads (import genlab to register them)")
        for key, extension in owned.items():   # e.g. int8 layers, pruned widths: the saved layout
            if config.get(key) is not None:
                extension.prepare(network, config[key])
                model.extension_records_[key] = config[key]
        try:
            safetensors.torch.load_model(network, str(weights), strict=True)
        except (RuntimeError, safetensors.SafetensorError) as error:
            first_line = str(error).strip().splitlines()[0]
            raise CheckpointError(f"{weights} does not fit the network its config describes: {first_line}") from None
        history_file = directory / "history.json"
        model.history_ = _read_json(history_file) if history_file.is_file() else []
        model.network_, model.codec_, model.data_, model.train_config_ = network.eval(), codec, info, train
        for key, extension in owned.items():   # e.g. the run's rules
            extension.restore(model, directory, config.get(key))
        return model


def register_family(cls: type) -> None:
    """Make ``cls`` (a family class) loadable by :func:`load_run` under its ``family`` name."""
    _FAMILIES[cls.family] = cls


def families() -> dict[str, type]:
    """Every family class defined so far, by name."""
    return dict(_FAMILIES)


#: Every family class by name, filled as each is defined (``genlab.models`` imports them all).
_FAMILIES: dict[str, type] = {}


def load_run(directory: str | Path) -> Any:
    """Load the model saved in run directory ``directory``, whatever its family.

    Raises:
        CheckpointError: not a run directory, an unknown family, or any check of ``from_pretrained``.
    """
    config = read_run_config(Path(directory))
    family = config.get("family")
    if family not in _FAMILIES:
        raise CheckpointError(f"{directory}/config.json names an unknown family {family!r}; "
                              f"known: {', '.join(sorted(_FAMILIES))}")
    return _FAMILIES[family].from_pretrained(directory)



def read_run_config(directory: Path) -> dict[str, Any]:
    """Read ``config.json`` of a run directory with clear errors for a missing folder or bad JSON."""
    if not directory.is_dir():
        raise CheckpointError(f"{directory} is not a run directory (it does not exist)")
    config = _read_json(directory / CONFIG_FILE)
    if not isinstance(config, dict):
        raise CheckpointError(f"{directory / CONFIG_FILE} does not hold a JSON object")
    return config



def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from None


