"""What a model knows of its data (:class:`DataInfo`), the training records it takes, and small checks every
family shares."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, DataError


@dataclass(frozen=True)
class DataInfo:
    """What a fitted model knows about its data: modality, record shape, label names, for tables the
    target column, and whether every training record came with a caption (``shapes``)."""

    modality: str
    shape: tuple[int, ...]
    class_names: tuple[str, ...] | None = None
    target: str | None = None
    captioned: bool = False

    @property
    def n_classes(self) -> int:
        """Number of label classes, 0 when unlabelled."""
        return 0 if self.class_names is None else len(self.class_names)

    @property
    def dim(self) -> int:
        """Number of scalars in one record."""
        return math.prod(self.shape)




def class_log_prior(labels: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
    """``log p(c)`` from label frequencies, float64 ``(C,)``; a class without records is a DataError."""
    counts = torch.bincount(labels.cpu(), minlength=len(class_names)).double()
    if (counts == 0).any():
        raise DataError(f"class {class_names[int((counts == 0).nonzero()[0])]!r} has no training records")
    return (counts / counts.sum()).log()


def check_count(n: Any) -> int:
    """Return ``n`` if it is a positive integer, else raise a ConfigError."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"the number of samples must be a positive integer, got {n!r}")
    return int(n)




def training_arrays(
    data: Dataset | np.ndarray, labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None, DataInfo]:
    """Raw training records, labels and their description from a Dataset or a bare array."""
    if isinstance(data, Dataset):
        if labels is not None:
            raise ConfigError("labels come with the Dataset; pass labels only with a bare array")
        return data.x_train, data.y_train, DataInfo(data.modality, data.shape, data.class_names, data.target,
                                                    captioned=data.captions_train is not None)
    if isinstance(data, pd.DataFrame):
        if labels is not None:
            raise ConfigError("a bare DataFrame has no labels; load it as a tables Dataset with a target")
        if len(data) == 0 or data.shape[1] == 0:
            raise DataError("the training table has no rows or no columns")
        return data, None, DataInfo("tables", (data.shape[1],))
    x = np.asarray(data, dtype=np.float32)
    modality = {2: "points", 4: "images"}.get(x.ndim)
    if modality is None:
        raise DataError(f"expected points (n, d) or images (n, C, H, W), got an array of shape {x.shape}")
    if len(x) < 1:
        raise DataError("no records to fit")
    if not np.isfinite(x).all():
        raise DataError("the training records hold NaN or infinite values")
    class_names = None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(x),) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
            raise DataError(f"labels must be non-negative integers of shape ({len(x)},), got {labels.shape} "
                            f"{labels.dtype}")
        labels = labels.astype(np.int64)
        class_names = tuple(str(i) for i in range(int(labels.max()) + 1))
    return x, labels, DataInfo(modality, tuple(x.shape[1:]), class_names)


def data_digest(x: np.ndarray, y: np.ndarray | None) -> str:
    """SHA-256 of the training records and labels, so a resume on other data is refused."""
    if isinstance(x, pd.DataFrame):   # tables: pandas' stable per-row hashes, and the column names
        digest = hashlib.sha256(pd.util.hash_pandas_object(x, index=False).to_numpy().tobytes())
        digest.update("\0".join(map(str, x.columns)).encode("utf-8"))
    elif x.dtype == object:   # text: the documents' UTF-8 bytes, each ended by a NUL
        digest = hashlib.sha256(b"".join(doc.encode("utf-8") + b"\0" for doc in x))
    else:
        digest = hashlib.sha256(np.ascontiguousarray(x).tobytes())
    if y is not None:
        digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()
