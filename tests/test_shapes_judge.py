"""The shapes judge: its scoring rules on hand-made readings, and that the CNN trains and reads images."""

from __future__ import annotations

import numpy as np
import torch

from genlab.data import shapes
from genlab.metrics.shapes_judge import Predictions, ShapesJudge, attribute_accuracy, scene_correct, train_judge


def truth_readings(scenes: shapes.Scenes) -> Predictions:
    """What a perfect judge would read."""
    occupied = np.zeros((len(scenes.objects), 9), dtype=bool)
    attributes = np.zeros((len(scenes.objects), 9, 3), dtype=np.int64)
    for i, objects in enumerate(scenes.objects):
        for obj in objects:
            if obj[3] >= 0:
                occupied[i, obj[3]] = True
                attributes[i, obj[3]] = obj[:3]
    return Predictions(occupied, attributes)


def test_scene_correct_accepts_the_truth_and_rejects_each_kind_of_error():
    scenes = shapes.scenes(200, seed=5, split="test")
    perfect = truth_readings(scenes)
    assert scene_correct(perfect, scenes.objects, scenes.relation).all()
    assert attribute_accuracy(perfect, scenes.objects) == {"shape": 1.0, "colour": 1.0, "size": 1.0, "position": 1.0,
                                                           "occupancy": 1.0}
    single, pair = int(np.flatnonzero(scenes.relation < 0)[0]), int(np.flatnonzero(scenes.relation >= 0)[0])
    for i in (single, pair):
        for k in range(3):   # a wrong shape, colour or size
            wrong = Predictions(perfect.occupied.copy(), perfect.attributes.copy())
            cell = scenes.objects[i, 0, 3]
            wrong.attributes[i, cell, k] = (wrong.attributes[i, cell, k] + 1) % (len(shapes.SHAPES) if k == 0 else 2)
            assert not scene_correct(wrong, scenes.objects, scenes.relation)[i]
        extra = Predictions(perfect.occupied.copy(), perfect.attributes)
        extra.occupied[i, np.flatnonzero(~extra.occupied[i])[0]] = True   # a spurious object
        assert not scene_correct(extra, scenes.objects, scenes.relation)[i]
    # the single object in another cell; the pair with its relation reversed
    moved = truth_readings(scenes)
    cell = scenes.objects[single, 0, 3]
    other = (cell + 1) % 9
    moved.occupied[single, [cell, other]] = [False, True]
    moved.attributes[single, other] = moved.attributes[single, cell]
    assert not scene_correct(moved, scenes.objects, scenes.relation)[single]
    swapped = truth_readings(scenes)
    a, b = scenes.objects[pair, 0, 3], scenes.objects[pair, 1, 3]
    swapped.attributes[pair, [a, b]] = swapped.attributes[pair, [b, a]]
    assert not scene_correct(swapped, scenes.objects, scenes.relation)[pair]


def test_the_judge_trains_and_reads_images(single_thread):
    scenes = shapes.scenes(32, seed=6, split="test")
    images, objects = torch.as_tensor(scenes.images), torch.as_tensor(scenes.objects)
    torch.manual_seed(0)
    judge = ShapesJudge()
    assert judge(images[:2]).shape == (2, 9, 13)
    optimiser = torch.optim.Adam(judge.parameters(), lr=2e-3)
    losses = []
    for _ in range(15):   # the same batch: the loss must fall well below its start
        loss = judge.loss(images, objects)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0]
    trained = train_judge(64, steps=2, batch_size=8, seed=1)
    readings = trained.predict(scenes.images, batch_size=16)
    assert readings.occupied.shape == (32, 9) and readings.attributes.shape == (32, 9, 3)
    assert trained.embed(scenes.images[:4]).shape == (4, 256)
