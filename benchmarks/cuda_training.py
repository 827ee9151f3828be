"""Training speed on a CUDA GPU: GAN and VAE on MNIST against CPU, and the nanoGPT Shakespeare config
against nanoGPT's own speed (issues 3 and 5; BENCHMARKS.md §2).

(a) The conditional GAN and VAE with ``benchmarks/mnist_families.py``'s settings (``SETTINGS["gan"]``,
``SETTINGS["vae"]``: model options, batch size, learning rate) are trained by ``genlab.fit`` for
``--steps`` steps on the device in each precision (``TrainConfig.precision``: fp32, bf16, and fp16 for
the GAN), and for ``--cpu-steps`` steps on the CPU in fp32. Speed is steps per second after
``--warmup`` steps (CUDA context, cuDNN autotuning and allocator warm-up excluded), the device
synchronised at both ends of the timed interval; the ratio is device steps/s over CPU steps/s. The last
logged losses must be finite.

(b) genlab's transformer with nanoGPT's GPU config for character-level Tiny Shakespeare (6 layers,
6 heads, width 384, block 256, batch 64, dropout 0.2, no biases; AdamW lr 1e-3, betas (0.9, 0.99),
weight decay 0.1, warm-up 100, cosine to 1e-4, clip 1.0), trained in bf16 with ``torch.compile`` for
``--lm-steps`` steps (at most ``--lm-max-time`` seconds). Training tokens/s (64 x 256 tokens per step)
is timed after ``--lm-warmup`` steps, so compilation is excluded, and set against nanoGPT's 1.63M
tokens/s measured on an H200 (bf16, compiled). Validation loss afterwards: mean cross-entropy over 50
random batches of 64 validation windows, in fp32 (nanoGPT: 1.474 at 2,000 iterations; the cosine here
spans ``--lm-steps``, nanoGPT's spans 5,000).

Timings include everything the Trainer does per step (batch draw, per-step seeding, logging of the
losses, which synchronises the GPU once per phase). TF32 is left at PyTorch's defaults (off for
matmuls), so fp32 here is true fp32; the flags are recorded in the JSON.

    python benchmarks/cuda_training.py [--data-dir ../shared/data]          # GPU machine, aim < 4 min
    OMP_NUM_THREADS=1 python benchmarks/cuda_training.py --device cpu --tiny  # smoke test, < 1 minute
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import genlab
from genlab.config import from_dict, to_dict
from genlab.errors import DataError
from genlab.models import FAMILIES
from genlab.models.transformer import next_token_loss
from genlab.train import Callback, TrainConfig, TrainState

sys.path.insert(0, str(Path(__file__).parent))
from mnist_families import SETTINGS  # noqa: E402  (the GAN/VAE configs of the MNIST benchmark)

DEFAULT_OUT = Path(__file__).parent / "results" / "cuda_training.json"
NANOGPT_TOKENS_PER_S = 1.63e6   # nanoGPT, this config, one H200, bf16, torch.compile
NANOGPT_VAL_LOSS_2000 = 1.474   # nanoGPT, this config, validation loss at 2,000 iterations (BENCHMARKS.md §2)
#: nanoGPT's config/train_shakespeare_char.py in genlab's terms.
LM_MODEL = {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "dropout": 0.2, "bias": False}
LM_TRAIN = {"batch_size": 64, "lr": 1e-3, "betas": [0.9, 0.99], "weight_decay": 0.1, "warmup_steps": 100,
            "min_lr_ratio": 0.1, "grad_clip": 1.0, "optimizer": "adamw"}
#: --tiny: sizes that run end to end on one CPU thread in seconds (to catch crashes, not to measure).
TINY_LM_MODEL = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, "dropout": 0.2, "bias": False}


class StepTimer(Callback):
    """Seconds from the end of step ``warmup`` to the end of training, with the device synchronised."""

    def __init__(self, warmup: int, device: torch.device) -> None:
        self.warmup, self.device = warmup, device
        self.start: float | None = None
        self.start_step = 0
        self.seconds = math.nan
        self.steps = 0

    def on_step_end(self, trainer, state: TrainState) -> None:
        if state.step == self.warmup:
            synchronize(self.device)
            self.start, self.start_step = time.perf_counter(), state.step

    def on_train_end(self, trainer, state: TrainState) -> None:
        synchronize(self.device)
        if self.start is not None:
            self.seconds, self.steps = time.perf_counter() - self.start, state.step - self.start_step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def last_losses(history: list[dict[str, float]]) -> dict[str, float]:
    """The last logged losses (every key but step, lr and elapsed)."""
    last = history[-1]
    return {name: value for name, value in last.items() if name not in ("step", "lr", "elapsed")}


def mnist_like(data_dir: str, tiny: bool) -> tuple[Any, str]:
    """MNIST's training images (a 2,000-image subset with ``tiny``), or uniform noise of MNIST's shape
    and ten labels when ``mnist.npz`` is not in ``data_dir`` (speed does not depend on the pixels)."""
    n = 2000 if tiny else 60000
    try:
        data = genlab.datasets.load("mnist", data_dir=data_dir)
        return (data.x_train[:n], data.y_train[:n]), "mnist"
    except DataError:
        rng = np.random.default_rng(0)
        return (rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n)), "noise (no mnist.npz)"


def time_family(name: str, images: np.ndarray, labels: np.ndarray, device: torch.device, precision: str,
                steps: int, warmup: int) -> dict[str, Any]:
    """Train ``SETTINGS[name]`` for ``warmup + steps`` steps; steps/s after the warm-up and the last losses."""
    setting = SETTINGS[name]
    timer = StepTimer(warmup, device)
    train = {**setting["train"], "steps": warmup + steps, "max_time": None, "log_every": max(1, steps // 4),
             "device": device.type, "precision": precision, "seed": 0}
    model = FAMILIES[setting["family"]](**setting["model"])
    train_config = from_dict(TrainConfig, {**to_dict(model.default_train_config()), **train}, what="training")
    model.fit(images, labels=labels, train=train_config, callbacks=[timer])
    losses = last_losses(model.history_)
    return {"family": name, "device": device.type, "precision": precision, "steps": timer.steps,
            "seconds": timer.seconds, "steps_per_s": timer.steps / timer.seconds, "losses": losses,
            "finite": all(math.isfinite(v) for v in losses.values())}


def part_a(args: argparse.Namespace, device: torch.device) -> tuple[list[dict[str, Any]], str]:
    (images, labels), source = mnist_like(args.data_dir, args.tiny)
    runs = []
    for name, precisions in (("gan", ("fp32", "bf16", "fp16")), ("vae", ("fp32", "bf16"))):
        cpu = time_family(name, images, labels, torch.device("cpu"), "fp32", args.cpu_steps, args.cpu_warmup)
        runs.append({**cpu, "ratio_to_cpu": 1.0})
        for precision in precisions:
            if precision == "fp16" and device.type != "cuda":
                runs.append({"family": name, "device": device.type, "precision": precision,
                             "skipped": "fp16 needs a CUDA GPU"})
                continue
            run = time_family(name, images, labels, device, precision, args.steps, args.warmup)
            runs.append({**run, "ratio_to_cpu": run["steps_per_s"] / cpu["steps_per_s"]})
    return runs, source


def part_b(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    data = genlab.datasets.load("tinyshakespeare", data_dir=args.data_dir)
    model_options, batch_size = LM_MODEL, LM_TRAIN["batch_size"]
    if args.tiny:
        model_options, batch_size = TINY_LM_MODEL, 8
        train_text = data.x_train[0][:20000]
        val_text = "".join(c for c in data.x_test[0][:5000] if c in set(train_text))   # no unseen characters
        data = dataclasses.replace(data, x_train=np.array([train_text], dtype=object),
                                   x_test=np.array([val_text], dtype=object))
    compile_ = not args.no_compile
    timer = StepTimer(args.lm_warmup, device)
    train = {**LM_TRAIN, "batch_size": batch_size, "steps": args.lm_warmup + args.lm_steps,
             "max_time": args.lm_max_time, "log_every": 100, "device": device.type, "precision": "bf16",
             "compile": compile_, "seed": 0}
    started = time.perf_counter()
    model = genlab.fit(data, family="transformer", train=train, callbacks=[timer], **model_options)
    wall = time.perf_counter() - started
    block = model_options["block_size"]
    tokens_per_s = timer.steps * batch_size * block / timer.seconds

    windows = model.codec_.encode(data.x_test)                   # (N, block + 1) int64, a view
    generator = torch.Generator().manual_seed(0)
    network = model.network_.eval()
    with torch.no_grad():
        losses = [float(next_token_loss(network, windows[torch.randint(len(windows), (batch_size,),
                                                                          generator=generator)].to(device)))
                  for _ in range(args.val_batches)]
    losses_train = last_losses(model.history_)
    return {"model": model_options, "train": {**train, "steps_done": model.history_[-1]["step"]},
            "n_params": sum(p.numel() for p in network.parameters()), "timed_steps": timer.steps,
            "timed_seconds": timer.seconds, "tokens_per_s": tokens_per_s,
            "ratio_to_nanogpt": tokens_per_s / NANOGPT_TOKENS_PER_S, "val_loss": float(np.mean(losses)),
            "last_train_losses": losses_train,
            "finite": all(math.isfinite(v) for v in losses_train.values()) and math.isfinite(np.mean(losses)),
            "wall_seconds_incl_compile": wall}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes and step counts: a smoke test on CPU")
    parser.add_argument("--steps", type=int, default=200, help="timed GAN/VAE steps on the device")
    parser.add_argument("--warmup", type=int, default=20, help="untimed GAN/VAE steps first")
    parser.add_argument("--cpu-steps", type=int, default=10, help="timed GAN/VAE steps on the CPU")
    parser.add_argument("--cpu-warmup", type=int, default=2)
    parser.add_argument("--lm-steps", type=int, default=2000, help="timed transformer steps")
    parser.add_argument("--lm-warmup", type=int, default=50, help="untimed transformer steps (compilation)")
    parser.add_argument("--lm-max-time", type=float, default=150.0, help="wall seconds the transformer may train")
    parser.add_argument("--val-batches", type=int, default=50)
    parser.add_argument("--no-compile", action="store_true", help="train the transformer without torch.compile")
    parser.add_argument("--skip-lm", action="store_true", help="only part (a)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"JSON report (default {DEFAULT_OUT.relative_to(Path(__file__).parent.parent)}; "
                             "none for --tiny)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.steps, args.warmup, args.cpu_steps, args.cpu_warmup = 3, 1, 2, 1
        args.lm_steps, args.lm_warmup, args.val_batches = 10, 2, 4
        if args.device == "cpu":
            args.no_compile = True   # inductor's C++ compilation alone takes minutes on a loaded CPU
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA GPU is visible; run with --device cpu --tiny for a smoke test")
    device = torch.device(args.device)
    started = time.perf_counter()

    runs, source = part_a(args, device)
    print(f"(a) GAN and VAE on {source}, settings of benchmarks/mnist_families.py, "
          f"{torch.get_num_threads()} CPU threads")
    print(f"{'family':8s}{'device':8s}{'precision':>10s}{'steps':>7s}{'steps/s':>10s}{'vs CPU':>8s}  finite losses")
    for run in runs:
        if "skipped" in run:
            print(f"{run['family']:8s}{run['device']:8s}{run['precision']:>10s}   ({run['skipped']})")
            continue
        print(f"{run['family']:8s}{run['device']:8s}{run['precision']:>10s}{run['steps']:7d}"
              f"{run['steps_per_s']:10.1f}{run['ratio_to_cpu']:7.1f}x  {run['finite']}")

    lm = None
    if not args.skip_lm:
        lm = part_b(args, device)
        compiled = "compiled" if lm["train"]["compile"] else "not compiled"
        print(f"(b) transformer, Tiny Shakespeare, {lm['model']}, batch {lm['train']['batch_size']}, "
              f"bf16, {compiled}, {lm['n_params'] / 1e6:.2f}M parameters")
        print(f"    train tokens/s {lm['tokens_per_s']:,.0f} over {lm['timed_steps']} steps after "
              f"{args.lm_warmup} warm-up; nanoGPT (H200, bf16, compiled) {NANOGPT_TOKENS_PER_S:,.0f}: "
              f"{lm['ratio_to_nanogpt']:.2f}x")
        print(f"    validation loss {lm['val_loss']:.4f} after {lm['train']['steps_done']} steps "
              f"(nanoGPT {NANOGPT_VAL_LOSS_2000} at 2,000); {lm['wall_seconds_incl_compile']:.0f} s incl. "
              f"compilation; finite {lm['finite']}")
    total = time.perf_counter() - started
    all_finite = all(run.get("finite", True) for run in runs) and (lm is None or lm["finite"])
    print(f"all losses finite: {all_finite}; total {total:.0f} s")

    out = args.out if args.out is not None or args.tiny else DEFAULT_OUT
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "cuda_training", "tiny": args.tiny, "device": args.device, "data": source,
        "gan_vae": runs, "transformer": lm, "all_finite": all_finite,
        "anchors": {"nanogpt_tokens_per_s": NANOGPT_TOKENS_PER_S, "nanogpt_val_loss_2000": NANOGPT_VAL_LOSS_2000},
        "total_seconds": total,
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
                    "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
                    "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                    "tf32_cudnn": torch.backends.cudnn.allow_tf32},
    }, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
