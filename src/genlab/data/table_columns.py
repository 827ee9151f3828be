"""Table columns: their kinds (inferred or declared) and the conversions between raw values and numbers.

A column's *spec* (a JSON-ready dict fitted by :class:`~genlab.data.tables.TableCodec`) holds its name,
kind, dtype and what encoding it needs; the functions here read raw values into numbers for it and
turn decoded values back into a Series of the training dtype. Datetimes are handled as integers counting
the largest unit of :data:`DATETIME_UNITS` that divides every training value, so they round-trip exactly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genlab.data.table_files import read_table
from genlab.errors import DataError

KINDS = ("numeric", "integer", "categorical", "boolean", "datetime", "id")
#: A column is ID-like (kind ``"id"``) only from this many rows on, so tiny tables are modelled as given.
ID_MIN_ROWS = 20
#: Resolutions a datetime column may count in, coarsest first, with their length in nanoseconds.
DATETIME_UNITS = (("D", 86_400 * 10**9), ("h", 3_600 * 10**9), ("min", 60 * 10**9), ("s", 10**9),
                  ("ms", 10**6), ("us", 10**3), ("ns", 1))


def infer_kind(values: pd.Series) -> str:
    """The kind of a column: ``boolean``, ``datetime`` (datetime dtype, or text that is all ISO 8601
    dates such as ``2020-01-31`` or ``2020-01-31 12:00:00``), ``integer`` (all non-missing values
    whole numbers), ``numeric`` or ``categorical`` (anything else, including text)."""
    present = values.dropna()
    if pd.api.types.is_bool_dtype(values.dtype) or (
            len(present) and present.map(lambda v: isinstance(v, (bool, np.bool_))).all()):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(values.dtype):
        if pd.api.types.is_integer_dtype(values.dtype):
            return "integer"
        finite = present.to_numpy(dtype=np.float64)
        return "integer" if np.all(finite == np.round(finite)) else "numeric"
    if len(present) and present.map(lambda v: isinstance(v, str) and v[:4].isdigit() and v[4:5] == "-").all():
        try:
            pd.to_datetime(present, format="ISO8601")
            return "datetime"
        except (TypeError, ValueError):
            pass
    return "categorical"


def id_like(values: pd.Series) -> str | None:
    """``"id"`` for text whose values are all distinct, or integers that are a running index
    ``min..min+n-1`` (at least :data:`ID_MIN_ROWS` rows, none missing); else ``None``."""
    if len(values) < ID_MIN_ROWS or values.isna().any() or values.nunique() != len(values):
        return None
    if pd.api.types.is_integer_dtype(values.dtype):
        return "id" if int(values.max()) - int(values.min()) + 1 == len(values) else None
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return None
    return "id" if infer_kind(values) == "categorical" else None


def as_frame(table: pd.DataFrame | str | Path) -> pd.DataFrame:
    """A DataFrame with text column names, from a DataFrame or a CSV path."""
    if isinstance(table, (str, Path)):
        table = read_table(table)
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"a table must be a pandas DataFrame or a CSV path, got {type(table).__name__}")
    if not all(isinstance(c, str) for c in table.columns):
        table = table.rename(columns=str)
    return table


def plain(value: Any) -> Any:
    """A JSON-ready Python scalar for a numpy/pandas scalar."""
    return value.item() if isinstance(value, np.generic) else value


def to_float(name: str, values: pd.Series) -> np.ndarray:
    """Values of column ``name`` -> float64 ``(n,)``, or a DataError naming the column."""
    try:
        return values.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"column {name!r} holds values that are not numbers, e.g. {values.iloc[0]!r}") from None


def to_datetime(name: str, values: pd.Series) -> pd.Series:
    """Values of column ``name`` as datetimes (ISO 8601, else any format pandas reads), or a DataError."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    for form in ("ISO8601", "mixed"):
        try:
            return pd.to_datetime(values, format=form)
        except (TypeError, ValueError):
            continue
    raise DataError(f"column {name!r} holds values that are not dates, e.g. {values.iloc[0]!r}")


def nanoseconds(name: str, values: pd.Series) -> np.ndarray:
    """Dates -> int64 nanoseconds since 1970-01-01 (UTC for time-zone-aware dates)."""
    stamps = to_datetime(name, values)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.astype("datetime64[ns]").astype(np.int64).to_numpy()


def raw_numbers(spec: dict[str, Any], present: pd.Series) -> np.ndarray:
    """Present values of a numeric, integer or datetime column -> float64 ``(n,)`` in the column's units
    (for datetimes: counts of its fitted ``unit``)."""
    if spec["kind"] != "datetime":
        return to_float(spec["name"], present)
    return nanoseconds(spec["name"], present) / dict(DATETIME_UNITS)[spec["unit"]]


def describe_column(name: str, values: pd.Series, kind: str) -> dict[str, Any]:
    """The spec of column ``name`` of ``kind`` before normalisation: name, kind, dtype and missing rate;
    for an identifier where fresh ones start (:func:`fresh_ids`); for categories their sorted values and
    shares (then the missing share); for numbers the range, the fill value of missing ones (the median)
    and the resolution (``decimals``, or a datetime's ``unit`` and ``tz``).

    Raises:
        DataError: an identifier with missing values, fractional values in an integer column, or values
            that do not read as the kind.
    """
    missing = values.isna()
    spec: dict[str, Any] = {"name": name, "kind": kind, "dtype": str(values.dtype),
                            "missing_rate": float(missing.mean()), "has_missing": bool(missing.any())}
    present = values[~missing]
    if kind == "id":
        if missing.any():
            raise DataError(f"column {name!r} was declared an identifier but has missing values")
        if pd.api.types.is_integer_dtype(values.dtype):
            spec["start"] = int(present.max()) + 1
        else:
            text = [str(v) for v in present.tolist()]
            spec["prefix"] = os.path.commonprefix(text)
            spec["start"] = 10 ** max(len(v) - len(spec["prefix"]) for v in text)
        return spec
    if kind in ("categorical", "boolean"):
        try:
            categories = sorted(set(present.tolist()))
        except TypeError:
            categories = sorted(set(present.tolist()), key=str)
        spec["categories"] = [plain(v) for v in categories]
        counts = present.map(plain).value_counts()
        # Shares of each category in sorted order, then of missing values (0 when there are none).
        spec["frequencies"] = [float(counts[v]) / len(values) for v in spec["categories"]] + [
            float(missing.mean())]
        return spec
    if kind == "datetime":
        tz = to_datetime(name, present).dt.tz
        spec["tz"] = None if tz is None else str(tz)
        ns = nanoseconds(name, present)
        spec["unit"] = next(u for u, s in DATETIME_UNITS if np.all(ns % s == 0))
    x = column_numbers(spec, present)
    if kind == "integer" and not np.all(x == np.round(x)):
        raise DataError(f"column {name!r} was declared integer but holds fractional values")
    if kind != "datetime":
        spec["decimals"] = None if kind == "integer" else decimals(x)
    spec["low"], spec["high"], spec["fill"] = float(x.min()), float(x.max()), float(np.median(x))
    return spec


def column_numbers(spec: dict[str, Any], present: pd.Series) -> np.ndarray:
    """Present training values of a numeric, integer or datetime column (described by
    :func:`describe_column`) -> float64 ``(n,)``: datetimes as whole counts of their ``unit`` by integer
    division of nanoseconds, exact where a float division (:func:`raw_numbers`) may round."""
    if spec["kind"] != "datetime":
        return to_float(spec["name"], present)
    return (nanoseconds(spec["name"], present) // dict(DATETIME_UNITS)[spec["unit"]]).astype(np.float64)


def decimals(x: np.ndarray) -> int | None:
    """Fewest decimals (up to 6) that represent every value, or ``None`` when 6 do not."""
    return next((d for d in range(7) if np.allclose(np.round(x, d), x, rtol=0.0, atol=1e-9)), None)


def fresh_ids(spec: dict[str, Any], n: int) -> pd.Series:
    """``n`` identifiers that no training row has (:mod:`genlab.data.tables`), in the training dtype."""
    numbers = spec["start"] + np.arange(n)
    if "prefix" not in spec:
        return pd.Series(numbers, dtype=spec["dtype"])
    text = pd.Series([f"{spec['prefix']}{k}" for k in numbers], dtype=object)
    return text if spec["dtype"] == "object" else text.astype(spec["dtype"])


def restore_dtype(spec: dict[str, Any], values: np.ndarray, missing: np.ndarray) -> pd.Series:
    """Decoded values -> a Series of the training dtype, ``NaN``/``NaT``/``NA`` where ``missing``."""
    kind, dtype = spec["kind"], spec["dtype"]
    if kind == "datetime":
        ns = values.astype(np.int64) * dict(DATETIME_UNITS)[spec["unit"]]
        stamps = pd.Series(pd.to_datetime(ns, unit="ns"))
        if spec["tz"] is not None:
            stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(spec["tz"])
        stamps[missing] = pd.NaT
        if dtype.startswith("datetime64"):
            return stamps.astype(dtype)
        # Dates read from text go back to text: ISO 8601 at the training resolution.
        text = stamps.dt.strftime("%Y-%m-%d" if spec["unit"] == "D" else "%Y-%m-%d %H:%M:%S"
                                  if spec["unit"] in ("h", "min", "s") else "%Y-%m-%dT%H:%M:%S.%f")
        return text.astype(dtype) if dtype != "object" else text
    series = pd.Series(values, dtype=object if "categories" in spec else np.float64)
    series[missing] = None if "categories" in spec else np.nan
    if dtype == "category":
        return series.astype(pd.CategoricalDtype(spec["categories"]))
    try:
        return series.astype(dtype)
    except (TypeError, ValueError):
        # e.g. int64 data that had missing values: pandas' nullable integer keeps both.
        return series.astype("Int64") if kind == "integer" else series
