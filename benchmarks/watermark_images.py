"""Tree-Ring watermarks on two diffusion runs fitted as a user would: MNIST 28x28 and ``shapes`` 3x32x32
(issue 24, item 3; BENCHMARKS.md §10).

Each run is ``genlab.api.fit(data, family="diffusion", train={"max_time": S, "seed": 0})`` with every other
option at its default (S = ``--fit-seconds``, the trainer's clock; torch's thread count as the environment
sets it, recorded). Samples use the run's default sampler, steps and guidance: MNIST class-balanced
(``condition=label``, classes in the test split's shares), ``shapes`` prompted with the test captions (the
model was trained on captions). Marked samples carry the key (``genlab.provenance.Watermark``) in their
initial noise, unmarked ones are drawn with another seed under the same conditions. Every image is
DDIM-inverted once (50 steps, unconditionally; ``model.invert`` runs 256 images at a time, so memory is
bounded whatever the count) and its noise tested against any key
(``genlab.provenance.image_watermark.ring_test``: exactly what ``genlab.provenance.detect.detect`` does, which
is checked on the first images). The score is the test's ``z = Phi^-1(1 - p)``.

Reported per run (bars from the issue):
- clean detection: AUC of the scores of ``--marked`` marked vs ``--unmarked`` unmarked samples (>= 0.99);
  TPR at ``--fpr`` at the nominal threshold ``p <= fpr`` and at the empirical one (the unmarked samples'
  ``fpr`` quantile of p), (>= 0.90);
- ``--wrong-keys`` wrong keys: the share of marked images each flags at the nominal ``--fpr``, and over all
  of them (<= 1 %; each image carries its own pattern of the key's family, so a wrong key's flags are close to
  independent over images, at most the FPR by the test's Bonferroni bound), and the keys that flag half or
  more as a binomial count over keys with its interval (the one-pattern scheme flagged all of a key's images
  or none);
- attacks on the first ``--attack-images`` marked and unmarked samples: Gaussian noise sigma
  ``--noise-sigma`` (0.05), JPEG quality ``--jpeg-quality`` (50), the central ``--crop-keep`` (90 %) of each
  side resized back (bilinear, antialiased), Gaussian blur sigma ``--blur-sigma`` pixels (1.0): AUC each
  (>= 0.90) and TPR at the nominal FPR;
- measured FPR at ``--fpr`` on the ``--unmarked`` unmarked samples and on as many real test images, with a
  Clopper-Pearson 95 % interval and whether the nominal FPR lies inside it;
- quality cost: Fréchet distance to the test images of as many marked as unmarked samples
  (``min(--marked, --unmarked)``), and the relative cost ``marked / unmarked - 1`` (<= 10 %). MNIST in
  genlab's classifier features; ``shapes`` in the shapes judge's features (the repo's feature space for
  32x32 RGB scenes, trained on real renders of every colour-shape pair; a minute of CPU once, then cached).

Cost on one thread (smoke-measured): DDIM inversion about 0.03 CPU s an image for MNIST and 0.1 for shapes,
sampling a little less; at the defaults each run inverts 7,000 images (3,000 clean, 4 x 2 x 500 attacked).

Options:
    --datasets mnist,shapes   which runs, in order
    --fit-seconds 300         training budget of each run (``max_time``)
    --marked 1000             marked samples (clean detection, wrong keys, Fréchet)
    --unmarked 1000           unmarked samples, and real test images, for the FPR (and Fréchet)
    --wrong-keys 100          wrong keys tested on every marked image
    --attack-images 500       marked and unmarked samples per attack
    --fpr 0.01                the stated false-positive rate of every flag
    --noise-sigma 0.05 --jpeg-quality 50 --crop-keep 0.9 --blur-sigma 1.0   the attacks
    --key genlab-benchmark-key   the marking key (wrong keys are ``KEY-wrong-i``)
    --data-dir ../shared/data    where mnist.npz lives
    --cache-dir DIR           classifier / judge cache (default ``$GENLAB_CACHE`` or ~/.cache/genlab)
    --out benchmarks/results/watermark_images.json
    --docs PATH               also write the table into PATH's ``watermark_images`` section (e.g. docs/watermark.md)
    --quick                   a smoke test: 5-second fits, 16 images, 3 wrong keys, a 5-step judge, written to
                              ``watermark_images_quick.json``; any option given explicitly still wins

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/watermark_images.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/watermark_images.py --quick --datasets shapes
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import genlab
from genlab.metrics.frechet import frechet_distance
from genlab.provenance import key_to_int
from genlab.provenance.detect import detect
from genlab.provenance.image_watermark import INVERSION_STEPS, PATTERNS, invert_images, radius, region, ring_test

sys.path.insert(0, str(Path(__file__).parent))
from doc_sections import write_section  # noqa: E402
from watermark_image_tools import (attacks, auc, binomial, draw, empirical_threshold,  # noqa: E402
                                   feature_space)

HERE = Path(__file__).parent
OUT = HERE / "results" / "watermark_images.json"
DATA = HERE.parent.parent / "shared" / "data"
KEY = "genlab-benchmark-key"
DEFAULTS = {"fit_seconds": 300.0, "marked": 1000, "unmarked": 1000, "wrong_keys": 100, "attack_images": 500}
QUICK = {"fit_seconds": 5.0, "marked": 16, "unmarked": 16, "wrong_keys": 3, "attack_images": 16}
#: The issue's bars.
BARS = {"auc_clean": 0.99, "tpr": 0.90, "wrong_key_share": 0.01, "auc_attack": 0.90, "frechet_cost": 0.10}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} cpu {time.process_time():7.1f}s] {message}", flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="mnist,shapes", help="comma-separated: mnist, shapes")
    parser.add_argument("--fit-seconds", type=float, help=f"training max_time of each run ({DEFAULTS['fit_seconds']:g})")
    parser.add_argument("--marked", type=int, help=f"marked samples ({DEFAULTS['marked']})")
    parser.add_argument("--unmarked", type=int, help=f"unmarked samples and real images ({DEFAULTS['unmarked']})")
    parser.add_argument("--wrong-keys", type=int, help=f"wrong keys ({DEFAULTS['wrong_keys']})")
    parser.add_argument("--attack-images", type=int, help=f"marked and unmarked images per attack "
                                                          f"({DEFAULTS['attack_images']})")
    parser.add_argument("--fpr", type=float, default=0.01)
    parser.add_argument("--noise-sigma", type=float, default=0.05)
    parser.add_argument("--jpeg-quality", type=int, default=50)
    parser.add_argument("--crop-keep", type=float, default=0.9)
    parser.add_argument("--blur-sigma", type=float, default=1.0, help="pixels")
    parser.add_argument("--key", default=KEY)
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--docs", type=Path, default=None, help="Markdown page to write the table into")
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test settings")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.out is None:
        args.out = OUT.with_name("watermark_images_quick.json") if args.quick else OUT
    return args


def load(name: str, data_dir: Path) -> Any:
    if name == "mnist":
        return genlab.datasets.load("mnist", data_dir=data_dir)
    if name == "shapes":
        return genlab.datasets.load("shapes")
    raise SystemExit(f"unknown dataset {name!r}; choose mnist or shapes")


def scores(noise: torch.Tensor, key: str, fpr: float) -> tuple[np.ndarray, np.ndarray]:
    """``(p, z)`` of the test of inverted noises ``(n, C, H, W)`` against ``key``."""
    found = ring_test(noise, key_to_int(key), fpr)
    return np.array([d.p_value for d in found]), np.array([d.score for d in found])


def keyed_region(height: int, width: int) -> dict[str, Any]:
    """The Tree-Ring region and family at ``H x W``: disc radius, keyed coefficients ``m``, ``d = 2 m``, ``N``."""
    m = int(region(height, width).sum())
    return {"radius": radius(height, width), "coefficients": m, "dimensions": 2 * m, "patterns": PATTERNS}


def describe(keyed: dict[str, Any]) -> str:
    """One line of :func:`keyed_region`'s figures."""
    return (f"disc radius {keyed['radius']:.2f} ({keyed['coefficients']} keyed coefficients, d = "
            f"{keyed['dimensions']}), {keyed['patterns']} patterns a key, one drawn per image")


def test_images(model: Any, images: np.ndarray, key: str, fpr: float) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Invert ``images`` once: ``(noise, p, z)`` of the test against ``key``."""
    noise = invert_images(model, images)
    return (noise, *scores(noise, key, fpr))


def run(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Fit, sample, invert and score one dataset (module doc)."""
    data = load(name, args.data_dir)
    wall, cpu = time.perf_counter(), time.process_time()
    model = genlab.api.fit(data, family="diffusion", train={"max_time": args.fit_seconds, "seed": 0})
    config = model.config
    result: dict[str, Any] = {
        "dataset": name, "image_shape": list(model.data_.shape),
        "fit": {"max_time": args.fit_seconds, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                "steps": model.history_[-1]["step"] if model.history_ else None},
        "model": {"sampler": config.sampler, "sample_steps": config.sample_steps, "guidance": config.guidance,
                  "channels": list(config.channels), "patch": getattr(config, "patch", None)},
        "region": keyed_region(*model.data_.shape[-2:]), "inversion_steps": INVERSION_STEPS}
    log(f"{name}: fitted, {result['fit']['steps']} steps; sampler {config.sampler} {config.sample_steps} steps, "
        f"guidance {config.guidance}; {describe(result['region'])}")

    marked = draw(model, data, args.marked, key=args.key, seed=1)
    unmarked = draw(model, data, args.unmarked, key=None, seed=2)
    real = data.x_test[:args.unmarked]
    log(f"{name}: sampled {len(marked)} marked, {len(unmarked)} unmarked")
    noise_m, p_m, z_m = test_images(model, marked, args.key, args.fpr)
    _, p_u, z_u = test_images(model, unmarked, args.key, args.fpr)
    _, p_r, _ = test_images(model, real, args.key, args.fpr)
    check = detect(marked[:4], key=args.key, model=model, fpr=args.fpr)
    assert np.allclose([d.p_value for d in check.items], p_m[:4]), "detect() and the benchmark's test disagree"
    log(f"{name}: inverted and tested {len(marked) + len(unmarked) + len(real)} images")

    threshold = empirical_threshold(p_u, args.fpr)
    result["clean"] = {"auc": auc(z_m, z_u), "tpr_nominal": binomial(p_m <= args.fpr),
                       "tpr_empirical": binomial(p_m < threshold), "empirical_p_threshold": threshold}
    result["fpr"] = {"unmarked_samples": binomial(p_u <= args.fpr, args.fpr),
                     "real_test_images": binomial(p_r <= args.fpr, args.fpr)}

    per_key = []
    for i in range(args.wrong_keys):
        p_w, _ = scores(noise_m, f"{args.key}-wrong-{i}", args.fpr)
        per_key.append(float(np.mean(p_w <= args.fpr)))
    per_key_arr = np.array(per_key)
    result["wrong_keys"] = {"keys": args.wrong_keys, "share_flagged": float(per_key_arr.mean()),
                            "max_share_one_key": float(per_key_arr.max(initial=0.0)),
                            "keys_flagging_any": int((per_key_arr > 0).sum()),
                            "keys_flagging_half": binomial(per_key_arr >= 0.5, args.fpr), "per_key": per_key}
    log(f"{name}: {args.wrong_keys} wrong keys flag {per_key_arr.mean():.2%} of the marked images")

    rng = np.random.default_rng(0)
    a = args.attack_images
    result["attacks"] = {}
    for attack, function in attacks(noise_sigma=args.noise_sigma, jpeg_quality=args.jpeg_quality,
                                    crop_keep=args.crop_keep, blur_sigma=args.blur_sigma).items():
        _, pa_m, za_m = test_images(model, function(marked[:a], rng), args.key, args.fpr)
        _, pa_u, za_u = test_images(model, function(unmarked[:a], rng), args.key, args.fpr)
        result["attacks"][attack] = {"auc": auc(za_m, za_u), "tpr_nominal": binomial(pa_m <= args.fpr),
                                     "fpr_nominal": binomial(pa_u <= args.fpr)}
        log(f"{name}: {attack}: AUC {result['attacks'][attack]['auc']:.3f}")

    space, features = feature_space(data, quick=args.quick, cache_dir=args.cache_dir)
    n = min(len(marked), len(unmarked))
    reference = features(data.x_test)
    fd_u = frechet_distance(real=reference, fake=features(unmarked[:n]))
    fd_m = frechet_distance(real=reference, fake=features(marked[:n]))
    result["frechet"] = {"space": space, "n": n, "real_n": len(data.x_test), "unmarked": fd_u, "marked": fd_m,
                         "relative_cost": fd_m / fd_u - 1}
    return result


def verdicts(r: dict[str, Any], fpr: float) -> list[tuple[str, str, bool | None]]:
    """``(measure, value, meets the bar)`` rows of one run's table."""
    def share(b: dict[str, Any]) -> str:
        return f"{b['rate']:.1%} ({b['k']}/{b['n']})"

    def interval(b: dict[str, Any]) -> str:
        low, high = b["ci95"]
        return f"{share(b)}, CI [{low:.2%}, {high:.2%}]"

    c, w, f = r["clean"], r["wrong_keys"], r["frechet"]
    rows = [("AUC clean", f"{c['auc']:.4f}", c["auc"] >= BARS["auc_clean"]),
            (f"TPR at p <= {fpr:g}", share(c["tpr_nominal"]), c["tpr_nominal"]["rate"] >= BARS["tpr"]),
            (f"TPR at empirical {fpr:.0%} FPR", share(c["tpr_empirical"]), c["tpr_empirical"]["rate"] >= BARS["tpr"]),
            (f"{w['keys']} wrong keys: flagged", f"{w['share_flagged']:.2%} (max one key {w['max_share_one_key']:.0%}, "
             f"{w['keys_flagging_any']} keys flag any)", w["share_flagged"] <= BARS["wrong_key_share"]),
            ("wrong keys flagging half or more", interval(w["keys_flagging_half"]),
             w["keys_flagging_half"]["nominal_inside"])]
    rows += [(f"AUC {name}", f"{a['auc']:.4f} (TPR {a['tpr_nominal']['rate']:.0%})", a["auc"] >= BARS["auc_attack"])
             for name, a in r["attacks"].items()]
    rows += [(f"FPR {name.replace('_', ' ')}", interval(b), b["nominal_inside"]) for name, b in r["fpr"].items()]
    rows += [("Fréchet unmarked / marked", f"{f['unmarked']:.2f} / {f['marked']:.2f} (n {f['n']})", None),
             ("Fréchet cost", f"{f['relative_cost']:+.1%}", f["relative_cost"] <= BARS["frechet_cost"])]
    return rows


def table(report: dict[str, Any]) -> str:
    """The Markdown table of every run: one row per measure, one column per dataset, then the bars."""
    runs = report["runs"]
    head = "| measure | " + " | ".join(f"{r['dataset']} {'x'.join(map(str, r['image_shape']))}" for r in runs) + " |"
    lines = [head, "|" + " --- |" * (len(runs) + 1)]
    columns = [verdicts(r, report["args"]["fpr"]) for r in runs]
    mark = {True: " ✓", False: " ✗", None: ""}
    for i, (measure, _, _) in enumerate(columns[0]):
        lines.append(f"| {measure} | " + " | ".join(f"{col[i][1]}{mark[col[i][2]]}" for col in columns) + " |")
    notes = [f"- {r['dataset']}: {r['fit']['steps']} steps in max_time {r['fit']['max_time']:g} s "
             f"({r['fit']['cpu_s']:.0f} CPU s); {r['model']['sampler']} {r['model']['sample_steps']} steps, guidance "
             f"{r['model']['guidance']}; {describe(r['region'])}; Fréchet in {r['frechet']['space']}"
             for r in runs]
    return "\n".join(lines + [""] + notes)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    report: dict[str, Any] = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "bars": BARS, "platform": platform.platform(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "runs": []}
    for name in args.datasets.split(","):
        report["runs"].append(run(name.strip(), args))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))   # after each run, so a long job keeps what it has
    report["cpu_s_total"] = time.process_time()
    args.out.write_text(json.dumps(report, indent=1))
    markdown = table(report)
    print("\n" + markdown)
    log(f"wrote {args.out}")
    if args.docs is not None:
        command = "benchmarks/watermark_images.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(args.docs, "watermark_images",
                      f"### Images: Tree-Ring on MNIST and shapes\n`{command.strip()}` (torch threads "
                      f"{report['torch_threads']}; bars from issue 24; ✓ meets, ✗ misses)\n\n{markdown}")
        log(f"wrote the watermark_images section of {args.docs}")


if __name__ == "__main__":
    main()
