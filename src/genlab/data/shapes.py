"""``shapes``: procedural, seeded RGB scenes of one or two coloured objects, each with a caption.

Each object has a shape (:data:`SHAPES`), a colour (:data:`COLOURS`), a size (:data:`SIZES`) and a cell of
a 3x3 grid (:data:`POSITIONS`); it is drawn with PIL at :data:`SUPERSAMPLE` times the resolution and
box-filtered down (anti-aliasing), its centre jittered by up to :data:`JITTER` of a cell. A scene holds
one object (caption states all four attributes: ``"a small red circle at the top left"``) or two in
different cells (the caption states both objects' shape, colour and size and their relation, ``left of``
/ ``right of`` / ``above`` / ``below``, true of their cells: ``"a large blue square below a small green
triangle"``). Wording varies over :data:`SINGLE_TEMPLATES` and :data:`PAIR_TEMPLATES`.

Compositional split: no training object has a (colour, shape) pair of :data:`HELD_OUT_PAIRS` (e.g. no
red triangle is ever rendered for training, though red things and triangles are); the test split draws
from every pair, and :class:`Scenes` flags the test scenes with a held-out object.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from genlab.data.dataset import Dataset
from genlab.errors import DataError

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
#: Colour names and their RGB values in [0, 1], chosen far apart (each channel 0 or ~1).
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.9, 0.1, 0.1), "green": (0.1, 0.8, 0.1), "blue": (0.15, 0.25, 0.95),
    "yellow": (0.95, 0.9, 0.1), "magenta": (0.9, 0.1, 0.9), "cyan": (0.1, 0.85, 0.9),
}
SIZES: tuple[str, ...] = ("small", "large")
#: Grid cells row by row; index ``3 * row + column``.
POSITIONS: tuple[str, ...] = ("top left", "top", "top right", "left", "centre", "right",
                              "bottom left", "bottom", "bottom right")
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
#: (colour, shape) pairs never rendered in the training split.
HELD_OUT_PAIRS: tuple[tuple[str, str], ...] = (("red", "triangle"), ("green", "star"), ("blue", "circle"),
                                               ("yellow", "square"), ("magenta", "star"), ("cyan", "circle"))
#: Object diameter as a share of the image side, per size.
DIAMETER = {"small": 0.22, "large": 0.34}
BACKGROUND = (0.08, 0.08, 0.08)
SUPERSAMPLE = 4
#: Largest shift of an object's centre, as a share of a cell's side, along each axis.
JITTER = 0.12
#: Share of two-object scenes.
PAIR_SHARE = 0.5
SINGLE_TEMPLATES: tuple[str, ...] = (
    "a {size} {colour} {shape} at the {position}",
    "there is a {size} {colour} {shape} at the {position}",
    "{size} {colour} {shape}, {position}",
    "the {position} holds a {size} {colour} {shape}",
)
PAIR_TEMPLATES: tuple[str, ...] = (
    "a {a} {relation} a {b}",
    "two objects: a {a} {relation} a {b}",
    "there is a {a} {relation} a {b}",
)
N_TRAIN, N_TEST = 12_000, 2_000


@dataclass(frozen=True)
class Scenes:
    """Rendered scenes with their truth.

    Attributes:
        images: float32 ``(n, 3, H, W)`` in ``[0, 1]``.
        captions: object ``(n,)`` of ``str``.
        objects: int64 ``(n, 2, 4)``: per object slot ``(shape, colour, size, position)`` indices into
            :data:`SHAPES`, ``list(COLOURS)``, :data:`SIZES`, :data:`POSITIONS`; slot 1 is ``-1`` in
            one-object scenes. In a two-object scene the caption reads "slot 0 <relation> slot 1".
        relation: int64 ``(n,)`` index into :data:`RELATIONS`, ``-1`` for one object.
        held_out: bool ``(n,)``: some object has a pair of :data:`HELD_OUT_PAIRS`.
    """

    images: np.ndarray
    captions: np.ndarray
    objects: np.ndarray
    relation: np.ndarray
    held_out: np.ndarray


def relation_holds(relation: int, cell_a: int, cell_b: int) -> bool:
    """Whether object ``a`` in grid cell ``cell_a`` is ``RELATIONS[relation]`` object ``b`` in ``cell_b``."""
    (row_a, col_a), (row_b, col_b) = divmod(cell_a, 3), divmod(cell_b, 3)
    return {"left of": col_a < col_b, "right of": col_a > col_b,
            "above": row_a < row_b, "below": row_a > row_b}[RELATIONS[relation]]


def is_held_out(shape: int, colour: int) -> bool:
    """Whether the (colour, shape) pair is one of :data:`HELD_OUT_PAIRS`."""
    return (list(COLOURS)[colour], SHAPES[shape]) in HELD_OUT_PAIRS


def describe(shape: int, colour: int, size: int) -> str:
    """``"small red circle"`` for attribute indices."""
    return f"{SIZES[size]} {list(COLOURS)[colour]} {SHAPES[shape]}"


def single_caption(obj: tuple[int, int, int, int], template: int = 0) -> str:
    """The caption of a one-object scene ``obj = (shape, colour, size, position)`` in template ``template``."""
    shape, colour, size, position = obj
    return SINGLE_TEMPLATES[template].format(size=SIZES[size], colour=list(COLOURS)[colour], shape=SHAPES[shape],
                                             position=POSITIONS[position])


def pair_caption(a: tuple[int, ...], b: tuple[int, ...], relation: int, template: int = 0) -> str:
    """The caption of a two-object scene: ``a`` is ``RELATIONS[relation]`` ``b``."""
    return PAIR_TEMPLATES[template].format(a=describe(*a[:3]), b=describe(*b[:3]), relation=RELATIONS[relation])


def words(caption: str) -> list[str]:
    """Lower-case word tokens of a caption; punctuation (``,`` ``:``) is a word of its own."""
    return re.findall(r"[a-z]+|[,:]", caption.lower())


def render(objects: list[tuple[int, int, int, int]], offsets: np.ndarray, size: int = 32) -> np.ndarray:
    """One scene: float32 ``(3, size, size)`` in ``[0, 1]``.

    Args:
        objects: ``(shape, colour, size, position)`` index tuples.
        offsets: float ``(len(objects), 2)`` centre shifts in units of a cell's side, each in ``[-JITTER, JITTER]``.
        size: image side in pixels.
    """
    from PIL import Image, ImageDraw

    side = size * SUPERSAMPLE
    canvas = Image.new("RGB", (side, side), tuple(round(255 * c) for c in BACKGROUND))
    draw = ImageDraw.Draw(canvas)
    cell = side / 3
    for (shape, colour, scale, position), (dx, dy) in zip(objects, offsets):
        row, col = divmod(position, 3)
        cx, cy = (col + 0.5 + dx) * cell, (row + 0.5 + dy) * cell
        r = DIAMETER[SIZES[scale]] * side / 2
        fill = tuple(round(255 * c) for c in list(COLOURS.values())[colour])
        name = SHAPES[shape]
        if name == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        elif name == "square":
            h = r * 0.85   # about the circle's area
            draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=fill)
        elif name == "triangle":
            draw.polygon([(cx + r * math.cos(a), cy - r * math.sin(a))
                          for a in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3, math.pi / 2 + 4 * math.pi / 3)],
                         fill=fill)
        else:   # a five-pointed star, inner radius 0.45 r
            draw.polygon([(cx + rad * math.cos(a), cy - rad * math.sin(a))
                          for k in range(10)
                          for rad, a in [(r if k % 2 == 0 else 0.45 * r, math.pi / 2 + k * math.pi / 5)]],
                         fill=fill)
    small = canvas.resize((size, size), Image.Resampling.BOX)   # box filter of the 4x4 blocks: anti-aliasing
    return (np.asarray(small, dtype=np.float32) / 255.0).transpose(2, 0, 1).copy()


def scenes(n: int, *, seed: int, split: str = "train", size: int = 32, pair_share: float = PAIR_SHARE) -> Scenes:
    """Draw ``n`` random scenes.

    Args:
        n: number of scenes.
        seed: seed of every random choice (the same seed gives the same scenes).
        split: ``"train"`` never renders a pair of :data:`HELD_OUT_PAIRS`; ``"test"`` draws every pair.
        size: image side in pixels (32 or 64).
        pair_share: share of two-object scenes.

    Raises:
        DataError: an unknown split or an image size not in (32, 64).
    """
    if split not in ("train", "test"):
        raise DataError(f"unknown shapes split {split!r}; choose train or test")
    if size not in (32, 64):
        raise DataError(f"shapes renders 32x32 or 64x64 images, not {size}x{size}")
    rng = np.random.default_rng([seed, ("train", "test").index(split)])   # the splits never share a stream
    images = np.empty((n, 3, size, size), dtype=np.float32)
    captions = np.empty(n, dtype=object)
    objects = np.full((n, 2, 4), -1, dtype=np.int64)
    relation = np.full(n, -1, dtype=np.int64)
    held = np.zeros(n, dtype=bool)

    def draw_object(position: int) -> tuple[int, int, int, int]:
        while True:
            shape, colour = int(rng.integers(len(SHAPES))), int(rng.integers(len(COLOURS)))
            if split == "test" or not is_held_out(shape, colour):
                return shape, colour, int(rng.integers(len(SIZES))), position

    for i in range(n):
        if rng.random() < pair_share:
            cell_a, cell_b = (int(c) for c in rng.choice(9, size=2, replace=False))
            true = [k for k in range(len(RELATIONS)) if relation_holds(k, cell_a, cell_b)]
            relation[i] = true[int(rng.integers(len(true)))]
            scene = [draw_object(cell_a), draw_object(cell_b)]
            captions[i] = pair_caption(*scene, int(relation[i]), int(rng.integers(len(PAIR_TEMPLATES))))
        else:
            scene = [draw_object(int(rng.integers(9)))]
            captions[i] = single_caption(scene[0], int(rng.integers(len(SINGLE_TEMPLATES))))
        objects[i, :len(scene)] = scene
        held[i] = any(is_held_out(obj[0], obj[1]) for obj in scene)
        images[i] = render(scene, rng.uniform(-JITTER, JITTER, size=(len(scene), 2)), size)
    return Scenes(images, captions, objects, relation, held)


def shapes(seed: int = 0, *, size: int = 32, n_train: int = N_TRAIN, n_test: int = N_TEST) -> Dataset:
    """The ``shapes`` dataset: ``n_train`` training scenes (no held-out pair) and ``n_test`` test scenes
    (every pair), captions in ``captions_train`` / ``captions_test``; unlabelled (the structured truth is
    :func:`scenes`'s, for judging), both drawn from ``seed``."""
    train, test = scenes(n_train, seed=seed, split="train", size=size), scenes(n_test, seed=seed, split="test",
                                                                                size=size)
    return Dataset(name="shapes", modality="images", x_train=train.images, x_test=test.images,
                   captions_train=train.captions, captions_test=test.captions)
