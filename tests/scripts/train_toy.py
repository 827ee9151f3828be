"""Train a toy denoiser with genlab's Trainer in its own process, for tests/test_trainer.py.

Run alone or under ``torchrun`` (DistributedDataParallel on CPU). Rank 0 writes the final weights and
EMA to ``--out`` (safetensors); every rank prints one line ``rank=<r> steps=<n> checksum=<sha256>`` of
the weights it ended with, so a test can check that all processes agree.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from genlab.train import Batch, Callback, Losses, Phase, TrainConfig, Trainer, TrainState
from genlab.train import distributed


class Denoiser(nn.Module):
    """A two-layer MLP with dropout, so the global RNG matters too."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def denoising_loss(module: nn.Module, batch: Batch, generator: torch.Generator) -> Losses:
    # batch.x: (B, 2); eps: (B, 2) drawn from the step's generator
    eps = torch.randn(batch.x.shape, generator=generator, device=batch.x.device)
    error = ((module(batch.x + 0.3 * eps) - batch.x) ** 2).mean()
    return Losses(total=error)


class Sleep(Callback):
    """Slow every step down so that a test can kill the process in the middle of training."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step_end(self, trainer: Trainer, state: TrainState) -> None:
        time.sleep(self.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--checkpoint-every", type=int, default=10)
    parser.add_argument("--step-sleep", type=float, default=0.0)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = Denoiser()
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(1)) * 0.5 + 3.0
    config = TrainConfig(
        steps=args.steps,
        batch_size=32,
        lr=1e-2,
        warmup_steps=5,
        ema_decay=0.9,
        checkpoint_every=args.checkpoint_every,
        log_every=10,
        device="cpu",
    )
    result = Trainer(config, callbacks=[Sleep(args.step_sleep)]).fit(
        model,
        [Phase("model", model, denoising_loss)],
        x,
        checkpoint_path=args.checkpoint,
        resume=args.resume,
        fingerprint={"steps": args.steps, "checkpoint_every": args.checkpoint_every},
    )

    assert result.ema_state is not None
    tensors = {f"model.{name}": value.contiguous() for name, value in model.state_dict().items()}
    tensors.update({f"ema.{name}": value.contiguous() for name, value in result.ema_state.items()})
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].numpy().tobytes())
    print(f"rank={distributed.rank()} steps={result.steps} checksum={digest.hexdigest()}", flush=True)
    if distributed.is_main_process():
        save_file(tensors, str(args.out))
    distributed.shutdown()


if __name__ == "__main__":
    main()
