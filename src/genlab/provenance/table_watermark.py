"""A keyed, model-agnostic watermark of table rows: green rows by a keyed hash, kept by resampling.

Every row gets a 64-bit keyed hash (BLAKE2b keyed with the watermark key) of its cells in column-name
order: a cell that reads as a number is replaced by its bin ``sign(x) * floor(log2(1 + |x|))`` (one bin
per doubling, so small numeric noise rarely moves it and no fitted scale is needed), any other cell by
its text. A row is *green* when ``hash / 2**64 < gamma``. Because the hash reads values, not
positions or dtypes, it survives row shuffling, subsetting, column reordering and a round trip
through CSV.

Sampling draws rows from the model as usual and keeps every green row and each red row with
probability ``q = gamma (1 - p) / (p (1 - gamma))``, where ``p = gamma + (1 - gamma) s`` and ``s`` is the
strength: if the sampler's rows are green at the rate ``gamma`` chance gives, a share ``p`` of the
kept rows is green. ``s = 1`` keeps green rows only.

Detection counts each *distinct* hash once (duplicate rows are not independent evidence), so under the
null the green count of ``N`` distinct rows is ``Binomial(N, gamma)`` exactly (:mod:`~genlab.provenance.stats`).
"""

from __future__ import annotations

import hashlib
import math
from typing import Callable

import numpy as np
import pandas as pd
import torch

from genlab.errors import ConfigError, DataError
from genlab.provenance.keys import WatermarkKey
from genlab.provenance.stats import Detection, proportion_test

#: Default strength ``s`` of the table mark (green rows only).
DEFAULT_STRENGTH = 1.0
#: Sampling rounds before giving up on a sampler whose rows are (almost) never green.
MAX_ROUNDS = 50


def _cells(column: pd.Series) -> list[str]:
    """Canonical text of one column's cells: a numeric bin ``#k`` or the cell's text."""
    # numbers are read from the cell's text, so True, "1" and 1.0 hash as they will after a CSV round trip
    text = np.where(column.isna().to_numpy(), "nan", column.astype(object).to_numpy()).astype(str)
    numbers = pd.to_numeric(pd.Series(text), errors="coerce").to_numpy(float)
    bins = np.sign(numbers) * np.floor(np.log2(1.0 + np.abs(np.nan_to_num(numbers))))
    return [f"#{int(b)}" if math.isfinite(x) else t for x, b, t in zip(numbers, bins, text)]


def row_texts(table: pd.DataFrame) -> list[bytes]:
    """Every row's canonical cells in column-name order, UTF-8 (what the keyed hash reads)."""
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"table watermarks read a pandas DataFrame, got {type(table).__name__}")
    columns = sorted(table.columns, key=str)
    cells = [_cells(table[c]) for c in columns]
    names = [str(c) for c in columns]
    return ["\x1f".join(f"{name}\x1e{cell[i]}" for name, cell in zip(names, cells)).encode("utf-8")
            for i in range(len(table))]


def keyed_hashes(texts: list[bytes], key: int) -> np.ndarray:
    """uint64 ``(n,)``: BLAKE2b-64 of each text keyed with ``key``."""
    secret = key.to_bytes(8, "big")
    return np.array([int.from_bytes(hashlib.blake2b(t, digest_size=8, key=secret).digest(), "big") for t in texts],
                    dtype=np.uint64)


def row_hashes(table: pd.DataFrame, key: int) -> np.ndarray:
    """uint64 ``(n_rows,)``: the keyed hash of every row (module doc)."""
    return keyed_hashes(row_texts(table), key)


def threshold(gamma: float) -> np.uint64:
    """Hashes below this are green: ``gamma * 2**64``."""
    return np.uint64(min(gamma * 2.0**64, 2.0**64 - 1))


def green_rows(table: pd.DataFrame, watermark: WatermarkKey) -> np.ndarray:
    """bool ``(n_rows,)``: which rows are green under ``watermark``'s key and ``gamma``."""
    return row_hashes(table, watermark.seed) < threshold(watermark.gamma)


def keep_probability(watermark: WatermarkKey) -> float:
    """``q``, the probability a red row is kept (module doc)."""
    s = DEFAULT_STRENGTH if watermark.strength is None else float(watermark.strength)
    if s > 1:
        raise ConfigError(f"a table watermark's strength is a share in [0, 1], got {s}")
    gamma = watermark.gamma
    p = gamma + (1 - gamma) * s
    return gamma * (1 - p) / (p * (1 - gamma))


def thinned_rows(draw: Callable[[int], pd.DataFrame], n: int, watermark: WatermarkKey,
                 generator: torch.Generator | None) -> pd.DataFrame:
    """``n`` rows from ``draw(k) -> k rows`` thinned so that their green share is ``gamma + (1 - gamma) s``."""
    q = keep_probability(watermark)
    kept: list[pd.DataFrame] = []
    have, drawn, rate = 0, 0, watermark.gamma + (1 - watermark.gamma) * q
    for _ in range(MAX_ROUNDS):
        batch = draw(max(16, math.ceil(1.2 * (n - have) / max(rate, 1e-3))))
        green = green_rows(batch, watermark)
        u = torch.rand(len(batch), generator=generator, device=generator.device if generator else "cpu")
        keep = green | (u.cpu().numpy() < q)
        kept.append(batch[keep])
        have += int(keep.sum())
        drawn += len(batch)
        rate = max(have / drawn, 1e-3)
        if have >= n:
            return pd.concat(kept, ignore_index=True).iloc[:n].reset_index(drop=True)
    raise DataError(f"kept {have} of {drawn} sampled rows, fewer than the {n} asked: this model's rows are "
                    f"rarely green (too few distinct rows under this condition?)")


def detect_table(table: pd.DataFrame, watermark: WatermarkKey, *, fpr: float) -> Detection:
    """One-proportion test of the distinct rows' green share (module doc)."""
    hashes = np.unique(row_hashes(table, watermark.seed))
    green = int((hashes < threshold(watermark.gamma)).sum())
    return proportion_test(green, len(hashes), gamma=watermark.gamma, fpr=fpr, unit="distinct rows")
