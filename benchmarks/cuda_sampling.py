"""CUDA sampling speed: GPT decoding against Hugging Face ``generate`` (issue #5) and diffusion DDIM steps
against diffusers (issue #4), with and without CUDA graphs.

(a) Transformer: a GPT-2-124M-sized genlab GPT (12 layers, 12 heads, width 768, vocabulary 50,257,
block 1,024; random weights: speed does not depend on them), batch 1, a 16-token prompt, 256 new tokens,
greedy, bf16 weights. Rows: genlab with its dynamic KV cache (eager), genlab with ``cuda_graphs=True``
(static cache, each step replayed from a CUDA graph), and ``transformers.GPT2LMHeadModel.generate`` on
the same weights (:func:`genlab.models.transformer.gpt_to_hf`, default dynamic cache). Each is timed
for 256 and for 32 new tokens (best of ``--repeats``, synchronised): *steady* tokens/s is
``224 / (t_256 - t_32)``, which leaves out every fixed cost of a call (prefill, graph capture), and the
fixed cost is ``t_256 - 256 / steady``; *end-to-end* tokens/s is ``256 / t_256``. The capture of one
decoding step is also timed on its own. Greedy tokens are compared: in bf16 (leading tokens that agree;
random weights give near-ties that bf16 rounding may flip) and in fp32 (the whole sequences).
Issue #5's bar: genlab with CUDA graphs >= 10x the tokens/s of Hugging Face ``generate``.

(b) Diffusion: ``--n`` (256) MNIST-sized images (1x28x28), 50 DDIM steps, genlab's default image UNet
against diffusers' ``UNet2DModel`` + ``DDIMScheduler`` of about the same parameter count (the peer of
``benchmarks/diffusion_speed.py``, imported from it). genlab rows: fp32 eager, fp32 + graphs, bf16
autocast eager, bf16 + graphs, bf16 + ``torch.compile``, bf16 + compile + graphs; diffusers rows: fp32
and bf16 autocast. ms per step = best timed call / steps (after one untimed call that captures or
compiles, reported as "first call"). Issue #4's bar: genlab >= 2x diffusers' speed.

    python benchmarks/cuda_sampling.py                       # on a CUDA machine, meant to take < 4 minutes
    OMP_NUM_THREADS=1 python benchmarks/cuda_sampling.py --device cpu --tiny   # smoke test, ~1 minute

``--tiny`` shrinks everything (a 2-layer GPT, 8 images, 3 steps) and writes JSON only with ``--out``;
on CPU, graphs and compilation are skipped (the static decoding step still runs, eagerly).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from diffusion_speed import diffusers_peer
from genlab.models.diffusion import DiffusionModel
from genlab.models.transformer import GPT, gpt_to_hf
from genlab.sampling.cuda_graphs import StaticDecodeStep
from genlab.sampling.decoding import GenerationConfig, generate
from genlab.train import TrainConfig

DEFAULT_OUT = Path(__file__).parent / "results" / "cuda_sampling.json"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """Wall seconds of one call of ``fn``, synchronised before and after, and its result."""
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - start, out


def guarded(name: str, fn: Callable[[], dict]) -> dict:
    """``fn()``, or ``{"error": ...}`` when it raises: one failing row must not lose the others."""
    try:
        return fn()
    except Exception as error:   # noqa: BLE001 (a benchmark reports and goes on)
        traceback.print_exc(file=sys.stderr)
        print(f"!! {name} failed: {error!r}", file=sys.stderr)
        return {"error": repr(error)}


def leading_agreement(a: list[int], b: list[int]) -> int:
    """How many tokens ``a`` and ``b`` share before they first differ."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


# ---------------------------------------------------------------------------------------- transformer
def transformer_benchmark(args: argparse.Namespace, device: torch.device) -> dict:
    sizes = dict(vocab_size=512, block_size=128, n_layer=2, n_head=2, n_embd=64) if args.tiny else \
        dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    new, short = (24, 8) if args.tiny else (args.new_tokens, 32)
    torch.manual_seed(0)
    base = GPT(**sizes).eval()                                       # fp32 on the CPU: the reference weights
    prompt = torch.randint(0, sizes["vocab_size"], (args.prompt_tokens,), generator=torch.Generator().manual_seed(1))
    prompt = prompt.tolist()
    params = sum(p.numel() for p in base.parameters())
    graphs = device.type == "cuda"

    def ours(network: GPT, cuda_graphs: bool) -> Callable[[int], list[int]]:
        def run(n_new: int) -> list[int]:
            config = GenerationConfig(max_new_tokens=n_new, temperature=0, cuda_graphs=cuda_graphs)
            return generate(network, [prompt], config)[0]
        return run

    def theirs(hf) -> Callable[[int], list[int]]:
        ids = torch.tensor([prompt], device=device)
        attention = torch.ones_like(ids)

        @torch.inference_mode()
        def run(n_new: int) -> list[int]:
            out = hf.generate(ids, attention_mask=attention, do_sample=False, max_new_tokens=n_new,
                              min_new_tokens=n_new, pad_token_id=0, eos_token_id=None)
            return out[0, len(prompt):].tolist()
        return run

    def measure(run: Callable[[int], list[int]]) -> dict:
        run(4)                                                         # warm-up: kernels, cuBLAS, allocator
        long = [timed(lambda: run(new), device) for _ in range(args.repeats)]
        t_short = min(timed(lambda: run(short), device)[0] for _ in range(args.repeats))
        t_long = min(t for t, _ in long)
        steady = (new - short) / max(t_long - t_short, 1e-9)
        return {"seconds": t_long, "end_to_end_tokens_per_second": new / t_long,
                "steady_tokens_per_second": steady, "fixed_seconds_per_call": t_long - new / steady,
                "tokens": long[0][1]}

    results: dict[str, Any] = {"parameters": params, "prompt_tokens": len(prompt), "new_tokens": new,
                               "dtype": str(args.dtype).replace("torch.", "")}
    network = GPT(**sizes).eval()
    network.load_state_dict(base.state_dict())
    network.to(device, args.dtype)
    hf = gpt_to_hf(base).to(device, args.dtype)                     # a fresh copy: .to() casts in place
    rows = {
        "genlab, KV cache (eager)": guarded("genlab eager", lambda: measure(ours(network, False))),
        "genlab, static cache + CUDA graphs" if graphs else "genlab, static cache (no graph on CPU)":
            guarded("genlab graphs", lambda: measure(ours(network, True))),
        "Hugging Face generate": guarded("HF generate", lambda: measure(theirs(hf))),
    }

    def capture() -> dict:   # one decoding step's capture, alone
        step = StaticDecodeStep(network, 1, len(prompt) + new)
        with torch.inference_mode():
            network(torch.tensor([prompt], device=device), cache=step.cache)
            step.cache.advance(len(prompt))
            seconds, _ = timed(lambda: step(torch.tensor([prompt[-1]], device=device),
                                            torch.tensor([len(prompt)], device=device), None), device)
        return {"first_step_seconds": seconds, "capture_seconds": step.capture_seconds, "graph": step.graph}

    results["capture"] = guarded("capture", capture)

    names = list(rows)
    tokens = {name: row.pop("tokens", None) for name, row in rows.items()}
    agreement = {}
    for a, b in ((names[1], names[0]), (names[0], names[2]), (names[1], names[2])):
        if tokens[a] is not None and tokens[b] is not None:
            agreement[f"{a} | {b}"] = leading_agreement(tokens[a], tokens[b])
    results["bf16_leading_agreement" if args.dtype == torch.bfloat16 else "leading_agreement"] = agreement

    def fp32_check() -> dict:   # the same greedy tokens, in fp32 (no bf16 near-ties)
        exact = GPT(**sizes).eval()
        exact.load_state_dict(base.state_dict())
        exact.to(device)
        hf_exact = gpt_to_hf(base).to(device)
        out = {"eager": ours(exact, False)(new), "graphs": ours(exact, True)(new), "hf": theirs(hf_exact)(new)}
        return {"graphs_equal_eager": out["graphs"] == out["eager"], "eager_equal_hf": out["eager"] == out["hf"],
                "graphs_vs_eager_leading": leading_agreement(out["graphs"], out["eager"]),
                "eager_vs_hf_leading": leading_agreement(out["eager"], out["hf"]), "new_tokens": new}

    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    network = hf = None   # frees the two low-precision copies before the fp32 check builds its own
    results["fp32_greedy_check"] = guarded("fp32 check", fp32_check)
    results["rows"] = rows
    hf_rate = rows["Hugging Face generate"].get("steady_tokens_per_second")
    fast = rows[names[1]].get("steady_tokens_per_second")
    results["speedup_graphs_over_hf"] = fast / hf_rate if fast and hf_rate else None
    hf_e2e = rows["Hugging Face generate"].get("end_to_end_tokens_per_second")
    fast_e2e = rows[names[1]].get("end_to_end_tokens_per_second")
    results["speedup_graphs_over_hf_end_to_end"] = fast_e2e / hf_e2e if fast_e2e and hf_e2e else None
    return results


def print_transformer(results: dict) -> None:
    print(f"\n(a) GPT decoding, batch 1, {results['parameters']:,} parameters, {results['dtype']}, "
          f"prompt {results['prompt_tokens']}, {results['new_tokens']} new tokens, greedy")
    print(f"{'':<40} {'steady tok/s':>12} {'end-to-end tok/s':>17} {'fixed s/call':>13}")
    for name, row in results["rows"].items():
        if "error" in row:
            print(f"{name:<40} failed: {row['error']}")
            continue
        print(f"{name:<40} {row['steady_tokens_per_second']:>12.1f} {row['end_to_end_tokens_per_second']:>17.1f} "
              f"{row['fixed_seconds_per_call']:>13.3f}")
    capture = results["capture"]
    if "error" not in capture:
        print(f"capture of one decoding step: {1e3 * capture['capture_seconds']:.1f} ms "
              f"(graph: {capture['graph']}; first step in all {1e3 * capture['first_step_seconds']:.1f} ms)")
    for key in ("bf16_leading_agreement", "leading_agreement"):
        for pair, n in results.get(key, {}).items():
            print(f"{key.replace('_', ' ')}: {pair}: {n} of {results['new_tokens']}")
    print(f"fp32 greedy check: {results['fp32_greedy_check']}")
    if results["speedup_graphs_over_hf"] is not None:
        print(f"speed-up of static-cache decoding over Hugging Face generate: {results['speedup_graphs_over_hf']:.1f}x "
              f"steady, {results['speedup_graphs_over_hf_end_to_end']:.1f}x end to end (bar: >= 10x)")


# ---------------------------------------------------------------------------------------- diffusion
def diffusion_benchmark(args: argparse.Namespace, device: torch.device) -> dict:
    n, steps = (8, 3) if args.tiny else (args.n, args.steps)
    images = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    model = DiffusionModel(conditional=False).fit(images, train=TrainConfig(steps=1, batch_size=8, device=device.type))
    ours_params = sum(p.numel() for p in model.network_.parameters())
    unet, scheduler = diffusers_peer()
    unet.to(device)
    theirs_params = sum(p.numel() for p in unet.parameters())

    def genlab_run(**options: bool) -> Callable[[], Any]:
        return lambda: model.sample(n, steps=steps, sampler="ddim",
                                    generator=torch.Generator(device).manual_seed(0), **options)

    def diffusers_run(bf16: bool) -> Callable[[], Any]:
        @torch.no_grad()
        def run() -> torch.Tensor:
            x = torch.randn((n, 1, 28, 28), generator=torch.Generator(device).manual_seed(0), device=device)
            scheduler.set_timesteps(steps)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                for t in scheduler.timesteps:
                    x = scheduler.step(unet(x, t).sample, t, x).prev_sample
            return x.float().cpu()
        return run

    def measure(run: Callable[[], Any]) -> dict:
        first, _ = timed(run, device)                    # captures graphs / compiles: not a step time
        best = min(timed(run, device)[0] for _ in range(args.repeats))
        return {"first_call_seconds": first, "seconds": best, "ms_per_step": 1e3 * best / steps}

    cuda = device.type == "cuda"
    variants: dict[str, dict[str, bool]] = {"genlab fp32": {}}
    if cuda:
        variants["genlab fp32 + graphs"] = {"cuda_graphs": True}
    variants["genlab bf16"] = {"bf16": True}
    if cuda:
        variants["genlab bf16 + graphs"] = {"bf16": True, "cuda_graphs": True}
        if not args.no_compile:
            variants["genlab bf16 + compile"] = {"bf16": True, "compile": True}
            variants["genlab bf16 + compile + graphs"] = {"bf16": True, "compile": True, "cuda_graphs": True}
    rows = {"diffusers fp32": guarded("diffusers fp32", lambda: measure(diffusers_run(False))),
            "diffusers bf16": guarded("diffusers bf16", lambda: measure(diffusers_run(True)))}
    for name, options in variants.items():
        rows[name] = guarded(name, lambda: measure(genlab_run(**options)))
        rows[name]["options"] = options
    for name, row in rows.items():
        peer = rows["diffusers bf16" if "bf16" in name else "diffusers fp32"]
        if name.startswith("genlab") and "ms_per_step" in row and "ms_per_step" in peer:
            row["speedup_over_diffusers_same_precision"] = peer["ms_per_step"] / row["ms_per_step"]
            if "ms_per_step" in rows["diffusers fp32"]:
                row["speedup_over_diffusers_fp32"] = rows["diffusers fp32"]["ms_per_step"] / row["ms_per_step"]
    return {"images": n, "steps": steps, "genlab_parameters": ours_params, "diffusers_parameters": theirs_params,
            "parameter_ratio": ours_params / theirs_params,
            "parameters_within_10_percent": abs(ours_params / theirs_params - 1) <= 0.1, "rows": rows}


def print_diffusion(results: dict) -> None:
    print(f"\n(b) diffusion, {results['images']} images 1x28x28, DDIM {results['steps']} steps; parameters: genlab "
          f"{results['genlab_parameters']:,}, diffusers {results['diffusers_parameters']:,} "
          f"(ratio {results['parameter_ratio']:.3f}{'' if results['parameters_within_10_percent'] else ', NOT within 10 %'})")
    print(f"{'':<32} {'ms/step':>9} {'first call s':>13} {'x diffusers':>12} {'x diffusers fp32':>17}")
    for name, row in results["rows"].items():
        if "error" in row:
            print(f"{name:<32} failed: {row['error']}")
            continue
        same, fp32 = row.get("speedup_over_diffusers_same_precision"), row.get("speedup_over_diffusers_fp32")
        print(f"{name:<32} {row['ms_per_step']:>9.2f} {row['first_call_seconds']:>13.2f} "
              f"{'' if same is None else f'{same:.2f}':>12} {'' if fp32 is None else f'{fp32:.2f}':>17}")
    print("bar (issue #4): genlab >= 2x diffusers")


def main(argv: list[str] | None = None) -> None:
    """Run both parts, print the tables and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a smoke test that runs on a CPU")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"],
                        help="transformer weights")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--n", type=int, default=256, help="images per diffusion sampling call")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument("--only", choices=["transformer", "diffusion"], help="run one part")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON report (default {DEFAULT_OUT}; none with --tiny)")
    args = parser.parse_args(argv)
    args.dtype = getattr(torch, args.dtype)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here; use --device cpu --tiny for a smoke test")
    out = args.out if args.out is not None or args.tiny else DEFAULT_OUT

    report: dict[str, Any] = {"benchmark": "CUDA sampling speed (issues #4 and #5)", "machine": platform.platform(),
                              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                              "torch": torch.__version__}
    for package in ("transformers", "diffusers"):   # both needed: pip install -e '.[test]'
        report[package] = __import__(package).__version__
    if args.only != "diffusion":
        start = time.perf_counter()
        report["transformer"] = transformer_benchmark(args, device)
        report["transformer"]["benchmark_seconds"] = time.perf_counter() - start
        print_transformer(report["transformer"])
    if args.only != "transformer":
        start = time.perf_counter()
        report["diffusion"] = diffusion_benchmark(args, device)
        report["diffusion"]["benchmark_seconds"] = time.perf_counter() - start
        print_diffusion(report["diffusion"])
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: str(v) for k, v in vars(args).items()}
        out.write_text(json.dumps(report | {"settings": settings}, indent=2, default=str))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
