"""Character-level Tiny Shakespeare with nanoGPT's CPU config, side by side with Hugging Face GPT-2
(BENCHMARKS.md §2 and §7; issue #5).

Both networks start from the same weights (genlab's GPT converted to ``GPT2LMHeadModel``) and are
trained by the same genlab Trainer on the same batches: 4 layers, 4 heads, width 128, block 64, batch
12, 2,000 iterations, AdamW lr 2e-3 (warm-up 100, cosine to 2e-4), betas (0.9, 0.99), weight decay 0.1,
clip 1.0, dropout 0. The learning rate is genlab's default, twice nanoGPT's 1e-3: measured on this
config, best validation loss 1.883 / 1.894 at 1e-3 and 1.811 / 1.804 at 2e-3 (seeds 0 / 1); ``--lr 1e-3``
reruns nanoGPT's own setting. Validation loss = mean cross-entropy over 20 random validation batches every 250
iterations. Training speed is tokens/s of the whole loop; an extra interleaved measurement (rounds of
50 steps, alternating) gives a ratio less exposed to other jobs on the machine. Decoding: batch 1,
256 new tokens, greedy, genlab's KV cache vs ``generate`` on the same weights (a 512-position copy so
the output fits the position table; the extra positions are freshly initialised in both).

Bars (issue #5): best validation loss <= 1.88; training tokens/s >= 1.1x HF; decoding >= 2x HF.
Timings use one thread on a machine shared with other jobs, so they are pessimistic.

    OMP_NUM_THREADS=1 python benchmarks/transformer_shakespeare.py [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import genlab
from genlab.data.text import CharCodec
from genlab.models.transformer import GPT, gpt_to_hf, next_token_loss
from genlab.sampling.decoding import GenerationConfig, generate
from genlab.train import Losses, Phase, TrainConfig, Trainer

DEFAULT_OUT = Path(__file__).parent / "results" / "transformer_shakespeare.json"
BLOCK, LAYERS, HEADS, WIDTH = 64, 4, 4, 128


def train_config(steps: int, seed: int, lr: float = 2e-3) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=12, lr=lr, betas=(0.9, 0.99), weight_decay=0.1, warmup_steps=100,
                       min_lr_ratio=0.1, grad_clip=1.0, eval_every=250, log_every=250, seed=seed, device="cpu")


def hf_loss(module, batch, generator) -> Losses:
    # batch.x: (B, 65) tokens; logits of the first 64 predict the last 64
    logits = module(input_ids=batch.x[:, :-1]).logits
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.x[:, 1:].reshape(-1))
    return Losses(nll, {})


def gpt_loss(module, batch, generator) -> Losses:
    return Losses(next_token_loss(module, batch.x), {})


def validation(network, loss, val: torch.Tensor, timer: dict[str, float]):
    """``evaluate(step)`` for the Trainer: mean loss over 20 seeded random batches of 12."""

    def evaluate(step: int) -> dict[str, float]:
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(step)
        with torch.no_grad():
            losses = [float(loss(network, _batch(val, generator), None).total) for _ in range(20)]
        timer["eval"] += time.perf_counter() - start
        return {"val_loss": sum(losses) / len(losses)}

    return evaluate


def _batch(windows: torch.Tensor, generator: torch.Generator):
    from genlab.train import Batch

    return Batch(windows[torch.randint(len(windows), (12,), generator=generator)])


def train(name: str, network, loss, x: torch.Tensor, val: torch.Tensor, steps: int, seed: int, lr: float) -> dict:
    timer = {"eval": 0.0}
    start = time.perf_counter()
    result = Trainer(train_config(steps, seed, lr)).fit(network, [Phase("model", network, loss)], x,
                                                    evaluate=validation(network, loss, val, timer))
    seconds = time.perf_counter() - start - timer["eval"]
    curve = [(r["step"], r["eval/val_loss"]) for r in result.history if "eval/val_loss" in r]
    return {"name": name, "seconds": seconds, "tokens_per_s": steps * 12 * BLOCK / seconds,
            "val_curve": curve, "best_val_loss": min(v for _, v in curve)}


def interleaved_speed(ours, theirs, x: torch.Tensor, rounds: int, steps: int) -> dict[str, float]:
    """Tokens/s of each network over alternating rounds of ``steps`` training steps (fresh copies)."""
    totals = {"genlab": 0.0, "hf": 0.0}
    for round_index in range(rounds):
        for name, network, loss in (("genlab", ours, gpt_loss), ("hf", theirs, hf_loss)):
            config = TrainConfig(**{**train_config(steps, round_index).__dict__, "eval_every": 0})
            start = time.perf_counter()
            Trainer(config).fit(network, [Phase("model", network, loss)], x)
            totals[name] += time.perf_counter() - start
    return {name: rounds * steps * 12 * BLOCK / seconds for name, seconds in totals.items()}


def decoding_speed(trained: GPT, prompt: list[int], new_tokens: int, repeats: int) -> dict:
    """Greedy batch-1 decoding: genlab with and without cache vs HF generate, same 512-position weights."""
    torch.manual_seed(0)
    network = GPT(trained.wte.num_embeddings, 512, LAYERS, HEADS, WIDTH).eval()
    state = trained.state_dict()
    wpe = network.wpe.weight.detach().clone()
    wpe[:BLOCK] = state["wpe.weight"]
    network.load_state_dict({**state, "wpe.weight": wpe})
    hf = gpt_to_hf(network)
    ids = torch.tensor([prompt])
    timings: dict[str, list[float]] = {"genlab_cache": [], "genlab_no_cache": [], "hf_cache": [], "hf_no_cache": [],
                                       "genlab_top_k": [], "hf_top_k": []}
    outputs = {}
    with torch.no_grad():
        for _ in range(repeats):
            for name, run in (
                ("genlab_cache", lambda: generate(network, [prompt], GenerationConfig(max_new_tokens=new_tokens, temperature=0))[0]),
                ("hf_cache", lambda: hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                                 max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                                 pad_token_id=0, eos_token_id=None)[0, len(prompt):].tolist()),
                ("genlab_top_k", lambda: generate(network, [prompt], GenerationConfig(max_new_tokens=new_tokens, top_k=40),
                                                  generator=torch.Generator().manual_seed(0))[0]),
                ("hf_top_k", lambda: hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, top_k=40,
                                                 max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                                 pad_token_id=0, eos_token_id=None)[0, len(prompt):].tolist()),
                ("genlab_no_cache", lambda: generate(network, [prompt], GenerationConfig(
                    max_new_tokens=new_tokens, temperature=0, use_cache=False))[0]),
                ("hf_no_cache", lambda: hf.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                                    use_cache=False, max_new_tokens=new_tokens,
                                                    min_new_tokens=new_tokens, pad_token_id=0,
                                                    eos_token_id=None)[0, len(prompt):].tolist()),
            ):
                start = time.perf_counter()
                outputs[name] = run()
                timings[name].append(time.perf_counter() - start)
    rates = {name: new_tokens / min(seconds) for name, seconds in timings.items()}
    return {"tokens_per_s": rates, "identical_greedy": outputs["genlab_cache"] == outputs["hf_cache"]
            == outputs["genlab_no_cache"], "n_params": sum(p.numel() for p in network.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--decode-repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = genlab.datasets.load("tinyshakespeare", data_dir=args.data_dir)
    codec = CharCodec(context=BLOCK + 1).fit(data.x_train)
    x, val = codec.encode(data.x_train), codec.encode(data.x_test)

    torch.manual_seed(args.seed)
    ours = GPT(codec.vocab_size, BLOCK, LAYERS, HEADS, WIDTH)
    theirs = gpt_to_hf(ours).train()               # identical initial weights
    runs = [train("genlab", ours, gpt_loss, x, val, args.steps, args.seed, args.lr),
            train("hf", theirs, hf_loss, x, val, args.steps, args.seed, args.lr)]
    speed = interleaved_speed(GPT(codec.vocab_size, BLOCK, LAYERS, HEADS, WIDTH), gpt_to_hf(ours).train(), x,
                              args.speed_rounds, 50)
    prompt = [codec.eos] + codec.tokenize("ROMEO:")
    decoding = decoding_speed(ours.eval(), prompt, 256, args.decode_repeats)

    ratio_train = runs[0]["tokens_per_s"] / runs[1]["tokens_per_s"]
    ratio_interleaved = speed["genlab"] / speed["hf"]
    rates = decoding["tokens_per_s"]
    ratio_decode = rates["genlab_cache"] / rates["hf_cache"]
    print(f"{'':28s}{'genlab':>12s}{'HF GPT-2':>12s}{'ratio':>8s}   bar")
    print(f"{'best val loss':28s}{runs[0]['best_val_loss']:12.4f}{runs[1]['best_val_loss']:12.4f}{'':8s}   <= 1.88")
    print(f"{'train tokens/s (full run)':28s}{runs[0]['tokens_per_s']:12.0f}{runs[1]['tokens_per_s']:12.0f}"
          f"{ratio_train:8.2f}   >= 1.1x")
    print(f"{'train tokens/s (interleaved)':28s}{speed['genlab']:12.0f}{speed['hf']:12.0f}{ratio_interleaved:8.2f}")
    for label, key in (("decode greedy, cache", "cache"), ("decode greedy, no cache", "no_cache"),
                       ("decode top-k 40, cache", "top_k")):
        print(f"{label + ' tok/s':28s}{rates['genlab_' + key]:12.0f}{rates['hf_' + key]:12.0f}"
              f"{rates['genlab_' + key] / rates['hf_' + key]:8.2f}" + ("   >= 2x" if key == "cache" else ""))
    print(f"greedy outputs identical (genlab cache / no cache / HF): {decoding['identical_greedy']}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "transformer_shakespeare", "config": {"n_layer": LAYERS, "n_head": HEADS, "n_embd": WIDTH,
                                                           "block_size": BLOCK, **train_config(args.steps, args.seed, args.lr).__dict__},
        "training": runs, "interleaved_tokens_per_s": speed, "decoding": decoding,
        "ratios": {"train_full_run": ratio_train, "train_interleaved": ratio_interleaved, "decode_cache": ratio_decode},
        "bars": {"best_val_loss<=1.88": runs[0]["best_val_loss"] <= 1.88, "train>=1.1x": ratio_train >= 1.1,
                 "decode>=2x": ratio_decode >= 2.0},
        "machine": {"platform": platform.platform(), "threads": args.threads, "torch": torch.__version__,
                    "note": "shared CPU, one thread: timings are pessimistic"},
    }, indent=2, default=list))


if __name__ == "__main__":
    main()
