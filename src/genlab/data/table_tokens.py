"""Tables as token rows: one token per column, for autoregressive families.

A fitted :class:`~genlab.data.tables.TableCodec` (``numeric="quantile"``, used only for what it knows
about each column: kind, dtype, categories, range, resolution, missing values, conditions and dtype
restoration) is wrapped by :class:`TableTokenCodec`, which gives every modelled column its own range
of token ids, so ids are globally unique and a token names its column:

- categorical/boolean columns: one token per category (sorted order), then one for a missing value;
- numeric/integer/datetime columns: one token per *atom* (a value holding at least ``1 / bins`` of the
  training values, or every distinct value when there are at most ``bins``), then one per quantile
  bin ``[e_k, e_{k+1})`` of the other values (edges from the training quantiles; for integers,
  datetimes and numbers of a few decimals halfway between representable values, so that rounding a
  uniform draw stays in its bin and gives each value in it the same weight),
  then one for a missing value.

A record is ``bos`` then one token per modelled column in the table's order, int64 ``(n, 1 + C)``.
ID-like columns have no token and decode to fresh identifiers, as with the TableCodec.

Decoding a bin draws the value uniformly inside it (uniform dequantisation). The draw is carried by
the input: :meth:`TableTokenCodec.decode` takes float ``token + u`` with ``u`` in ``[0, 1)`` the
position inside the bin (a sampler draws ``u`` from its own generator, so seeded sampling is
deterministic), or integer tokens with ``u`` drawn from ``rng``. Numbers are then clipped to the
training range and rounded to its resolution.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from genlab.data.codecs import TokenCodec
from genlab.data.table_columns import fresh_ids, raw_numbers, restore_dtype
from genlab.data.tables import TableCodec
from genlab.errors import DataError


class TableTokenCodec(TokenCodec):
    """A DataFrame <-> int64 token rows ``(n, 1 + C)``, one token per modelled column (module doc).

    Args:
        bins: the most tokens a numeric column's values get (atoms and bins together), at least 2.
        table: a fitted TableCodec to reuse (from state); ``None`` fits one in :meth:`fit`.
        layouts: the fitted per-column token layouts (from state).
    """

    modality = "tables"
    name = "table-tokens"

    def __init__(self, bins: int = 32, *, table: TableCodec | None = None,
                 layouts: list[dict[str, Any]] | None = None) -> None:
        if bins < 2:
            raise ValueError(f"bins must be at least 2, got {bins}")
        self.bins = bins
        self.table = table
        self.layouts = layouts

    # ------------------------------------------------------------------ what the TableCodec knows
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one raw record: ``(n_columns,)``, identifiers included."""
        return self._table().shape

    @property
    def columns(self) -> list[str]:
        """The training table's column names, in order."""
        return self._table().columns

    @property
    def id_columns(self) -> list[str]:
        """Columns of kind ``"id"``: no token, decoded as fresh identifiers."""
        return self._table().id_columns

    @property
    def column_kinds(self) -> dict[str, str]:
        """Column name -> kind, in the table's column order."""
        return self._table().column_kinds

    @property
    def missing_rates(self) -> dict[str, float]:
        """Column name -> share of training values that were missing."""
        return self._table().missing_rates

    def spec(self, column: str) -> dict[str, Any]:
        """The TableCodec's description of ``column``; a DataError naming the columns if unknown."""
        return self._table().spec(column)

    def parse_condition(self, condition: dict[str, Any]) -> dict[str, Any]:
        """Check and cast a condition ``{column: value}`` (:meth:`TableCodec.parse_condition`)."""
        return self._table().parse_condition(condition)

    # ------------------------------------------------------------------ token layout
    @property
    def modelled(self) -> list[str]:
        """Columns that have a token, in token order."""
        return [layout["name"] for layout in self._layouts()]

    @property
    def offsets(self) -> list[int]:
        """First token id of each modelled column."""
        starts, start = [], 0
        for layout in self._layouts():
            starts.append(start)
            start += layout["size"]
        return starts

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """``(start, stop)`` token ids of each modelled column."""
        return [(start, start + layout["size"]) for start, layout in zip(self.offsets, self._layouts())]

    @property
    def vocab_size(self) -> int:
        return sum(layout["size"] for layout in self._layouts()) + 1

    @property
    def bos(self) -> int:
        return self.vocab_size - 1

    @property
    def sequence_length(self) -> int:
        """``C``, tokens per record after ``bos``."""
        return len(self._layouts())

    # ------------------------------------------------------------------ fitting
    def fit(self, x: pd.DataFrame) -> "TableTokenCodec":
        """Fit the column descriptions (a TableCodec) and each numeric column's atoms and bins."""
        self.table = TableCodec(numeric="quantile", n_quantiles=2).fit(x)
        table = self.table._check_table(x)
        self.layouts = []
        for spec in self.table._specs():
            if spec["kind"] == "id":
                continue
            layout: dict[str, Any] = {"name": spec["name"]}
            if "categories" in spec:
                layout["size"] = len(spec["categories"]) + spec["has_missing"]
            else:
                values = table[spec["name"]]
                layout.update(self._fit_bins(spec, raw_numbers(spec, values[values.notna()])))
                layout["size"] = len(layout["atoms"]) + max(len(layout["edges"]) - 1, 0) + spec["has_missing"]
            self.layouts.append(layout)
        return self

    def _fit_bins(self, spec: dict[str, Any], x: np.ndarray) -> dict[str, Any]:
        """Atoms (values of share >= 1/bins, or all values when few) and quantile edges of the rest."""
        values, counts = np.unique(x, return_counts=True)
        if len(values) <= self.bins:
            return {"atoms": values.tolist(), "edges": []}
        atoms = values[counts >= len(x) / self.bins]
        rest = x[~np.isin(x, atoms)]
        k = max(1, self.bins - len(atoms))
        edges = np.quantile(rest, np.linspace(0.0, 1.0, k + 1))
        step = 1.0 if spec["kind"] in ("integer", "datetime") else \
            None if spec["decimals"] is None else 10.0 ** -spec["decimals"]
        if step is not None:   # edges halfway between representable values: rounding stays in the bin
            edges = np.round(edges / step) * step - step / 2
            edges[-1] = rest.max() + step / 2
        edges = np.unique(edges)
        if len(edges) < 2:       # every other value is one number: a bin of width 0 around it
            edges = np.array([rest.min(), rest.max()])
        return {"atoms": atoms.tolist(), "edges": edges.tolist()}

    # ------------------------------------------------------------------ encoding
    def encode(self, x: pd.DataFrame) -> torch.Tensor:
        """Table with the training columns -> int64 ``(n, 1 + C)``: ``bos`` then one token per column."""
        table = self._table()._check_table(x)
        tokens = [np.full(len(table), self.bos)]
        for layout, start in zip(self._layouts(), self.offsets):
            tokens.append(start + self._column_tokens(layout, table[layout["name"]].reset_index(drop=True))[0])
        return torch.from_numpy(np.stack(tokens, axis=1).astype(np.int64))

    def _column_tokens(self, layout: dict[str, Any], values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """One column -> its local token indices ``(n,)`` and the position of each value inside its bin
        ``(n,)`` in ``[0, 1)`` (0.5 for atoms, categories and missing values)."""
        spec = self.spec(layout["name"])
        missing = values.isna().to_numpy()
        u = np.full(len(values), 0.5)
        if "categories" in spec:
            return self._table()._indices(spec, values, missing), u
        index = np.full(len(values), layout["size"] - 1, dtype=np.int64)      # missing: the last token
        x = raw_numbers(spec, values[~missing])
        atoms, edges = np.asarray(layout["atoms"]), np.asarray(layout["edges"])
        local = np.empty(len(x), dtype=np.int64)
        position = np.full(len(x), 0.5)
        is_atom = np.isin(x, atoms) if len(atoms) else np.zeros(len(x), dtype=bool)
        local[is_atom] = np.searchsorted(atoms, x[is_atom])
        other = ~is_atom
        if len(edges):
            k = np.clip(np.searchsorted(edges, x[other], side="right") - 1, 0, len(edges) - 2)
            local[other] = len(atoms) + k
            width = edges[k + 1] - edges[k]
            position[other] = np.clip((x[other] - edges[k]) / np.where(width > 0, width, 1.0), 0.0, 1.0 - 1e-9)
        elif other.any():         # a value between atoms that training never had: the nearest atom
            local[other] = np.abs(x[other, None] - atoms[None]).argmin(axis=1)
        index[~missing] = local
        u[~missing] = position
        return index, u

    def encode_values(self, condition: dict[str, Any]) -> dict[int, float]:
        """A parsed condition -> ``{token position: token + u}``: each conditioned column's token (position
        ``1..C`` after ``bos``) and the position ``u`` of its value inside its bin, so that decoding gives
        the value back."""
        out = {}
        for j, (layout, start) in enumerate(zip(self._layouts(), self.offsets)):
            if layout["name"] in condition:
                index, u = self._column_tokens(layout, pd.Series([condition[layout["name"]]], dtype=object)
                                               .astype(self._series_dtype(layout["name"])))
                out[j + 1] = float(start + index[0]) + float(u[0])
        return out

    def _series_dtype(self, column: str) -> Any:
        spec = self.spec(column)
        if "categories" in spec:
            return object
        return object if spec["kind"] == "datetime" else np.float64

    # ------------------------------------------------------------------ decoding
    def decode(self, z: torch.Tensor | np.ndarray, *, rng: np.random.Generator | None = None) -> pd.DataFrame:
        """Tokens ``(n, C)`` (no ``bos``) -> a table with the training columns, order and dtypes.

        Args:
            z: float ``token + u`` (``u`` in ``[0, 1)``: where inside its bin a number lies), or int64
                tokens, whose ``u`` is drawn from ``rng``.
            rng: draws ``u`` for integer tokens; ``None`` uses a generator seeded with 0.
        """
        if hasattr(z, "detach"):
            z = z.detach().cpu().numpy()
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.sequence_length:
            raise DataError(f"token rows of tables have shape (n, {self.sequence_length}); got {z.shape}")
        if np.issubdtype(z.dtype, np.integer):
            rng = np.random.default_rng(0) if rng is None else rng
            tokens, u = z.astype(np.int64), rng.uniform(size=z.shape)
        else:
            z = z.astype(np.float64)
            tokens = np.floor(z).astype(np.int64)
            u = z - tokens
        columns: dict[str, pd.Series] = {}
        decoded = {}
        for j, (layout, (start, stop)) in enumerate(zip(self._layouts(), self.ranges)):
            local = tokens[:, j] - start
            if (local < 0).any() or (local >= stop - start).any():
                raise DataError(f"token {j} of a row must lie in [{start}, {stop}) for column {layout['name']!r}")
            decoded[layout["name"]] = self._decode_column(layout, local, u[:, j])
        for spec in self._table()._specs():
            if spec["kind"] == "id":
                columns[spec["name"]] = fresh_ids(spec, len(z))
            else:
                columns[spec["name"]] = restore_dtype(spec, *decoded[spec["name"]])
        return pd.DataFrame(columns)

    def _decode_column(self, layout: dict[str, Any], local: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local token indices and in-bin positions ``(n,)`` -> values and missing mask ``(n,)``."""
        spec = self.spec(layout["name"])
        if "categories" in spec:
            return np.array(spec["categories"] + [None], dtype=object)[local], local == len(spec["categories"])
        missing = local == layout["size"] - 1 if spec["has_missing"] else np.zeros(len(local), dtype=bool)
        atoms, edges = np.asarray(layout["atoms"], dtype=np.float64), np.asarray(layout["edges"], dtype=np.float64)
        x = np.full(len(local), spec["fill"])
        is_atom = ~missing & (local < len(atoms))
        x[is_atom] = atoms[local[is_atom]]
        in_bin = ~missing & ~is_atom
        k = local[in_bin] - len(atoms)
        x[in_bin] = edges[k] + u[in_bin] * (edges[k + 1] - edges[k])      # uniform dequantisation
        x = np.clip(x, spec["low"], spec["high"])
        if spec["kind"] in ("integer", "datetime"):
            x = np.round(x)
        elif spec["decimals"] is not None:
            x = np.round(x, spec["decimals"])
        return x, missing

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """JSON-ready state: the bins, the TableCodec's state and the token layouts."""
        return {"codec": self.name, "modality": self.modality, "shape": list(self.shape), "bins": self.bins,
                "table": self._table().state(), "layouts": self._layouts()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "TableTokenCodec":
        """Rebuild a fitted codec from :meth:`state`."""
        return cls(state["bins"], table=TableCodec.from_state(state["table"]),
                   layouts=[dict(layout) for layout in state["layouts"]])

    def _table(self) -> TableCodec:
        if self.table is None:
            raise DataError("the table token codec is not fitted; call fit(table) first")
        return self.table

    def _layouts(self) -> list[dict[str, Any]]:
        if self.layouts is None:
            raise DataError("the table token codec is not fitted; call fit(table) first")
        return self.layouts
