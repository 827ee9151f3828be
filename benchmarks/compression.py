"""Compression on CPU, one run: size, decoding speed and quality of int8, pruning and ONNX on the same GPT.

Part 1, a GPT-124M-shaped network (12 layers, 12 heads, width 768, vocabulary 50,304; random weights:
speed does not depend on them): greedy decoding at batch 1 through genlab's KV cache, float32 eager
against the int8 layers of :mod:`genlab.compress.quantize` (every linear layer, the output head
included), and the bytes of the linear layers' tensors. Beside it the crossover: one ``C -> 4C`` layer
at batch 1, float32 against int8, for the widths ``C`` genlab's models use.

Part 2, Tiny Shakespeare characters with nanoGPT's CPU config (4x4x128, block 64, batch 12), trained by
``genlab.fit`` for ``--steps``; then, each written by ``genlab.compress.run.compress`` into its own run
directory and loaded back by ``genlab.load``: int8; global magnitude pruning at 30/50/70/90 % and
structured pruning of 50 % of the MLP hidden units, each fine-tuned ``--fine-tune`` steps; plus the
exported ONNX graph under onnxruntime. Quality: validation nats per character, the mean next-token
loss over the same 40 seeded batches of 12 test windows for every variant. Speed: greedy tokens/s at
batch 1 and 32 (64 new tokens), best of ``--repeats``. One thread; the machine is shared with other jobs,
so timings are pessimistic and the ratios carry a few per cent of noise.

    OMP_NUM_THREADS=1 python benchmarks/compression.py [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import genlab
from genlab.compress.quantize import Int8Linear, quantize_linear
from genlab.compress.distill import distill
from genlab.compress.run import compress, fine_tune
from genlab.export.onnx import export_onnx
from genlab.models.transformer import GPT, next_token_loss
from genlab.export.runner import OnnxSampler
from genlab.sampling.decoding import GenerationConfig, generate

DEFAULT_OUT = Path(__file__).parent / "results" / "compression.json"


def decode_seconds(network: nn.Module, batch: int, new_tokens: int, start: int = 0) -> float:
    """Process CPU seconds of one greedy decoding of ``new_tokens`` for ``batch`` rows (genlab's KV cache)."""
    with torch.inference_mode():
        begin = time.process_time()
        generate(network, [[start]] * batch, GenerationConfig(max_new_tokens=new_tokens, temperature=0))
        return time.process_time() - begin


def decode_speed(network: nn.Module, batch: int, new_tokens: int, repeats: int, start: int = 0) -> float:
    """Greedy tokens/s (all rows together, process CPU time), best of ``repeats`` after a warm-up call
    (which also packs int8 weights)."""
    decode_seconds(network, batch, 2, start)
    return batch * new_tokens / min(decode_seconds(network, batch, new_tokens, start) for _ in range(repeats))


def onnx_decode_speed(sampler: OnnxSampler, batch: int, new_tokens: int, repeats: int, start: int) -> float:
    """Greedy tokens/s of the exported one-step graph, its cache fed back each step (NumPy argmax)."""
    meta = sampler.meta
    times: list[float] = []
    for _ in range(repeats + 1):   # the first round warms onnxruntime up and is not counted
        begin = time.process_time()
        ids = np.full((batch, 1), start, dtype=np.int64)
        keys = values = np.zeros((meta["n_layer"], batch, meta["n_head"], 0, meta["head_size"]), np.float32)
        for _ in range(new_tokens):
            logits, keys, values = sampler.run(input_ids=ids, past_keys=keys, past_values=values)
            ids = logits[:, -1].argmax(axis=1)[:, None].astype(np.int64)
        times.append(time.process_time() - begin)
    return batch * new_tokens / min(times[1:])


def linear_bytes(network: nn.Module) -> int:
    """Bytes of the tensors of the linear layers (float ``nn.Linear`` or :class:`Int8Linear`)."""
    total = 0
    for module in network.modules():
        if isinstance(module, (nn.Linear, Int8Linear)):
            total += sum(t.numel() * t.element_size() for t in module.state_dict().values())
    return total


def crossover(repeats: int) -> list[dict]:
    """Batch-1 time of one ``C -> 4C`` layer, float32 against int8, for several widths ``C``."""
    rows = []
    for width in (64, 128, 256, 512, 768, 1024):
        linear = nn.Linear(width, 4 * width).eval()
        quantised = Int8Linear.from_linear(linear)
        x = torch.randn(1, width)
        times = {}
        with torch.inference_mode():
            for name, layer in (("fp32", linear), ("int8", quantised)):
                layer(x)
                best = float("inf")
                for _ in range(repeats):
                    begin = time.perf_counter()
                    for _ in range(200):
                        layer(x)
                    best = min(best, (time.perf_counter() - begin) / 200)
                times[name] = best
        rows.append({"width": width, "fp32_us": 1e6 * times["fp32"], "int8_us": 1e6 * times["int8"],
                     "speedup": times["fp32"] / times["int8"]})
    return rows


def gpt124m(new_tokens: int, repeats: int) -> dict:
    """Part 1 (module doc)."""
    torch.manual_seed(0)
    fp32 = GPT(50304, 1024, 12, 12, 768).eval()
    int8 = copy.deepcopy(fp32)
    quantize_linear(int8)
    speed = {name: decode_speed(net, 1, new_tokens, repeats) for name, net in (("fp32", fp32), ("int8", int8))}
    return {"parameters": sum(p.numel() for p in fp32.parameters()), "tokens_per_s": speed,
            "speedup": speed["int8"] / speed["fp32"],
            "linear_bytes": {"fp32": linear_bytes(fp32), "int8": linear_bytes(int8)},
            "linear_size_ratio": linear_bytes(int8) / linear_bytes(fp32)}


def validation_nats(network: nn.Module, windows: torch.Tensor, batches: int = 40) -> float:
    """Mean next-token loss over ``batches`` seeded batches of 12 test windows."""
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        losses = [float(next_token_loss(network, windows[torch.randint(len(windows), (12,), generator=generator)]))
                  for _ in range(batches)]
    return sum(losses) / len(losses)


def shakespeare(data_dir: str, steps: int, fine_tune_steps: int, distill_steps: int, repeats: int,
                folder: Path) -> dict:
    """Part 2 (module doc)."""
    data = genlab.datasets.load("tinyshakespeare", data_dir=data_dir)
    train = {"steps": steps, "batch_size": 12, "lr": 2e-3, "betas": (0.9, 0.99), "weight_decay": 0.1,
             "warmup_steps": 100, "min_lr_ratio": 0.1, "grad_clip": 1.0, "device": "cpu", "seed": 0}
    begin = time.process_time()
    model = genlab.fit(data, family="transformer", train=train, n_layer=4, n_head=4, n_embd=128, block_size=64,
                       tokenizer="char", dropout=0.0)
    train_cpu = time.process_time() - begin
    parent = model.save_pretrained(folder / "fp32")
    windows = model.codec_.encode(data.x_test)
    start = model.codec_.eos
    variants = {"fp32": {}, "int8": {"quantize": "int8"}}
    for amount in (0.3, 0.5, 0.7, 0.9):
        variants[f"prune {amount:.0%}"] = {"prune": amount, "steps": fine_tune_steps, "data": data}
    variants["structured 50%"] = {"prune": 0.5, "structured": True, "steps": fine_tune_steps, "data": data}
    variants["structured 50% + int8"] = {"prune": 0.5, "structured": True, "steps": fine_tune_steps, "data": data,
                                         "quantize": "int8"}
    networks, rows = {}, {}
    for name, options in variants.items():
        run = parent if not options else compress(parent, folder / name.replace(" ", "_").replace("%", ""), **options)
        networks[name] = genlab.load(run).network_
        rows[name] = {"parameters": sum(p.numel() for p in networks[name].parameters()) +
                      sum(b.numel() for b in networks[name].buffers()),
                      "bytes_on_disk": (run / "model.safetensors").stat().st_size,
                      "val_nats_per_char": validation_nats(networks[name], windows)}
    tuned = genlab.load(parent)   # the honest baseline of a pruned + fine-tuned row: the same fine-tune, unpruned
    fine_tune(tuned, fine_tune_steps, data)
    rows[f"fp32 + {fine_tune_steps} steps"] = {"parameters": rows["fp32"]["parameters"],
                                               "bytes_on_disk": rows["fp32"]["bytes_on_disk"],
                                               "val_nats_per_char": validation_nats(tuned.network_, windows)}
    graph = export_onnx(genlab.load(parent), folder / "fp32.onnx")
    sampler = OnnxSampler(graph, threads=1)
    rows["onnxruntime fp32"] = {"parameters": rows["fp32"]["parameters"], "bytes_on_disk": graph.stat().st_size,
                                "val_nats_per_char": rows["fp32"]["val_nats_per_char"]}
    for name in networks:   # warm-up (int8 packing) before the interleaved rounds
        decode_seconds(networks[name], 1, 2, start)
    speed: dict[str, dict[str, list[float]]] = {name: {"b1": [], "b32": []} for name in [*networks, "onnxruntime fp32"]}
    for _ in range(repeats):   # interleaved, so a change in the machine's load hits every variant alike
        for name, network in networks.items():
            speed[name]["b1"].append(64 / decode_seconds(network, 1, 64, start))
            speed[name]["b32"].append(32 * 64 / decode_seconds(network, 32, 64, start))
        speed["onnxruntime fp32"]["b1"].append(onnx_decode_speed(sampler, 1, 64, 1, start))
        speed["onnxruntime fp32"]["b32"].append(onnx_decode_speed(sampler, 32, 64, 1, start))
    for name, values in speed.items():
        rows[name] |= {"tokens_per_s_b1": max(values["b1"]), "tokens_per_s_b32": max(values["b32"])}
    for row in rows.values():
        row["delta_nats"] = row["val_nats_per_char"] - rows["fp32"]["val_nats_per_char"]
        if "tokens_per_s_b1" in row:
            row["speedup_b1"] = row["tokens_per_s_b1"] / rows["fp32"]["tokens_per_s_b1"]
            row["speedup_b32"] = row["tokens_per_s_b32"] / rows["fp32"]["tokens_per_s_b32"]
    distilled = distillation(parent, data, windows, distill_steps, folder)
    return {"train_steps": steps, "train_cpu_seconds": train_cpu, "fine_tune_steps": fine_tune_steps, "rows": rows,
            "distillation": distilled}


def distillation(parent: Path, data, windows: torch.Tensor, steps: int, folder: Path) -> dict:
    """A 2-layer student of the 4-layer teacher: Hinton KD (T = 2, alpha = 0.5) from teacher layers 0 and 3,
    against the same student from scratch (random start, hard loss only), same tokens and steps, two seeds."""
    out = {}
    for seed in (0, 1):
        for name, options in (("distilled", {"alpha": 0.5, "init": "teacher"}),
                              ("scratch", {"alpha": 0.0, "init": "random"})):
            teacher = genlab.load(parent)
            begin = time.process_time()
            student, _ = distill(teacher, data, student={"n_layer": 2}, steps=steps, temperature=2.0,
                                 train={"seed": seed}, **options)
            out[f"{name} seed {seed}"] = {"val_nats_per_char": validation_nats(student.network_, windows),
                                          "cpu_seconds": time.process_time() - begin,
                                          "parameters": sum(p.numel() for p in student.network_.parameters())}
    out["margins"] = [out[f"scratch seed {s}"]["val_nats_per_char"] - out[f"distilled seed {s}"]["val_nats_per_char"]
                      for s in (0, 1)]
    return out


def main(argv: list[str] | None = None) -> None:
    """Run both parts, print the tables and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--fine-tune", type=int, default=100)
    parser.add_argument("--distill-steps", type=int, default=500)
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens decoded by the 124M-shaped GPT")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    cross = crossover(args.repeats)
    print("one C -> 4C layer at batch 1 (us):  " + "   ".join(
        f"C={r['width']}: {r['fp32_us']:.0f} fp32 / {r['int8_us']:.0f} int8 ({r['speedup']:.2f}x)" for r in cross))
    big = gpt124m(args.new_tokens, args.repeats)
    print(f"GPT-124M-shaped ({big['parameters']:,} parameters), greedy batch 1: fp32 {big['tokens_per_s']['fp32']:.1f} "
          f"tokens/s, int8 {big['tokens_per_s']['int8']:.1f} tokens/s ({big['speedup']:.2f}x; bar >= 1.5x); "
          f"linear layers {big['linear_bytes']['fp32'] / 2**20:.0f} MiB -> {big['linear_bytes']['int8'] / 2**20:.0f} MiB "
          f"({big['linear_size_ratio']:.3f}x; bar <= 0.3x)")
    with tempfile.TemporaryDirectory() as folder:
        small = shakespeare(args.data_dir, args.steps, args.fine_tune, args.distill_steps, args.repeats, Path(folder))
    print(f"\nTiny Shakespeare 4x4x128, {small['train_steps']} steps ({small['train_cpu_seconds']:.0f} CPU s), "
          f"fine-tunes of {small['fine_tune_steps']} steps")
    print(f"{'':24} {'params':>9} {'bytes':>10} {'val nats':>9} {'delta':>8} {'tok/s b1':>9} {'x':>6} "
          f"{'tok/s b32':>10} {'x':>6}")
    for name, row in small["rows"].items():
        speed = (f"{row['tokens_per_s_b1']:>9.0f} {row['speedup_b1']:>6.2f} {row['tokens_per_s_b32']:>10.0f} "
                 f"{row['speedup_b32']:>6.2f}") if "speedup_b1" in row else ""
        print(f"{name:24} {row['parameters']:>9,} {row['bytes_on_disk']:>10,} {row['val_nats_per_char']:>9.4f} "
              f"{row['delta_nats']:>+8.4f} {speed}")
    print("\ndistillation, 2-layer students (val nats/char):")
    for name, row in small["distillation"].items():
        if name != "margins":
            print(f"  {name:20} {row['val_nats_per_char']:.4f}  ({row['parameters']:,} parameters, {row['cpu_seconds']:.0f} CPU s)")
    print(f"  margin scratch - distilled: {small['distillation']['margins']} (bar: > 0 for both seeds)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "compression (CPU)", "settings": vars(args) | {"out": str(args.out)},
                                    "machine": platform.platform(), "torch": torch.__version__,
                                    "crossover": cross, "gpt124m": big, "shakespeare": small}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
