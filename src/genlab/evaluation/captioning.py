"""Score a captioner (a model that writes captions of images); :func:`genlab.evaluate` sends it here.

The model writes one caption, at its own default decoding (greedy for a captioner), for each of ``n`` test
images (default: up to :data:`CAPTIONER_SAMPLES`, chosen with the seed). The test caption's own scene
(:func:`~genlab.metrics.shapes_judge.caption_truth`) is the truth, and the generated caption is read the
same way (one that is not a ``shapes`` caption is wrong on every count):

- ``caption_accuracy_one``: one-object images whose caption names the object's shape, colour, size and
  place, all four right (the issue's bar); ``caption_accuracy_held_out``: the same over images of a
  colour-shape pair that training never rendered; ``shape`` / ``colour`` / ``size`` / ``position``_accuracy:
  each attribute of one-object images alone;
- ``caption_accuracy_two``: two-object images whose caption names both objects (shape, colour, size; either
  order) related as the test caption says or by its mirror (``a left of b`` is ``b right of a``). A caption
  naming another relation that also holds (an object up and to the left is both ``above`` and ``left
  of``) counts as wrong: a lower bound, the image's cells being unknown to a caption.

Intervals are bias-shifted percentile bootstraps of the per-image hits. The floor is the test captions read
back the same way (1.0 unless the reading is wrong: a check of the scorer, not of a model).
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.data.dataset import Dataset
from genlab.data.shapes import RELATIONS, is_held_out
from genlab.errors import DataError
from genlab.evaluation.report import LEVEL, N_BOOTSTRAP, Report, check_captioned, hit_rates, seeded_rows
from genlab.metrics.bootstrap import check_resamples
from genlab.metrics.shapes_judge import caption_truth
from genlab.models.base import GenerativeModel

#: Test images (one caption each) when ``n`` is not given and the test split has more.
CAPTIONER_SAMPLES = 1000
#: Each relation's mirror: ``a R b`` says the same as ``b MIRROR[R] a``.
MIRROR = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
ATTRIBUTES = ("shape", "colour", "size", "position")


def evaluate_captioner(model: GenerativeModel, data: Dataset, *, n: int | None = None, seed: int = 0,
                       n_bootstrap: int = N_BOOTSTRAP) -> Report:
    """Caption ``n`` test images and read each caption against the image's own; see the module docstring.

    Raises:
        ConfigError: data without captions. DataError: test captions outside the ``shapes`` grammar.
    """
    check_captioned(data, "writes captions of images")
    n_bootstrap = check_resamples(n_bootstrap)
    rows, rng = seeded_rows(len(data.x_test), n, seed, default=CAPTIONER_SAMPLES)
    n = len(rows)
    truth = np.asarray([str(c) for c in data.captions_test[rows]], dtype=object)
    written = model.sample(n, image=data.x_test[rows], generator=torch.Generator().manual_seed(seed))
    fake_hits, real_hits = caption_hits(np.asarray(written, dtype=object), truth), caption_hits(truth, truth)
    objects, relation = caption_truth(truth)
    one = relation < 0
    held = one & np.array([is_held_out(o[0], o[1]) for o in objects[:, 0]])
    groups = {"caption_accuracy_one": ("all", one), "caption_accuracy_held_out": ("all", held),
              "caption_accuracy_two": ("all", ~one), **{f"{a}_accuracy": (a, one) for a in ATTRIBUTES}}
    metrics, intervals, floor = hit_rates({name: (fake_hits[column], real_hits[column], subset)
                                           for name, (column, subset) in groups.items()},
                                          n_bootstrap=n_bootstrap, rng=rng)
    notes = {"caption_accuracy_one": "one-object test images captioned with all four attributes right",
             "caption_accuracy_held_out": "one-object images of a colour-shape pair never rendered in training",
             "caption_accuracy_two": "both objects and the caption's relation (or its mirror); a lower bound"}
    return Report(metrics=metrics, n_samples=n, n_real=n, seed=seed, dataset=data.name, intervals=intervals,
                  floor=floor, n_bootstrap=n_bootstrap, level=LEVEL,
                  notes={k: v for k, v in notes.items() if k in metrics})


def caption_hits(written: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    """Float ``(n,)`` hits per column: ``"all"`` (the whole scene right) and, for one-object scenes, each of
    :data:`ATTRIBUTES`; a written caption outside the grammar scores 0 everywhere."""
    objects, relation = caption_truth(truth)
    hits = {column: np.zeros(len(truth)) for column in ("all", *ATTRIBUTES)}
    for i, caption in enumerate(written):
        try:
            (got,), (got_relation,) = caption_truth(np.asarray([caption], dtype=object))
        except DataError:
            continue
        if relation[i] < 0:
            if got_relation >= 0:
                continue
            right = got[0] == objects[i, 0]                                     # (4,) shape, colour, size, cell
            for k, column in enumerate(ATTRIBUTES):
                hits[column][i] = float(right[k])
            hits["all"][i] = float(right.all())
        elif got_relation >= 0:
            a, b = (tuple(objects[i, k, :3]) for k in range(2))
            said = RELATIONS[relation[i]]
            same = tuple(got[0, :3]) == a and tuple(got[1, :3]) == b and RELATIONS[got_relation] == said
            mirrored = tuple(got[0, :3]) == b and tuple(got[1, :3]) == a and RELATIONS[got_relation] == MIRROR[said]
            hits["all"][i] = float(same or mirrored)
    return hits
