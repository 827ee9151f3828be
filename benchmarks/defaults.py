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

``--protocol wall`` runs a row as a user does instead: ``--max-time`` on the wall clock, torch's default
threads (two on this machine), the machine otherwise idle; such rows are written as ``NAME@wall.json``
and listed beside the CPU-clock ones.

Image folders (issue 25): a user's folder of PNGs in class sub-folders, fitted with each of the GAN and VAE
and with no ``--family`` (the default, diffusion): 3,000 MNIST training digits, and the 1,797 8x8 digits
bundled with scikit-learn upsampled to 28x28 (bilinear), a set genlab's defaults were not tuned on. Each
is judged by a classifier trained on the folder's own training split (:mod:`genlab.metrics.features`):
Fréchet distance and conditional accuracy of 100 samples a class against the folder's test split, beside
the floor of as many real training images; and a grid for a person to look at.

Rows run one at a time, on an otherwise idle machine (``--only NAME``); each writes
``benchmarks/results/defaults/NAME.json``; ``--table`` gathers them into the markdown table of
``docs/defaults.md``.

    OMP_NUM_THREADS=1 python benchmarks/defaults.py --only gan-ring8
    python benchmarks/defaults.py --only gan-mnist --protocol wall
    python benchmarks/defaults.py --table
"""

from __future__ import annotations

import argparse
import functools
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


#: ``cpu``: budgets on the process CPU clock, one torch thread; ``wall``: a user's wall-clock run (``--protocol``).
PROTOCOL = "cpu"


def budget(seconds: float) -> dict[str, Any]:
    """The only training setting a row passes: a time budget (on the process CPU clock under the ``cpu``
    protocol, see above)."""
    return {"max_time": seconds, "clock": "cpu"} if PROTOCOL == "cpu" else {"max_time": seconds}


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


def image_scores(model: Any, data: Any, options: dict[str, Any] | None = None) -> dict[str, float]:
    """Fréchet distance and conditional accuracy of 2,000 class-balanced samples (drawn with the sampling
    ``options``, none by default), and the real floor."""
    from mnist_families import conditional_samples, scores   # the MNIST benchmark's own protocol
    from genlab.metrics.features import feature_classifier

    classifier = feature_classifier(data)
    real = classifier.features(data.x_test)
    images, labels = conditional_samples(model, 2000, 10, options or {}, seed=0)
    fake = scores(classifier, real, images, labels)
    rng = np.random.default_rng(0)
    index = np.concatenate([rng.choice(np.flatnonzero(data.y_train == c), 200, replace=False) for c in range(10)])
    floor = scores(classifier, real, data.x_train[index], data.y_train[index])
    return {"frechet": fake["frechet"], "cond_acc": fake["cond_acc"], "floor_frechet": floor["frechet"],
            "floor_cond_acc": floor["cond_acc"], "classifier_test_accuracy": classifier.test_accuracy}


#: Issue 25's MNIST bars per family: (Fréchet limit, least conditional accuracy); None: 5x the real floor.
MNIST_BARS: dict[str, tuple[float | None, float]] = {"gan": (16.0, 0.95), "vae": (24.0, 0.90), "diffusion": (None, 0.90)}


def mnist_bar(family: str, metrics: dict[str, float]) -> tuple[str, bool]:
    """The bar a family's MNIST row must meet, in words, and whether ``metrics`` meet it."""
    limit, accuracy = MNIST_BARS[family]
    limit = 5 * metrics["floor_frechet"] if limit is None else limit
    return (f"cond. acc >= {accuracy:.2f}, Fréchet <= {limit:.1f}",
            bool(metrics["cond_acc"] >= accuracy and metrics["frechet"] <= limit))


def mnist_row(family: str, seconds: float = 300) -> dict[str, Any]:
    data = genlab.datasets.load("mnist", data_dir=DATA)
    model, record = fit(data, family, seconds)
    metrics = image_scores(model, data)
    bar, met = mnist_bar(family, metrics)
    return {**record, "metrics": metrics, "bar": bar, "met": met}


#: Issue 25's techniques on MNIST, one change at a time: name -> (family, model options, training options,
#: sampling options), each a fresh fit of TECHNIQUE_SECONDS CPU seconds, seed 0, every option stated (the
#: earlier defaults are written out, so the rows stay what they say after the defaults change).
TECHNIQUE_SECONDS = 150
TECHNIQUES: dict[str, tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "gan: DCGAN, lr 2e-4 (the earlier default)": (
        "gan", {"channels": 32, "latent_dim": 64, "loss": "ns"}, {"batch_size": 64, "lr": 2e-4, "min_lr_ratio": 0.1}, {}),
    "gan: + hinge loss, spectral norm": (
        "gan", {"channels": 32, "latent_dim": 64, "loss": "hinge", "spectral_norm": True},
        {"batch_size": 64, "lr": 2e-4, "min_lr_ratio": 0.1}, {}),
    "gan: + EMA of the weights (0.999)": (
        "gan", {"channels": 32, "latent_dim": 64, "loss": "ns"},
        {"batch_size": 64, "lr": 2e-4, "min_lr_ratio": 0.1, "ema_decay": 0.999}, {}),
    "gan: lr 5e-4": (
        "gan", {"channels": 32, "latent_dim": 64, "loss": "ns"}, {"batch_size": 64, "lr": 5e-4, "min_lr_ratio": 0.1}, {}),
    "gan: lr 1e-3": (
        "gan", {"channels": 32, "latent_dim": 64, "loss": "ns"}, {"batch_size": 64, "lr": 1e-3, "min_lr_ratio": 0.1}, {}),
    "gan: lr 2e-3": (
        "gan", {"channels": 32, "latent_dim": 64, "loss": "ns"}, {"batch_size": 64, "lr": 2e-3, "min_lr_ratio": 0.1}, {}),
    "vae: N(0, I) prior (the earlier default)": (
        "vae", {"prior": "gmm", "beta": 1.0}, {"batch_size": 128, "lr": 2e-3}, {"prior": "standard"}),
    "vae: + ex-post mixture prior": (
        "vae", {"prior": "gmm", "beta": 1.0}, {"batch_size": 128, "lr": 2e-3}, {"prior": "gmm"}),
    "vae: + beta 0.5": (
        "vae", {"prior": "gmm", "beta": 0.5}, {"batch_size": 128, "lr": 2e-3}, {"prior": "gmm"}),
}
#: Rows that differ only in their sampling options score one fit (the mixture is fitted after training and
#: changes nothing in it): fits by (family, model options, training options), within one process.
_FITS: dict[str, Any] = {}


@functools.cache
def mnist() -> Any:
    """MNIST, loaded once for every technique row of a process."""
    return genlab.datasets.load("mnist", data_dir=DATA)


def technique_row(name: str) -> dict[str, Any]:
    """One row of :data:`TECHNIQUES`: its fit and its MNIST scores."""
    family, model_options, train_options, sample_options = TECHNIQUES[name]
    data = mnist()
    key = json.dumps([family, model_options, train_options], sort_keys=True)
    if key not in _FITS:
        wall, cpu = time.perf_counter(), time.process_time()
        model = genlab.fit(data, family=family, train={**train_options, **budget(TECHNIQUE_SECONDS)}, **model_options)
        _FITS[key] = model, {"steps": model.history_[-1].get("step"), "fit_wall_s": time.perf_counter() - wall,
                             "fit_cpu_s": time.process_time() - cpu}
    model, spent = _FITS[key]
    record = {"family": family, "model_options": model_options, "train_options": train_options,
              "sample_options": sample_options, "budget_s": TECHNIQUE_SECONDS, **spent}
    return {**record, "metrics": image_scores(model, data, sample_options)}


def technique_table() -> str:
    """Markdown: the finished rows of :data:`TECHNIQUES`."""
    lines = ["| technique | fit options | sampling options | steps | Fréchet | cond. acc | floor |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, (family, model_options, train_options, sample_options) in TECHNIQUES.items():
        path = OUT / f"technique-{_slug(name)}.json"
        if not path.is_file():
            lines.append(f"| {name} | | | | not run | | |")
            continue
        row = json.loads(path.read_text())
        fit_options = ", ".join(f"{k}={v}" for k, v in {**model_options, **train_options}.items())
        sampling = ", ".join(f"{k}={v}" for k, v in sample_options.items()) or "the run's own"
        metrics = row["metrics"]
        lines.append(f"| {name} | {fit_options} | {sampling} | {row['steps']} | {metrics['frechet']:.1f} "
                     f"| {metrics['cond_acc']:.3f} | {metrics['floor_frechet']:.2f} |")
    return "\n".join(lines)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def mnist_folder() -> Path:
    """3,000 MNIST training digits (300 a class, seeded) as PNGs in class folders."""
    mnist = np.load(DATA / "mnist.npz")
    folder = OUT / "mnist_folder"
    rng = np.random.default_rng(0)
    for c in range(10):
        (folder / str(c)).mkdir(parents=True, exist_ok=True)
        for i in rng.choice(np.flatnonzero(mnist["y_train"] == c), 300, replace=False):
            Image.fromarray(mnist["x_train"][i]).save(folder / str(c) / f"{i}.png")
    return folder


def digits28_folder() -> Path:
    """scikit-learn's 1,797 8x8 digits (gray levels 0-16) upsampled to 28x28 (bilinear) as PNGs in class folders."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = OUT / "digits28_folder"
    for i, (image, label) in enumerate(zip(digits.images, digits.target)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        pixels = Image.fromarray((image * 255 / 16).astype(np.uint8)).resize((28, 28), Image.BILINEAR)
        pixels.save(folder / str(label) / f"{i}.png")
    return folder


FOLDERS: dict[str, Callable[[], Path]] = {"mnist": mnist_folder, "digits28": digits28_folder}


def folder_row(family: str | None, folder: str, seconds: float = 120) -> dict[str, Any]:
    """A user's folder of PNGs in class sub-folders (module doc), fitted with ``family`` (None: the default)."""
    from mnist_families import scores
    from genlab.metrics.features import feature_classifier

    data = genlab.datasets.load(str(FOLDERS[folder]()))
    model, record = fit(data, family, seconds)
    per_class = 100
    images = np.concatenate([model.sample(per_class, condition=c, generator=torch.Generator().manual_seed(c))
                             for c in range(data.n_classes)])
    labels = np.repeat(np.arange(data.n_classes), per_class)
    grid = OUT / f"{family or 'auto'}-{folder}-folder_grid.png"
    save_image_grid(np.concatenate([images[c * per_class:c * per_class + 8] for c in range(data.n_classes)]), grid)
    classifier = feature_classifier(data)
    real = classifier.features(data.x_test)
    fake = scores(classifier, real, images, labels)
    rng = np.random.default_rng(0)
    index = np.concatenate([rng.choice(np.flatnonzero(data.y_train == c), per_class, replace=False)
                            for c in range(data.n_classes)])
    floor = scores(classifier, real, data.x_train[index], data.y_train[index])
    return {**record, "metrics": {"frechet": fake["frechet"], "cond_acc": fake["cond_acc"],
                                  "floor_frechet": floor["frechet"], "floor_cond_acc": floor["cond_acc"],
                                  "classifier_test_accuracy": classifier.test_accuracy,
                                  "grid": str(grid.relative_to(HERE.parent))},
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
    **{f"{family or 'auto'}-{folder}-folder": (lambda family=family, folder=folder: folder_row(family, folder))
       for folder in FOLDERS for family in (None, "gan", "vae")},
    "auto-adult": adult_row,
}


#: One representative record description (DataInfo's fields) per modality, for the settings table.
MODALITIES = {"points": {"modality": "points", "shape": (2,)},
              "images": {"modality": "images", "shape": (1, 28, 28), "class_names": tuple("0123456789")},
              "captioned images": {"modality": "images", "shape": (3, 32, 32), "captioned": True},
              "tables": {"modality": "tables", "shape": (15,)}, "text": {"modality": "text", "shape": ()}}


def settings_table() -> str:
    """Markdown: what every family chooses on every modality it models (``data_defaults``)."""
    from genlab.models import FAMILIES
    from genlab.models.base import DataInfo

    lines = ["| family | modality | model settings chosen | training settings chosen | why |",
             "| --- | --- | --- | --- | --- |"]
    ring8 = genlab.datasets.load("ring8", seed=0).x_train
    for name, family in FAMILIES.items():
        for modality, fields in MODALITIES.items():
            if modality == "text" and name != "transformer":   # only the transformer models text
                continue
            if fields.get("captioned") and name not in ("diffusion", "transformer"):   # drawn from / written as captions
                continue
            chosen = family.data_defaults(DataInfo(**fields), ring8 if modality == "points" else None)
            model = ", ".join(f"{k}={v}" for k, v in chosen.model.items()) or "the family's own"
            train = ", ".join(f"{k}={v}" for k, v in chosen.train.items()) or "the family's own"
            lines.append(f"| {name} | {modality} | {model} | {train} | {chosen.why} |")
    return "\n".join(lines)


def write_doc(path: Path) -> None:
    """``docs/defaults.md``: the settings per family and modality, and the figures of the finished rows,
    with the image-folder rows' grids copied beside it for a person to look at."""
    grids = []
    for grid in sorted(OUT.glob("*-folder_grid.png")):
        (path.parent / "images").mkdir(exist_ok=True)
        shutil.copyfile(grid, path.parent / "images" / f"defaults_{grid.name}")
        grids += [f"`{grid.name.removesuffix('_grid.png')}`:", "", f"![8 samples of each class](images/defaults_{grid.name})", ""]
    earlier = earlier_rows(path)
    path.write_text("\n".join([
        "# What the defaults give",
        "",
        "Written by `python benchmarks/defaults.py --write-doc` from the rows' JSON files; do not edit by hand.",
        "Each figure is one fresh fit with no option but a time budget, seed 0 (see the script's docstring",
        "for the protocols: `cpu`, CPU-clock budgets and one torch thread, the only non-default settings;",
        "`wall`, a user's wall-clock `--max-time` with torch's default threads).",
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
        "A row marked `cpu (earlier run)` was not rerun when this page was last written: its figures are",
        "those of its last run under the CPU-clock protocol, with the defaults of that time.",
        "",
        table(earlier),
        "",
        f"## Techniques on MNIST, one change at a time ({TECHNIQUE_SECONDS} CPU seconds each, seed 0)",
        "",
        "`python benchmarks/defaults.py --techniques`; every option of each fit is listed. Fréchet distance",
        "and conditional accuracy in genlab's classifier space, as in the rows above.",
        "",
        technique_table(),
        "",
        "The image-folder rows (PNGs in class folders: 3,000 MNIST training digits, and scikit-learn's 1,797",
        "digits upsampled to 28x28), 8 samples of each class in class order (0-0-...-1-1-...), read left to",
        "right; the real floor of a folder row is as many real training images (100 a class) against the",
        "folder's test split, in the feature space of a classifier trained on the folder's training split:",
        "",
        *grids,
    ]), encoding="utf-8")


def earlier_rows(path: Path) -> dict[str, str]:
    """The figure lines of ``docs/defaults.md`` as it stands, by row name, with their protocol column marked
    ``cpu (earlier run)``: a row not rerun keeps its last measured figures, said to be from that run."""
    if not path.is_file():
        return {}
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = line.split(" | ")
        if line.startswith("| ") and len(cells) > 2 and cells[0][2:] in ROWS:
            protocol = cells[1] if cells[1].startswith("cpu") or cells[1] == "wall" else None
            rest = cells[2:] if protocol else cells[1:]                   # tables before the protocol column
            rows[cells[0][2:]] = " | ".join([cells[0], "cpu (earlier run)" if protocol != "wall" else "wall", *rest])
    return rows


def table(earlier: dict[str, str] | None = None) -> str:
    """The markdown table of every finished row, under each protocol it was run with; a row with no result
    here takes its line from ``earlier`` (:func:`earlier_rows`) where there is one."""
    lines = ["| row | protocol | family | budget (s) | steps | settings chosen from the data | figures | bar | met |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in ROWS:
        paths = [(protocol, OUT / f"{name}{suffix}.json") for protocol, suffix in (("cpu", ""), ("wall", "@wall"))]
        if not any(path.is_file() for _, path in paths):
            lines.append((earlier or {}).get(name, f"| {name} | | | | | | not run | | |"))
        for protocol, path in paths:
            if not path.is_file():
                continue
            row = json.loads(path.read_text())
            figures = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in row["metrics"].items() if k != "grid")
            met = {True: "✓", False: "✗", None: "see grid"}[row["met"]]
            lines.append(f"| {name} | {protocol} | {row['family']} | {row['budget_s']:g} | {row['steps']} "
                         f"| {row.get('chosen', '')} | {figures} | {row['bar']} | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(ROWS), help="rows to run (default: all)")
    parser.add_argument("--table", action="store_true", help="print the table of the finished rows")
    parser.add_argument("--write-doc", action="store_true", help="also write docs/defaults.md")
    parser.add_argument("--techniques", nargs="*", choices=list(TECHNIQUES),
                        help="run these technique rows (none named: all of them) instead of --only's")
    parser.add_argument("--protocol", choices=("cpu", "wall"), default="cpu",
                        help="cpu: CPU-clock budgets on one thread; wall: a user's wall-clock run, default threads")
    args = parser.parse_args()
    global PROTOCOL
    PROTOCOL = args.protocol
    if PROTOCOL == "cpu":
        torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.techniques is not None:
        for name in args.techniques or list(TECHNIQUES):
            row = {**technique_row(name), "protocol": PROTOCOL, "threads": torch.get_num_threads()}
            (OUT / f"technique-{_slug(name)}.json").write_text(json.dumps(row, indent=2, default=str))
            print(name, json.dumps(row["metrics"], default=str), flush=True)
        print(technique_table())
    elif not args.table:
        for name in args.only or list(ROWS):
            row = {**ROWS[name](), "protocol": PROTOCOL, "threads": torch.get_num_threads()}
            suffix = "" if PROTOCOL == "cpu" else "@wall"
            (OUT / f"{name}{suffix}.json").write_text(json.dumps(row, indent=2, default=str))
            print(name, json.dumps(row["metrics"], default=str), {True: "met", False: "NOT met", None: "see grid"}[row["met"]], flush=True)
    print(table())
    if args.write_doc:
        write_doc(HERE.parent / "docs" / "defaults.md")


if __name__ == "__main__":
    main()
