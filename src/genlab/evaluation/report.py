"""The result of an evaluation, shared by every modality's branch: :class:`Report`, its defaults, and
:func:`seeded_rows` (a seeded test subset) and :func:`hit_rates` (shares of records scored right, with intervals and
floor)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genlab.data.dataset import Dataset
from genlab.errors import ConfigError
from genlab.metrics import bootstrap_intervals
from genlab.models.data_info import check_count

#: Bootstrap replicates per metric group unless told otherwise.
N_BOOTSTRAP = 100
#: Coverage of the bootstrap intervals.
LEVEL = 0.95


@dataclass(frozen=True)
class Report:
    """Metric values of one evaluation, their uncertainty, the real-data floor and how they were obtained.

    Attributes:
        metrics: metric name -> value.
        intervals: metric name -> bootstrap ``(low, high)`` at ``level`` coverage.
        floor: metric name -> the value real held-out data scores (:mod:`genlab.evaluation`); absent
            where undefined.
        n_samples: generated records compared.
        n_real: real test records compared.
        seed: seed of the sampling generator and of the bootstrap.
        dataset: name of the real data.
        n_bootstrap: bootstrap replicates behind each interval.
        level: coverage of the intervals.
        notes: metric name -> a caveat shown beside it (e.g. the feature space).
    """

    metrics: dict[str, float]
    n_samples: int
    n_real: int
    seed: int
    dataset: str
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    floor: dict[str, float] = field(default_factory=dict)
    n_bootstrap: int = 0
    level: float = LEVEL
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready form, as written to ``metrics.json``."""
        return {"metrics": self.metrics, "intervals": {k: list(v) for k, v in self.intervals.items()},
                "floor": self.floor, "n_samples": self.n_samples, "n_real": self.n_real, "seed": self.seed,
                "dataset": self.dataset, "n_bootstrap": self.n_bootstrap, "level": self.level,
                "notes": self.notes}


def seeded_rows(n_test: int, n: int | None, seed: int, *, default: int) -> tuple[np.ndarray, np.random.Generator]:
    """Sorted indices of a seeded subset of the ``n_test`` test records, ``n`` of them (``default`` when ``n`` is
    ``None``; never more than the split), and the generator that drew them (the bootstrap goes on with it, so the
    same seed gives the same subset and intervals).

    Raises:
        ConfigError: ``n`` is not a positive integer.
    """
    n = min(check_count(n) if n is not None else default, n_test)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_test, size=n, replace=False)), rng


def check_captioned(data: Dataset, model_does: str) -> None:
    """Raise a ConfigError unless ``data`` are captioned images; ``model_does`` says what the model does with them
    (e.g. "writes captions of images")."""
    if data.modality != "images" or data.captions_test is None:
        raise ConfigError(f"this model {model_does}; evaluate it on captioned images (e.g. shapes), "
                          f"not {data.name}, which has no captions")


def hit_rates(groups: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], *, n_bootstrap: int,
              rng: np.random.Generator) -> tuple[dict[str, float], dict[str, tuple[float, float]], dict[str, float]]:
    """Per named group, the share of records scored right, its bias-shifted percentile bootstrap interval (clipped
    to ``[0, 1]``: the shift may carry an end past it) and the floor's share.

    Args:
        groups: ``name -> (hits, floor_hits, subset)``: float ``(n,)`` 1/0 per record of the model and of the
            floor (e.g. real records scored the same way), and bool ``(n,)`` the group's records; a group with no
            record is left out.
        n_bootstrap: resamples per interval. rng: the bootstrap's generator (advanced group by group).

    Returns:
        ``(metrics, intervals, floor)`` keyed by group name.
    """
    metrics: dict[str, float] = {}
    intervals: dict[str, tuple[float, float]] = {}
    floor: dict[str, float] = {}
    for name, (hits, floor_hits, subset) in groups.items():
        if subset.any():
            statistic = (lambda values, name=name: {name: float(values.mean())})
            metrics.update(statistic(hits[subset]))
            floor.update(statistic(floor_hits[subset]))
            low, high = bootstrap_intervals(statistic, hits[subset], n_resamples=n_bootstrap, level=LEVEL,
                                            rng=rng)[name]
            intervals[name] = (max(low, 0.0), min(high, 1.0))
    return metrics, intervals, floor
