"""Helpers shared by the table tests: seeded sampling and a train/test split of a DataFrame."""

from __future__ import annotations

import pandas as pd
import torch

from genlab.data.table_datasets import labelled
from genlab.data.dataset import Dataset


def draw(model, n: int = 2000, seed: int = 0, **kwargs) -> pd.DataFrame:
    """``n`` rows from ``model`` with a generator seeded by ``seed``."""
    return model.sample(n, generator=torch.Generator().manual_seed(seed), **kwargs)


def split_table(frame: pd.DataFrame, target: str | None = None, *, train_share: float = 0.8,
                name: str = "mixed") -> Dataset:
    """The first ``train_share`` of ``frame``'s rows for training, the rest for testing."""
    cut = int(train_share * len(frame))
    return labelled(name, frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True),
                           target)
