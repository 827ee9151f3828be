"""User point files: ``.npy``, ``.npz`` and ``.csv`` tables of numbers, fixed-split 80/20.

Each record is one row of numbers. Every problem a user can fix (a missing or empty file, text in a
numeric column, NaN or infinite values, too few records) raises a :class:`DataError` in one sentence that
names the file and, where cheap, the row and column. Arrays are always loaded with ``allow_pickle=False``:
a data file never runs code.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from genlab.data.dataset import Dataset, split_records
from genlab.errors import DataError


@dataclass(frozen=True)
class _Table:
    """What a reader found: numeric ``values`` ``(n, d)``, optional labels ``(n,)``, and cell names.

    ``where(i, j)`` names record ``i``, column ``j`` the way the user sees it in the file.
    """

    values: np.ndarray
    labels: np.ndarray | None
    where: Callable[[int, int], str]


def load_file(path: str | os.PathLike) -> Dataset:
    """Load a ``.npy``, ``.npz`` or ``.csv`` file of points.

    - ``.npy``: one float or int array ``(n, d)``.
    - ``.npz``: the records under key ``x`` (or the only array other than ``y``); optional integer labels
      ``(n,)`` under ``y``, which become classes named after their values, in sorted order.
    - ``.csv``: comma-separated numbers, one record a row; a first row with no numbers is a header.

    Returns:
        Points ``x_*`` float32 ``(n, d)`` split with :func:`~genlab.data.dataset.fixed_split`.

    Raises:
        DataError: the file is missing, empty, of an unsupported type or malformed; a value is not a finite
            float32 number; or there are fewer than 2 records.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a data file")
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path} has an unsupported file type {path.suffix or '(no extension)'!r}; "
                        f"genlab reads {', '.join(_READERS)} files and folders of images")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes)")
    table = reader(path)
    x = _finite_float32(path, table)
    labels, class_names = _classes(path, table.labels, len(x))
    return split_records(str(path), "points", x, labels, class_names)


def _read_npy(path: Path) -> _Table:
    """Read the single array of a ``.npy`` file."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{path} is not a NumPy .npy array of numbers ({error})") from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise DataError(f"{path} is a .npz archive, not a .npy array; rename it to end in .npz")
    return _Table(_matrix(path, array, "the array"), None, lambda i, j: f"element [{i}, {j}]")


def _read_npz(path: Path) -> _Table:
    """Read records under ``x`` (or the only array besides ``y``) and labels under ``y`` of a ``.npz``."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            others = [key for key in keys if key != "y"]
            if "x" in keys:
                key = "x"
            elif len(others) == 1:
                key = others[0]
            else:
                listed = ", ".join(keys) if keys else "none"
                raise DataError(f"{path} must hold its records under the key 'x' (arrays found: {listed})")
            values = archive[key]
            labels = archive["y"] if "y" in keys and key != "y" else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path} is not a NumPy .npz archive of numeric arrays ({error})") from None
    return _Table(_matrix(path, values, f"array {key!r}"), labels, lambda i, j: f"{key}[{i}, {j}]")


def _read_csv(path: Path) -> _Table:
    """Read a comma-separated table of numbers whose optional header row holds no numbers."""
    import pandas as pd

    try:
        cells = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} holds no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        reason = str(error).replace("Error tokenizing data. C error: ", "").strip()
        raise DataError(f"{path} is not a well-formed CSV file: {reason}") from None
    cells = cells.apply(lambda column: column.str.strip())
    cells.index = cells.index + 1  # row numbers as a spreadsheet shows them, header included
    cells = cells[(cells != "").any(axis=1)]  # blank lines carry no record
    if cells.empty:
        raise DataError(f"{path} holds no rows")

    first = [cell for cell in cells.iloc[0] if cell]
    has_header = not any(_is_number(cell) for cell in first)
    if has_header:
        columns = [repr(name) if name else str(j + 1) for j, name in enumerate(cells.iloc[0])]
        cells = cells.iloc[1:]
        if cells.empty:
            raise DataError(f"{path} has a header row but no data rows")
    else:
        columns = [str(j + 1) for j in range(cells.shape[1])]
    rows = cells.index.to_numpy()

    values = []
    for j, (_, column) in enumerate(cells.items()):
        numbers = pd.to_numeric(column, errors="coerce")
        for row, cell in column[numbers.isna()].items():
            if not cell:
                raise DataError(f"{path}: column {columns[j]} row {row} is empty")
            if not _is_nan(cell):  # a written NaN is reported below, with the infinities
                raise DataError(f"{path}: column {columns[j]} row {row} holds {cell!r}, not a number")
        values.append(numbers.to_numpy(dtype=np.float64))
    return _Table(np.stack(values, axis=1), None, lambda i, j: f"column {columns[j]} row {rows[i]}")


_READERS: dict[str, Callable[[Path], _Table]] = {".npy": _read_npy, ".npz": _read_npz, ".csv": _read_csv}


def _is_number(text: str) -> bool:
    """Whether ``text`` parses as a float (``"nan"`` and ``"inf"`` included)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_nan(text: str) -> bool:
    """Whether ``text`` spells NaN (``"nan"``, ``"NaN"``, ...)."""
    return _is_number(text) and math.isnan(float(text))


def _matrix(path: Path, array: np.ndarray, what: str) -> np.ndarray:
    """Check that ``array`` is a 2-D ``(n, d)`` int or float array, with a hint for the usual mistakes."""
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{path}: {what} holds {array.dtype} values; genlab needs int or float numbers")
    if array.ndim == 1:
        raise DataError(f"{path}: {what} is 1-D with shape {array.shape}; genlab needs a 2-D array "
                        f"(n_records, n_features): save x.reshape(-1, 1) if each number is one record")
    if array.ndim != 2 or array.shape[1] == 0:
        raise DataError(f"{path}: {what} has shape {array.shape}; genlab needs a 2-D array "
                        f"(n_records, n_features) with at least one feature")
    return array


def _finite_float32(path: Path, table: _Table) -> np.ndarray:
    """The table's values as float32 ``(n, d)``, naming the first NaN, infinite or out-of-range cell."""
    values = table.values
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(f"{path}: {table.where(i, j)} holds {values[i, j]}; "
                        f"remove or fill NaN and infinite values first")
    with np.errstate(over="ignore"):  # overflow is reported below, with the cell that caused it
        x = values.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(f"{path}: {table.where(i, j)} holds {values[i, j]:g}, "
                        f"beyond the float32 range of ±3.4e38")
    return x


def _classes(path: Path, labels: np.ndarray | None, n: int) -> tuple[np.ndarray | None, tuple[str, ...] | None]:
    """Map integer labels ``(n,)`` to int64 class indices and class names (the distinct values, sorted)."""
    if labels is None:
        return None, None
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (n,):
        raise DataError(f"{path}: labels under 'y' must be integers of shape ({n},), one per record; "
                        f"got {labels.dtype} {labels.shape}")
    values, index = np.unique(labels, return_inverse=True)
    return index.astype(np.int64), tuple(str(value) for value in values)
