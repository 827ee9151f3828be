"""Score a fitted model of SMILES against held-out molecules; :func:`genlab.evaluate` sends ``smiles`` here.

The model draws ``n`` molecules (default :data:`MOLECULE_SAMPLES`) with a seeded generator, each at most
:data:`MAX_TOKENS` new tokens where the family takes a token budget (as the MOSES benchmark samples
them). What is measured follows MOSES (Polykovskiy et al. 2020); the chemistry is RDKit's, through
:mod:`genlab.metrics.molecules`:

- ``validity``: share of samples RDKit parses;
- ``uniqueness``: distinct canonical SMILES among the valid samples, over their number (MOSES's unique@k
  with ``k`` the valid samples);
- ``novelty``: share of the distinct valid samples that are not training molecules (canonical SMILES
  compared; a training set of more than :data:`CANONICAL_TRAINING` molecules is compared as written,
  which for MOSES's canonical SMILES is the same);
- ``intdiv1`` / ``intdiv2``: internal diversity of the valid samples' Morgan fingerprints;
- ``filters``: share of valid samples that pass MOSES's filters (rings, charges, atoms, MCF and PAINS);
- ``qed``, ``logp``, ``sa``: mean drug-likeness, Crippen logP and synthetic accessibility of the valid
  samples: no direction is better, a model of the data should match the floor;
- ``frechet_descriptors``: Fréchet distance of standardised RDKit descriptors against up to
  :data:`REFERENCE_MOLECULES` test molecules (**not FCD**, see :mod:`genlab.metrics.molecules`).

Intervals are bias-shifted percentile bootstraps (:mod:`genlab.metrics.bootstrap`) of the per-sample terms:
validity flags, and the filter flag and properties of each valid sample; the set metrics (uniqueness,
novelty, internal diversity, the Fréchet distance) have none. The *floor* is the same metrics of up to
``n`` test molecules (novelty against the training set, so it shows how much the test split repeats it),
and for the Fréchet distance as many training molecules against the same reference. The same model,
data, ``n``, seed and ``n_bootstrap`` give identical numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genlab.data.dataset import Dataset
from genlab.errors import DataError
from genlab.evaluation.report import LEVEL, N_BOOTSTRAP, Report
from genlab.metrics import bootstrap_intervals
from genlab.metrics.bootstrap import check_resamples
from genlab.metrics.molecules import (canonical, fingerprints, frechet_descriptor_distance, internal_diversity,
                                      passes_filters, properties)
from genlab.models.base import GenerativeModel, check_count

#: Samples drawn when ``n`` is not given.
MOLECULE_SAMPLES = 1000
#: New tokens per sample at most (a drug-like SMILES has fewer than 100 atom-level tokens).
MAX_TOKENS = 100
#: Test molecules behind the Fréchet descriptor distance at most.
REFERENCE_MOLECULES = 2000
#: Training sets up to this size are canonicalised for novelty (RDKit parses about 10,000 a second).
CANONICAL_TRAINING = 100_000
#: Means over the valid samples, in the column order of the per-sample terms.
PER_VALID = ("filters", "qed", "logp", "sa")
#: Metrics in ``[0, 1]`` (their intervals are clipped to it).
SHARES = frozenset({"validity", "filters", "qed"})


def sampling_options(model: GenerativeModel) -> dict[str, Any]:
    """The ``sample`` options of the evaluation's molecules: a token budget of :data:`MAX_TOKENS` where the family
    takes one."""
    return {"max_new_tokens": MAX_TOKENS} if "max_new_tokens" in model.sample_options else {}


def evaluate_smiles(model: GenerativeModel, data: Dataset, *, n: int | None = None, seed: int = 0,
                    n_bootstrap: int = N_BOOTSTRAP) -> Report:
    """Sample molecules from ``model`` and compare them with ``data``'s test split; see the module docstring.

    Args:
        model: a fitted model of SMILES.
        data: ``smiles`` data; its test molecules are the reference, its training molecules the novelty set.
        n: samples (default :data:`MOLECULE_SAMPLES`).
        seed: seed of the samples (``torch.Generator``), of the real subsets and of the bootstrap.
        n_bootstrap: bootstrap replicates per interval, ``>= 2``.
    """
    if data.modality != "smiles":
        raise DataError(f"the molecule evaluation needs SMILES; {data.name} holds {data.modality}")
    n = check_count(n) if n is not None else MOLECULE_SAMPLES
    n_bootstrap = check_resamples(n_bootstrap)
    fake = [str(s) for s in model.sample(n, generator=torch.Generator().manual_seed(seed), **sampling_options(model))]
    rng = np.random.default_rng(seed)
    held_out = _subset(data.x_test, n, rng)
    reference = _subset(data.x_test, REFERENCE_MOLECULES, rng)
    known, novelty_note = _training_molecules(data.x_train)
    metrics, terms = _score(fake, known)
    floor, _ = _score(held_out, known)
    intervals: dict[str, tuple[float, float]] = {}
    for statistic, name in ((_validity, "validity"), (_valid_means, "valid")):
        if name in terms:
            found = bootstrap_intervals(statistic, terms[name], n_resamples=n_bootstrap, level=LEVEL, rng=rng)
            # the bias shift may carry an end of a share past [0, 1]
            intervals.update({metric: (max(low, 0.0), min(high, 1.0)) if metric in SHARES else (low, high)
                              for metric, (low, high) in found.items()})
    valid = terms.get("smiles", [])
    if len(valid) >= 2 and len(reference) >= 2:
        metrics["frechet_descriptors"] = frechet_descriptor_distance(reference, valid)
        floor["frechet_descriptors"] = frechet_descriptor_distance(
            reference, _subset(data.x_train, len(valid), rng))
    notes = {"validity": "share of samples RDKit parses",
             "uniqueness": "distinct canonical SMILES over valid samples (unique@k, k = valid samples)",
             "novelty": novelty_note, "intdiv1": "1 - mean Tanimoto similarity of Morgan fingerprints (r=2, 1024 bits)",
             "intdiv2": "as intdiv1 with squared similarities (MOSES IntDiv2)",
             "filters": "share of valid samples passing MOSES's filters (rings, charges, atoms, MCF, PAINS)",
             "qed": "mean QED of valid samples: compare with the floor",
             "logp": "mean Crippen logP: compare with the floor",
             "sa": "mean synthetic accessibility (1 easy .. 10 hard): compare with the floor",
             "frechet_descriptors": f"RDKit descriptors vs {len(reference)} test molecules; not FCD"}
    if "uniqueness" not in metrics:
        notes["validity"] += "; no valid sample, so no other metric"
    return Report(metrics=metrics, n_samples=n, n_real=len(held_out), seed=seed, dataset=data.name,
                  intervals=intervals, floor=floor, n_bootstrap=n_bootstrap, level=LEVEL,
                  notes={k: v for k, v in notes.items() if k in metrics})


def _score(smiles: list[str], known: set[str]) -> tuple[dict[str, float], dict]:
    """The metrics of ``smiles`` (module doc, without the Fréchet distance) and their per-sample terms:
    ``validity`` flags ``(n,)``, ``valid`` rows ``(v, 4)`` of :data:`PER_VALID` and the valid ``smiles``."""
    canon = [canonical(s) for s in smiles]
    valid = [c for c in canon if c is not None]
    flags = np.array([c is not None for c in canon], dtype=np.float64)
    metrics, terms = _validity(flags), {"validity": flags}
    if not valid:
        return metrics, terms
    distinct = set(valid)
    fps = fingerprints(valid)
    props = properties(valid)
    rows = np.column_stack([[passes_filters(s) for s in valid], props["qed"], props["logp"], props["sa"]])
    metrics.update(uniqueness=len(distinct) / len(valid), novelty=len(distinct - known) / len(distinct),
                   intdiv1=internal_diversity(fps, p=1), intdiv2=internal_diversity(fps, p=2), **_valid_means(rows))
    terms.update(valid=rows.astype(np.float64), smiles=valid)
    return metrics, terms


def _validity(flags: np.ndarray) -> dict[str, float]:
    return {"validity": float(flags.mean())}


def _valid_means(rows: np.ndarray) -> dict[str, float]:
    """Means of the per-valid-sample columns :data:`PER_VALID`."""
    return {name: float(value) for name, value in zip(PER_VALID, rows.mean(0))}


def _training_molecules(train: np.ndarray) -> tuple[set[str], str]:
    """The training molecules as novelty compares them, and the note saying how (module doc)."""
    written = {str(s) for s in train}
    if len(written) > CANONICAL_TRAINING:
        return written, (f"distinct valid samples not among the {len(written):,} training SMILES as written "
                         f"(over {CANONICAL_TRAINING:,}: not canonicalised)")
    return (written | {c for c in map(canonical, written) if c is not None},
            "distinct valid samples whose canonical SMILES is not a training molecule")


def _subset(records: np.ndarray, n: int, rng: np.random.Generator) -> list[str]:
    """Up to ``n`` of ``records`` (all of them when there are no more), chosen with ``rng``, in their order."""
    if len(records) <= n:
        return [str(s) for s in records]
    return [str(records[i]) for i in sorted(rng.choice(len(records), size=n, replace=False))]
