"""Tables: a CSV file or DataFrame <-> one float32 row per record, and back.

Each column is fitted on the training records and becomes one or more *blocks* of the encoded row:

- ``numeric``/``integer``/``datetime`` columns, with ``numeric="mode"`` (the default), follow the
  mode-specific normalisation of CTGAN (Xu et al., 2019, "Modeling Tabular Data using Conditional
  GAN", Sec. 4.2): a variational Gaussian mixture (scikit-learn ``BayesianGaussianMixture``, Dirichlet
  process prior ``1e-3``, at most ``max_modes`` components; modes of weight ``<= 0.005`` dropped) is
  fitted per column (on at most ``mixture_rows`` values); a value ``x`` becomes the scalar
  ``alpha = (x - mu_k) / (4 sigma_k)`` (a ``"scalar"`` block of width 1) and the one-hot of its mode
  ``k`` (a ``"modes"`` block). CTGAN draws ``k`` from the posterior and clips ``alpha`` to
  ``[-0.99, 0.99]``; here ``k`` is the most probable mode among those giving ``|alpha| <= 0.99``, so
  encoding is deterministic and exact; a value beyond 3.96 sigma of every mode (0.7% of Adult's
  capital-gain, with ``|alpha|`` up to ~9) takes the mode of smallest ``|alpha|``, unclipped.
  With ``numeric="quantile"`` a value becomes ``z = Phi^-1(F(x))``, ``F`` the empirical CDF on
  ``n_quantiles`` training quantiles (scikit-learn's ``QuantileTransformer`` with a normal output),
  one ``"scalar"`` block; in float32 this round-trips to within ~1e-4 of a column's range.
- ``categorical``/``boolean`` columns become the one-hot of their category (a ``"categories"``
  block, categories in sorted order); :meth:`TableCodec.encode_indices` gives the category index
  instead, usable as one token per column.
- Missing values are explicit, never dropped: a categorical column that had missing values in
  training gets one more category slot at the end of its block (its missing indicator); a numeric
  column gets a ``"missing"`` block ``[present, missing]`` after its value blocks (its value blocks
  then hold the training median). Decoding reproduces missing values where the indicator wins, so a
  model that learns the indicator's rate reproduces the missing rate.

Decoding takes the argmax of every one-hot block (so a model may output softmax probabilities),
keeps the original column names, order and dtypes, clips numbers to the training range, rounds
integers and datetimes to their training resolution and never yields an unseen category.

Datetimes are handled as integers counting the largest unit (day, hour, minute, second, ms, us, ns)
that divides every training value, so they round-trip exactly.
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture

from genlab.errors import DataError, unknown_choice

KINDS = ("numeric", "integer", "categorical", "boolean", "datetime")
NUMERIC_MODES = ("mode", "quantile")
#: Modes of the fitted mixture lighter than this are dropped (CTGAN, RDT's ``ClusterBasedNormalizer``).
MODE_WEIGHT_THRESHOLD = 0.005
#: Quantile normalisation keeps ``F(x)`` inside ``[eps, 1 - eps]`` so ``Phi^-1`` stays finite.
QUANTILE_EPS = 1e-7
_DATETIME_UNITS = (("D", 86_400 * 10**9), ("h", 3_600 * 10**9), ("min", 60 * 10**9), ("s", 10**9),
                   ("ms", 10**6), ("us", 10**3), ("ns", 1))
_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")


@dataclass(frozen=True)
class Block:
    """One block of an encoded row: columns ``start:stop`` that belong to table column ``column``.

    ``kind`` is ``"scalar"`` (one real value: tanh-like ``alpha`` in ``[-1, 1]`` or a normal score),
    ``"modes"``, ``"categories"`` or ``"missing"`` (one-hot blocks: a model applies a softmax to each).
    """

    column: str
    kind: str
    start: int
    stop: int

    @property
    def slice(self) -> slice:
        """The block's columns in the encoded array."""
        return slice(self.start, self.stop)

    @property
    def width(self) -> int:
        """Number of encoded columns, ``stop - start``."""
        return self.stop - self.start


def read_table(path: str | Path, *, delimiter: str | None = None, encoding: str | None = None) -> pd.DataFrame:
    """Read a CSV file with a header row into a DataFrame; empty fields become missing values.

    Without ``encoding`` the first of UTF-8 (with or without BOM), cp1252 and Latin-1 that decodes the
    whole file is used; without ``delimiter`` it is sniffed among ``, ; tab |`` (``csv.Sniffer``),
    falling back to a comma.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"table file {str(path)!r} does not exist")
    raw = path.read_bytes()
    if encoding is None:
        for encoding in _ENCODINGS:
            try:
                text = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    else:
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as error:
            raise DataError(f"table file {str(path)!r} cannot be read as {encoding!r} ({error})") from None
    if not text.strip():
        raise DataError(f"table file {str(path)!r} is empty")
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        return pd.read_csv(path, sep=delimiter, encoding=encoding, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"table file {str(path)!r} is not a valid CSV file ({error})") from None


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


class TableCodec:
    """Fits on a training table and maps tables <-> float32 arrays ``(n, width)``; see the module doc.

    Args:
        kinds: column name -> kind (one of :data:`KINDS`) overriding :func:`infer_kind`.
        numeric: ``"mode"`` (CTGAN mode-specific normalisation) or ``"quantile"``.
        max_modes: components of each column's Gaussian mixture (CTGAN uses 10).
        mixture_rows: each mixture is fitted on at most this many training values, drawn with ``seed``
            (CTGAN uses all of them; a subsample keeps fitting to about a second a column).
        n_quantiles: quantiles of each column's empirical CDF with ``numeric="quantile"``.
        non_missing: columns declared complete: a missing value in them is an error.
        seed: seed of the mixtures' initialisation, so fitting is deterministic.
    """

    def __init__(self, *, kinds: dict[str, str] | None = None, numeric: str = "mode", max_modes: int = 10,
                 mixture_rows: int = 5000, n_quantiles: int = 1000, non_missing: tuple[str, ...] = (),
                 seed: int = 0) -> None:
        if numeric not in NUMERIC_MODES:
            raise unknown_choice("numeric normalisation", numeric, NUMERIC_MODES)
        for column, kind in (kinds or {}).items():
            if kind not in KINDS:
                raise unknown_choice(f"kind for column {column!r}", kind, KINDS)
        self.kinds = dict(kinds or {})
        self.numeric = numeric
        self.max_modes = max_modes
        self.mixture_rows = mixture_rows
        self.n_quantiles = n_quantiles
        self.non_missing = tuple(non_missing)
        self.seed = seed
        self.columns_: list[dict[str, Any]] | None = None

    # ------------------------------------------------------------------ fitting
    def fit(self, table: pd.DataFrame | str | Path) -> "TableCodec":
        """Learn each column's kind, dtype, categories, range, missing rate and normalisation; returns ``self``."""
        table = _as_frame(table)
        if len(table) == 0 or table.shape[1] == 0:
            raise DataError("the training table has no rows or no columns")
        for column in list(self.kinds) + list(self.non_missing):
            if column not in table.columns:
                raise DataError(f"column {column!r} is not in the table; its columns are: "
                                f"{', '.join(map(str, table.columns))}")
        self.columns_ = [self._fit_column(str(name), table[name]) for name in table.columns]
        return self

    def _fit_column(self, name: str, values: pd.Series) -> dict[str, Any]:
        missing = values.isna()
        if missing.all():
            raise DataError(f"column {name!r} is entirely missing; drop it or fill it before fitting")
        if missing.any() and name in self.non_missing:
            raise DataError(f"column {name!r} was declared non-missing but has {int(missing.sum())} missing values")
        kind = self.kinds.get(name) or infer_kind(values)
        spec: dict[str, Any] = {"name": name, "kind": kind, "dtype": str(values.dtype),
                                "missing_rate": float(missing.mean()), "has_missing": bool(missing.any())}
        present = values[~missing]
        if kind in ("categorical", "boolean"):
            try:
                categories = sorted(set(present.tolist()))
            except TypeError:
                categories = sorted(set(present.tolist()), key=str)
            spec["categories"] = [_plain(v) for v in categories]
            return spec
        if kind == "datetime":
            tz = _to_datetime(name, present).dt.tz
            spec["tz"] = None if tz is None else str(tz)
            ns = _nanoseconds(name, present)
            spec["unit"], step = next((u, s) for u, s in _DATETIME_UNITS if np.all(ns % s == 0))
            x = (ns // step).astype(np.float64)
        else:
            x = _to_float(name, present)
            if kind == "integer" and not np.all(x == np.round(x)):
                raise DataError(f"column {name!r} was declared integer but holds fractional values")
            spec["decimals"] = None if kind == "integer" else _decimals(x)
        spec["low"], spec["high"], spec["fill"] = float(x.min()), float(x.max()), float(np.median(x))
        spec.update(self._fit_numeric(x))
        return spec

    def _fit_numeric(self, x: np.ndarray) -> dict[str, Any]:
        if self.numeric == "quantile":
            levels = np.linspace(0.0, 1.0, max(2, min(self.n_quantiles, len(x))))
            return {"quantiles": np.quantile(x, levels).tolist(), "levels": levels.tolist()}
        if np.unique(x).size < 2:
            return {"weights": [1.0], "means": [float(x[0])], "stds": [1.0]}
        if len(x) > self.mixture_rows:
            x = np.random.default_rng(self.seed).choice(x, self.mixture_rows, replace=False)
        mixture = BayesianGaussianMixture(
            n_components=min(self.max_modes, len(x)), weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=1e-3, max_iter=100, n_init=1, random_state=self.seed)
        with warnings.catch_warnings():
            # A mixture that has not converged in 100 iterations still normalises well (CTGAN's setting).
            warnings.simplefilter("ignore", ConvergenceWarning)
            mixture.fit(x.reshape(-1, 1))
        keep = mixture.weights_ > MODE_WEIGHT_THRESHOLD
        weights = mixture.weights_[keep] / mixture.weights_[keep].sum()
        return {"weights": weights.tolist(), "means": mixture.means_[keep, 0].tolist(),
                "stds": np.sqrt(mixture.covariances_[keep].reshape(-1)).tolist()}

    # ------------------------------------------------------------------ layout
    @property
    def blocks(self) -> list[Block]:
        """The blocks of an encoded row, in order (column by column, in the table's column order)."""
        blocks, start = [], 0
        for spec in self._specs():
            for kind, width in _block_widths(spec):
                blocks.append(Block(spec["name"], kind, start, start + width))
                start += width
        return blocks

    @property
    def width(self) -> int:
        """Number of columns of an encoded row."""
        return sum(block.width for block in self.blocks)

    @property
    def column_kinds(self) -> dict[str, str]:
        """Column name -> kind, in the table's column order."""
        return {spec["name"]: spec["kind"] for spec in self._specs()}

    @property
    def missing_rates(self) -> dict[str, float]:
        """Column name -> share of training values that were missing."""
        return {spec["name"]: spec["missing_rate"] for spec in self._specs()}

    @property
    def cardinalities(self) -> dict[str, int]:
        """Categorical/boolean column -> number of index values of :meth:`encode_indices` (missing included)."""
        return {spec["name"]: len(spec["categories"]) + spec["has_missing"]
                for spec in self._specs() if "categories" in spec}

    # ------------------------------------------------------------------ encoding
    def encode(self, table: pd.DataFrame | str | Path) -> np.ndarray:
        """Table with the training columns -> float32 array ``(n, width)`` laid out as :attr:`blocks`."""
        table = self._check_table(table)
        parts = []
        for spec in self._specs():
            values = table[spec["name"]]
            missing = values.isna().to_numpy()
            if "categories" in spec:
                width = len(spec["categories"]) + spec["has_missing"]
                parts.append(_one_hot(self._indices(spec, values, missing), width))
                continue
            x = np.full(len(values), spec["fill"])
            x[~missing] = self._raw_numbers(spec, values[~missing])
            parts.extend(_encode_numbers(spec, x))
            if spec["has_missing"]:
                parts.append(_one_hot(missing.astype(np.int64), 2))
        return np.concatenate([p.reshape(len(table), -1) for p in parts], axis=1).astype(np.float32)

    def encode_indices(self, table: pd.DataFrame | str | Path) -> np.ndarray:
        """Categorical and boolean columns -> int64 category indices ``(n, c)``, columns in the order of
        :attr:`cardinalities`; index ``len(categories)`` stands for a missing value."""
        table = self._check_table(table)
        specs = [spec for spec in self._specs() if "categories" in spec]
        columns = [self._indices(spec, table[spec["name"]], table[spec["name"]].isna().to_numpy()) for spec in specs]
        return np.stack(columns, axis=1) if columns else np.zeros((len(table), 0), dtype=np.int64)

    def _indices(self, spec: dict[str, Any], values: pd.Series, missing: np.ndarray) -> np.ndarray:
        lookup = {v: i for i, v in enumerate(spec["categories"])}
        indices = np.full(len(values), len(spec["categories"]), dtype=np.int64)
        for row, value in zip(np.flatnonzero(~missing), values[~missing].tolist()):
            index = lookup.get(_plain(value))
            if index is None:
                raise DataError(f"column {spec['name']!r} holds {value!r}, a category not seen in training; "
                                f"seen: {', '.join(map(str, spec['categories'][:20]))}")
            indices[row] = index
        return indices

    def _raw_numbers(self, spec: dict[str, Any], present: pd.Series) -> np.ndarray:
        if spec["kind"] != "datetime":
            return _to_float(spec["name"], present)
        return _nanoseconds(spec["name"], present) / dict(_DATETIME_UNITS)[spec["unit"]]

    # ------------------------------------------------------------------ decoding
    def decode(self, z: np.ndarray) -> pd.DataFrame:
        """Float array ``(n, width)`` (e.g. a model's output) -> table with the training columns and dtypes."""
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.width:
            raise DataError(f"encoded tables have shape (n, {self.width}); got {z.shape}")
        if not np.isfinite(z).all():
            raise DataError("the encoded table holds NaN or infinite values")
        blocks = iter(self.blocks)
        columns = {}
        for spec in self._specs():
            parts = [z[:, next(blocks).slice] for _ in _block_widths(spec)]
            if "categories" in spec:
                index = parts[0].argmax(axis=1)
                missing = index == len(spec["categories"])
                values = np.array(spec["categories"] + [None], dtype=object)[index]
            else:
                missing = parts[-1].argmax(axis=1) == 1 if spec["has_missing"] else np.zeros(len(z), dtype=bool)
                values = _decode_numbers(spec, parts[:-1] if spec["has_missing"] else parts)
            columns[spec["name"]] = _restore_dtype(spec, values, missing)
        return pd.DataFrame(columns)

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """JSON-ready configuration and learned state, read back by :meth:`from_state`."""
        return {"codec": "table", "modality": "tables", "numeric": self.numeric, "max_modes": self.max_modes,
                "mixture_rows": self.mixture_rows, "n_quantiles": self.n_quantiles, "kinds": self.kinds,
                "non_missing": list(self.non_missing), "seed": self.seed, "columns": self._specs()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "TableCodec":
        """Rebuild a fitted codec from :meth:`state`."""
        codec = cls(kinds=state["kinds"], numeric=state["numeric"], max_modes=state["max_modes"],
                    mixture_rows=state["mixture_rows"], n_quantiles=state["n_quantiles"],
                    non_missing=tuple(state["non_missing"]), seed=state["seed"])
        codec.columns_ = [dict(spec) for spec in state["columns"]]
        return codec

    # ------------------------------------------------------------------ helpers
    def _specs(self) -> list[dict[str, Any]]:
        if self.columns_ is None:
            raise DataError("the table codec is not fitted; call fit(table) first")
        return self.columns_

    def _check_table(self, table: pd.DataFrame | str | Path) -> pd.DataFrame:
        table = _as_frame(table)
        names = [spec["name"] for spec in self._specs()]
        absent = [name for name in names if name not in table.columns]
        if absent:
            raise DataError(f"the table lacks the training column(s) {', '.join(map(repr, absent))}")
        for spec in self._specs():
            n_missing = int(table[spec["name"]].isna().sum())
            if n_missing and not spec["has_missing"]:
                why = "was declared non-missing" if spec["name"] in self.non_missing else "had none in training"
                raise DataError(f"column {spec['name']!r} has {n_missing} missing values but {why}")
        return table


def _as_frame(table: pd.DataFrame | str | Path) -> pd.DataFrame:
    if isinstance(table, (str, Path)):
        table = read_table(table)
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"a table must be a pandas DataFrame or a CSV path, got {type(table).__name__}")
    if not all(isinstance(c, str) for c in table.columns):
        table = table.rename(columns=str)
    return table


def _plain(value: Any) -> Any:
    """A JSON-ready Python scalar for a numpy/pandas scalar."""
    return value.item() if isinstance(value, np.generic) else value


def _to_float(name: str, values: pd.Series) -> np.ndarray:
    try:
        return values.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"column {name!r} holds values that are not numbers, e.g. {values.iloc[0]!r}") from None


def _to_datetime(name: str, values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    for form in ("ISO8601", "mixed"):
        try:
            return pd.to_datetime(values, format=form)
        except (TypeError, ValueError):
            continue
    raise DataError(f"column {name!r} holds values that are not dates, e.g. {values.iloc[0]!r}")


def _nanoseconds(name: str, values: pd.Series) -> np.ndarray:
    """Dates -> int64 nanoseconds since 1970-01-01 (UTC for time-zone-aware dates)."""
    stamps = _to_datetime(name, values)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.astype("datetime64[ns]").astype(np.int64).to_numpy()


def _decimals(x: np.ndarray) -> int | None:
    """Fewest decimals (up to 6) that represent every value, or ``None`` when 6 do not."""
    return next((d for d in range(7) if np.allclose(np.round(x, d), x, rtol=0.0, atol=1e-9)), None)


def _block_widths(spec: dict[str, Any]) -> list[tuple[str, int]]:
    if "categories" in spec:
        return [("categories", len(spec["categories"]) + spec["has_missing"])]
    widths = [("scalar", 1)] if "quantiles" in spec else [("scalar", 1), ("modes", len(spec["weights"]))]
    return widths + ([("missing", 2)] if spec["has_missing"] else [])


def _one_hot(index: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(index), width))
    out[np.arange(len(index)), index] = 1.0
    return out


def _encode_numbers(spec: dict[str, Any], x: np.ndarray) -> list[np.ndarray]:
    """Numbers ``(n,)`` -> ``[alpha (n,), modes one-hot (n, k)]`` or ``[z (n,)]``."""
    if "quantiles" in spec:
        q, p = np.asarray(spec["quantiles"]), np.asarray(spec["levels"])
        # Average of the forward and backward interpolation, so tied quantiles map to the middle of
        # their levels (as scikit-learn's QuantileTransformer does).
        u = 0.5 * (np.interp(x, q, p) - np.interp(-x, -q[::-1], -p[::-1]))
        return [ndtri(np.clip(u, QUANTILE_EPS, 1.0 - QUANTILE_EPS))]
    w, mu, sigma = (np.asarray(spec[k]) for k in ("weights", "means", "stds"))
    log_post = np.log(w) - np.log(sigma) - 0.5 * ((x[:, None] - mu) / sigma) ** 2          # (n, k)
    alphas = (x[:, None] - mu) / (4.0 * sigma)                                             # (n, k)
    # The most probable mode among those whose |alpha| <= 0.99; a value beyond 3.96 sigma of every
    # mode takes the mode of smallest |alpha| and keeps |alpha| > 0.99 unclipped (CTGAN clips it),
    # so that decoding gives every training value back.
    covered = np.abs(alphas) <= 0.99
    k = np.where(covered.any(axis=1), np.where(covered, log_post, -np.inf).argmax(axis=1),
                 np.abs(alphas).argmin(axis=1))
    alpha = alphas[np.arange(len(x)), k]
    return [alpha, _one_hot(k, len(w))]


def _decode_numbers(spec: dict[str, Any], parts: list[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`_encode_numbers`, clipped to the training range and rounded to its resolution."""
    if "quantiles" in spec:
        x = np.interp(ndtr(parts[0][:, 0]), spec["levels"], spec["quantiles"])
    else:
        k = parts[1].argmax(axis=1)
        x = np.asarray(spec["means"])[k] + 4.0 * np.asarray(spec["stds"])[k] * parts[0][:, 0]
    x = np.clip(x, spec["low"], spec["high"])
    if spec["kind"] in ("integer", "datetime"):
        return np.round(x)
    return x if spec["decimals"] is None else np.round(x, spec["decimals"])


def _restore_dtype(spec: dict[str, Any], values: np.ndarray, missing: np.ndarray) -> pd.Series:
    """Decoded values -> a Series of the training dtype, ``NaN``/``NaT``/``NA`` where ``missing``."""
    kind, dtype = spec["kind"], spec["dtype"]
    if kind == "datetime":
        ns = values.astype(np.int64) * dict(_DATETIME_UNITS)[spec["unit"]]
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
