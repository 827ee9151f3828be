"""The result of an evaluation, shared by every modality's branch: :class:`Report` and its defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

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
