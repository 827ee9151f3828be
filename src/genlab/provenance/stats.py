"""The one-proportion test behind text and table detection, and the detection record it fills.

Under the null (no watermark, or another key) each scored unit (token, distinct row hash) is green
with probability ``gamma``, independently, so the green count ``g`` of ``N`` units is
``Binomial(N, gamma)``. The score is Kirchenbauer et al.'s z (their Eq. 3, the statistic Hugging Face's
``WatermarkDetector`` reports)::

    z = (g - gamma N) / sqrt(N gamma (1 - gamma))

and the p-value is the *exact* binomial tail ``P(G >= g)``, so the false-positive rate at a threshold
``p <= fpr`` is at most ``fpr`` at every length (the normal tail of z is not, for short texts). A
sequence too short for even an all-green count to reach ``fpr`` is not tested.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy.stats import binom


@dataclass(frozen=True)
class Detection:
    """The test of one record, or of a whole file (``combined``).

    Attributes:
        score: the z-score (``nan`` when not tested).
        p_value: exact binomial ``P(G >= green)`` under the null (``nan`` when not tested).
        watermarked: ``p_value <= fpr``; ``False`` when not tested.
        green: green units counted.
        scored: units scored (tokens, or distinct rows).
        note: why the record was not tested (``"too short to test: ..."``), else empty.
    """

    score: float
    p_value: float
    watermarked: bool
    green: int
    scored: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``nan`` becomes ``None``)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def min_units(gamma: float, fpr: float) -> int:
    """The fewest units whose all-green count reaches ``p <= fpr``: ``ceil(log fpr / log gamma)``."""
    return max(1, math.ceil(math.log(fpr) / math.log(gamma) - 1e-9))


def proportion_test(green: int, scored: int, *, gamma: float, fpr: float, unit: str = "tokens") -> Detection:
    """Test ``green`` of ``scored`` units against the ``gamma`` share chance gives (module doc)."""
    need = min_units(gamma, fpr)
    if scored < need:
        return Detection(float("nan"), float("nan"), False, green, scored,
                         f"too short to test: {scored} {unit}, need {need}")
    z = (green - gamma * scored) / math.sqrt(scored * gamma * (1 - gamma))
    p = float(binom.sf(green - 1, scored, gamma))
    return Detection(float(z), p, p <= fpr, green, scored)
