"""What a user gets with the defaults: every family on every modality, fitted by ``genlab.fit`` with no
options but a time budget, scored by ``genlab.metrics`` (issue 12, item 2).

Each row is one fresh fit, seed 0, with only a time budget. Two non-default settings, stated here and in
the table, keep the figures honest on a shared 2-core machine: the budget counts this process's CPU
seconds (``clock="cpu"``), and torch runs on one thread (``OMP_NUM_THREADS=1``). A user's wall-clock
``--max-time`` on an idle 2-core machine gives at least as much work.

- points (ring8, grid25; BENCHMARKS.md §1): 2,500 samples, modes captured, high-quality share, reverse KL;
- text (Tiny Shakespeare, nanoGPT's split): held-out nats per character over the first 20,000 test
  characters (strided windows, ``TransformerModel.token_log_likelihood``);
- images (MNIST): 2,000 class-balanced samples with the run's default sampling options, Fréchet distance
  and conditional accuracy in genlab's classifier space beside the real floor (benchmarks/mnist_families.py);
  an image folder (3,000 MNIST training digits written as PNGs in class folders) fitted as a user's folder,
  its grid written for a person to look at;
- tables (Adult): the default family (no ``family``), SDMetrics-exact quality of 10,000 rows against the
  test split, and the fit's wall time.

Rows run one per process (``--only NAME``), so two can share the machine's two cores; each writes
``benchmarks/results/defaults/NAME.json``; ``--table`` gathers them into the markdown table of
``docs/defaults.md``.

    OMP_NUM_THREADS=1 python benchmarks/defaults.py --only gan-ring8
    python benchmarks/defaults.py --table
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

import genlab
from genlab.config import to_dict
from genlab.metrics import mode_coverage
from genlab.api import configure
from genlab.metrics.tabular import quality
from genlab.report.figures import save_image_grid

HERE = Path(__file__).parent
OUT = HERE / "results" / "defaults"
DATA = HERE.parent.parent / "shared" / "data"
SAMPLES = 2500
#: (modes, high-quality share) the GAN must reach; the VAE must cover every mode, diffusion every mode at 95 %.
POINT_BARS = {("gan", "ring8"): (8, 0.95), ("gan", "grid25"): (24, 0.90)}


def budget(seconds: float) -> dict[str, Any]:
    """The only training setting a row passes: a time budget (on the process CPU clock, see above)."""
    return {"max_time": seconds, "clock": "cpu"}


def fit(data: Any, family: str | None, seconds: float) -> tuple[Any, dict[str, Any]]:
    """``genlab.fit`` as a user calls it; the record of what it chose and spent."""
    settings = configure(data, family=family, train=budget(seconds), max_time=seconds)   # what fit will choose
    wall, cpu = time.perf_counter(), time.process_time()
    model = genlab.fit(data, family=family, train=budget(seconds))
    steps = model.history_[-1].get("step") if model.history_ else None   # EM fits log no steps
    return model, {"family": model.family, "family_why": settings.family_why, "chosen": settings.resolved.describe(),
                   "budget_s": seconds, "steps": steps, "fit_wall_s": time.perf_counter() - wall,
                   "fit_cpu_s": time.process_time() - cpu, "model": to_dict(model.config)}


def points_row(family: str, dataset: str, seconds: float = 120) -> dict[str, Any]:
    data = genlab.datasets.load(dataset, seed=0)
    model, record = fit(data, family, seconds)
    x = model.sample(SAMPLES, generator=torch.Generator().manual_seed(0))
    score = mode_coverage(fake=x, modes=data.modes, std=data.mode_std)
    bar = POINT_BARS.get((family, dataset), (score.n_modes, 0.95 if family == "diffusion" else 0.0))
    return {**record, "metrics": {"modes": score.modes_captured, "n_modes": score.n_modes,
                                  "high_quality": score.high_quality, "reverse_kl": score.reverse_kl},
            "bar": f"modes >= {bar[0]}" + (f", high quality >= {bar[1]:.0%}" if bar[1] else ""),
            "met": bool(score.modes_captured >= bar[0] and score.high_quality >= bar[1])}


def text_row(seconds: float = 120) -> dict[str, Any]:
    data = genlab.datasets.load(str(DATA / "tinyshakespeare.txt"))
    model, record = fit(data, "transformer", seconds)
    nats = model.token_log_likelihood(data.x_test, max_tokens=20_000).nll_per_token
    return {**record, "metrics": {"held_out_nats_per_char": nats}, "bar": "held-out <= 2.0 nats/char",
            "met": bool(nats <= 2.0)}


def image_scores(model: Any, data: Any) -> dict[str, float]:
    """Fréchet distance and conditional accuracy of 2,000 class-balanced samples, and the real floor."""
    from mnist_families import conditional_samples, scores   # the MNIST benchmark's own protocol
    from genlab.metrics.features import feature_classifier

    classifier = feature_classifier(data)
    real = classifier.features(data.x_test)
    images, labels = conditional_samples(model, 2000, 10, {}, seed=0)
    fake = scores(classifier, real, images, labels)
    rng = np.random.default_rng(0)
    index = np.concatenate([rng.choice(np.flatnonzero(data.y_train == c), 200, replace=False) for c in range(10)])
    floor = scores(classifier, real, data.x_train[index], data.y_train[index])
    return {"frechet": fake["frechet"], "cond_acc": fake["cond_acc"], "floor_frechet": floor["frechet"],
            "floor_cond_acc": floor["cond_acc"], "classifier_test_accuracy": classifier.test_accuracy}


def mnist_row(family: str, seconds: float = 300) -> dict[str, Any]:
    data = genlab.datasets.load("mnist", data_dir=DATA)
    model, record = fit(data, family, seconds)
    metrics = image_scores(model, data)
    limit = 5 * metrics["floor_frechet"]
    return {**record, "metrics": metrics, "bar": f"cond. acc >= 0.90, Fréchet <= 5x floor ({limit:.1f})",
            "met": bool(metrics["cond_acc"] >= 0.90 and metrics["frechet"] <= limit)}


def folder_row(seconds: float = 240) -> dict[str, Any]:
    """A user's folder of PNGs in class sub-folders, fitted with the default family."""
    mnist = np.load(DATA / "mnist.npz")
    folder = OUT / "digit_folder"
    rng = np.random.default_rng(0)
    for c in range(10):
        (folder / str(c)).mkdir(parents=True, exist_ok=True)
        for i in rng.choice(np.flatnonzero(mnist["y_train"] == c), 300, replace=False):
            Image.fromarray(mnist["x_train"][i]).save(folder / str(c) / f"{i}.png")
    data = genlab.datasets.load(str(folder))
    model, record = fit(data, None, seconds)
    grid = OUT / "digit_folder_grid.png"
    x = np.concatenate([model.sample(8, condition=c, generator=torch.Generator().manual_seed(c)) for c in range(10)])
    save_image_grid(x, grid)
    return {**record, "metrics": {"grid": str(grid.relative_to(HERE.parent))},
            "bar": "a recognisable grid (looked at by a person)", "met": None}


def adult_row(seconds: float = 120) -> dict[str, Any]:
    data = genlab.datasets.load("adult", data_dir=DATA)
    model, record = fit(data, None, seconds)
    rows = model.sample(10_000, generator=torch.Generator().manual_seed(0))
    score = quality(real=data.x_test, synthetic=rows).score
    return {**record, "metrics": {"quality": score}, "bar": "quality >= 0.95 in <= 2 min",
            "met": bool(score >= 0.95 and record["fit_wall_s"] <= 120)}


ROWS: dict[str, Callable[[], dict[str, Any]]] = {
    **{f"{family}-{dataset}": (lambda family=family, dataset=dataset: points_row(family, dataset))
       for family in ("gan", "vae", "diffusion") for dataset in ("ring8", "grid25")},
    "transformer-tinyshakespeare": text_row,
    **{f"{family}-mnist": (lambda family=family: mnist_row(family)) for family in ("diffusion", "gan", "vae")},
    "auto-digit-folder": folder_row,
    "auto-adult": adult_row,
}


#: One representative record description per modality, for the settings table.
MODALITIES = {"points": ("points", (2,), None), "images": ("images", (1, 28, 28), tuple("0123456789")),
              "tables": ("tables", (15,), None), "text": ("text", (), None)}


def settings_table() -> str:
    """Markdown: what every family chooses on every modality it models (``data_defaults``)."""
    from genlab.models import FAMILIES
    from genlab.models.base import DataInfo

    lines = ["| family | modality | model settings chosen | training settings chosen | why |",
             "| --- | --- | --- | --- | --- |"]
    ring8 = genlab.datasets.load("ring8", seed=0).x_train
    for name, family in FAMILIES.items():
        for modality, (kind, shape, classes) in MODALITIES.items():
            if modality == "text" and name != "transformer":   # only the transformer models text
                continue
            chosen = family.data_defaults(DataInfo(kind, shape, classes), ring8 if kind == "points" else None)
            model = ", ".join(f"{k}={v}" for k, v in chosen.model.items()) or "the family's own"
            train = ", ".join(f"{k}={v}" for k, v in chosen.train.items()) or "the family's own"
            lines.append(f"| {name} | {modality} | {model} | {train} | {chosen.why} |")
    return "\n".join(lines)


def write_doc(path: Path) -> None:
    """``docs/defaults.md``: the settings per family and modality, and the figures of the finished rows,
    with the image-folder row's grid copied beside it for a person to look at."""
    grid = OUT / "digit_folder_grid.png"
    if grid.is_file():
        (path.parent / "images").mkdir(exist_ok=True)
        shutil.copyfile(grid, path.parent / "images" / "defaults_digit_folder_grid.png")
    path.write_text("\n".join([
        "# What the defaults give",
        "",
        "Written by `python benchmarks/defaults.py --write-doc` from the rows' JSON files; do not edit by hand.",
        "Each figure is one fresh fit with no option but a time budget, seed 0 (see the script's docstring",
        "for the protocol: CPU-clock budgets and one torch thread, the only non-default settings).",
        "",
        "## Settings chosen from the data",
        "",
        "`genlab fit` prints these (`settings for points: ...`) and saves them in `config.json`; any option",
        "passed wins. Points shown for ring8 (the Gaussian's component count comes from BIC on the data).",
        "",
        settings_table(),
        "",
        "## Figures",
        "",
        table(),
        "",
        "The image-folder row (3,000 MNIST training digits as PNGs in class folders, no `--family`):",
        "",
        "![8 samples of each class](images/defaults_digit_folder_grid.png)",
        "",
    ]), encoding="utf-8")


def table() -> str:
    """The markdown table of every finished row."""
    lines = ["| row | family | budget (CPU s) | steps | settings chosen from the data | figures | bar | met |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in ROWS:
        path = OUT / f"{name}.json"
        if not path.is_file():
            lines.append(f"| {name} | | | | | not run | | |")
            continue
        row = json.loads(path.read_text())
        figures = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row["metrics"].items())
        met = {True: "✓", False: "✗", None: "see grid"}[row["met"]]
        lines.append(f"| {name} | {row['family']} | {row['budget_s']:g} | {row['steps']} | {row.get('chosen', '')} "
                     f"| {figures} | {row['bar']} | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(ROWS), help="rows to run (default: all)")
    parser.add_argument("--table", action="store_true", help="print the table of the finished rows")
    parser.add_argument("--write-doc", action="store_true", help="also write docs/defaults.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.table:
        for name in args.only or list(ROWS):
            row = ROWS[name]()
            (OUT / f"{name}.json").write_text(json.dumps(row, indent=2, default=str))
            print(name, json.dumps(row["metrics"], default=str), "met" if row["met"] else "NOT met", flush=True)
    print(table())
    if args.write_doc:
        write_doc(HERE.parent / "docs" / "defaults.md")


if __name__ == "__main__":
    main()
