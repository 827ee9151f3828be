"""An attribute classifier for ``shapes`` scenes, independent of any generator: the judge of text-to-image.

A small CNN reads an image ``(B, 3, 32, 32)`` in ``[0, 1]`` and, for each of the 9 grid cells, predicts
whether an object is there and, if so, its shape, colour and size: ``9 x (1 + 4 + 6 + 2)`` outputs. It is
trained on real renders of **every** (colour, shape) pair (:func:`genlab.data.shapes.scenes` with
``split="test"``, its own seed), with a binary cross-entropy on occupancy plus cross-entropies on the
attributes of the occupied cells. A scene is judged right when the cells the judge finds occupied
(probability > 0.5) are exactly as many as the caption's objects and the objects' attributes, their
cells (one object) or their relation (two objects) match (:func:`scene_correct`). Its penultimate
features ``(B, 256)`` serve a Fréchet distance between generated and real renders.

:func:`cached_judge` keeps a trained judge in the classifier cache (a safetensors file named by its
training settings and a digest of a few fixed renders, so a change to either trains a new one), and
:func:`caption_truth` reads the scene a ``shapes`` caption describes, so that a model's images drawn from
captions can be judged against them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from torch import nn
from torch.nn import functional as F

from genlab.data import shapes
from genlab.errors import DataError
from genlab.metrics.features import CACHE_ENV, DEFAULT_CACHE

log = logging.getLogger(__name__)

N_CELLS = 9
#: Outputs per cell: occupancy logit, then shape, colour and size logits.
HEADS = (1, len(shapes.SHAPES), len(shapes.COLOURS), len(shapes.SIZES))


@dataclass(frozen=True)
class Predictions:
    """The judge's reading of ``n`` images.

    Attributes:
        occupied: bool ``(n, 9)``: an object in the cell (probability > 0.5).
        attributes: int64 ``(n, 9, 3)``: the most likely shape, colour and size in each cell.
    """

    occupied: np.ndarray
    attributes: np.ndarray


class ShapesJudge(nn.Module):
    """``(B, 3, H, W)`` images in ``[0, 1]`` -> per-cell logits ``(B, 9, 13)``; :meth:`features` ``(B, 256)``."""

    def __init__(self) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.GroupNorm(8, c_out),
                                 nn.SiLU())

        # ~6.4M multiply-adds per 32x32 image: full resolution only for the first layer (small shapes are
        # 7 pixels across), then halving; cheap enough to train to high accuracy in about a CPU minute
        self.body = nn.Sequential(block(3, 24, 1), block(24, 48, 2), block(48, 64, 2), block(64, 96, 2),
                                  nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(96 * 16, 256), nn.SiLU())
        self.head = nn.Linear(256, N_CELLS * sum(HEADS))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(B, 256)`` of images ``(B, 3, H, W)`` in ``[0, 1]``."""
        return self.body(images * 2 - 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # images: (B, 3, H, W) -> (B, 9, 13)
        return self.head(self.features(images)).view(len(images), N_CELLS, sum(HEADS))

    def loss(self, images: torch.Tensor, objects: torch.Tensor) -> torch.Tensor:
        """Occupancy BCE plus attribute cross-entropies at occupied cells; ``objects (B, 2, 4)`` as in
        :class:`~genlab.data.shapes.Scenes`."""
        logits = self(images)                                                 # (B, 9, 13)
        occupancy, shape, colour, size = logits.split(HEADS, dim=2)
        present = objects[:, :, 3] >= 0                                       # (B, 2)
        rows = torch.arange(len(images), device=images.device)[:, None].expand(-1, 2)[present]
        cells = objects[:, :, 3][present]
        truth = torch.zeros(len(images), N_CELLS, device=images.device)
        truth[rows, cells] = 1.0
        total = F.binary_cross_entropy_with_logits(occupancy.squeeze(2), truth)
        for k, part in enumerate((shape, colour, size)):
            total = total + F.cross_entropy(part[rows, cells], objects[:, :, k][present])
        return total

    @torch.no_grad()
    def predict(self, images: np.ndarray, batch_size: int = 512) -> Predictions:
        """The judge's reading of float32 images ``(n, 3, H, W)`` in ``[0, 1]``."""
        was = self.training
        self.eval()
        occupied, attributes = [], []
        for start in range(0, len(images), batch_size):
            logits = self(torch.as_tensor(images[start:start + batch_size]))
            occupancy, *parts = logits.split(HEADS, dim=2)
            occupied.append((occupancy.squeeze(2) > 0).numpy())
            attributes.append(torch.stack([p.argmax(2) for p in parts], dim=2).numpy())
        self.train(was)
        return Predictions(np.concatenate(occupied), np.concatenate(attributes))

    @torch.no_grad()
    def embed(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Float64 features ``(n, 256)`` of images ``(n, 3, H, W)`` (for a Fréchet distance)."""
        was = self.training
        self.eval()
        out = [self.features(torch.as_tensor(images[s:s + batch_size])).double().numpy()
               for s in range(0, len(images), batch_size)]
        self.train(was)
        return np.concatenate(out)


def train_judge(n_images: int = 8000, *, steps: int = 800, batch_size: int = 64, lr: float = 3e-3,
                seed: int = 1234, split: str = "test") -> ShapesJudge:
    """A judge trained on ``n_images`` fresh renders (seed ``seed``) for ``steps`` AdamW steps with a cosine
    learning-rate decay: renders of every pair (``split="test"``, the judge), or of the training split's pairs
    alone (``"train"``: a discriminative peer of models that never see a held-out pair)."""
    data = shapes.scenes(n_images, seed=seed, split=split)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        judge = ShapesJudge()
    optimiser = torch.optim.AdamW(judge.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    images, objects = torch.as_tensor(data.images), torch.as_tensor(data.objects)
    judge.train()
    for _ in range(steps):
        index = torch.randint(n_images, (batch_size,), generator=generator)
        loss = judge.loss(images[index], objects[index])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    return judge.eval()


def scene_correct(predictions: Predictions, objects: np.ndarray, relation: np.ndarray) -> np.ndarray:
    """Bool ``(n,)``: the judged scene matches its truth.

    One object: exactly one occupied cell, the object's cell, with its shape, colour and size. Two
    objects: exactly two occupied cells, assignable to the caption's two objects so that each has its
    shape, colour and size and the relation holds between their cells (positions themselves are not in
    a two-object caption).

    Args:
        predictions: the judge's reading of ``n`` images.
        objects: int64 ``(n, 2, 4)`` truth (:class:`~genlab.data.shapes.Scenes`).
        relation: int64 ``(n,)`` relation index, ``-1`` for one object.
    """
    out = np.zeros(len(objects), dtype=bool)
    for i, (occupied, attributes) in enumerate(zip(predictions.occupied, predictions.attributes)):
        cells = np.flatnonzero(occupied)
        if relation[i] < 0:
            obj = objects[i, 0]
            out[i] = len(cells) == 1 and cells[0] == obj[3] and tuple(attributes[cells[0]]) == tuple(obj[:3])
        elif len(cells) == 2:
            a, b = (tuple(objects[i, k, :3]) for k in range(2))
            out[i] = any(tuple(attributes[p]) == a and tuple(attributes[q]) == b
                         and shapes.relation_holds(int(relation[i]), int(p), int(q))
                         for p, q in ((cells[0], cells[1]), (cells[1], cells[0])))
    return out


def attribute_accuracy(predictions: Predictions, objects: np.ndarray) -> dict[str, float]:
    """Per-attribute accuracy over every true object, and occupancy accuracy over every cell.

    ``position`` counts an object whose cell the judge finds occupied; ``shape``/``colour``/``size`` read
    the judge's attributes at the object's true cell.
    """
    present = objects[:, :, 3] >= 0
    rows = np.nonzero(present)[0]
    cells = objects[:, :, 3][present]
    truth = np.zeros_like(predictions.occupied)
    truth[rows, cells] = True
    found = predictions.attributes[rows, cells]                               # (m, 3)
    result = {name: float((found[:, k] == objects[:, :, k][present]).mean())
              for k, name in enumerate(("shape", "colour", "size"))}
    result["position"] = float(predictions.occupied[rows, cells].mean())
    result["occupancy"] = float((predictions.occupied == truth).mean())
    return result


@dataclass(frozen=True)
class JudgeTraining:
    """Settings of :func:`train_judge` (the defaults are the text-to-image benchmark's: about a CPU minute)."""

    n_images: int = 8000
    steps: int = 800
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 1234


#: Version of the cached judge's layout; part of its file name.
JUDGE_CACHE_VERSION = 1


def cached_judge(training: JudgeTraining = JudgeTraining(), *, cache_dir: str | os.PathLike | None = None
                 ) -> ShapesJudge:
    """The judge trained with ``training``: read from the cache folder when there, else trained and written.

    Args:
        training: the judge's training settings.
        cache_dir: the folder; ``None`` reads ``$GENLAB_CACHE``, else ``~/.cache/genlab/classifiers`` (the
            image feature classifiers' cache).
    """
    folder = Path(cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()
    renders = shapes.scenes(4, seed=0, split="test").images   # the rendering the judge learns, in the key
    key = hashlib.sha256(json.dumps({**asdict(training), "version": JUDGE_CACHE_VERSION}, sort_keys=True).encode()
                         + renders.tobytes()).hexdigest()
    path = folder / f"shapes-judge-{key[:16]}.safetensors"
    if path.is_file():
        judge = ShapesJudge()
        try:
            judge.load_state_dict(safetensors.torch.load_file(str(path)), strict=True)
            return judge.eval()
        except (OSError, RuntimeError, safetensors.SafetensorError) as error:
            log.warning("ignoring the cached shapes judge %s (%s); retraining", path, error)
    judge = train_judge(**asdict(training))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        safetensors.torch.save_file({k: v.contiguous() for k, v in judge.state_dict().items()}, str(tmp))
        tmp.replace(path)
    except OSError as error:   # a read-only cache costs a retraining next time, not the evaluation
        log.warning("could not cache the shapes judge at %s: %s", path, error)
    return judge


_OBJECT = re.compile(rf"\b({'|'.join(shapes.SIZES)}) ({'|'.join(shapes.COLOURS)}) ({'|'.join(shapes.SHAPES)})\b")
# longest first, so that "top left" is not read as "top"
_POSITION = re.compile(rf"\b({'|'.join(sorted(shapes.POSITIONS, key=len, reverse=True))})\b")
_RELATION = re.compile(rf"\b({'|'.join(shapes.RELATIONS)})\b")


def caption_truth(captions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scenes that ``shapes`` captions describe, laid out as :class:`~genlab.data.shapes.Scenes` holds
    them, for :func:`scene_correct`.

    Args:
        captions: ``(n,)`` captions in the grammar of :mod:`genlab.data.shapes` (any of its templates).

    Returns:
        ``objects`` int64 ``(n, 2, 4)`` (shape, colour, size, cell; a one-object caption's second row is
        -1, and a two-object caption names no cells, so theirs are -1) and ``relation`` int64 ``(n,)``
        (-1 for one object).

    Raises:
        DataError: a caption that is not a shapes caption.
    """
    objects = np.full((len(captions), 2, 4), -1, dtype=np.int64)
    relation = np.full(len(captions), -1, dtype=np.int64)
    colours = list(shapes.COLOURS)
    for i, caption in enumerate(captions):
        text = " ".join(w for w in shapes.words(str(caption)) if w.isalpha())
        found = list(_OBJECT.finditer(text))
        for k, match in enumerate(found[:2]):
            size, colour, shape = match.groups()
            objects[i, k, :3] = shapes.SHAPES.index(shape), colours.index(colour), shapes.SIZES.index(size)
        rest = _OBJECT.sub(" ", text)
        if len(found) == 1 and len(_POSITION.findall(rest)) == 1 and not _RELATION.search(rest):
            objects[i, 0, 3] = shapes.POSITIONS.index(_POSITION.search(rest).group(1))
        elif len(found) == 2 and (between := _RELATION.findall(text[found[0].end():found[1].start()])):
            relation[i] = shapes.RELATIONS.index(between[0])
        else:
            raise DataError(f"{caption!r} is not a shapes caption (one object with its size, colour, shape and "
                            f"place, or two related by {', '.join(shapes.RELATIONS)}); the judge reads only those")
    return objects, relation
