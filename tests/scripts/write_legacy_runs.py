"""Write the tiny saved runs of tests/fixtures/legacy_runs/, for tests/test_legacy_runs.py.

Run it against the genlab whose run format the fixtures freeze (here the last commit before the
"Features wrap models" redesign), from the repository root::

    git worktree add /tmp/legacy c6628a0
    PYTHONPATH=/tmp/legacy/src .venv/bin/python tests/scripts/write_legacy_runs.py tests/fixtures/legacy_runs
    git worktree remove /tmp/legacy --force

It uses only API that both versions share (``genlab.fit``, ``save_pretrained``, the data builders), except
for rules, which it attaches the old way (``model.rules_ = model.bind_rules(...)``) or the new way
(``genlab.rules.attach_rules``), whichever the installed genlab has. Every run is as small as its family
allows: a few training steps, narrow networks, float32 weights; the folder stays well under 2 MB.
``samples.json`` keeps each run's seeded draw as the writing version made it, so the test can check that
the current code not only loads a run but samples what it sampled.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import genlab
from genlab.data.dataset import Dataset
from genlab.data.images import digits
from genlab.data.points import ring8
from genlab.data.text import string_array

#: A few short documents for the transformer (char tokenizer: the vocabulary is their characters).
TEXT = ["the cat sat on the mat\n", "a dog ran to the log\n", "the hat is on the cat\n", "to sit or not to sit\n"]
#: Training settings every network family shares: a handful of steps, small batches.
STEPS = {"steps": 4, "batch_size": 16}
#: Records of each run's ``sample(SAMPLES, generator=manual_seed(0))`` kept in ``samples.json``.
SAMPLES = 4


def points() -> Dataset:
    return ring8(n_train=256, n_test=64, seed=0)


def table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A dependency (role -> sex for husband/wife) and an order (start <= end) the rules capture."""
    rng = np.random.default_rng(seed)
    role = rng.choice(["husband", "wife", "child"], size=n, p=[0.4, 0.3, 0.3])
    sex = np.where(role == "husband", "M", np.where(role == "wife", "F", rng.choice(["M", "F"], size=n)))
    start = rng.integers(0, 50, size=n)
    return pd.DataFrame({"role": role, "sex": sex, "start": start, "end": start + rng.integers(0, 30, size=n)})


def attach(model, rules) -> None:
    """Make ``rules`` the model's own, so ``save_pretrained`` writes ``rules.json`` (either API)."""
    if hasattr(model, "bind_rules"):   # before the redesign: a model attribute
        model.rules_ = model.bind_rules(rules)
    else:
        from genlab.rules import attach_rules
        attach_rules(model, rules)


def write(out: Path) -> None:
    torch.manual_seed(0)
    runs = {
        "gaussian": lambda: genlab.fit(points(), family="gaussian", n_components=8, n_init=1),
        "gan": lambda: genlab.fit(points(), family="gan", train=STEPS, latent_dim=4, hidden=16, depth=1),
        "vae": lambda: genlab.fit(points(), family="vae", train=STEPS, latent_dim=2, hidden=16, depth=1,
                                  iwae_samples=4),
        "diffusion": lambda: genlab.fit(digits(), family="diffusion", train=STEPS, channels=(8,), timesteps=50,
                                        sample_steps=3, sampler="ddim"),
        "transformer": lambda: genlab.fit(Dataset("short", "text", string_array(TEXT), string_array(TEXT[:1])),
                                          family="transformer", train=STEPS, n_layer=1, n_head=1, n_embd=8,
                                          block_size=16),
    }
    for name, fit in runs.items():
        fit().save_pretrained(out / name)
    from genlab.compress.run import compress
    # the transformer keeps float embeddings and norms beside its int8 linear layers
    compress(out / "transformer", out / "transformer-int8", quantize="int8")
    rows = table()
    copula = genlab.fit(rows, family="gaussian")
    attach(copula, genlab.rules.infer_rules(rows, copula.codec_.column_kinds))
    copula.save_pretrained(out / "copula-rules")
    draws = {run.name: records(genlab.load(run).sample(SAMPLES, generator=torch.Generator().manual_seed(0)))
             for run in sorted(out.iterdir())}
    lines = [f" {json.dumps(name)}: {json.dumps(draw)}" for name, draw in draws.items()]   # one run a line
    (out / "samples.json").write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")


def records(sample) -> list:
    """A sample as JSON: table rows as objects, text as strings, arrays as nested lists of floats."""
    if isinstance(sample, pd.DataFrame):
        return json.loads(sample.to_json(orient="records"))
    return [str(text) for text in sample] if sample.dtype == object else sample.tolist()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the runs into (replaced)")
    out = parser.parse_args(argv).out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    write(out)
    print(f"wrote {sorted(p.name for p in out.iterdir())} with genlab {genlab.__version__} "
          f"from {Path(genlab.__file__).parent}", file=sys.stderr)


if __name__ == "__main__":
    main()
