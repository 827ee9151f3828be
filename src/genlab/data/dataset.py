"""The :class:`Dataset` record every loader returns, and the fixed train/test split.

A dataset is raw records in a modality's canonical layout, already split:

- ``points``: float32 ``(n, d)`` coordinates in the data's own units;
- ``images``: float32 ``(n, C, H, W)`` intensities in ``[0, 1]``;
- ``text``: object ``(n,)`` arrays of ``str``, one document each (record shape ``()``);
- ``smiles`` and ``music``: object ``(n,)`` arrays of ``str`` like text, one molecule's SMILES or one
  chorale's time-grid string each (:mod:`genlab.data.smiles`, :mod:`genlab.data.music`);
- ``tables``: pandas DataFrames with the same columns in both splits, any dtypes, missing values
  allowed (record shape ``(n_columns,)``); ``target`` names the label column, which stays in the table.

Labels, where present, are int64 ``(n,)`` class indices into ``class_names``. Captions, where present,
are object ``(n,)`` arrays of ``str``, one description per record (``shapes``), carried like labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from genlab.errors import DataError

Modality = Literal["points", "images", "text", "tables", "smiles", "music"]
MODALITIES: tuple[str, ...] = ("points", "images", "text", "tables", "smiles", "music")
#: Modalities whose records are strings (object arrays of ``str``, record shape ``()``).
STRING_MODALITIES: tuple[str, ...] = ("text", "smiles", "music")

#: Share of records held out as the test split for data that does not come pre-split.
TEST_FRACTION = 0.2
#: Seed of the permutation behind every fixed split, so a file always splits the same way.
SPLIT_SEED = 20_240_601


@dataclass(frozen=True, eq=False)
class Dataset:
    """Raw records of one modality, split into train and test.

    Attributes:
        name: registry name or file path it came from.
        modality: ``"points"``, ``"images"``, ``"text"`` or ``"tables"``.
        x_train: float32 ``(n_train, *shape)``; for text, object ``(n_train,)`` of ``str``; for tables, a
            pandas DataFrame of ``n_train`` rows.
        x_test: float32 ``(n_test, *shape)``; for text, object ``(n_test,)`` of ``str``; for tables, a
            DataFrame with the training columns.
        y_train: int64 ``(n_train,)`` labels, or ``None``.
        y_test: int64 ``(n_test,)`` labels, or ``None``.
        class_names: label ``i`` is ``class_names[i]``; ``None`` when unlabelled.
        modes: float32 ``(n_modes, d)`` mixture centres for synthetic mixtures (mode-coverage metric).
        mode_std: the per-coordinate standard deviation of each mixture component.
        target: for tables, the label column (kept in the table; ``y_*`` index its categories when it
            is categorical), or ``None``.
        captions_train: object ``(n_train,)`` of ``str``, one caption per training record, or ``None``.
        captions_test: object ``(n_test,)`` of ``str``, or ``None``.
    """

    name: str
    modality: Modality
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    modes: np.ndarray | None = field(default=None, repr=False)
    mode_std: float | None = None
    target: str | None = None
    captions_train: np.ndarray | None = field(default=None, repr=False)
    captions_test: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise DataError(f"unknown modality {self.modality!r}; choose one of: {', '.join(MODALITIES)}")
        if self.target is not None and self.modality != "tables":
            raise DataError(f"{self.name}: only tables have a target column")
        for part in ("x_train", "x_test"):
            array = getattr(self, part)
            if self.modality == "tables":
                if not isinstance(array, pd.DataFrame) or array.shape[1] == 0:
                    raise DataError(f"{self.name}: {part} must be a pandas DataFrame with at least one column")
                continue
            if isinstance(array, pd.DataFrame):
                raise DataError(f"{self.name}: a DataFrame holds tables; use modality 'tables'")
            if self.modality in STRING_MODALITIES:
                if array.dtype != object or array.ndim != 1 or not all(isinstance(d, str) for d in array):
                    raise DataError(f"{self.name}: {part} must be a 1-D object array of str documents")
                continue
            if array.dtype != np.float32:
                raise DataError(f"{self.name}: {part} must be float32, got {array.dtype}")
            if array.ndim < 2:
                raise DataError(f"{self.name}: {part} must have a batch axis, got shape {array.shape}")
            if not np.isfinite(array).all():
                raise DataError(f"{self.name}: {part} holds NaN or infinite values")
        if self.modality == "tables" and list(self.x_train.columns) != list(self.x_test.columns):
            raise DataError(f"{self.name}: train and test tables differ in columns")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(f"{self.name}: train records {self.x_train.shape[1:]} and test records "
                            f"{self.x_test.shape[1:]} differ in shape")
        if len(self.x_train) == 0:
            raise DataError(f"{self.name}: the training split is empty")
        if (self.y_train is None) != (self.y_test is None) or (self.y_train is None) != (self.class_names is None):
            raise DataError(f"{self.name}: labels must be given for both splits together with class_names")
        if self.y_train is not None:
            if len(self.y_train) != len(self.x_train) or len(self.y_test) != len(self.x_test):
                raise DataError(f"{self.name}: labels and records differ in count")
        if (self.captions_train is None) != (self.captions_test is None):
            raise DataError(f"{self.name}: captions must be given for both splits")
        for captions, records in ((self.captions_train, self.x_train), (self.captions_test, self.x_test)):
            if captions is not None and (captions.dtype != object or captions.shape != (len(records),)
                                         or not all(isinstance(c, str) for c in captions)):
                raise DataError(f"{self.name}: captions must be 1-D object arrays of str, one per record")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one record: ``(d,)`` for points, ``(C, H, W)`` for images, ``()`` for text,
        ``(n_columns,)`` for tables."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_classes(self) -> int:
        """Number of label classes, 0 when unlabelled."""
        return 0 if self.class_names is None else len(self.class_names)

    def describe(self) -> str:
        """One line: name, modality, record shape, split sizes, classes."""
        labels = f", {self.n_classes} classes" if self.n_classes else ""
        if self.captions_train is not None:
            labels += ", captioned"
        if self.target is not None:
            labels += f" (target {self.target!r})"
        return (f"{self.name}: {self.modality} {self.shape}, "
                f"{len(self.x_train)} train / {len(self.x_test)} test{labels}")


def fixed_split(n: int, *, test_fraction: float = TEST_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` of a deterministic shuffle-split of ``n`` records.

    The permutation depends only on ``n`` (seed :data:`SPLIT_SEED`), so a file splits the same way on
    every machine and every run. At least one record goes to each side when ``n >= 2``.
    """
    if n < 2:
        raise DataError(f"need at least 2 records to split into train and test, got {n}")
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = min(max(1, int(round(n * test_fraction))), n - 1)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def split_records(name: str, modality: Modality, x: np.ndarray, y: np.ndarray | None = None,
                  class_names: tuple[str, ...] | None = None) -> Dataset:
    """Split records that come unsplit into a :class:`Dataset` with :func:`fixed_split`.

    Args:
        name: where the records came from (named in every error).
        modality: ``"points"`` or ``"images"``.
        x: float32 ``(n, *shape)`` records.
        y: int64 ``(n,)`` labels, or ``None``.
        class_names: names of the label classes, or ``None`` when unlabelled.

    Raises:
        DataError: fewer than 2 records.
    """
    if len(x) < 2:
        raise DataError(f"{name}: need at least 2 records to split into train and test, found {len(x)}")
    train, test = fixed_split(len(x))
    return Dataset(name=name, modality=modality, x_train=x[train], x_test=x[test],
                   y_train=None if y is None else y[train], y_test=None if y is None else y[test],
                   class_names=class_names)
