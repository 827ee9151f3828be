"""Ranking runs of one dataset by their metrics, shared by the HTML report and the CLI tables."""

from __future__ import annotations

import math
from typing import Sequence

from genlab.evaluation import Report

#: Metrics where lower is better; every other metric not in :data:`BEST_AT` or :data:`NEAR_FLOOR` is
#: better higher. For chorales, distances to held-out pieces and voice-leading faults per 100 beats.
LOWER_IS_BETTER = frozenset({"reverse_kl", "frechet", "kid", "nll", "memorised", "exact_copies",
                             "nll_per_token", "perplexity", "copied_ngrams", "copied_texts", "frechet_descriptors",
                             "pitch_class_distance", "interval_distance", "duration_distance", "out_of_range",
                             "crossings_per_100_beats", "fifths_per_100_beats", "octaves_per_100_beats"})
#: Metrics best at a value inside their range, ranked by their distance from it. A detection ROC AUC of
#: 0.5 means the detector cannot tell real rows from generated ones; one far below 0.5 separates them too.
BEST_AT = {"detection_auc": 0.5}
#: Metrics best at the real floor's value, with no direction of their own (molecules' mean QED, logP and
#: synthetic accessibility: a model of the data should match the data's, not maximise them).
NEAR_FLOOR = frozenset({"qed", "logp", "sa"})


def direction(name: str) -> str:
    """What is best for metric ``name``, as shown beside it: ``"↑"`` (higher), ``"↓"`` (lower),
    ``"(best 0.5)"`` (a metric of :data:`BEST_AT`) or ``"(≈ floor)"`` (:data:`NEAR_FLOOR`)."""
    if name in BEST_AT:
        return f"(best {BEST_AT[name]:g})"
    if name in NEAR_FLOOR:
        return "(≈ floor)"
    return "↓" if name in LOWER_IS_BETTER else "↑"


def rank_key(metrics: dict[str, float]) -> tuple[float, ...]:
    """Sort key, best first: modes captured and high-quality share where known, then the validity of
    generated code or molecules, then binding accuracy (images from captions) and the parse rate
    (chorales), then the detection AUC's distance from 0.5 (tables), then Fréchet distance, then the
    Fréchet descriptor distance (molecules) and pitch-class distance (chorales), then NLL, then NLL per
    token (text); a metric a run lacks ranks it last on that criterion.

    Fréchet distance is defined for every modality with continuous records and every family, so runs of
    one dataset can be ordered by it; the mode metrics come first on synthetic mixtures because a model
    that drops modes can still have a small Fréchet distance (a single Gaussian matches the ring's mean
    and covariance).
    Text has no Fréchet distance: code models are ordered by the share of completions that parse, then
    by held-out nats per token (comparable only between models with one tokenizer).
    """
    detection = abs(metrics.get("detection_auc", math.inf) - BEST_AT["detection_auc"])
    return (-metrics.get("modes_captured", 0.0), -metrics.get("high_quality", 0.0), -metrics.get("validity", 0.0),
            -metrics.get("binding_accuracy", 0.0), -metrics.get("parse_rate", 0.0), detection,
            metrics.get("frechet", math.inf), metrics.get("frechet_descriptors", math.inf),
            metrics.get("pitch_class_distance", math.inf), metrics.get("nll", math.inf),
            metrics.get("nll_per_token", math.inf))


def rank(reports: dict[str, Report]) -> list[str]:
    """Names of ``reports`` (all of one dataset), best first by :func:`rank_key`."""
    return sorted(reports, key=lambda name: rank_key(reports[name].metrics))


def by_dataset(reports: dict[str, Report]) -> dict[str, list[str]]:
    """Run names grouped by dataset (in first-seen order), each group ranked best first."""
    groups: dict[str, dict[str, Report]] = {}
    for name, report in reports.items():
        groups.setdefault(report.dataset, {})[name] = report
    return {dataset: rank(group) for dataset, group in groups.items()}


def metric_names(reports: Sequence[Report]) -> list[str]:
    """Union of the reports' metric names in a stable reading order (first-seen)."""
    return list(dict.fromkeys(name for report in reports for name in report.metrics))
