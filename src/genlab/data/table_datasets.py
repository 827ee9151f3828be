"""Tables as Datasets: a CSV file split 80/20, a train/test pair of DataFrames, and the built-in UCI Adult."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from genlab.data.dataset import Dataset, fixed_split
from genlab.data.images import DATA_ENV
from genlab.data.table_columns import as_frame, infer_kind, plain
from genlab.data.table_files import read_table
from genlab.errors import DataError

#: The built-in UCI Adult files (see ``shared/data/README.md``) and their label column.
ADULT_FILES = ("adult_train.csv", "adult_test.csv")
ADULT_TARGET = "income"


def table_dataset(path: str | Path, *, target: str | None = None) -> Dataset:
    """A CSV file as a ``tables`` Dataset, split 80/20 by :func:`~genlab.data.dataset.fixed_split`.

    Args:
        path: CSV file with a header row (delimiter and encoding sniffed, see :func:`read_table`).
        target: the label column, if any (see :func:`labelled`).

    Raises:
        DataError: the file is missing, empty, header-only or ragged, or has fewer than 2 rows, or
            ``target`` is not one of its columns.
    """
    table = read_table(path, strict=True)
    if len(table) < 2:
        raise DataError(f"{path}: need at least 2 rows to split into train and test, found {len(table)}")
    train, test = fixed_split(len(table))
    return labelled(str(path), table.iloc[train].reset_index(drop=True), table.iloc[test].reset_index(drop=True),
                    target)


def labelled(name: str, train: pd.DataFrame, test: pd.DataFrame, target: str | None) -> Dataset:
    """A ``tables`` Dataset; a categorical or boolean ``target`` without missing values also gives the
    labels ``y`` (indices into its sorted categories), any other target is recorded without labels."""
    train, test = as_frame(train), as_frame(test)
    y_train = y_test = class_names = None
    if target is not None:
        if target not in train.columns:
            raise DataError(f"target column {target!r} is not in {name}; its columns are: "
                            f"{', '.join(map(str, train.columns))}")
        values = pd.concat([train[target], test[target]], ignore_index=True)
        if infer_kind(train[target]) in ("categorical", "boolean") and not values.isna().any():
            classes = sorted(set(values.map(plain).tolist()), key=str)
            class_names = tuple(str(c) for c in classes)
            lookup = {c: i for i, c in enumerate(classes)}
            y_train, y_test = (frame[target].map(lambda v: lookup[plain(v)]).to_numpy(dtype=np.int64).copy()
                               for frame in (train, test))
    return Dataset(name=name, modality="tables", x_train=train, x_test=test, y_train=y_train, y_test=y_test,
                   class_names=class_names, target=target)


def adult(data_dir: str | os.PathLike | None = None) -> Dataset:
    """UCI Adult census income (Becker & Kohavi 1996): the files' own 32,561 / 16,281 split, target ``income``.

    Args:
        data_dir: folder holding ``adult_train.csv`` and ``adult_test.csv``; ``None`` reads it from
            ``$GENLAB_DATA``.
    """
    how = f"pass --data-dir DIR or set {DATA_ENV}=DIR, where DIR holds {' and '.join(ADULT_FILES)}"
    folder = data_dir if data_dir is not None else os.environ.get(DATA_ENV)
    if not folder:
        raise DataError(f"adult needs {' and '.join(ADULT_FILES)} and no data directory was given: {how}")
    paths = [Path(folder) / name for name in ADULT_FILES]
    for path in paths:
        if not path.is_file():
            raise DataError(f"adult needs {path}, which does not exist; {how}")
    train, test = (read_table(path, strict=True) for path in paths)
    return labelled("adult", train, test, ADULT_TARGET)
