"""Conditions on table columns: reading a user's value for a column, and where it puts the encoded row.

Each function works on one column's fitted spec (:mod:`genlab.data.tables`); the codec's
``parse_condition``, ``latent_boxes`` and ``point_log_density`` pick the spec (and the stratum) and call
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from genlab.data.table_columns import DATETIME_UNITS, plain, raw_numbers
from genlab.data.table_normalisation import category_interval, encode_numbers
from genlab.errors import DataError

_BOOLEAN_TEXT = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


@dataclass(frozen=True)
class LatentBox:
    """A condition on encoded column ``index``: ``low <= z <= high``, or ``z == low`` when ``point``.

    A box that is not a point and has ``low >= high`` is *empty*: the value is impossible (a category or
    whole number that the stratum never had).
    """

    index: int
    low: float
    high: float
    point: bool = False

    @property
    def empty(self) -> bool:
        """Whether no encoded value satisfies the condition."""
        return not self.point and not self.low < self.high


def parse_value(spec: dict[str, Any], value: Any) -> Any:
    """A condition's ``value`` for the column of ``spec``, cast to its type (see
    :meth:`~genlab.data.tables.TableCodec.parse_condition`), or a DataError naming the valid choices."""
    name, kind = spec["name"], spec["kind"]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise DataError(f"column {name!r}: conditioning on a missing value is not supported")
    if kind == "id":
        raise DataError(f"column {name!r} is an identifier (not modelled), so it cannot be conditioned on")
    if "categories" in spec:
        categories = spec["categories"]
        value = plain(value)
        if kind == "boolean" and isinstance(value, str) and value.strip().lower() in _BOOLEAN_TEXT:
            value = _BOOLEAN_TEXT[value.strip().lower()]
        if value in categories and not (isinstance(value, bool) != isinstance(categories[0], bool)):
            return categories[categories.index(value)]
        by_text = [c for c in categories if str(c) == str(value).strip()]
        if by_text:
            return by_text[0]
        listed = ", ".join(map(str, categories[:30])) + (", ..." if len(categories) > 30 else "")
        raise DataError(f"column {name!r} has no category {value!r}; its categories are: {listed}")
    if kind == "datetime":
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError):
            raise DataError(f"column {name!r} holds dates; cannot read {value!r} as one") from None
        if stamp is pd.NaT:
            raise DataError(f"column {name!r}: conditioning on a missing value is not supported")
        if (stamp.tz is None) != (spec["tz"] is None):
            stamp = stamp.tz_localize(spec["tz"]) if stamp.tz is None else stamp.tz_convert(None)
        number = float(raw_numbers(spec, pd.Series([stamp]))[0])
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DataError(f"column {name!r} holds numbers; cannot read {value!r} as one") from None
        if not np.isfinite(number):
            raise DataError(f"column {name!r}: the condition must be a finite number, got {value!r}")
        if kind == "integer" and number != round(number):
            raise DataError(f"column {name!r} holds whole numbers; got {value!r}")
    if not spec["low"] <= number <= spec["high"]:
        raise DataError(f"column {name!r}: {value!r} lies outside the training range "
                        f"[{_shown(spec, spec['low'])}, {_shown(spec, spec['high'])}]")
    if kind == "datetime":
        return stamp
    return int(round(number)) if kind == "integer" else number


def column_boxes(spec: dict[str, Any], value: Any, start: int) -> list[LatentBox]:
    """Where ``column == value`` puts the encoded row, for the spec of a column (of one stratum, if
    stratified) encoded from encoded column ``start`` on with ``numeric="quantile", categorical="normal"``;
    see :meth:`~genlab.data.tables.TableCodec.latent_boxes`."""
    if "categories" in spec:
        a, b = category_interval(spec["frequencies"], spec["categories"].index(value), spec.get("order"))
        return [LatentBox(start, float(ndtri(a)), float(ndtri(b)))]
    if spec["kind"] == "datetime":
        c = float(raw_numbers(spec, pd.Series([value]))[0])
    else:
        c = float(value)
    if spec["kind"] in ("integer", "datetime"):
        half = 0.5
    elif spec["decimals"] is not None:
        half = 0.5 * 10.0 ** -spec["decimals"]
    else:
        half = 0.0
    q, p = np.asarray(spec["quantiles"]), np.asarray(spec["levels"])
    if half == 0.0 or q[0] == q[-1]:
        z = float(encode_numbers(spec, np.array([c]))[0][0])
        boxes = [LatentBox(start, z, z, point=True)]
    else:
        u_low, u_high = _first_level_at(q, p, c - half), _first_level_at(q, p, c + half)
        boxes = [LatentBox(start, float(ndtri(u_low)), float(ndtri(u_high)))]
    if spec["has_missing"]:
        a, b = category_interval([1.0 - spec["missing_rate"], spec["missing_rate"]], 0)
        boxes.append(LatentBox(start + 1, float(ndtri(a)), float(ndtri(b))))
    return boxes


def column_log_density(spec: dict[str, Any], value: Any) -> float:
    """``log dF/dx`` at ``value`` of the piecewise-linear CDF of a continuous column's spec (of one
    stratum, if stratified); see :meth:`~genlab.data.tables.TableCodec.point_log_density`."""
    q, p = np.asarray(spec["quantiles"]), np.asarray(spec["levels"])
    x = float(raw_numbers(spec, pd.Series([value]))[0]) if spec["kind"] == "datetime" else float(value)
    steps = np.flatnonzero((q[:-1] <= x) & (x <= q[1:]) & (q[1:] > q[:-1]))
    if len(steps) == 0:
        return 0.0
    i = steps[0]
    return float(np.log((p[i + 1] - p[i]) / (q[i + 1] - q[i])))


def _shown(spec: dict[str, Any], number: float) -> str:
    """A training-range bound as the user knows it (a date for datetime columns)."""
    if spec["kind"] != "datetime":
        return f"{number:g}"
    return str(pd.Timestamp(int(number) * dict(DATETIME_UNITS)[spec["unit"]], unit="ns"))


def _first_level_at(q: np.ndarray, p: np.ndarray, x: float) -> float:
    """``inf {u : x(u) >= x}`` for the non-decreasing piecewise-linear ``x(u)`` through ``(p_i, q_i)``."""
    i = int(np.searchsorted(q, x, side="left"))      # first knot with q_i >= x
    if i == 0:
        return float(p[0])
    if i == len(q):
        return float(p[-1])
    return float(p[i - 1] + (x - q[i - 1]) / (q[i] - q[i - 1]) * (p[i] - p[i - 1]))
