"""Runs saved before the "Features wrap models" redesign still load, sample what they sampled, and keep
their features: a run's rules (``rules.json``) are still enforced, an int8 run's layout is restored.

The runs in tests/fixtures/legacy_runs/ were written by tests/scripts/write_legacy_runs.py at commit
c6628a0 (the last before the redesign), with ``samples.json`` holding each run's
``sample(4, generator=manual_seed(0))`` as that version drew it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import genlab
from genlab.compress.layout import compression_of
from genlab.compress.quantize import Int8Linear
from genlab.rules import Rules, count_violations, rules_of

LEGACY = Path(__file__).parent / "fixtures" / "legacy_runs"
#: Run directory -> (family, modality, shape of one record) it was saved as.
RUNS = {
    "gaussian": ("gaussian", "points", (2,)),
    "gan": ("gan", "points", (2,)),
    "vae": ("vae", "points", (2,)),
    "diffusion": ("diffusion", "images", (1, 8, 8)),
    "transformer": ("transformer", "text", ()),
    "transformer-int8": ("transformer", "text", ()),
    "copula-rules": ("gaussian", "tables", ()),
}


def draw(model, n: int, seed: int = 0, **options):
    return model.sample(n, generator=torch.Generator().manual_seed(seed), **options)


@pytest.fixture(scope="module")
def legacy_samples() -> dict:
    return json.loads((LEGACY / "samples.json").read_text(encoding="utf-8"))


def test_the_fixture_holds_every_run_and_stays_small():
    assert sorted(p.name for p in LEGACY.iterdir() if p.is_dir()) == sorted(RUNS)
    assert sum(p.stat().st_size for p in LEGACY.rglob("*") if p.is_file()) < 2_000_000


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_legacy_run_loads_and_samples_what_it_sampled_before(name, legacy_samples, single_thread):
    family, modality, shape = RUNS[name]
    model = genlab.load(LEGACY / name)
    assert model.family == family and model.data_.modality == modality
    sample = draw(model, 4)
    # `before` was drawn by the pre-redesign code on the machine that wrote the fixture. Another BLAS kernel
    # changes float32 round-off only (about 1e-7 relative per operation; the fixtures' networks are a few
    # narrow layers, the diffusion run 3 DDIM steps), so records, all within [-1, 1], agree to well within 1e-4;
    # a token or a category could only differ where a uniform draw falls within that round-off of a
    # cumulative-probability boundary, a chance of about 1e-5 over the few dozen draws here.
    before = legacy_samples[name]
    if modality == "tables":
        assert isinstance(sample, pd.DataFrame) and list(sample.columns) == ["role", "sex", "start", "end"]
        pd.testing.assert_frame_equal(sample, pd.DataFrame(before).astype(sample.dtypes.to_dict()))
    elif modality == "text":
        assert sample.dtype == object and sample.shape == (4,) and all(isinstance(t, str) for t in sample)
        assert list(sample) == before
    else:
        assert sample.dtype == np.float32 and sample.shape == (4, *shape) and np.isfinite(sample).all()
        np.testing.assert_allclose(sample, np.asarray(before, dtype=np.float32), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(sample), np.asarray(draw(model, 4)))   # seeded: the same again


def test_a_legacy_rules_file_is_still_enforced(single_thread):
    model = genlab.load(LEGACY / "copula-rules")
    rules = rules_of(model)
    assert sorted(rule.describe() for rule in rules) == [
        "0 <= start <= 49", "3 <= end <= 70", "role -> sex (husband->M, wife->F)", "start <= end"]
    free = draw(model, 300, processors=[Rules([])])   # without them the copula breaks some
    assert sum(count_violations(free, rules).values()) > 0
    kept = draw(model, 300)
    assert len(kept) == 300 and sum(count_violations(kept, rules).values()) == 0


def test_a_legacy_int8_run_gets_its_layout_back(single_thread):
    model = genlab.load(LEGACY / "transformer-int8")
    compression = compression_of(model)
    assert compression is not None and compression["parent"]["family"] == "transformer"
    assert [t["method"] for t in compression["transforms"]] == ["quantize"]
    int8 = {name for name, module in model.network_.named_modules() if isinstance(module, Int8Linear)}
    assert int8 and int8 == set(compression["transforms"][0]["modules"])
    assert not any(isinstance(module, torch.nn.Linear) for module in model.network_.modules())
