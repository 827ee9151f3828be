"""Watermark detection with measured error rates: text (KGW) and tables (keyed row hashes) (issue #14).

Text: a character-level GPT (4 layers, 4 heads, width 128, block 64) trained on Tiny Shakespeare's
training split for ``--text-cpu`` CPU seconds, and an *independent* GPT (3 layers, width 96, seed 1) for
the perplexity cost, trained for half as long. Prompts are 32-character windows of the test split at
random offsets; every sample continues its prompt by T = 200 new tokens; gamma 0.25, delta 2, lefthash,
context width 1. Only the new tokens are scored (the first one seeded by the prompt's last token).

- TPR: the share of watermarked samples with z > 4 (the issue's threshold) and with exact binomial
  p <= 1e-4 (genlab's decision), for multinomial sampling (temperature 1) and beam search (4 beams).
- FPR measured on unmarked samples of the same model (same prompts, no mark) and on real held-out text:
  200-character windows of the test split at random offsets (overlapping, so the tests are
  correlated: the estimate is unbiased but its true interval is wider than the binomial one shown), and
  its non-overlapping windows. Intervals are Clopper-Pearson 95 %.
- Quality: perplexity of the 200 new characters (as a document) under the independent model.
- Robustness: a share eps of the new tokens replaced by uniform random tokens; AUC of z against unmarked
  samples, and TPR at a nominal 1 % FPR (p <= 0.01).

Tables: Adult from the default family (the Gaussian copula); strength 1 (green rows only) and 0.5.
z on 1,000 rows; TPR at FPR 1e-4 on 100-, 500- and 1,000-row tables cut from 10,000 watermarked rows;
after shuffling, a 50 % row subset, 10 % of cells altered (each cell, with probability 0.1, replaced
by the same column's value in a random real training row), and Gaussian numeric noise of 1 % and 5 % of
each numeric column's standard deviation, and relative noise (each number times 1 + N(0, 0.01)). FPR: 100-row tables of unmarked samples and of the real test
split, each tested under 100 keys (a keyed hash makes each key an independent test). Quality cost:
SDMetrics-exact quality and efficacy macro-F1 (genlab.metrics.tabular) of 10,000 marked vs unmarked
rows against the real test split.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/watermark.py [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import beta
from sklearn.metrics import roc_auc_score

import genlab
from genlab.provenance import Watermark
from genlab.provenance.detect import detect, detect_tokens
from genlab.provenance.embed import text_watermark_for
from genlab.provenance.stats import proportion_test
from genlab.provenance.table_watermark import keyed_hashes, row_texts, threshold
from genlab.sampling.decoding import GenerationConfig, generate

HERE = Path(__file__).parent
DEFAULT_OUT = HERE / "results" / "watermark.json"
KEY, GAMMA, DELTA, T, PROMPT_CHARS = "genlab-benchmark-key", 0.25, 2.0, 200, 32
EPSILONS = (0.1, 0.2, 0.3, 0.5)


def interval(k: int, n: int) -> list[float]:
    """Clopper-Pearson 95 % interval of a binomial share k / n."""
    low = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return [low, high]


def rate(flags: np.ndarray) -> dict:
    k, n = int(np.sum(flags)), len(flags)
    return {"rate": k / n, "k": k, "n": n, "ci95": interval(k, n)}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} cpu {time.process_time():7.1f}s] {message}", flush=True)


# ----------------------------------------------------------------------------------- text
def fit_gpt(data, seconds: float, seed: int, n_layer: int, n_embd: int):
    return genlab.fit(data, family="transformer", tokenizer="char", n_layer=n_layer, n_head=4, n_embd=n_embd,
                      block_size=64, train={"steps": None, "max_time": seconds, "clock": "cpu", "batch_size": 12,
                                            "lr": 2e-3, "betas": (0.9, 0.99), "weight_decay": 0.1,
                                            "warmup_steps": 100, "seed": seed, "device": "cpu"})


def continue_prompts(model, prompts: list[list[int]], config: GenerationConfig, seed: int, batch: int) -> list[list[int]]:
    out: list[list[int]] = []
    for start in range(0, len(prompts), batch):
        generator = torch.Generator().manual_seed(seed + start)
        out += generate(model.network_, prompts[start:start + batch], config, generator=generator)
    return out


def scores(sequences: list[list[int]], vocab: int, key: str = KEY) -> tuple[np.ndarray, np.ndarray]:
    report = detect_tokens(sequences, key=key, vocab_size=vocab, gamma=GAMMA)
    return np.array([d.score for d in report.items]), np.array([d.p_value for d in report.items])


def attack(sequences: list[list[int]], eps: float, vocab: int, rng: np.random.Generator) -> list[list[int]]:
    """Replace a share ``eps`` of the new tokens (every id after the first, the prompt's last) at random."""
    out = []
    for ids in sequences:
        ids = list(ids)
        new = len(ids) - 1
        for j in rng.choice(new, size=int(round(eps * new)), replace=False):
            ids[1 + j] = int(rng.integers(vocab))
        out.append(ids)
    return out


def text_benchmark(args) -> dict:
    data = genlab.datasets.load("tinyshakespeare", data_dir=args.data_dir)
    log(f"text: training the GPT for {args.text_cpu:.0f} CPU s")
    cpu = time.process_time()
    model = fit_gpt(data, args.text_cpu, 0, 4, 128)
    train_cpu = time.process_time() - cpu
    oracle = fit_gpt(data, args.text_cpu / 2, 1, 3, 96)
    log("text: trained both models")
    codec, vocab = model.codec_, model.network_.wte.num_embeddings
    test_text = str(data.x_test[0])
    rng = np.random.default_rng(0)
    n_prompts = max(args.marked, args.unmarked)
    offsets = rng.integers(0, len(test_text) - PROMPT_CHARS, n_prompts)
    prompts = [[codec.eos] + codec.tokenize(test_text[o:o + PROMPT_CHARS]) for o in offsets]
    marker = text_watermark_for(model, Watermark(key=KEY, strength=DELTA, gamma=GAMMA))
    sample = GenerationConfig(max_new_tokens=T, temperature=1.0)
    marked_sample = GenerationConfig(max_new_tokens=T, temperature=1.0, logits_processors=(marker,))
    beams = GenerationConfig(max_new_tokens=T, temperature=0, num_beams=4, logits_processors=(marker,))
    plain_beams = GenerationConfig(max_new_tokens=T, temperature=0, num_beams=4)

    def scored(new_ids, which):   # the prompt's last token seeds the first new one
        return [[prompts[i][-1], *ids] for i, ids in zip(which, new_ids)]

    results: dict = {"train_cpu_s": train_cpu, "final_train_nll": model.history_[-1].get("model"),
                     "vocab": vocab, "T": T, "gamma": GAMMA, "delta": DELTA}
    idx_m = list(range(args.marked))
    new_marked = continue_prompts(model, [prompts[i] for i in idx_m], marked_sample, 1, 250)
    log(f"text: {len(new_marked)} watermarked samples")
    idx_u = list(range(args.unmarked))
    new_plain = continue_prompts(model, [prompts[i] for i in idx_u], sample, 2, 500)
    log(f"text: {len(new_plain)} unmarked samples")
    idx_b = list(range(args.beams))
    new_beams = continue_prompts(model, [prompts[i] for i in idx_b], beams, 3, 25)
    new_plain_beams = continue_prompts(model, [prompts[i] for i in idx_b], plain_beams, 3, 25)
    log(f"text: {len(new_beams)} beam-search samples, marked and not")

    z_m, p_m = scores(scored(new_marked, idx_m), vocab)
    z_u, p_u = scores(scored(new_plain, idx_u), vocab)
    z_b, p_b = scores(scored(new_beams, idx_b), vocab)
    z_ub, p_ub = scores(scored(new_plain_beams, idx_b), vocab)
    lengths = [len(ids) for ids in new_marked]
    results["sampling"] = {"tpr_z4": rate(z_m > 4), "tpr_fpr1e-4": rate(p_m <= 1e-4), "mean_z": float(z_m.mean()),
                           "min_new_tokens": min(lengths)}
    results["beam_search"] = {"tpr_z4": rate(z_b > 4), "tpr_fpr1e-4": rate(p_b <= 1e-4), "mean_z": float(z_b.mean()),
                              "unmarked_fpr1e-4": rate(p_ub <= 1e-4), "unmarked_mean_z": float(z_ub.mean())}
    results["fpr_model_samples"] = {"at_1e-4": rate(p_u <= 1e-4), "at_1e-2": rate(p_u <= 1e-2),
                                    "z_gt_4": rate(z_u > 4), "mean_z": float(z_u.mean()), "sd_z": float(z_u.std())}
    # real held-out text: 201-character windows (the first character seeds the 200 scored ones)
    windows = [test_text[o:o + T + 1] for o in rng.integers(0, len(test_text) - T - 1, args.real_windows)]
    z_r, p_r = scores([codec.tokenize(w) for w in windows], vocab)
    disjoint = [test_text[i:i + T + 1] for i in range(0, len(test_text) - T - 1, T + 1)]
    z_d, p_d = scores([codec.tokenize(w) for w in disjoint], vocab)
    results["fpr_real_windows"] = {"at_1e-4": rate(p_r <= 1e-4), "at_1e-2": rate(p_r <= 1e-2),
                                   "mean_z": float(z_r.mean()), "sd_z": float(z_r.std())}
    results["fpr_real_disjoint_windows"] = {"at_1e-4": rate(p_d <= 1e-4), "at_1e-2": rate(p_d <= 1e-2),
                                            "mean_z": float(z_d.mean())}
    wrong_z, wrong_p = scores(scored(new_marked, idx_m), vocab, key="another key")
    results["wrong_key_on_marked"] = {"at_1e-4": rate(wrong_p <= 1e-4), "mean_z": float(wrong_z.mean())}
    log("text: detection done")

    def ppl(new_ids: list[list[int]], limit: int) -> float:
        texts = np.array([codec.detokenize(ids) for ids in new_ids[:limit]], dtype=object)
        scored_ll = oracle.token_log_likelihood(texts)
        return float(np.exp(-scored_ll.log_prob.sum() / scored_ll.n_tokens.sum()))

    n_ppl = min(args.marked, 500)
    results["perplexity_independent_model"] = {
        "sampling_unmarked": ppl(new_plain, n_ppl), "sampling_marked": ppl(new_marked, n_ppl),
        "beam_unmarked": ppl(new_plain_beams, args.beams), "beam_marked": ppl(new_beams, args.beams),
        "real_test_windows": ppl([codec.tokenize(w[1:]) for w in disjoint], n_ppl), "n": n_ppl}
    log("text: perplexities done")
    robust = {}
    attack_rng = np.random.default_rng(1)
    for eps in EPSILONS:
        z_a, p_a = scores(attack(scored(new_marked, idx_m), eps, codec.vocab_size, attack_rng), vocab)
        auc = roc_auc_score(np.r_[np.ones(len(z_a)), np.zeros(len(z_u))], np.r_[z_a, z_u])
        robust[str(eps)] = {"auc": float(auc), "tpr_fpr1e-2": rate(p_a <= 1e-2), "mean_z": float(z_a.mean())}
    results["robustness_random_substitution"] = robust
    return results


# ----------------------------------------------------------------------------------- tables
def green_share_test(texts: list[bytes], key: int, fpr: float) -> bool:
    hashes = np.unique(keyed_hashes(texts, key))
    return proportion_test(int((hashes < threshold(GAMMA)).sum()), len(hashes), gamma=GAMMA, fpr=fpr).watermarked


def null_tests(table: pd.DataFrame, size: int, tables: int, keys: int, fpr: float) -> dict:
    """FPR over ``tables`` disjoint ``size``-row tables of ``table``, each under ``keys`` keys."""
    texts = row_texts(table.iloc[:size * tables])
    flags = [green_share_test(texts[t * size:(t + 1) * size], key, fpr)
             for t in range(tables) for key in range(1, keys + 1)]
    return rate(np.array(flags))


def alter_cells(table: pd.DataFrame, real: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    out = table.copy()
    for column in out.columns:
        hit = rng.random(len(out)) < share
        donors = real[column].to_numpy()[rng.integers(len(real), size=int(hit.sum()))]
        values = out[column].astype(object).to_numpy().copy()
        values[hit] = donors
        out[column] = values
    return out


def numeric_noise(table: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    out = table.copy()
    for column in out.columns:
        if pd.api.types.is_numeric_dtype(out[column]):
            x = out[column].to_numpy(float)
            out[column] = x + rng.normal(0, share * np.nanstd(x), len(x))
    return out


def relative_noise(table: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    """Multiply every numeric cell by ``1 + N(0, share)`` (zeros stay zero)."""
    out = table.copy()
    for column in out.columns:
        if pd.api.types.is_numeric_dtype(out[column]):
            x = out[column].to_numpy(float)
            out[column] = x * (1 + rng.normal(0, share, len(x)))
    return out


def table_benchmark(args) -> dict:
    from genlab.data.table_columns import infer_kind
    from genlab.data.table_datasets import adult
    from genlab.metrics.tabular import efficacy, quality

    data = adult(args.data_dir)
    real_train, real_test = data.x_train, data.x_test
    kinds = {c: infer_kind(real_train[c]) for c in real_train.columns}
    cpu = time.process_time()
    model = genlab.fit(data, family="gaussian")
    results: dict = {"family": "gaussian (copula)", "fit_cpu_s": time.process_time() - cpu}
    log("tables: fitted")
    n = args.table_rows
    g = torch.Generator().manual_seed(0)
    cpu = time.process_time()
    plain = model.sample(n, generator=g)
    results["sample_cpu_s_unmarked"] = time.process_time() - cpu
    rng = np.random.default_rng(0)
    for strength in (1.0, 0.5):
        mark = Watermark(key=KEY, strength=strength, gamma=GAMMA)
        cpu = time.process_time()
        marked = model.sample(n, processors=[mark], generator=torch.Generator().manual_seed(1))
        entry: dict = {"sample_cpu_s": time.process_time() - cpu}
        entry["z_1000_rows"] = detect(marked.iloc[:1000], key=KEY).combined.score
        for size in (100, 500, 1000):
            flags = [detect(marked.iloc[i * size:(i + 1) * size], key=KEY).combined.watermarked
                     for i in range(min(n // size, 100))]
            entry[f"tpr_fpr1e-4_{size}_rows"] = rate(np.array(flags))
        attacks = {
            "shuffled": lambda t: t.sample(frac=1.0, random_state=int(rng.integers(1 << 31))),
            "half_rows": lambda t: t.sample(frac=0.5, random_state=int(rng.integers(1 << 31))),
            "cells_10pct": lambda t: alter_cells(t, real_train, 0.1, rng),
            "noise_1pct_sd": lambda t: numeric_noise(t, 0.01, rng),
            "noise_5pct_sd": lambda t: numeric_noise(t, 0.05, rng),
            "relative_noise_1pct": lambda t: relative_noise(t, 0.01, rng),
        }
        for name, hit in attacks.items():
            tests = [detect(hit(marked.iloc[i * 1000:(i + 1) * 1000]), key=KEY).combined for i in range(n // 1000)]
            entry[f"attack_{name}_1000_rows"] = {"tpr_fpr1e-4": rate(np.array([t.watermarked for t in tests])),
                                                 "mean_z": float(np.mean([t.score for t in tests]))}
        quality_marked = quality(real=real_test, synthetic=marked, kinds=kinds)
        entry["quality"] = quality_marked.score
        entry["efficacy_f1"] = efficacy(synthetic=marked, test=real_test, target="income", kinds=kinds).f1_synthetic
        results[f"strength_{strength}"] = entry
        log(f"tables: strength {strength} done")
    results["unmarked_quality"] = quality(real=real_test, synthetic=plain, kinds=kinds).score
    results["unmarked_efficacy_f1"] = efficacy(synthetic=plain, test=real_test, target="income", kinds=kinds).f1_synthetic
    results["fpr_unmarked_samples_100_rows"] = null_tests(plain, 100, 100, 100, 1e-4)
    results["fpr_unmarked_samples_100_rows_at_1e-2"] = null_tests(plain, 100, 100, 100, 1e-2)
    real = real_test.sample(frac=1.0, random_state=0)
    results["fpr_real_test_100_rows"] = null_tests(real, 100, 100, 100, 1e-4)
    results["fpr_real_test_100_rows_at_1e-2"] = null_tests(real, 100, 100, 100, 1e-2)
    results["distinct_share_real_test"] = float(len(np.unique(keyed_hashes(row_texts(real_test), 1))) / len(real_test))
    log("tables: null tests done")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--text-cpu", type=float, default=150.0, help="CPU seconds of GPT training")
    parser.add_argument("--marked", type=int, default=500)
    parser.add_argument("--unmarked", type=int, default=10000)
    parser.add_argument("--beams", type=int, default=100)
    parser.add_argument("--real-windows", type=int, default=10000)
    parser.add_argument("--table-rows", type=int, default=10000)
    parser.add_argument("--only", choices=("text", "tables"), default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if args.only in (None, "tables"):
        results["tables"] = table_benchmark(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    if args.only in (None, "text"):
        results["text"] = text_benchmark(args)
    results["machine"] = {"platform": platform.platform(), "torch": torch.__version__, "threads": 1,
                          "cpu_s_total": time.process_time()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
