"""Tree-Ring watermarks on a small diffusion model of scikit-learn's 8x8 digits (issue #14, images).

A diffusion model (UNet channels 32/64, 200 timesteps) trained for ``--cpu`` CPU seconds on the
digits' training split samples with its default sampler; marked samples carry the Tree-Ring key in
their initial noise; every image is DDIM-inverted (50 steps) and tested (genlab.provenance.image_watermark).

- TPR at the nominal 1 % FPR (p <= 0.01) and AUC of the p-values against unmarked samples, clean and
  under the Tree-Ring attacks scaled to 8x8 images: Gaussian noise sigma 0.1, Gaussian blur sigma 0.5,
  crop to the central 6x6 and rescale, rotation by 15 degrees, JPEG quality 25, brightness jitter
  (times U(0.8, 1.2)); AUC and TPR at 1 % are also given at the empirical threshold of the unmarked
  samples' p-values.
- FPR measured on ``--unmarked`` unmarked samples and on the real test images.
- Quality cost: Fréchet distance to the test images in genlab's classifier feature space, marked and
  unmarked (same number of samples).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/watermark_images.py
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter, rotate, zoom
from sklearn.metrics import roc_auc_score

import genlab
from genlab.metrics.features import feature_classifier
from genlab.metrics.frechet import frechet_distance
from genlab.provenance import Watermark
from genlab.provenance.detect import detect

OUT = Path(__file__).parent / "results" / "watermark_images.json"
KEY = "genlab-benchmark-key"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} cpu {time.process_time():7.1f}s] {message}", flush=True)


def rate(flags) -> dict:
    flags = np.asarray(flags)
    return {"rate": float(flags.mean()), "k": int(flags.sum()), "n": len(flags)}


def jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    out = np.empty_like(x)
    for i, image in enumerate(x):
        buffer = io.BytesIO()
        Image.fromarray((image[0] * 255).round().astype(np.uint8)).save(buffer, format="JPEG", quality=quality)
        out[i, 0] = np.asarray(Image.open(buffer), dtype=np.float32) / 255
    return out


def crop_rescale(x: np.ndarray) -> np.ndarray:
    crop = x[:, :, 1:-1, 1:-1]
    return np.clip(zoom(crop, (1, 1, 8 / 6, 8 / 6), order=1), 0, 1).astype(np.float32)


ATTACKS = {
    "clean": lambda x, rng: x,
    "noise_0.1": lambda x, rng: np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32),
    "blur_0.5": lambda x, rng: gaussian_filter(x, sigma=(0, 0, 0.5, 0.5)).astype(np.float32),
    "crop_rescale": lambda x, rng: crop_rescale(x),
    "rotate_15": lambda x, rng: np.clip(rotate(x, 15, axes=(2, 3), reshape=False, order=1), 0, 1).astype(np.float32),
    "jpeg_25": lambda x, rng: jpeg(x, 25),
    "brightness": lambda x, rng: np.clip(x * rng.uniform(0.8, 1.2, (len(x), 1, 1, 1)), 0, 1).astype(np.float32),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=float, default=90.0)
    parser.add_argument("--marked", type=int, default=500)
    parser.add_argument("--unmarked", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = genlab.datasets.load("digits")
    model = genlab.fit(data.x_train, family="diffusion", channels=(32, 64), timesteps=200,
                       train={"steps": None, "max_time": args.cpu, "clock": "cpu", "batch_size": 64, "lr": 2e-3,
                              "device": "cpu"})
    log(f"trained ({model.config.sampler}, {model.config.sample_steps} steps)")
    marked = model.sample(args.marked, processors=[Watermark(key=KEY)], generator=torch.Generator().manual_seed(1))
    plain = model.sample(args.unmarked, generator=torch.Generator().manual_seed(2))
    log("sampled")
    p_plain = np.array([d.p_value for d in detect(plain, key=KEY, model=model).items])
    p_real = np.array([d.p_value for d in detect(data.x_test, key=KEY, model=model).items])
    results = {"sampler": model.config.sampler, "sample_steps": model.config.sample_steps, "train_cpu_s": args.cpu,
               "image_shape": list(model.data_.shape),
               "fpr_unmarked_1e-2": rate(p_plain <= 1e-2), "fpr_real_test_1e-2": rate(p_real <= 1e-2),
               "fpr_unmarked_1e-1": rate(p_plain <= 1e-1), "fpr_real_test_1e-1": rate(p_real <= 1e-1)}
    log("null tests done")
    threshold = float(np.quantile(p_plain, 0.01))
    rng = np.random.default_rng(0)
    for name, attack in ATTACKS.items():
        hit_marked, hit_plain = attack(marked, rng), attack(plain[:args.marked], rng)
        p_m = np.array([d.p_value for d in detect(hit_marked, key=KEY, model=model).items])
        p_u = np.array([d.p_value for d in detect(hit_plain, key=KEY, model=model).items])
        auc = roc_auc_score(np.r_[np.ones(len(p_m)), np.zeros(len(p_u))], -np.log(np.r_[p_m, p_u]))
        results[name] = {"auc": float(auc), "tpr_nominal_1e-2": rate(p_m <= 1e-2),
                         "tpr_empirical_1pct": rate(p_m <= threshold), "unmarked_fpr_nominal_1e-2": rate(p_u <= 1e-2)}
        log(f"{name}: AUC {auc:.3f}")
    classifier = feature_classifier(data)
    real = classifier.features(data.x_test)
    n = min(len(marked), args.unmarked)
    results["frechet_unmarked"] = frechet_distance(real=real, fake=classifier.features(plain[:n]))
    results["frechet_marked"] = frechet_distance(real=real, fake=classifier.features(marked[:n]))
    results["cpu_s_total"] = time.process_time()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
