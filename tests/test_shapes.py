"""The ``shapes`` dataset: seeded renders, captions that state the truth, the held-out pair split, and
the caption codec's vocabulary and prompt checks."""

from __future__ import annotations

import numpy as np
import pytest

from genlab import datasets
from genlab.data import shapes
from genlab.data.captions import BOS, PAD, CaptionedImageCodec
from genlab.data.codec_state import codec_from_state
from genlab.data.dataset import Dataset
from genlab.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def train() -> shapes.Scenes:
    return shapes.scenes(300, seed=3)


def test_renders_are_seeded_rgb_in_range_and_anti_aliased(train):
    again = shapes.scenes(300, seed=3)
    np.testing.assert_array_equal(train.images, again.images)
    assert not np.array_equal(train.images, shapes.scenes(300, seed=4).images)
    assert train.images.shape == (300, 3, 32, 32) and train.images.dtype == np.float32
    assert 0 <= train.images.min() and train.images.max() <= 1
    # anti-aliasing: edge pixels mix object and background, so some values lie strictly between the
    # background and every object colour on the red channel (box filter of 4x4 sub-pixels)
    levels = {round(255 * c[0]) for c in shapes.COLOURS.values()} | {round(255 * shapes.BACKGROUND[0])}
    red = np.round(train.images[:, 0] * 255).astype(int)
    assert np.isin(red, list(levels), invert=True).mean() > 0.005
    assert shapes.scenes(2, seed=0, size=64).images.shape == (2, 3, 64, 64)


def test_each_object_is_drawn_in_its_cell_with_its_colour(train):
    colours = np.array(list(shapes.COLOURS.values()))
    for image, objects, relation in zip(train.images[:60], train.objects[:60], train.relation[:60]):
        if relation >= 0:
            continue
        shape, colour, size, position = objects[0]
        row, col = divmod(int(position), 3)
        cell = image[:, row * 32 // 3:(row + 1) * 32 // 3 + 1, col * 32 // 3:(col + 1) * 32 // 3 + 1]
        # the cell's most saturated pixel is the object's colour
        flat = cell.reshape(3, -1)
        pixel = flat[:, np.argmax(flat.max(0) - flat.min(0))]
        assert np.argmin(((colours - pixel) ** 2).sum(1)) == colour


def test_captions_state_every_attribute_and_the_relation(train):
    names = list(shapes.COLOURS)
    for caption, objects, relation in zip(train.captions, train.objects, train.relation):
        if relation < 0:
            shape, colour, size, position = objects[0]
            assert f"{shapes.SIZES[size]} {names[colour]} {shapes.SHAPES[shape]}" in caption
            assert caption.endswith(shapes.POSITIONS[position]) or f"the {shapes.POSITIONS[position]} holds" in caption
        else:
            a, b = (shapes.describe(*objects[k, :3]) for k in range(2))
            assert f"{a} {shapes.RELATIONS[relation]} a {b}" in caption
            assert shapes.relation_holds(int(relation), int(objects[0, 3]), int(objects[1, 3]))
    assert len({c.split(" ")[0] for c in train.captions}) >= 4   # the wording varies
    assert 0.3 < (train.relation >= 0).mean() < 0.7


def test_held_out_pairs_never_reach_training_but_do_reach_test(train):
    pairs = {(shapes.SHAPES[s], list(shapes.COLOURS)[c]) for o in train.objects for s, c, *_ in o if s >= 0}
    assert not pairs & {(shape, colour) for colour, shape in shapes.HELD_OUT_PAIRS}
    assert not train.held_out.any()
    test = shapes.scenes(300, seed=3, split="test")
    assert 0.2 < test.held_out.mean() < 0.6
    for colour, shape in shapes.HELD_OUT_PAIRS[:1]:
        assert not any(f"{colour} {shape}" in c for c in train.captions)
        assert any(f"{colour} {shape}" in c for c in test.captions)


def test_registry_and_dataset_carry_captions():
    data = shapes.shapes(0, n_train=20, n_test=10)
    assert data.captions_train.shape == (20,) and data.captions_test.shape == (10,)
    assert "captioned" in data.describe()
    assert "shapes" in datasets.names() and "captioned" in datasets.describe("shapes")
    with pytest.raises(DataError, match="both splits"):
        Dataset(name="x", modality="images", x_train=data.x_train, x_test=data.x_test,
                captions_train=data.captions_train)
    with pytest.raises(DataError, match="one per record"):
        Dataset(name="x", modality="images", x_train=data.x_train, x_test=data.x_test,
                captions_train=data.captions_train[:5], captions_test=data.captions_test)
    with pytest.raises(DataError, match="64x64"):
        shapes.scenes(1, seed=0, size=48)


def test_caption_codec_tokens_round_trip_and_refuses_bad_prompts(train):
    codec = CaptionedImageCodec.from_captions((3, 32, 32), train.captions)
    assert "triangle" in codec.vocabulary and "purple" not in codec.vocabulary
    tokens = codec.tokens(["a small red circle at the top left", None])
    assert tokens.shape == (2, codec.length) and tokens[:, 0].tolist() == [BOS, BOS]
    assert (tokens[0, 1:9] != PAD).all() and (tokens[0, 9:] == PAD).all() and (tokens[1, 1:] == PAD).all()
    ids = {word: i for i, word in enumerate(codec.vocabulary)}
    assert tokens[0, 2] - 2 == ids["small"]
    again = codec_from_state(codec.state())
    assert isinstance(again, CaptionedImageCodec) and again.vocabulary == codec.vocabulary
    assert (again.tokens(["a small red circle at the top left"]) == tokens[:1]).all()
    with pytest.raises(ConfigError, match="empty"):
        codec.tokens(["  , "])
    with pytest.raises(ConfigError, match="purple, tiny"):
        codec.tokens(["a tiny purple circle"])
    with pytest.raises(ConfigError, match="at most"):
        codec.tokens([" ".join(["red"] * (codec.max_words + 1))])
