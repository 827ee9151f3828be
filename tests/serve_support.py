"""Tiny saved runs of every modality for the server tests, and a real uvicorn server in a thread."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import uvicorn

import genlab
from genlab.data.text import string_array
from genlab.serve import ModelRegistry, ServeSettings, create_app
from tables_support import split_table

#: The repository root (subprocesses run from it).
REPO = Path(__file__).resolve().parents[1]
CODE = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n\n" for i in range(48)]


def tiny_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Two correlated numbers, a category and a yes/no target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    colour = np.where(x > 0.5, "red", np.where(x < -0.5, "blue", "green"))
    label = np.where(x + rng.normal(size=n) > 0.5, "yes", "no")
    return pd.DataFrame({"x": x, "y": 2 * x + rng.normal(scale=0.5, size=n), "colour": colour, "label": label})


def fit_code() -> genlab.models.base.GenerativeModel:
    """The tiny text model (a character-level GPT, block 32) the completion tests serve."""
    return genlab.fit(genlab.data.dataset.Dataset("code", "text", string_array(CODE[:40]), string_array(CODE[40:])),
                      family="transformer", n_layer=1, n_head=2, n_embd=16, block_size=32,
                      train={"steps": 30, "batch_size": 8, "lr": 3e-3, "seed": 0})


def build_code_run(folder: Path) -> Path:
    """Only the tiny text model, saved as ``folder / "code"``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fit_code().save_pretrained(folder / "code")
    finally:
        torch.set_num_threads(threads)


def build_runs(folder: Path) -> dict[str, Path]:
    """Fit and save one tiny model per modality (a few dozen steps at most) under ``folder``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        digits = genlab.datasets.load("digits")
        models = {
            "ring": genlab.fit("ring8", family="gaussian", n_components=8),
            "digits_gan": genlab.fit(digits.x_train[:256], family="gan", latent_dim=8, channels=8,
                                     train={"steps": 4, "batch_size": 16}),
            "digits_vae": genlab.fit("digits", family="vae", latent_dim=4, hidden=32, channels=8,
                                     train={"steps": 150, "batch_size": 32}),   # enough that z moves the pixels
            "digits_diffusion": genlab.fit(digits.x_train[:64], family="diffusion", channels=(8, 16),
                                           timesteps=50, train={"steps": 2, "batch_size": 8}),
            "table": genlab.fit(split_table(tiny_table(), "label"), family="gaussian"),
            "code": fit_code(),
        }
    finally:
        torch.set_num_threads(threads)
    return {name: model.save_pretrained(folder / name) for name, model in models.items()}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ThreadServer:
    """uvicorn on 127.0.0.1 in a background thread; ``stop()`` shuts it down and joins the thread."""

    def __init__(self, registry: ModelRegistry, settings: ServeSettings = ServeSettings()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(registry, settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "ThreadServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "the test server did not stop"
