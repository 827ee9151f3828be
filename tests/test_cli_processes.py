"""The CLI in real processes: a SIGKILLed training resumes to identical weights; torchrun on 2 CPU ranks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

import genlab
from genlab.errors import CheckpointError
from genlab.train.checkpoint import load_checkpoint

FIT = [sys.executable, "-m", "genlab", "fit", "ring8", "--family", "gaussian", "--set", "solver=adam", "--set", "n_components=8",
       "--batch-size", "256", "--seed", "3"]


def checkpoint_step(path: Path) -> int:
    try:
        return load_checkpoint(path).step
    except CheckpointError:  # replaced while we read it
        return 0


def test_killed_training_resumes_to_the_same_weights(tmp_path):
    steps = ["--steps", "6000", "--checkpoint-every", "100"]
    subprocess.run([*FIT, *steps, "--out", str(tmp_path / "whole")], check=True, capture_output=True)

    killed = tmp_path / "killed"
    checkpoint = killed / "checkpoint" / "trainer_state.safetensors"
    process = subprocess.Popen([*FIT, *steps, "--out", str(killed)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (checkpoint.exists() and checkpoint_step(checkpoint) >= 300) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "training finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    interrupted_at = checkpoint_step(checkpoint)
    assert 300 <= interrupted_at < 6000 and not (killed / "model.safetensors").exists()

    subprocess.run([*FIT, *steps, "--out", str(killed), "--resume"], check=True, capture_output=True)
    whole, resumed = load_file(tmp_path / "whole" / "model.safetensors"), load_file(killed / "model.safetensors")
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name


def test_torchrun_two_cpu_ranks_write_one_run_directory(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "genlab", "fit", "ring8",
         "--family", "gaussian", "--set", "solver=adam", "--set", "n_components=8", "--steps", "300", "--batch-size", "256",
         "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert [p.name for p in tmp_path.iterdir()] == ["ddp"]
    assert result.stderr.count("saved to") == 1
    model = genlab.load(tmp_path / "ddp")
    data = genlab.datasets.load("ring8")
    assert model.log_prob(data.x_test).mean() > 1.0   # far better than one Gaussian (about -1.9 nats)
