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
- With ``categorical="normal"`` (the Gaussian copula's encoding, as SDV's ``UniformEncoder``) a
  categorical/boolean column is one ``"interval"`` block of width 1 instead: its categories (missing
  one of them) split ``[0, 1]`` into intervals ``[a_v, b_v)`` of width their training share, and a
  value ``v`` becomes ``z = Phi^-1(u)``, ``u ~ Uniform(a_v, b_v)`` (drawn from ``rng``, by default
  seeded with ``seed``), so ``z`` is standard normal over the training table; decoding takes the
  interval that ``Phi(z)`` falls in. The intervals are laid out in the order of each category's mean
  linear prediction from the other columns' scores (fitted, see ``_fit_orders``), not alphabetically
  or by share, so that the scores of related columns correlate. A numeric column's missing
  indicator is then an ``"interval"`` block too (two categories: present, missing; by share).
- With ``strata="income"`` (needs ``numeric="quantile", categorical="normal"``) every other column's
  empirical CDF, category shares and missing rate are fitted per category (*stratum*) of that
  categorical column and applied to each row by its stratum: a Gaussian copula fitted per stratum on
  these scores is then exact in every per-stratum marginal (the class-conditional copula).
- ID-like columns (text whose values are all distinct, or integers that are a running index
  ``min..min+n-1``, at least :data:`ID_MIN_ROWS` rows, no missing value) get kind ``"id"``: they are
  not modelled (no block) and decoding makes fresh identifiers that no training row has (text: the
  training values' common prefix and a number longer than any of theirs; integers: continuing the
  index after its training maximum).
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

The codec is this module; column kinds and value conversions are in :mod:`genlab.data.table_columns`,
the normalisation maths in :mod:`genlab.data.table_normalisation` and conditions on one column in
:mod:`genlab.data.table_conditions`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genlab.data.table_blocks import Block, block_widths
from genlab.data.table_columns import (KINDS, as_frame, column_numbers, describe_column, fresh_ids, id_like, infer_kind,
                                       plain, raw_numbers, restore_dtype)
from genlab.data.table_conditions import LatentBox, column_boxes, column_log_density, parse_value
from genlab.data.table_normalisation import (decode_numbers, encode_numbers, fit_numeric, interval_index,
                                             interval_scores, one_hot)
from genlab.errors import DataError, unknown_choice

log = logging.getLogger(__name__)

NUMERIC_MODES = ("mode", "quantile")
CATEGORICAL_MODES = ("onehot", "normal")


class TableCodec:
    """Fits on a training table and maps tables <-> float32 arrays ``(n, width)``; see the module doc.

    Args:
        kinds: column name -> kind (one of :data:`KINDS`) overriding :func:`infer_kind`.
        numeric: ``"mode"`` (CTGAN mode-specific normalisation) or ``"quantile"``.
        categorical: ``"onehot"`` (one ``"categories"`` block a column) or ``"normal"`` (one
            ``"interval"`` score a column, the Gaussian copula's encoding).
        strata: a categorical column without missing values whose categories get their own marginals
            of every other column (module doc), or ``None``.
        max_modes: components of each column's Gaussian mixture (CTGAN uses 10).
        mixture_rows: each mixture is fitted on at most this many training values, drawn with ``seed``
            (CTGAN uses all of them; a subsample keeps fitting to about a second a column).
        n_quantiles: quantiles of each column's empirical CDF with ``numeric="quantile"``.
        non_missing: columns declared complete: a missing value in them is an error.
        seed: seed of the mixtures' initialisation, so fitting is deterministic.
    """

    #: The modality the model contract checks a saved codec against (see also :attr:`shape`).
    modality = "tables"

    def __init__(self, *, kinds: dict[str, str] | None = None, numeric: str = "mode", categorical: str = "onehot",
                 max_modes: int = 10, mixture_rows: int = 5000, n_quantiles: int = 1000,
                 non_missing: tuple[str, ...] = (), strata: str | None = None, seed: int = 0) -> None:
        if numeric not in NUMERIC_MODES:
            raise unknown_choice("numeric normalisation", numeric, NUMERIC_MODES)
        if categorical not in CATEGORICAL_MODES:
            raise unknown_choice("categorical encoding", categorical, CATEGORICAL_MODES)
        if strata is not None and (numeric, categorical) != ("quantile", "normal"):
            raise DataError("per-stratum marginals (strata=...) need numeric='quantile' and categorical='normal'")
        for column, kind in (kinds or {}).items():
            if kind not in KINDS:
                raise unknown_choice(f"kind for column {column!r}", kind, KINDS)
        self.kinds = dict(kinds or {})
        self.numeric = numeric
        self.categorical = categorical
        self.strata = strata
        self.max_modes = max_modes
        self.mixture_rows = mixture_rows
        self.n_quantiles = n_quantiles
        self.non_missing = tuple(non_missing)
        self.seed = seed
        self.columns_: list[dict[str, Any]] | None = None

    # ------------------------------------------------------------------ fitting
    def fit(self, table: pd.DataFrame | str | Path) -> "TableCodec":
        """Learn each column's kind, dtype, categories, range, missing rate and normalisation; returns ``self``."""
        table = as_frame(table)
        if len(table) == 0 or table.shape[1] == 0:
            raise DataError("the training table has no rows or no columns")
        for column in list(self.kinds) + list(self.non_missing):
            if column not in table.columns:
                raise DataError(f"column {column!r} is not in the table; its columns are: "
                                f"{', '.join(map(str, table.columns))}")
        self.columns_ = [self._fit_column(str(name), table[name]) for name in table.columns]
        if self.strata is not None:
            self._fit_strata(table)
        if self.categorical == "normal":
            self._fit_orders(table)
        return self

    def _fit_orders(self, table: pd.DataFrame, rows: int = 5000, rounds: int = 2) -> None:
        """Lay each categorical column's intervals out in the order of its categories' mean linear
        prediction from the other columns' scores (one step of optimal scaling, repeated ``rounds``
        times on at most ``rows`` training rows), so that a category's score correlates with what
        goes with it; the default order (by share) is arbitrary with respect to the other columns."""
        specs = [spec for spec in self._specs() if "categories" in spec and len(spec["categories"]) > 1]
        if not specs or self.width < 2:
            return
        sample = table.sample(min(rows, len(table)), random_state=self.seed) if len(table) > rows else table
        sample = sample.reset_index(drop=True)
        starts = {block.column: block.start for block in reversed(self.blocks)}   # each column's first block
        for _ in range(rounds):
            z = self.encode(sample).astype(np.float64)
            centred = z - z.mean(axis=0)
            std = np.sqrt((centred ** 2).mean(axis=0))
            scaled = centred / np.where(std > 1e-12, std, 1.0)
            r = scaled.T @ scaled / len(z) + 1e-6 * np.eye(z.shape[1])
            for spec in specs:
                j = starts[spec["name"]]
                others = np.flatnonzero(np.arange(z.shape[1]) != j)
                beta = np.linalg.solve(r[np.ix_(others, others)], r[others, j])
                prediction = scaled[:, others] @ beta                                   # (rows,)
                index = self._indices(spec, sample[spec["name"]], sample[spec["name"]].isna().to_numpy())
                k = len(spec["categories"]) + 1
                sums, counts = np.bincount(index, prediction, k), np.bincount(index, minlength=k)
                means = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
                spec["order"] = np.argsort(means, kind="stable").tolist()

    def _fit_strata(self, table: pd.DataFrame) -> None:
        """Per stratum of column :attr:`strata`: each other column's quantiles, shares and missing rate."""
        spec = self.spec(self.strata)
        if "categories" not in spec or spec["has_missing"]:
            raise DataError(f"strata column {self.strata!r} must be categorical without missing values; "
                            f"it is {spec['kind']} with missing rate {spec['missing_rate']:.3g}")
        stratum = self._indices(spec, table[self.strata], np.zeros(len(table), dtype=bool))
        for other in self._specs():
            if other["name"] == self.strata or other["kind"] == "id":
                continue
            values = table[other["name"]]
            other["by_stratum"] = [self._fit_stratum(other, values[stratum == s])
                                   for s in range(len(spec["categories"]))]

    def _fit_stratum(self, spec: dict[str, Any], values: pd.Series) -> dict[str, Any]:
        """The fields of ``spec`` that one stratum's rows ``values`` override (the global ones where it has
        no value of the column)."""
        missing = values.isna().to_numpy()
        present = values[~missing]
        if "categories" in spec:
            index = self._indices(spec, values, missing)
            counts = np.bincount(index, minlength=len(spec["categories"]) + 1)
            return {"frequencies": (counts / len(values)).tolist()}
        out: dict[str, Any] = {"missing_rate": float(missing.mean())}
        if len(present):
            out.update(self._fit_numeric(raw_numbers(spec, present)))
        return out

    def _fit_column(self, name: str, values: pd.Series) -> dict[str, Any]:
        missing = values.isna()
        if missing.all():
            raise DataError(f"column {name!r} is entirely missing; drop it or fill it before fitting")
        if missing.any() and name in self.non_missing:
            raise DataError(f"column {name!r} was declared non-missing but has {int(missing.sum())} missing values")
        kind = self.kinds.get(name) or id_like(values) or infer_kind(values)
        spec = describe_column(name, values, kind)
        if kind == "id":
            log.warning("column %r looks like an identifier (%d distinct values in %d rows): it is not modelled, "
                        "and samples get fresh identifiers", name, values.nunique(), len(values))
        elif "low" in spec:
            spec.update(self._fit_numeric(column_numbers(spec, values[~missing])))
        return spec

    def _fit_numeric(self, x: np.ndarray) -> dict[str, Any]:
        return fit_numeric(x, numeric=self.numeric, n_quantiles=self.n_quantiles, max_modes=self.max_modes,
                           mixture_rows=self.mixture_rows, seed=self.seed)

    # ------------------------------------------------------------------ layout
    @property
    def blocks(self) -> list[Block]:
        """The blocks of an encoded row, in order (column by column, in the table's column order)."""
        blocks, start = [], 0
        for spec in self._specs():
            for kind, width in block_widths(spec, self.categorical):
                blocks.append(Block(spec["name"], kind, start, start + width))
                start += width
        return blocks

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one raw record: ``(n_columns,)``."""
        return (len(self._specs()),)

    @property
    def columns(self) -> list[str]:
        """The training table's column names, in order."""
        return [spec["name"] for spec in self._specs()]

    @property
    def id_columns(self) -> list[str]:
        """Columns of kind ``"id"``: not modelled, decoded as fresh identifiers."""
        return [spec["name"] for spec in self._specs() if spec["kind"] == "id"]

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

    def spec(self, column: str) -> dict[str, Any]:
        """The fitted description of ``column`` (kind, dtype, categories, range, ...), or a DataError
        naming the columns."""
        for spec in self._specs():
            if spec["name"] == column:
                return spec
        raise DataError(f"unknown column {column!r}; the table's columns are: {', '.join(self.columns)}")

    # ------------------------------------------------------------------ encoding
    def encode(self, table: pd.DataFrame | str | Path, *, rng: np.random.Generator | None = None) -> np.ndarray:
        """Table with the training columns -> float32 array ``(n, width)`` laid out as :attr:`blocks`.

        ``rng`` draws the uniform position inside a category's interval (``categorical="normal"``);
        ``None`` uses a generator seeded with ``seed``, so encoding is deterministic.
        """
        table = self._check_table(table)
        rng = np.random.default_rng(self.seed) if rng is None else rng
        strata = None
        if self.strata is not None:
            missing = table[self.strata].isna().to_numpy()
            if missing.any():
                raise DataError(f"strata column {self.strata!r} has {int(missing.sum())} missing values")
            strata = self._indices(self.spec(self.strata), table[self.strata], missing)
        parts = [np.zeros((len(table), 0))]
        for spec in self._specs():
            if spec["kind"] == "id":
                continue
            values = table[spec["name"]].reset_index(drop=True)
            missing = values.isna().to_numpy()
            if strata is None or "by_stratum" not in spec:
                parts.append(self._encode_column(spec, values, missing, rng))
                continue
            width = sum(w for _, w in block_widths(spec, self.categorical))
            column = np.zeros((len(table), width))
            for s in range(len(spec["by_stratum"])):
                rows = strata == s
                column[rows] = self._encode_column(_in_stratum(spec, s), values[rows], missing[rows], rng)
            parts.append(column)
        return np.concatenate(parts, axis=1).astype(np.float32)

    def _encode_column(self, spec: dict[str, Any], values: pd.Series, missing: np.ndarray,
                       rng: np.random.Generator) -> np.ndarray:
        """One column's values ``(n,)`` -> its blocks ``(n, w)``."""
        if "categories" in spec:
            index = self._indices(spec, values, missing)
            if self.categorical == "normal":
                return interval_scores(spec["frequencies"], index, rng, spec.get("order"))[:, None]
            return one_hot(index, len(spec["categories"]) + spec["has_missing"])
        x = np.full(len(values), spec["fill"])
        x[~missing] = raw_numbers(spec, values[~missing])
        parts = encode_numbers(spec, x)
        if spec["has_missing"]:
            if self.categorical == "normal":
                shares = [1.0 - spec["missing_rate"], spec["missing_rate"]]
                parts.append(interval_scores(shares, missing.astype(np.int64), rng))
            else:
                parts.append(one_hot(missing.astype(np.int64), 2))
        return np.concatenate([p.reshape(len(values), -1) for p in parts], axis=1)

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
            index = lookup.get(plain(value))
            if index is None:
                raise DataError(f"column {spec['name']!r} holds {value!r}, a category not seen in training; "
                                f"seen: {', '.join(map(str, spec['categories'][:20]))}")
            indices[row] = index
        return indices

    # ------------------------------------------------------------------ conditions
    def encode_condition(self, condition: dict[str, Any]) -> np.ndarray:
        """A parsed condition (:meth:`parse_condition`) as one encoded row ``(width,)``: a one-row table
        holding the conditioned values (other columns arbitrary), encoded exactly as training rows are."""
        row = self.decode(np.zeros((1, self.width)))
        for column, value in condition.items():
            row[column] = pd.Series([value], dtype=object)
        return self.encode(row)[0]

    def parse_condition(self, condition: dict[str, Any]) -> dict[str, Any]:
        """Check a condition ``{column: value}`` and cast each value to its column's type.

        Text values (from a command line) are read as the column's type: a category is matched
        exactly, else by its text; ``true``/``false``/``1``/``0`` for booleans; numbers for numeric and
        integer columns (an integer must be whole, every number within the training range); ISO dates
        for datetime columns.

        Returns:
            column -> value: a category as stored, a float (numeric), an int (integer), a bool
            (boolean) or a ``pandas.Timestamp`` (datetime).

        Raises:
            DataError: not a dict, an unknown column, an unseen category, a value that does not parse
                or lies outside the training range, a missing value, or an ID-like column; the message
                names the valid choices.
        """
        if not isinstance(condition, dict) or not condition:
            raise DataError(f"a table condition is a non-empty dict {{column: value}}, got {condition!r}")
        return {str(column): parse_value(self.spec(str(column)), value) for column, value in condition.items()}

    def latent_boxes(self, column: str, value: Any, stratum: int | None = None) -> list[LatentBox]:
        """Where a parsed condition ``column == value`` puts the encoded row, for a codec with
        ``numeric="quantile", categorical="normal"`` (every block one standard-normal score).

        Returns :class:`LatentBox` es: encoded column ``index`` must lie in ``[low, high]`` (or equal
        ``low`` for a point). A category owns the interval ``[Phi^-1(a_v), Phi^-1(b_v))`` of its CDF interval. A
        number ``c`` of an integer or datetime column (or one rounded to ``d`` decimals) is decoded from
        every ``z`` with ``x(Phi(z))`` in ``[c - h, c + h)``, ``h`` half its resolution, ``x(u)`` the
        piecewise-linear quantile function: an interval too, found by inverting ``x`` (non-decreasing)
        exactly; a number of a continuous column is the point ``Phi^-1(F(c))``. A numeric column with
        missing values adds the box of its ``present`` interval. With :attr:`strata`, ``stratum`` (a
        category index of that column) selects whose marginals apply; a category a stratum never saw
        has an empty box (:attr:`LatentBox.empty`).
        """
        if self.numeric != "quantile" or self.categorical != "normal":
            raise DataError("latent boxes need a codec with numeric='quantile' and categorical='normal'")
        spec = self.spec(column)
        if stratum is not None and "by_stratum" in spec:
            spec = _in_stratum(spec, stratum)
        start = next(block.start for block in self.blocks if block.column == column)
        return column_boxes(spec, value, start)

    def strata_index(self, z: np.ndarray) -> np.ndarray:
        """The stratum (category index of :attr:`strata`) of encoded rows ``z (n, width)``, int64 ``(n,)``."""
        if self.strata is None:
            raise DataError("this table codec has no strata")
        block = next(b for b in self.blocks if b.column == self.strata)
        spec = self.spec(self.strata)
        return interval_index(spec["frequencies"], np.asarray(z, dtype=np.float64)[:, block.start], spec.get("order"))

    def point_log_density(self, column: str, value: Any, stratum: int | None = None) -> float:
        """``log dF/dx`` at ``value`` of a continuous column's (stratum's) piecewise-linear CDF: what turns
        a density of the normal score ``z`` into one of ``x`` (``log f(x) = log phi_R(z) + this -
        log phi(z)`` per column). ``0`` for a column constant in training."""
        spec = self.spec(column)
        if stratum is not None and "by_stratum" in spec:
            spec = _in_stratum(spec, stratum)
        return column_log_density(spec, value)

    # ------------------------------------------------------------------ decoding
    def decode(self, z: np.ndarray) -> pd.DataFrame:
        """Float array ``(n, width)`` (e.g. a model's output; a torch tensor too) -> table with the training
        columns and dtypes."""
        if hasattr(z, "detach"):      # a torch tensor, on any device
            z = z.detach().cpu().double().numpy()
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.width:
            raise DataError(f"encoded tables have shape (n, {self.width}); got {z.shape}")
        if not np.isfinite(z).all():
            raise DataError("the encoded table holds NaN or infinite values")
        strata = None if self.strata is None else self.strata_index(z)
        blocks = iter(self.blocks)
        columns = {}
        for spec in self._specs():
            parts = [z[:, next(blocks).slice] for _ in block_widths(spec, self.categorical)]
            if spec["kind"] == "id":
                columns[spec["name"]] = fresh_ids(spec, len(z))
                continue
            if strata is None or "by_stratum" not in spec:
                values, missing = self._decode_column(spec, parts)
            else:
                values = np.empty(len(z), dtype=object if "categories" in spec else np.float64)
                missing = np.zeros(len(z), dtype=bool)
                for s in range(len(spec["by_stratum"])):
                    rows = strata == s
                    values[rows], missing[rows] = self._decode_column(_in_stratum(spec, s), [p[rows] for p in parts])
            columns[spec["name"]] = restore_dtype(spec, values, missing)
        return pd.DataFrame(columns)

    def _decode_column(self, spec: dict[str, Any], parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """One column's blocks -> its values ``(n,)`` (categories or numbers) and missing mask ``(n,)``."""
        n = len(parts[0])
        if "categories" in spec:
            index = (interval_index(spec["frequencies"], parts[0][:, 0], spec.get("order"))
                     if self.categorical == "normal"
                     else parts[0].argmax(axis=1))
            return np.array(spec["categories"] + [None], dtype=object)[index], index == len(spec["categories"])
        if not spec["has_missing"]:
            missing = np.zeros(n, dtype=bool)
        elif self.categorical == "normal":
            shares = [1.0 - spec["missing_rate"], spec["missing_rate"]]
            missing = interval_index(shares, parts[-1][:, 0]) == 1
        else:
            missing = parts[-1].argmax(axis=1) == 1
        return decode_numbers(spec, parts[:-1] if spec["has_missing"] else parts), missing

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """JSON-ready configuration and learned state, read back by :meth:`from_state`."""
        return {"codec": "table", "modality": "tables", "numeric": self.numeric, "categorical": self.categorical,
                "max_modes": self.max_modes,
                "mixture_rows": self.mixture_rows, "n_quantiles": self.n_quantiles, "kinds": self.kinds,
                "non_missing": list(self.non_missing), "strata": self.strata, "seed": self.seed,
                "columns": self._specs()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "TableCodec":
        """Rebuild a fitted codec from :meth:`state`."""
        codec = cls(kinds=state["kinds"], numeric=state["numeric"], categorical=state.get("categorical", "onehot"),
                    max_modes=state["max_modes"],
                    mixture_rows=state["mixture_rows"], n_quantiles=state["n_quantiles"],
                    non_missing=tuple(state["non_missing"]), strata=state.get("strata"), seed=state["seed"])
        codec.columns_ = [dict(spec) for spec in state["columns"]]
        return codec

    # ------------------------------------------------------------------ helpers
    def _specs(self) -> list[dict[str, Any]]:
        if self.columns_ is None:
            raise DataError("the table codec is not fitted; call fit(table) first")
        return self.columns_

    def _check_table(self, table: pd.DataFrame | str | Path) -> pd.DataFrame:
        table = as_frame(table)
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


def _in_stratum(spec: dict[str, Any], stratum: int) -> dict[str, Any]:
    """A column's spec with one stratum's marginals in place of the global ones."""
    return {**spec, **spec["by_stratum"][stratum]}
