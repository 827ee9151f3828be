"""MOSES as a user runs it: ``genlab fit moses --max-time M`` with defaults only, then ``genlab sample RUN -n N``,
scored with MOSES's metrics and the property conditioning of issue #23.

Fit: :func:`genlab.api.fit`, the function ``genlab fit`` calls, with what that command passes and nothing else:
the built-in ``moses`` dataset (all 1,584,663 training molecules; ``--n-train`` keeps a seeded subset, for smoke
tests only), no family (genlab picks the transformer for SMILES), ``train={"max_time": M, "seed": 0}``, every
other setting genlab's default for SMILES (printed and saved in the JSON: network, batch, learning rate,
atom-level tokens of the molecules as written, inside the SMILES grammar, property prefixes on; with them the
network trains on the codec's seeded subset of ``property_molecules`` = 100,000 of those molecules, while novelty
is scored against all of them, as MOSES does). ``--tokenizer kekule`` (or ``selfies``) adds what ``--set
tokenizer=kekule`` adds, the only option the script passes on a user's behalf. The fit keeps no checkpoints
(``genlab fit`` writes them to its run directory; they cost a save every ``checkpoint_every`` steps).

Samples: ``--samples`` (10,000) molecules as ``genlab sample RUN -n N --seed 0`` draws them (the model's
defaults: temperature 1, the SMILES grammar with its Kekulé check, every property ``any``), drawn with one
generator in calls of 1,000 to bound the decoding cache's memory; and as many, from the same seed, with
``--constrain syntax`` (the SMILES grammar without the Kekulé check): the check's effect on one model.

Scores (:func:`genlab.metrics.molecules.evaluate_molecules`, all chemistry by RDKit): validity, unique@1k/@10k,
novelty against the training molecules, IntDiv1/2, MOSES's filters, mean QED/logP/SA and their Wasserstein-1
distances to ``--n-reference`` (10,000) molecules of MOSES's test split, and the Fréchet distance of 11 RDKit
descriptors, **which is not ChemNet's FCD** (not comparable with MOSES's FCD column). The test split's own row
scores another ``--n-reference`` test molecules against the same reference: the real floor. MOSES's published
rows (README of molecularsets/moses: CharRNN, VAE, JTN-VAE; 30,000 samples, several seeds) stand beside them;
MOSES shows the property distributions only as plots, so their Wasserstein cells are empty.

Conditioning: for QED and logP and each classifier-free guidance scale of ``--guidance`` (1, 2, 3: plain
conditional and two guided; genlab's default, the ``guidance`` sampling option, is marked in the output),
``--condition-samples`` (1,000) molecules drawn with ``condition={p: "low"}`` and as many with ``"high"``
(``genlab sample RUN --condition qed=low --option guidance=S``); reported: each set's validity and mean property,
and the shift ``(mean_high - mean_low) / std``, ``std`` the property's standard deviation over the unconditioned
samples (issue #23's bar: a shift of at least 1, validity unchanged). With 1,000 a bin the shift's standard
error is about 0.05.

Output: a table on stdout, ``--out`` JSON, and the ``benchmarks/molecules.py`` section of
``docs/molecules_music.md`` (``--doc``; ``benchmarks/music.py`` writes its own section of the same page).

    python benchmarks/molecules.py [--max-time 20m] [--samples 10000] [--tokenizer smiles|kekule|selfies]
    python benchmarks/molecules.py --max-time 5s --samples 50 --condition-samples 20 --guidance 1,2 \\
        --n-train 2000 --n-reference 200 --out /tmp/m.json --doc /tmp/m.md          # a smoke test, not a figure
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from doc_sections import write_section
from genlab.api import fit
from genlab.cli.options import parse_duration
from genlab.config import to_dict
from genlab.data.registry import load as load_dataset
from genlab.data.smiles import molecule_properties, moses
from genlab.io import write_json
from genlab.metrics.molecules import evaluate_molecules

ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "results" / "molecules.json"
DEFAULT_DOC = ROOT.parent / "docs" / "molecules_music.md"
#: MOSES's README (molecularsets/moses, "Metrics" table; means over seeds where given).
MOSES_ROWS = {
    "MOSES CharRNN": {"validity": 0.975, "unique_1k": 1.0, "unique_10k": 0.999, "novelty": 0.842,
                      "intdiv1": 0.856, "intdiv2": 0.85, "filters": 0.994},
    "MOSES VAE": {"validity": 0.977, "unique_1k": 1.0, "unique_10k": 0.998, "novelty": 0.695,
                  "intdiv1": 0.856, "intdiv2": 0.85, "filters": 0.997},
    "MOSES JTN-VAE": {"validity": 1.0, "unique_1k": 1.0, "unique_10k": 0.999, "novelty": 0.915,
                      "intdiv1": 0.851, "intdiv2": 0.845, "filters": 0.978},
}
COLUMNS = ("validity", "unique_1k", "unique_10k", "novelty", "intdiv1", "intdiv2", "filters", "qed", "logp", "sa",
           "qed_wasserstein", "logp_wasserstein", "sa_wasserstein", "frechet_descriptors")
#: Properties whose conditioning is measured, and the bins set against each other.
CONDITIONED = ("qed", "logp")
#: Molecules per sampling call (the decoding cache grows with the rows).
CHUNK = 1000


def draw(model, n: int, generator: torch.Generator, **options) -> list[str]:
    """``n`` SMILES from ``model`` with its default sampling options but ``options``, in calls of :data:`CHUNK`."""
    out: list[str] = []
    while len(out) < n:
        out += [str(s) for s in model.sample(min(CHUNK, n - len(out)), generator=generator, **options)]
    return out


def conditioning_rows(model, unconditioned: list[str], n: int, scales: list[float],
                      generator: torch.Generator) -> list[dict]:
    """Per property of :data:`CONDITIONED` and guidance scale: validity and mean of ``low`` and ``high`` draws, and
    their shift in standard deviations of the unconditioned samples (module doc)."""
    rows = []
    for name in CONDITIONED:
        base = molecule_properties(unconditioned, (name,))[name]
        std = float(np.nanstd(base))
        for scale in scales:
            row = {"property": name, "guidance": scale, "bins": model.codec_.describe_bins(name),
                   "unconditioned_mean": float(np.nanmean(base)), "unconditioned_std": std}
            for level in ("low", "high"):
                drawn = draw(model, n, generator, condition={name: level}, guidance=scale)
                values = molecule_properties(drawn, (name,))[name]
                row[f"{level}_validity"] = float(np.mean(~np.isnan(values)))
                row[f"{level}_mean"] = float(np.nanmean(values)) if (~np.isnan(values)).any() else None
            known = row["low_mean"] is not None and row["high_mean"] is not None and std > 0
            row["shift_in_std"] = (row["high_mean"] - row["low_mean"]) / std if known else None
            rows.append(row)
    return rows


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def markdown(result: dict) -> str:
    """The benchmark's section of the docs page: settings, the MOSES table and the conditioning table."""
    a = result["args"]
    lines = [
        "## Molecules: measured (`benchmarks/molecules.py`)",
        "",
        f"`genlab fit moses --max-time {a['max_time']}`" + (f" `--set tokenizer={a['tokenizer']}`" if a["tokenizer"]
                                                            else "") + f", defaults only, on {result['data']}; "
        f"{result['steps']} steps in {result['fit_wall_s']:.0f} s of wall clock, torch threads "
        f"{result['torch_threads']}, {result['machine']}; {a['samples']:,} samples "
        f"({result['sample_wall_s']:.0f} s; {result['syntax_sample_wall_s']:.0f} s for as many with "
        f"`--constrain syntax`, the SMILES grammar without its Kekulé check, the row marked 'syntax only'). "
        f"Settings genlab chose: `{result['model_config']}`; training "
        f"`{result['train_config']}`.",
        "",
        "The Fréchet column is a Fréchet distance of 11 RDKit descriptors, **not ChemNet's FCD**. MOSES's rows are "
        "its README's (30,000 samples); MOSES shows property distributions as plots only (no Wasserstein cells).",
        "",
        "| model | " + " | ".join(COLUMNS) + " |",
        "| --- |" + " ---: |" * len(COLUMNS),
    ]
    for name, row in result["rows"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(row.get(c)) for c in COLUMNS) + " |")
    lines += ["", f"Property conditioning ({a['condition_samples']:,} samples per bin and guidance scale; genlab's "
              f"default guidance is {result['guidance']:g}; shift = (mean of high - mean of low) / std of the "
              "unconditioned samples; issue #23's bar: shift >= 1, validity unchanged):", "",
              "| property | guidance | bins (training tertiles) | validity low | validity high | mean low | "
              "mean high | unconditioned mean (std) | shift in std |", "| --- | ---: | --- |" + " ---: |" * 6]
    for row in result["conditioning"]:
        default = " (default)" if row["guidance"] == result["guidance"] else ""
        lines.append(f"| {row['property']} | {row['guidance']:g}{default} | {row['bins']} | "
                     f"{_cell(row['low_validity'])} | {_cell(row['high_validity'])} | {_cell(row['low_mean'])} | "
                     f"{_cell(row['high_mean'])} | {row['unconditioned_mean']:.3f} ({row['unconditioned_std']:.3f}) | "
                     f"{_cell(row['shift_in_std'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-time", default="20m", help="genlab fit's --max-time (e.g. 20m, 90s)")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--condition-samples", type=int, default=1_000, help="molecules per property bin and scale")
    parser.add_argument("--guidance", default="1,2,3", help="classifier-free guidance scales, comma-separated")
    parser.add_argument("--n-reference", type=int, default=10_000, help="test molecules for the reference and "
                                                                         "as many for the test row")
    parser.add_argument("--max-pairs", type=int, default=10_000)
    parser.add_argument("--tokenizer", choices=("smiles", "kekule", "selfies"), default=None,
                        help="passed as --set tokenizer=...; default: genlab's")
    parser.add_argument("--n-train", type=int, default=None, help="smoke tests only: a seeded training subset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC)
    args = parser.parse_args()
    seconds = parse_duration(args.max_time)

    data = load_dataset("moses", seed=args.seed) if args.n_train is None else moses(n_train=args.n_train)
    pick = np.random.default_rng(args.seed).permutation(len(data.x_test))
    reference = list(data.x_test[pick[:args.n_reference]])
    held_out = list(data.x_test[pick[args.n_reference:2 * args.n_reference]])
    options = {} if args.tokenizer is None else {"tokenizer": args.tokenizer}

    start = time.perf_counter()
    model = fit(data, train={"max_time": seconds, "seed": args.seed}, **options)
    fit_wall = time.perf_counter() - start
    steps = int(model.history_[-1]["step"]) if getattr(model, "history_", None) else None

    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    samples = draw(model, args.samples, generator)
    sample_wall = time.perf_counter() - start
    start = time.perf_counter()
    syntax_samples = draw(model, args.samples, torch.Generator().manual_seed(args.seed), constrain="syntax")
    syntax_wall = time.perf_counter() - start
    scales = [float(s) for s in args.guidance.split(",")]
    conditioning = conditioning_rows(model, samples, args.condition_samples, scales, generator)

    start = time.perf_counter()
    ours = evaluate_molecules(samples, train=data.x_train, reference=reference, max_pairs=args.max_pairs)
    syntax = evaluate_molecules(syntax_samples, train=data.x_train, reference=reference, max_pairs=args.max_pairs)
    floor = evaluate_molecules(held_out, train=data.x_train, reference=reference, max_pairs=args.max_pairs)
    eval_wall = time.perf_counter() - start

    spelling = "SELFIES" if model.codec_.selfies else "Kekulé SMILES" if model.codec_.kekule else "SMILES"
    name = f"genlab transformer ({spelling}, {args.max_time})"
    rows = {name: ours.to_dict(), f"{name[:-1]}, syntax only)": syntax.to_dict(),
            f"MOSES test split ({len(held_out):,}, real)": floor.to_dict(), **MOSES_ROWS}
    result = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "data": data.describe(), "steps": steps, "fit_wall_s": fit_wall, "sample_wall_s": sample_wall,
        "syntax_sample_wall_s": syntax_wall,
        "eval_wall_s": eval_wall, "model_config": to_dict(model.config), "train_config": to_dict(model.train_config_),
        "rows": rows, "conditioning": conditioning, "guidance": model.sampling_options()["guidance"].default,
        "examples": samples[:40], "torch_threads": torch.get_num_threads(),
        "machine": platform.platform(), "torch": torch.__version__}
    print(f"{'model':44s} " + " ".join(f"{c[:10]:>10s}" for c in COLUMNS))
    for row_name, row in rows.items():
        print(f"{row_name:44s} " + " ".join(f"{_cell(row.get(c)):>10s}" for c in COLUMNS))
    for row in conditioning:
        print(f"condition {row['property']} guidance {row['guidance']:g}: low {_cell(row['low_mean'])} "
              f"(valid {_cell(row['low_validity'])}), high "
              f"{_cell(row['high_mean'])} (valid {_cell(row['high_validity'])}), shift {_cell(row['shift_in_std'])} "
              f"std")
    write_json(args.out, result)
    write_section(args.doc, "benchmarks/molecules.py", markdown(result))


if __name__ == "__main__":
    main()
