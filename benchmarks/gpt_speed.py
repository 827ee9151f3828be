"""CPU speed of one GPT training step: genlab's network against a peer written after nanoGPT's model.py.

The configuration is nanoGPT's CPU one for Tiny Shakespeare characters (``n_layer=4, n_head=4,
n_embd=128, block_size=64, batch_size=12``, vocabulary 65, no dropout). One step is forward, mean
next-token cross-entropy, backward and an AdamW update (weight decay on matrices), as both trainers run
it. The peer is not nanoGPT's code: it is written here after its design (read, not copied): one fused
``c_attn`` projection, ``scaled_dot_product_attention(is_causal=True)``, exact GELU, pre-LayerNorm blocks,
tied embeddings, bias everywhere (GPT-2's setting and genlab's default). genlab's MLP uses GPT-2's tanh
GELU; that is the one difference in arithmetic.

Rows: the peer run eagerly with torch's default AdamW (what nanoGPT's ``configure_optimizers`` picks on
a CPU: its fused AdamW is for CUDA only); genlab run eagerly as its Trainer runs it (fused AdamW where
torch has the kernel, :func:`genlab.train.trainer.build_optimizer`); and genlab through ``torch.compile``
with the same optimiser (``TrainConfig.compile``), whose compile time (its first step, less an eager
step) is reported beside it so a default can be chosen on both. The compile runs with inductor's caches
off (``force_disable_caches``): what a first run on a machine pays. A warm on-disk cache
(``/tmp/torchinductor_$USER``) loads the kernels in about 2 s instead, which is what an earlier "1.5 s"
figure measured. On a CPU inductor writes C++ and builds it with the compiler recorded in the JSON.
``--no-compile`` leaves that row out.

A last row, genlab under bf16 autocast (``TrainConfig(precision="bf16")``), is another arithmetic: it
is reported for the choice of precision, not counted for the bar, which is about float32 steps. At these
sizes a float32 step is bound by its 51 matrix products (3.7 GFLOP, about 100 GFLOP/s on one AVX-512
core), which with the attention kernel leave no room for 1.2x over the peer without fewer flops or
another arithmetic.

Timing is the median of ``--steps`` steps after ``--warmup``, one thread, runs interleaved in
``--repeats`` rounds so a change in the machine's load hits every row; process CPU seconds beside wall.

    OMP_NUM_THREADS=1 python benchmarks/gpt_speed.py
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch._inductor.config
import torch._inductor.cpp_builder
import torch.nn.functional as F
from torch import nn

from genlab.models.transformer import GPT, next_token_loss
from genlab.train.trainer import build_optimizer

DEFAULT_OUT = Path(__file__).parent / "results" / "gpt_speed.json"
VOCAB, N_LAYER, N_HEAD, N_EMBD, BLOCK, BATCH = 65, 4, 4, 128, 64, 12


class PeerBlock(nn.Module):
    """A pre-LayerNorm GPT-2 block in nanoGPT's layout: ``(B, T, C)`` -> ``(B, T, C)``."""

    def __init__(self, n_embd: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.ln_1, self.ln_2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.c_attn, self.c_proj = nn.Linear(n_embd, 3 * n_embd), nn.Linear(n_embd, n_embd)
        self.c_fc, self.mlp_proj = nn.Linear(n_embd, 4 * n_embd), nn.Linear(4 * n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        heads = [z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v)]  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(*heads, is_causal=True).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class PeerGPT(nn.Module):
    """Token + position embeddings, blocks, final LayerNorm, tied head: ``(B, T)`` -> logits ``(B, T, V)``."""

    def __init__(self) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(VOCAB, N_EMBD), nn.Embedding(BLOCK, N_EMBD)
        self.h = nn.ModuleList(PeerBlock(N_EMBD, N_HEAD) for _ in range(N_LAYER))
        self.ln_f = nn.LayerNorm(N_EMBD)
        self.lm_head = nn.Linear(N_EMBD, VOCAB, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


PEER, EAGER, COMPILED, BF16 = "nanoGPT-style peer", "genlab eager", "genlab compiled", "genlab bf16 autocast"


def optimiser(model: nn.Module) -> torch.optim.AdamW:
    """The peer's AdamW: weight decay 0.1 on matrices and embeddings only, torch's default implementation."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                             lr=1e-3, betas=(0.9, 0.99))


def genlab_optimiser(model: nn.Module) -> torch.optim.Optimizer:
    """genlab's Trainer's AdamW for the same settings (fused where torch has the kernel)."""
    return build_optimizer(model.parameters(), kind="adamw", lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)


def step_fn(model: nn.Module, tokens: torch.Tensor, opt: torch.optim.Optimizer, forward: nn.Module | None = None,
            *, autocast: torch.dtype | None = None):
    """One training step of ``model`` on ``tokens (B, T + 1)``; ``forward`` (e.g. its compiled wrapper)
    computes the loss where given, under CPU autocast to ``autocast`` where given (as the Trainer does)."""
    forward = model if forward is None else forward

    def step() -> None:
        with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
            loss = next_token_loss(forward, tokens)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main(argv: list[str] | None = None) -> None:
    """Time both, print the table and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile row")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tokens = torch.randint(0, VOCAB, (BATCH, BLOCK + 1))
    models = {PEER: PeerGPT().train(), EAGER: GPT(VOCAB, BLOCK, N_LAYER, N_HEAD, N_EMBD).train()}
    if not args.no_compile:
        models[COMPILED] = GPT(VOCAB, BLOCK, N_LAYER, N_HEAD, N_EMBD).train()
        torch._inductor.config.force_disable_caches = True   # time a real compile, not a cache load
    models[BF16] = GPT(VOCAB, BLOCK, N_LAYER, N_HEAD, N_EMBD).train()
    optimisers = {name: optimiser(model) if name == PEER else genlab_optimiser(model)
                  for name, model in models.items()}
    steps = {name: step_fn(model, tokens, optimisers[name], torch.compile(model) if name == COMPILED else None,
                           autocast=torch.bfloat16 if name == BF16 else None)
             for name, model in models.items()}
    wall: dict[str, list[float]] = {name: [] for name in models}
    cpu: dict[str, list[float]] = {name: [] for name in models}
    first: dict[str, float] = {}
    for name, step in steps.items():
        for index in range(max(1, args.warmup)):   # at least one: the compiled row's first step compiles
            start = time.perf_counter()
            step()
            if index == 0:
                first[name] = time.perf_counter() - start
    for _ in range(args.repeats):
        for name, step in steps.items():
            for _ in range(args.steps):
                w, c = time.perf_counter(), time.process_time()
                step()
                wall[name].append(time.perf_counter() - w)
                cpu[name].append(time.process_time() - c)
    rows = {name: {"parameters": sum(p.numel() for p in models[name].parameters()),
                   "ms_per_step": 1e3 * statistics.median(wall[name]),
                   "cpu_ms_per_step": 1e3 * statistics.median(cpu[name])} for name in models}
    for name, row in rows.items():
        row["speedup_over_peer"] = rows[PEER]["ms_per_step"] / row["ms_per_step"]
        row["cpu_speedup_over_peer"] = rows[PEER]["cpu_ms_per_step"] / row["cpu_ms_per_step"]
        if name == COMPILED:   # the first step compiles: what it took beyond an eager step
            row["compile_s"] = first[name] - row["ms_per_step"] / 1e3
            row["cpp_compiler"] = torch._inductor.cpp_builder.get_cpp_compiler()
        row["arithmetic"] = "bf16 autocast" if name == BF16 else "float32"
        row["optimiser"] = "fused" if optimisers[name].defaults.get("fused") else "default"
    print(f"{'':<20} {'params':>9} {'ms/step':>8} {'CPU ms':>8} {'x peer':>7}   "
          "(4x4x128, block 64, batch 12, 1 thread)")
    for name, row in rows.items():
        extra = f"   compile {row['compile_s']:.1f} s" if "compile_s" in row else ""
        print(f"{name:<20} {row['parameters']:>9,} {row['ms_per_step']:>8.1f} {row['cpu_ms_per_step']:>8.1f} "
              f"{row['speedup_over_peer']:>6.2f}x{extra}")
    print("bar: a genlab float32 row >= 1.2x the peer's eager step (the bf16 row is another arithmetic)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "GPT training step (CPU)", "settings": vars(args) | {"out": str(args.out)},
                                    "machine": platform.platform(), "torch": torch.__version__,
                                    "results": rows, "speedup": rows[EAGER]["speedup_over_peer"],
                                    "cpu_speedup": rows[EAGER]["cpu_speedup_over_peer"]}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
