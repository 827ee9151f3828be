"""The layout of an encoded table row: which columns of the encoded array hold which table column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Block:
    """One block of an encoded row: columns ``start:stop`` that belong to table column ``column``.

    ``kind`` is ``"scalar"`` (one real value: tanh-like ``alpha`` in ``[-1, 1]`` or a normal score),
    ``"modes"``, ``"categories"`` or ``"missing"`` (one-hot blocks: a model applies a softmax to each),
    or ``"interval"`` (width 1, ``categorical="normal"``: a normal score whose interval of the CDF over
    the categories, or over present/missing after a ``"scalar"`` block, gives the value).
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


def block_widths(spec: dict[str, Any], categorical: str = "onehot") -> list[tuple[str, int]]:
    """The ``(kind, width)`` of each block a fitted column's ``spec`` takes in an encoded row: none for an
    identifier; one ``categories`` block (or one ``interval`` score with ``categorical="normal"``) for a
    categorical; a ``scalar`` and, under mode normalisation, its ``modes`` for a number, then the
    ``missing`` one-hot (or ``interval``) when the column had missing values."""
    if spec["kind"] == "id":
        return []
    if "categories" in spec:
        if categorical == "normal":
            return [("interval", 1)]
        return [("categories", len(spec["categories"]) + spec["has_missing"])]
    widths = [("scalar", 1)] if "quantiles" in spec else [("scalar", 1), ("modes", len(spec["weights"]))]
    if not spec["has_missing"]:
        return widths
    return widths + [("interval", 1) if categorical == "normal" else ("missing", 2)]
