"""Option types and parsers shared by several commands."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from genlab.errors import ConfigError, OutputExistsError

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Folder with downloaded data such as mnist.npz (default: $GENLAB_DATA)."),
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of every random draw.")]
RealData = Annotated[str, typer.Option("--real", help="Real data to compare with (its test split is used).")]
EvalCount = Annotated[int | None, typer.Option("-n", "--n", help="Generated records (default: size of the test split).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace an output that already exists.")]
Target = Annotated[str | None, typer.Option(
    "--target", help="Label column of a table (reads a .csv file as a table).")]
ModalityOption = Annotated[str | None, typer.Option(
    "--modality", help="Read DATA as points, images, text, tables, smiles or music (default: inferred; a .csv "
                       "file that is not purely numeric is a table, a .smi file holds molecules).")]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$")
_SECONDS = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"2m"``, ``"1.5h"`` -> seconds."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"cannot read {text!r} as a duration; write e.g. 90s, 2m or 1h")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def parse_assignments(pairs: list[str] | None, what: str) -> dict[str, Any]:
    """``["n_components=8", "solver=adam"]`` -> ``{"n_components": 8, "solver": "adam"}``.

    Values are read as JSON where they parse (numbers, true/false, null, lists), else kept as text.
    """
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} {pair!r} must look like key=value")
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw
    return values


def refuse_existing(path: Path, overwrite: bool, hint: str = "pass --overwrite to replace it") -> None:
    """Raise OutputExistsError if ``path`` exists and ``overwrite`` is off."""
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; {hint}")


def parse_conditions(pairs: list[str] | None) -> dict[str, str] | str | None:
    """``["sex=Female", "income=>50K"]`` -> ``{"sex": "Female", "income": ">50K"}`` (split at the first
    ``=``; values stay text, the model reads them as each column's type). One item without ``=`` is a
    class index or name (or a table's target value); ``None`` or ``[]`` is no condition."""
    if not pairs:
        return None
    if len(pairs) == 1 and "=" not in pairs[0]:
        return pairs[0]
    condition: dict[str, str] = {}
    for pair in pairs:
        column, sep, value = pair.partition("=")
        if not sep or not column.strip():
            raise ConfigError(f"condition {pair!r} must look like column=value (one per --condition)")
        if column.strip() in condition:
            raise ConfigError(f"column {column.strip()!r} is conditioned twice")
        condition[column.strip()] = value
    return condition
