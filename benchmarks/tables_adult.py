"""genlab's table families against SDV's synthesizers on Adult, each on the same CPU budget.

Fits every genlab family that models tables (``supports_tables``: the Gaussian copula, diffusion, and
any other when it runs) and SDV's GaussianCopulaSynthesizer, CTGANSynthesizer and TVAESynthesizer on
``adult_train.csv``, draws as many rows as ``adult_test.csv`` has, and scores all of them the same way
in genlab's venv (:mod:`genlab.metrics.tabular`, equal to SDMetrics' definitions):

- quality = mean of Column Shapes and Column Pair Trends against the real test rows;
- detection AUC (logistic regression, 5 folds; 0.5 is best);
- efficacy: macro-F1 on ``adult_test.csv`` of a HistGradientBoosting classifier of ``income`` trained on
  the samples, beside the same classifier trained on the real training rows;
- privacy: median distance to the closest training row (DCR) and exact-copy rate, against those of the
  real test rows (the holdout);
- conditional sampling ``income='>50K'``: the share of requested rows returned satisfying it, and the
  Column Shapes of the other columns against the real test rows with that income (genlab conditions
  natively; SDV through ``sample_from_conditions``, which rejects).
- fit seconds (wall) and CPU seconds of the fitting process, and sampling seconds.

Budget: ``--minutes`` (default 10) of CPU per model, on one thread. genlab's trained families get
``TrainConfig(max_time=..., clock="cpu")``; SDV's CTGAN and TVAE are first fitted for 4 epochs (a
probe, not counted), then for as many epochs as that probe's CPU per epoch (preprocessing included, so
an overestimate) fits in 90% of the budget (at most 300, SDV's default); a worker still running after
3 times the budget of wall time plus 10 minutes (probes, sampling, a shared machine) is killed and
reported as over budget.

Setup. SDV needs pandas < 3 and genlab pins pandas 3, so SDV lives in its own venv and runs in a
subprocess of it (this same file with ``--sdv-worker NAME``, writing CSVs of samples and a JSON of
timings), which never imports genlab::

    python3.11 -m venv ~/.cache/genlab/venv-sdv
    ~/.cache/genlab/venv-sdv/bin/pip install -r benchmarks/requirements-sdv.txt
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tables_adult.py --minutes 10

``--sdv-python`` (or ``$GENLAB_SDV_PYTHON``) points elsewhere; ``--only diffusion gaussian`` runs a
subset. The table is printed and written, with every number, to ``benchmarks/results/tables_adult.json``
(a rerun of a subset keeps the other entries).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE.parents[1] / "shared" / "data"
RESULTS = HERE / "results" / "tables_adult.json"
SDV_PYTHON = os.environ.get("GENLAB_SDV_PYTHON", str(Path.home() / ".cache" / "genlab" / "venv-sdv" / "bin" / "python"))
SDV_NAMES = ("sdv-gaussiancopula", "sdv-ctgan", "sdv-tvae")
TARGET, CONDITION = "income", ">50K"
CONDITIONAL_ROWS = 2000


# ---------------------------------------------------------------------- SDV worker (SDV's venv, no genlab)
def sdv_worker(name: str, out: Path, minutes: float, n: int, seed: int) -> None:
    """Fit SDV synthesizer ``name`` on Adult's training rows; write samples, conditional samples, timings."""
    import numpy as np
    import pandas as pd
    import torch
    from sdv.metadata import Metadata
    from sdv.sampling import Condition
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)   # TVAE's epochs slowed 2x through denormal floats (BENCHMARKS.md §5)
    np.random.seed(seed)
    torch.manual_seed(seed)
    train = pd.read_csv(DATA_DIR / "adult_train.csv", skipinitialspace=True)
    metadata = Metadata.detect_from_dataframes({"adult": train})
    tables = {"adult": train}   # SDV 2 takes and returns a dict of tables, also for single-table synthesizers

    def one(result):
        return result["adult"] if isinstance(result, dict) else result

    budget = 60.0 * minutes
    info: dict = {"name": name}

    def make(epochs: int | None = None):
        if name == "sdv-gaussiancopula":
            return GaussianCopulaSynthesizer(metadata)
        cls = CTGANSynthesizer if name == "sdv-ctgan" else TVAESynthesizer
        return cls(metadata, epochs=epochs, verbose=False, enable_gpu=False)

    if name == "sdv-gaussiancopula":
        synthesizer = make()
    else:
        # A probe fit of 4 epochs sizes the real fit. Its CPU per epoch includes the preprocessing, so it
        # overestimates an epoch: the difference of 1- and 3-epoch probes was tried and underestimated it
        # (TVAE's came out <= 0 and CTGAN's epochs ran 2.8x longer than measured, overshooting the budget).
        start = time.process_time()
        make(4).fit(tables)
        per_epoch = (time.process_time() - start) / 4
        info["epochs"] = epochs = int(max(1, min(300, 0.9 * budget // per_epoch)))
        info.update(probe_epoch_s=per_epoch, probe_cpu_s=4 * per_epoch)
        synthesizer = make(epochs)
    cpu0, fit_wall0 = time.process_time(), time.perf_counter()
    synthesizer.fit(tables)
    info["fit_s"] = time.perf_counter() - fit_wall0
    info["cpu_s"] = time.process_time() - cpu0
    start = time.perf_counter()
    one(synthesizer.sample(num_rows=n)).to_csv(out / "samples.csv", index=False)
    info["sample_s"] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        rows = one(synthesizer.sample_from_conditions([Condition(num_rows=CONDITIONAL_ROWS,
                                                                 column_values={TARGET: CONDITION})]))
    except Exception as error:   # SDV raises when rejection finds no valid row
        info["conditional_error"] = str(error).splitlines()[0]
        rows = train.iloc[:0]
    rows.to_csv(out / "conditional.csv", index=False)
    info["conditional_s"] = time.perf_counter() - start
    (out / "timing.json").write_text(json.dumps(info))


# ---------------------------------------------------------------------- genlab side
def fit_genlab(family: str, data, minutes: float, seed: int):
    """Fit genlab's ``family`` within ``minutes`` of CPU; returns the model and its timings."""
    import genlab
    from genlab.train import TrainConfig

    budget = 60.0 * minutes
    options: dict = {}
    train = TrainConfig(steps=None, max_time=budget, clock="cpu", seed=seed)
    if family == "diffusion":
        # TabDDPM-like: a wider MLP, large batches, EMA; the budget ends training (cosine decay over it).
        options = {"hidden": 256, "depth": 3}
        train = TrainConfig(steps=None, max_time=budget, clock="cpu", batch_size=1024, lr=2e-3, warmup_steps=100,
                            ema_decay=0.999, min_lr_ratio=0.05, seed=seed)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    model = genlab.fit(data, family=family, train=train, **options)
    return model, {"fit_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0,
                   "steps": model.history_[-1].get("step") if model.history_ else None}


def score(name: str, fake, fake_condition, timing: dict, real_train, real_test, kinds: dict, seed: int) -> dict:
    """Every metric of one model's samples (module doc)."""
    from genlab.metrics.tabular import detection, efficacy, privacy, quality

    columns = list(kinds)
    fake = fake[columns].reset_index(drop=True)
    scores = quality(real=real_test, synthetic=fake, kinds=kinds)
    close = privacy(real=real_train, synthetic=fake, test=real_test, kinds=kinds)
    result = {
        "name": name, **timing,
        "quality": scores.score, "column_shapes": scores.column_shapes, "column_pair_trends": scores.column_pair_trends,
        "detection_auc": detection(real=real_test, synthetic=fake, kinds=kinds, seed=seed).auc,
        "efficacy_f1": efficacy(synthetic=fake, test=real_test, target=TARGET, kinds=kinds, seed=seed).f1_synthetic,
        "dcr": close.median_dcr, "dcr_holdout": close.median_dcr_test, "exact_copies": close.exact_copy_rate,
    }
    satisfied = fake_condition[fake_condition[TARGET].astype(str) == CONDITION] if len(fake_condition) \
        else fake_condition
    result["conditional_satisfied"] = len(satisfied) / CONDITIONAL_ROWS
    others = {c: k for c, k in kinds.items() if c != TARGET}
    positives = real_test[real_test[TARGET].astype(str) == CONDITION]
    result["conditional_shapes"] = (quality(real=positives[list(others)], synthetic=satisfied[list(others)].reset_index(
        drop=True), kinds=others).column_shapes if len(satisfied) else float("nan"))
    return result


def like_real(frame, real):
    """SDV's samples read back from CSV, in the real table's dtypes (categories as the real strings)."""
    import pandas as pd

    frame = frame.copy()
    for column in real.columns:
        if column not in frame:
            continue
        if pd.api.types.is_numeric_dtype(real[column].dtype):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        else:
            frame[column] = frame[column].astype(real[column].dtype)
    return frame


def run(args: argparse.Namespace) -> None:
    import pandas as pd
    import torch

    from genlab.data.table_datasets import adult
    from genlab.data.table_columns import infer_kind
    from genlab.metrics.tabular import efficacy
    from genlab.models import FAMILIES

    torch.set_num_threads(1)
    data = adult(args.data_dir)
    real_train, real_test = data.x_train, data.x_test
    kinds = {c: infer_kind(real_train[c]) for c in real_train.columns}
    n = len(real_test)
    families = sorted(name for name, family in FAMILIES.items() if family.supports_tables)
    names = [*families, *SDV_NAMES] if not args.only else args.only
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results.setdefault("models", {})
    results["real_efficacy_f1"] = efficacy(synthetic=real_train, test=real_test, target=TARGET, kinds=kinds,
                                           seed=args.seed).f1_synthetic
    exact = real_test.merge(real_train.drop_duplicates(), how="inner").shape[0] / len(real_test)
    results["holdout_exact_copies"] = exact
    for name in names:
        print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
        if name in families:
            model, timing = fit_genlab(name, data, args.minutes, args.seed)
            start = time.perf_counter()
            fake = model.sample(n, generator=torch.Generator().manual_seed(args.seed))
            timing["sample_s"] = time.perf_counter() - start
            fake_condition = model.sample(CONDITIONAL_ROWS, condition={TARGET: CONDITION},
                                          generator=torch.Generator().manual_seed(args.seed + 1))
        elif name in SDV_NAMES:
            with tempfile.TemporaryDirectory() as folder:
                command = [args.sdv_python, str(Path(__file__).resolve()), "--sdv-worker", name, "--out", folder,
                           "--minutes", str(args.minutes), "--rows", str(n), "--seed", str(args.seed)]
                env = {**os.environ, "OMP_NUM_THREADS": "1"}
                try:
                    subprocess.run(command, check=True, env=env, timeout=180 * args.minutes + 600)
                except subprocess.TimeoutExpired:
                    print(f"  {name} ran past its wall-time limit and was stopped", flush=True)
                    results["models"][name] = {"name": name, "error": "over budget", "minutes": args.minutes}
                    continue
                timing = json.loads((Path(folder) / "timing.json").read_text())
                fake = like_real(pd.read_csv(Path(folder) / "samples.csv"), real_train)
                fake_condition = like_real(pd.read_csv(Path(folder) / "conditional.csv"), real_train)
        else:
            raise SystemExit(f"unknown model {name!r}; choose from {', '.join([*families, *SDV_NAMES])}")
        results["models"][name] = {**score(name, fake, fake_condition, timing, real_train, real_test, kinds,
                                           args.seed), "minutes": args.minutes}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2))
    print_table(results)


def print_table(results: dict) -> None:
    """One markdown table of every model in ``results``."""
    print(f"\nAdult, budget in minutes of CPU per model; real-data efficacy F1 "
          f"{results['real_efficacy_f1']:.3f}, holdout exact copies {results['holdout_exact_copies']:.4f}\n")
    print("| model | budget min | fit s | CPU s | sample s | quality | shapes | pairs | detection AUC | efficacy F1 | "
          "DCR (holdout) | exact copies | cond. satisfied | cond. shapes |")
    print("| --- " * 14 + "|")
    for name, r in results["models"].items():
        if "error" in r:
            print(f"| {name} | {r.get('minutes', '')} | {r['error']} |" + " |" * 11)
            continue
        extra = f" ({r['epochs']} epochs)" if "epochs" in r else (f" ({r['steps']} steps)" if r.get("steps") else "")
        print(f"| {name}{extra} | {r.get('minutes', '')} | {r['fit_s']:.0f} | {r['cpu_s']:.0f} | "
              f"{r['sample_s']:.1f} | {r['quality']:.3f} | {r['column_shapes']:.3f} | {r['column_pair_trends']:.3f} | "
              f"{r['detection_auc']:.3f} | {r['efficacy_f1']:.3f} | {r['dcr']:.3f} ({r['dcr_holdout']:.3f}) | "
              f"{r['exact_copies']:.4f} | "
              f"{r['conditional_satisfied']:.1%} | {r['conditional_shapes']:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="CPU budget per model")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--only", nargs="+", help="models to run (genlab family names, sdv-gaussiancopula, ...)")
    parser.add_argument("--sdv-python", default=SDV_PYTHON, help="python of the venv that has sdv installed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sdv-worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sdv_worker:
        sdv_worker(args.sdv_worker, args.out, args.minutes, args.rows, args.seed)
    else:
        run(args)


if __name__ == "__main__":
    main()
