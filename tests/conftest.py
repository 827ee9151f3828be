"""Shared fixtures: where ../shared/data lives, and small seeded datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The benchmark data folder (``$GENLAB_DATA``, else ``../shared/data`` beside the repository)."""
    folder = Path(os.environ.get("GENLAB_DATA", REPO.parent / "shared" / "data"))
    if not (folder / "mnist.npz").is_file():
        pytest.skip(f"benchmark data not found in {folder}")
    return folder
