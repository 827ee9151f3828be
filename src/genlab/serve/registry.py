"""The models a server holds: each run loaded once, named by its run directory, described for clients.

A request names a model; :meth:`ModelRegistry.get` looks the name up in the loaded set only, so no
text from a request ever becomes a file-system path. :func:`describe` lists what ``GET /v1/models``
shows: family, modality, record shape, the sampling options a client may set (name, JSON type,
default, range or choices) and the condition choices (class names, table columns with their kind
and categories, or a molecule model's properties with their bins).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlab.errors import CheckpointError, ConfigError
from genlab.api import load
from genlab.data.smiles import BINS
from genlab.models.base import GenerativeModel
from genlab.models.options import SampleOption


@dataclass
class LoadedModel:
    """A model the server holds. ``lock`` serialises calls into it (its network is not re-entrant on
    every device, and one call already uses the machine's cores)."""

    name: str
    run: Path
    model: GenerativeModel
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def modality(self) -> str:
        """``points``, ``images``, ``tables`` or ``text``."""
        return self.model.data_.modality

    @property
    def options(self) -> dict[str, SampleOption]:
        """The options this model takes over the API, by name: the family's declared ones
        (:meth:`~genlab.models.base.GenerativeModel.sampling_options`), with this model's defaults."""
        return self.model.sampling_options()

    def default(self, option: str) -> Any:
        """The value ``sample`` uses when ``option`` is not given."""
        return self.options[option].default


class ModelRegistry:
    """Models by name, loaded once at start-up."""

    def __init__(self, models: list[LoadedModel]) -> None:
        self._models = {entry.name: entry for entry in models}

    @classmethod
    def from_runs(cls, runs: list[Path]) -> "ModelRegistry":
        """Load every run directory; a model is named by its directory's name.

        Raises:
            ConfigError: no runs, or two runs with the same directory name.
            CheckpointError: a run cannot be loaded.
        """
        if not runs:
            raise ConfigError("no runs to serve: pass run directories or --runs-dir DIR")
        names: dict[str, Path] = {}
        for run in runs:
            name = Path(run).resolve().name
            if name in names:
                raise ConfigError(f"two runs are both named {name!r} ({names[name]} and {run}); "
                                  "a model is named by its run directory, so rename one")
            names[name] = Path(run)
        return cls([LoadedModel(name, run, load(run)) for name, run in names.items()])

    @staticmethod
    def runs_in(directory: Path) -> list[Path]:
        """The run directories directly inside ``directory`` (those holding a ``config.json``)."""
        if not directory.is_dir():
            raise CheckpointError(f"--runs-dir {directory} is not a directory")
        return sorted(path for path in directory.iterdir() if (path / "config.json").is_file())

    @property
    def names(self) -> list[str]:
        """Loaded model names, sorted."""
        return sorted(self._models)

    def get(self, name: str) -> LoadedModel | None:
        """The model called ``name``, or ``None``; a dictionary lookup, never a path."""
        return self._models.get(name)

    def __iter__(self):
        return iter(self._models[name] for name in self.names)


def describe(entry: LoadedModel, max_tokens: int | None = None) -> dict[str, Any]:
    """The JSON ``GET /v1/models`` lists for one model (OpenAI's ``object: "model"`` plus genlab's fields);
    ``max_tokens``, the server's limit, caps ``max_new_tokens`` (its maximum, and its default here)."""
    model = entry.model
    options = []
    for name, spec in entry.options.items():
        option = spec.describe(name)
        if name == "max_new_tokens" and max_tokens is not None:
            option["default"], option["maximum"] = min(option["default"], max_tokens), max_tokens
        options.append(option)
    return {"id": entry.name, "object": "model", "owned_by": "genlab", "family": model.family,
            "modality": entry.modality, "shape": list(model.data_.shape), "options": options,
            "condition": condition_choices(model)}


def condition_choices(model: GenerativeModel) -> dict[str, Any] | None:
    """What a model may be conditioned on: ``{"classes": [...]}``, ``{"columns": [{name, kind,
    categories?}], "target"}`` for tables, ``{"properties": [{name, bins, describe}]}`` for a molecule model
    fitted with property conditioning (a condition ``{name: bin}``, e.g. ``{"qed": "high"}``), or ``None``."""
    data = model.data_
    if data.modality == "tables":
        codec = model.codec_
        columns = []
        for column in codec.columns:
            spec = codec.spec(column)
            entry = {"name": column, "kind": spec["kind"]}
            if "categories" in spec:
                entry["categories"] = list(spec["categories"])
            columns.append(entry)
        return {"columns": columns, "target": data.target}
    if data.modality == "smiles" and model.codec_.properties:
        codec = model.codec_
        return {"properties": [{"name": name, "bins": list(BINS), "describe": codec.describe_bins(name)}
                               for name in codec.properties]}
    if data.class_names:
        return {"classes": list(data.class_names)}
    return None
