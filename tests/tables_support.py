"""Helpers shared by the table tests: seeded sampling and a train/test split of a DataFrame."""

from __future__ import annotations

import numpy as np
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


def biased_incomes(n: int, seed: int, *, fourth: str) -> pd.DataFrame:
    """A biased hiring table for the audit and its remedies: group B is rarer (30 %), role carries the group
    (a proxy), and the income follows role and hours, so high incomes are about 0.6 of group A and 0.2 of
    group B. ``fourth`` adds one more column before the income: ``"city"`` (two values, unrelated to the
    rest) or ``"amount"`` (spread-out numbers, so rows have enough distinct values for a table watermark,
    whose hash bins numbers by doublings, under a two-column condition)."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B"], size=n, p=[0.7, 0.3])
    role = np.where(rng.random(n) < 0.85, np.where(group == "A", "lead", "aide"), rng.choice(["lead", "aide"], size=n))
    hours = np.round(rng.normal(40, 8, size=n)).astype(int)
    logit = -1.5 + 2.0 * (role == "lead") + 0.08 * (hours - 40)
    income = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "high", "low")
    extra = {"city": lambda: rng.choice(["x", "y"], size=n),
             "amount": lambda: np.round(np.exp(rng.normal(8, 1.5, size=n)), 2)}[fourth]()
    return pd.DataFrame({"group": group, "role": role, "hours": hours, fourth: extra, "income": income})
