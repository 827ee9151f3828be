"""Shared fixtures: where ../shared/data lives, and small seeded datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def feature_cache(tmp_path_factory: pytest.TempPathFactory):
    """Image feature classifiers are cached in a folder of the test session, never in the user's home."""
    previous = os.environ.get("GENLAB_CACHE")
    os.environ["GENLAB_CACHE"] = str(tmp_path_factory.mktemp("genlab-cache"))
    yield Path(os.environ["GENLAB_CACHE"])
    if previous is None:
        del os.environ["GENLAB_CACHE"]
    else:
        os.environ["GENLAB_CACHE"] = previous


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The benchmark data folder (``$GENLAB_DATA``, else ``../shared/data`` beside the repository)."""
    folder = Path(os.environ.get("GENLAB_DATA", REPO.parent / "shared" / "data"))
    if not (folder / "mnist.npz").is_file():
        pytest.skip(f"benchmark data not found in {folder}")
    return folder


@pytest.fixture
def single_thread():
    """Tiny models train faster on one thread; restore the setting for the other tests."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def single_thread_module():
    """One thread for the rest of a module (for its module-scoped models); restored after the module."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
