"""``genlab.attribute(model, records, data=..., k=3)``: the training records each generated record sits
nearest to, and whether it sits nearer than unseen real records do (memorisation).

Spaces, as the evaluation measures closeness:

- images: the penultimate layer of genlab's own classifier (:func:`genlab.metrics.features.feature_classifier`)
  for labelled image datasets, raw pixels otherwise; points: raw coordinates;
- tables: numbers as the quantile normal scores of a :class:`~genlab.data.tables.TableCodec` fitted on the
  training rows, categories one-hot (missing as one more value), so every column counts on a comparable
  scale. The one-hot spans every value that the training rows, the test rows or the records hold: a
  category the training rows lack (Adult's one Holand-Netherlands row when it falls in the test split)
  is a mismatch like any other, at distance ``sqrt(2)``, not an error, and so is a missing number in a
  column that had none in training;
- text: the *longest copied span* of a sample: the longest stretch of it whose every 50-character window
  occurs in the training text (the copying index of :mod:`genlab.metrics.text`). Its neighbours are
  the ``k`` longest spans, each with the training offset of its first window; its distance is the
  number of characters outside the span.

The flag is :mod:`genlab.metrics.memorisation`'s test per record: the nearest distance is below the 5th
percentile of the real test records' nearest distances to the training set (text: the longest span is
longer than the 95th percentile of real test passages of the same length), so about 5 % of fresh real
records are flagged; a model that copies flags far more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from genlab.data.dataset import Dataset
from genlab.data.tables import TableCodec
from genlab.errors import ConfigError, DataError
from genlab.metrics.features import feature_classifier
from genlab.metrics.memorisation import PERCENTILE
from genlab.metrics.text import COPY_CHARS, _window_hashes   # the copying index's own rolling hash

#: Query rows per block of the distance computation (memory only).
_BLOCK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Attribution:
    """Nearest training records of generated records.

    Attributes:
        indices: int64 ``(n, k)``: training record indices, nearest first (text: training-text offsets
            of each copied span's first window; -1 where fewer than ``k`` spans exist).
        distances: float64 ``(n, k)`` in the space's units (text: characters outside the span).
        memorised: bool ``(n,)``: nearer than the threshold (module doc).
        threshold: the distance below which a record counts as memorised.
        real_flag_rate: the share of real test records the same test flags (about 0.05 by construction).
        space: which space the distances are measured in.
    """

    indices: np.ndarray
    distances: np.ndarray
    memorised: np.ndarray
    threshold: float
    real_flag_rate: float
    space: str

    @property
    def flag_rate(self) -> float:
        """Share of generated records flagged as memorised."""
        return float(self.memorised.mean()) if len(self.memorised) else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The ``attr.json`` layout."""
        items = [{"neighbours": [{"index": int(i), "distance": float(d)} for i, d in zip(row, dist) if i >= 0],
                  "memorised": bool(m)} for row, dist, m in zip(self.indices, self.distances, self.memorised)]
        return {"items": items, "threshold": self.threshold, "flag_rate": self.flag_rate,
                "real_flag_rate": self.real_flag_rate, "percentile": PERCENTILE, "space": self.space}


def nearest(x: np.ndarray, train: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``train (N, D)`` to each row of ``x (n, D)``: (indices, Euclidean distances)."""
    x_t, train_t = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(train, dtype=torch.float64)
    k = min(k, len(train_t))
    train_sq = train_t.square().sum(1)
    step = max(1, _BLOCK_ELEMENTS // max(len(train_t), 1))
    indices = np.empty((len(x_t), k), dtype=np.int64)
    distances = np.empty((len(x_t), k), dtype=np.float64)
    for start in range(0, len(x_t), step):
        block = x_t[start:start + step]                                            # (s, D)
        sq = block.square().sum(1, keepdim=True) - 2.0 * block @ train_t.T + train_sq   # (s, N)
        values, where = torch.topk(sq, k, dim=1, largest=False)
        indices[start:start + step] = where.numpy()
        distances[start:start + step] = values.clamp_(min=0.0).sqrt_().numpy()
    return indices, distances


def _space(model: Any, data: Dataset, records: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Training, test and generated records in the attribution space (module doc)."""
    modality = data.modality
    if modality == "tables":
        if not isinstance(records, pd.DataFrame):
            raise DataError(f"the data are tables; got {type(records).__name__} records")
        missing = [c for c in data.x_train.columns if c not in records.columns]
        if missing:
            raise DataError(f"the records lack the training columns {', '.join(map(str, missing))}")
        columns = list(data.x_train.columns)
        train, test, fake = _table_space(data.x_train, [data.x_test[columns], records[columns]])
        return train, test, fake, "table codec (quantile scores, one-hot)"
    x = np.asarray(records, dtype=np.float32)
    if x.shape[1:] != data.x_train.shape[1:]:
        raise DataError(f"records of shape {x.shape[1:]} do not match the data's {data.x_train.shape[1:]}")
    if modality == "images" and data.n_classes:
        classifier = feature_classifier(data)
        return (classifier.features(data.x_train), classifier.features(data.x_test), classifier.features(x),
                "classifier features")
    flat = lambda a: np.asarray(a, dtype=np.float64).reshape(len(a), -1)   # noqa: E731
    return flat(data.x_train), flat(data.x_test), flat(x), "raw values"


def _table_space(train: pd.DataFrame, others: list[pd.DataFrame]) -> list[np.ndarray]:
    """``train`` and each table of ``others`` (same columns) as float64 rows of the table space (module doc)."""
    tables = [train, *others]
    kinds = TableCodec(numeric="quantile").fit(train).column_kinds
    discrete = [c for c, kind in kinds.items() if kind in ("categorical", "boolean")]
    numbers = [c for c, kind in kinds.items() if kind not in ("categorical", "boolean", "id")]
    parts: list[list[np.ndarray]] = [[np.zeros((len(t), 0))] for t in tables]
    if numbers:
        codec = TableCodec(kinds={c: kinds[c] for c in numbers}, numeric="quantile").fit(train[numbers])
        # a column with missing values only outside the training rows: a training value stands in for
        # them (the middle one) and a missing block, as the codec gives columns that had some, marks them
        unseen = [c for c in numbers if not codec.spec(c)["has_missing"] and any(t[c].isna().any() for t in others)]
        middle = {c: train[c].sort_values().iloc[len(train) // 2] for c in unseen}
        for part, table in zip(parts, tables):
            part.append(codec.encode(table[numbers].fillna(middle)))
            part.extend(_one_hot(table[c].isna().to_numpy(np.int64), 2) for c in unseen)
    for column in discrete:
        values = [t[column].reset_index(drop=True) for t in tables]
        categories = sorted({v for v in pd.concat(values).dropna().tolist()}, key=str)
        for part, value in zip(parts, values):
            index = pd.Categorical(value, categories=categories).codes.astype(np.int64)
            part.append(_one_hot(np.where(index < 0, len(categories), index), len(categories) + 1))
    return [np.concatenate(part, axis=1) for part in parts]


def _one_hot(index: np.ndarray, width: int) -> np.ndarray:
    return np.eye(width)[index]


def attribute(model: Any, records: Any, *, data: Dataset, k: int = 3) -> Attribution:
    """The ``k`` nearest training records of every generated record, and the memorisation flag.

    Args:
        model: the fitted model the records came from (``genlab.load`` reads a run directory); checked
            against ``data``.
        records: generated records (float array, object array of strings, or DataFrame).
        data: the dataset the model was trained on (its train split is searched, its test split sets
            the threshold).
        k: neighbours per record (a positive integer).

    Raises:
        ConfigError: a bad ``k``, or a model that is not a fitted one; DataError: records that do not fit
            the data, or data of another modality than the model.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    if getattr(model, "data_", None) is None:
        raise ConfigError(f"attribute needs a fitted model, got {model!r}: load a run directory with genlab.load")
    if model.data_.modality != data.modality:
        raise DataError(f"the model makes {model.data_.modality}; the data are {data.modality}")
    if data.modality == "text":
        return _attribute_text(records, data, k)
    train, test, fake, space = _space(model, data, records)
    if not len(fake):
        raise DataError("no records to attribute")
    test_nearest = nearest(test, train, 1)[1][:, 0]
    threshold = float(np.percentile(test_nearest, PERCENTILE))
    indices, distances = nearest(fake, train, k)
    return Attribution(indices, distances, distances[:, 0] < threshold,
                       threshold, float(np.mean(test_nearest < threshold)), space)


# ----------------------------------------------------------------------------------- text
class _SpanIndex:
    """The sorted 50-character window hashes of the training text, with each window's first offset."""

    def __init__(self, texts: Any) -> None:
        self.text = "\0".join(str(t) for t in texts)
        hashes = _window_hashes(self.text, COPY_CHARS)
        order = np.argsort(hashes, kind="stable")      # stable: equal hashes keep their first offset first
        self.hashes, self.offsets = hashes[order], order

    def spans(self, text: str) -> list[tuple[int, int]]:
        """``(length, training offset)`` of every maximal run of copied windows in ``text``, longest first."""
        hashes = _window_hashes(text, COPY_CHARS)
        if not len(hashes) or not len(self.hashes):
            return []
        where = np.searchsorted(self.hashes, hashes).clip(max=len(self.hashes) - 1)
        found = self.hashes[where] == hashes
        runs, start = [], None
        for i, hit in enumerate([*found.tolist(), False]):
            if hit and start is None:
                start = i
            elif not hit and start is not None:
                runs.append((i - start + COPY_CHARS - 1, int(self.offsets[where[start]])))
                start = None
        return sorted(runs, key=lambda r: -r[0])


def _attribute_text(records: Any, data: Dataset, k: int) -> Attribution:
    texts = [str(t) for t in records]
    if not texts or not all(isinstance(t, str) for t in records):
        raise DataError("text attribution needs a non-empty sequence of strings")
    index = _SpanIndex(data.x_train)
    longest = lambda t: (index.spans(t) or [(0, -1)])[0][0]   # noqa: E731
    # real yardstick: test passages as long as the median sample, cut from the joined test text
    length = max(COPY_CHARS, int(np.median([len(t) for t in texts])))
    test_text = "\0".join(str(t) for t in data.x_test)
    passages = [test_text[i:i + length] for i in range(0, max(1, len(test_text) - length + 1), length)][:2000]
    real = np.array([longest(p) for p in passages], dtype=np.float64)
    threshold = float(np.percentile(real, 100 - PERCENTILE))
    indices = np.full((len(texts), k), -1, dtype=np.int64)
    distances = np.full((len(texts), k), np.nan)
    best = np.zeros(len(texts))
    for row, text in enumerate(texts):
        for j, (span, offset) in enumerate(index.spans(text)[:k]):
            indices[row, j], distances[row, j] = offset, len(text) - span
        best[row] = longest(text)
    return Attribution(indices, distances, best > threshold, threshold, float(np.mean(real > threshold)),
                       f"longest copied span of {COPY_CHARS}-character windows")
