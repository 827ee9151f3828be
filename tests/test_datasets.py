"""Datasets: synthetic statistics, bundled and downloaded images, user files, and every bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genlab import datasets
from genlab.data import files, images, points
from genlab.data.dataset import fixed_split
from genlab.errors import DataError

POINT_SETS = [points.ring8, points.grid25, points.moons, points.swissroll]


@pytest.fixture
def mnist_dir() -> Path:
    """The folder holding ``mnist.npz``: ``$GENLAB_DATA``, else the repository's ``../shared/data``."""
    folder = Path(os.environ.get("GENLAB_DATA") or Path(__file__).parents[2] / "shared" / "data")
    if not (folder / "mnist.npz").is_file():
        pytest.skip(f"no mnist.npz in {folder}")
    return folder


def _png(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 ``(H, W)`` or ``(H, W, 3)`` array as a PNG, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


# --- synthetic points ---------------------------------------------------------------------------------

@pytest.mark.parametrize("loader, n_modes, std", [(points.ring8, 8, 0.01), (points.grid25, 25, 0.05)])
def test_mixture_points_sit_on_equally_weighted_modes(loader, n_modes, std):
    data = loader(n_train=10_000, n_test=2_500, seed=3)
    assert data.modes.shape == (n_modes, 2) and data.modes.dtype == np.float32
    assert data.mode_std == std
    assert data.class_names is None and data.y_train is None
    for x in (data.x_train, data.x_test):
        distances = np.linalg.norm(x[:, None, :] - data.modes[None], axis=-1)  # (n, n_modes)
        assert distances.min(axis=1).max() < 5 * std
        counts = np.bincount(distances.argmin(axis=1), minlength=n_modes)
        expected = len(x) / n_modes
        assert counts.min() > 0.7 * expected and counts.max() < 1.3 * expected


def test_mixture_modes_are_the_benchmark_positions():
    angles = 2 * np.pi * np.arange(8) / 8
    np.testing.assert_allclose(points.ring8().modes, np.stack([np.cos(angles), np.sin(angles)], 1), atol=1e-6)
    grid = points.grid25().modes
    assert sorted(set(grid[:, 0].tolist())) == [-4, -2, 0, 2, 4]
    assert len({tuple(mode) for mode in grid.tolist()}) == 25


@pytest.mark.parametrize("loader", POINT_SETS)
def test_point_sets_are_seeded_float32_and_split_independently(loader):
    data = loader(n_train=300, n_test=120, seed=7)
    assert data.modality == "points"
    assert data.x_train.shape == (300, 2) and data.x_test.shape == (120, 2)
    assert data.x_train.dtype == np.float32 and data.x_test.dtype == np.float32
    again = loader(n_train=300, n_test=120, seed=7)
    np.testing.assert_array_equal(data.x_train, again.x_train)
    np.testing.assert_array_equal(data.x_test, again.x_test)
    assert not np.array_equal(data.x_train, loader(n_train=300, n_test=120, seed=8).x_train)
    assert not np.array_equal(data.x_train[:120], data.x_test)


def test_moons_are_labelled_by_moon():
    data = points.moons(n_train=2_000, n_test=500)
    assert data.class_names == ("upper", "lower")
    assert data.y_train.dtype == np.int64 and set(data.y_train.tolist()) == {0, 1}
    upper = data.x_train[data.y_train == 0, 1].mean()
    lower = data.x_train[data.y_train == 1, 1].mean()
    assert upper > lower + 0.5


def test_swissroll_is_unlabelled_and_scaled():
    data = points.swissroll(n_train=2_000, n_test=500)
    assert data.class_names is None
    assert np.abs(data.x_train).max() < 2.0 and data.x_train.std() > 0.3


# --- images -------------------------------------------------------------------------------------------

def test_digits_shapes_range_labels_and_stable_split():
    data = images.digits()
    assert data.modality == "images"
    assert data.x_train.shape == (1438, 1, 8, 8) and data.x_test.shape == (359, 1, 8, 8)
    assert data.x_train.dtype == np.float32
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    assert data.class_names == tuple(str(k) for k in range(10))
    assert data.y_train.dtype == np.int64 and set(data.y_train.tolist()) == set(range(10))
    again = datasets.load("digits")
    np.testing.assert_array_equal(data.x_test, again.x_test)
    np.testing.assert_array_equal(data.y_test, again.y_test)


def test_mnist_from_data_dir_and_environment(mnist_dir, monkeypatch):
    data = datasets.load("mnist", data_dir=mnist_dir)
    assert data.x_train.shape == (60_000, 1, 28, 28) and data.x_test.shape == (10_000, 1, 28, 28)
    assert data.x_train.dtype == np.float32 and 0.0 <= data.x_train.min() and data.x_train.max() == 1.0
    assert data.y_test.dtype == np.int64 and set(data.y_test.tolist()) == set(range(10))
    assert data.class_names == tuple(str(k) for k in range(10))
    monkeypatch.setenv("GENLAB_DATA", str(mnist_dir))
    np.testing.assert_array_equal(images.mnist().y_test, data.y_test)


def test_mnist_without_data_dir_says_how_to_provide_it(monkeypatch):
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    with pytest.raises(DataError) as error:
        datasets.load("mnist")
    message = str(error.value)
    assert "mnist.npz" in message and "--data-dir DIR" in message and "GENLAB_DATA=DIR" in message


def test_mnist_missing_file_names_the_path(tmp_path, monkeypatch):
    monkeypatch.delenv("GENLAB_DATA", raising=False)
    with pytest.raises(DataError, match="mnist.npz.*does not exist"):
        images.mnist(tmp_path)
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    with pytest.raises(DataError) as error:
        images.mnist()
    assert str(tmp_path / "mnist.npz") in str(error.value)


def test_mnist_archive_missing_keys(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="lacks the array.*y_train"):
        images.mnist(tmp_path)


def test_flat_image_folder_round_trip(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, size=(5, 4, 6))  # (n, H, W)
    for k, array in enumerate(pixels):
        _png(tmp_path / f"img{k}.png", array)
    (tmp_path / "notes.txt").write_text("not an image")
    data = datasets.load(tmp_path)
    assert data.class_names is None
    assert data.x_train.shape == (4, 1, 4, 6) and data.x_test.shape == (1, 1, 4, 6)
    train, test = fixed_split(5)
    np.testing.assert_allclose(data.x_train[:, 0], pixels[train] / 255, atol=1e-6)
    np.testing.assert_allclose(data.x_test[:, 0], pixels[test] / 255, atol=1e-6)


def test_one_colour_image_makes_every_image_rgb(tmp_path):
    _png(tmp_path / "a.png", np.full((3, 3), 128))
    _png(tmp_path / "b.png", np.full((3, 3), 64))
    _png(tmp_path / "c.png", np.stack([np.full((3, 3), v) for v in (255, 0, 0)], axis=-1))
    data = images.image_folder(tmp_path)
    x = np.concatenate([data.x_train, data.x_test])
    assert x.shape == (3, 3, 3, 3)
    gray = x[np.isclose(x[:, 0, 0, 0], 64 / 255)]
    np.testing.assert_allclose(gray, 64 / 255, atol=1e-6)  # replicated into all three channels


def test_labelled_image_folder_uses_sorted_sub_folders(tmp_path):
    for k in range(4):
        _png(tmp_path / "dog" / f"{k}.png", np.full((5, 5), 255))
        _png(tmp_path / "cat" / f"{k}.jpg", np.zeros((5, 5)))
    data = datasets.load(str(tmp_path))
    assert data.class_names == ("cat", "dog")
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    assert len(x) == 8 and np.bincount(y).tolist() == [4, 4]
    assert x[y == 0].max() < 0.05 and x[y == 1].min() > 0.95


def test_image_folder_with_corrupt_file_names_it(tmp_path):
    _png(tmp_path / "good.png", np.zeros((4, 4)))
    (tmp_path / "x.png").write_bytes(b"\x89PNG garbage, not an image")
    with pytest.raises(DataError, match=r"x\.png is not a readable image"):
        images.image_folder(tmp_path)


def test_image_folder_with_mismatched_sizes_names_file_and_sizes(tmp_path):
    _png(tmp_path / "a.png", np.zeros((4, 4)))
    _png(tmp_path / "b.png", np.zeros((4, 7)))
    with pytest.raises(DataError) as error:
        images.image_folder(tmp_path)
    message = str(error.value)
    assert "b.png is 7x4 pixels" in message and "a.png is 4x4" in message


def test_empty_image_folder(tmp_path):
    with pytest.raises(DataError, match="holds no images"):
        images.image_folder(tmp_path)


def test_image_folder_with_loose_images_and_class_folders(tmp_path):
    _png(tmp_path / "a.png", np.zeros((4, 4)))
    _png(tmp_path / "cls" / "b.png", np.zeros((4, 4)))
    with pytest.raises(DataError, match="both images"):
        images.image_folder(tmp_path)


def test_image_folder_with_empty_class_folder(tmp_path):
    _png(tmp_path / "cat" / "a.png", np.zeros((4, 4)))
    _png(tmp_path / "cat" / "b.png", np.zeros((4, 4)))
    (tmp_path / "dog").mkdir()
    with pytest.raises(DataError, match="class folder .*dog holds no images"):
        images.image_folder(tmp_path)


# --- user files ---------------------------------------------------------------------------------------

def _assert_split_of(data, x: np.ndarray) -> None:
    """``data`` holds exactly the rows of ``x`` (n, d), split by :func:`fixed_split`."""
    train, test = fixed_split(len(x))
    np.testing.assert_allclose(data.x_train, x[train], rtol=1e-6)
    np.testing.assert_allclose(data.x_test, x[test], rtol=1e-6)
    assert data.x_train.dtype == np.float32


def test_npy_round_trip(tmp_path):
    x = np.random.default_rng(1).normal(size=(50, 3))
    np.save(tmp_path / "x.npy", x)
    data = datasets.load(tmp_path / "x.npy")
    assert data.modality == "points" and data.class_names is None
    _assert_split_of(data, x)


def test_npz_round_trip_with_labels(tmp_path):
    x = np.random.default_rng(2).normal(size=(40, 2)).astype(np.float32)
    y = np.where(np.arange(40) % 3 == 0, 7, 3)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = files.load_file(tmp_path / "d.npz")
    _assert_split_of(data, x)
    assert data.class_names == ("3", "7")
    train, _ = fixed_split(40)
    np.testing.assert_array_equal(data.y_train, (y[train] == 7).astype(np.int64))


def test_npz_with_one_array_under_another_key(tmp_path):
    x = np.arange(20.0).reshape(10, 2)
    np.savez(tmp_path / "d.npz", points=x)
    _assert_split_of(files.load_file(tmp_path / "d.npz"), x)


def test_npz_with_several_arrays_and_no_x(tmp_path):
    np.savez(tmp_path / "d.npz", a=np.zeros((4, 2)), b=np.zeros((4, 2)))
    with pytest.raises(DataError, match="under the key 'x'.*a, b"):
        files.load_file(tmp_path / "d.npz")


@pytest.mark.parametrize("header", ["", "a,b,c\n"])
def test_csv_round_trip_with_and_without_header(tmp_path, header):
    x = np.random.default_rng(3).normal(size=(30, 3)).round(4)
    path = tmp_path / "data.csv"
    path.write_text(header + "\n".join(",".join(f"{v}" for v in row) for row in x) + "\n")
    data = datasets.load(str(path))
    _assert_split_of(data, x)
    assert data.name == str(path)


def test_csv_text_in_numeric_column_names_column_and_row(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n3,abc\n4,5\n")
    with pytest.raises(DataError, match=r"data\.csv: column 'b' row 3 holds 'abc', not a number"):
        files.load_file(path)
    path.write_text("1,2\n3,4\n5,x7\n")
    with pytest.raises(DataError, match=r"column 2 row 3 holds 'x7'"):
        files.load_file(path)


def test_csv_blank_lines_keep_row_numbers(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n\n3,4\n5,oops\n")
    with pytest.raises(DataError, match="column 'b' row 5 holds 'oops'"):
        files.load_file(path)


@pytest.mark.parametrize("cell, expected", [("nan", "holds nan"), ("inf", "holds inf"), ("-inf", "holds -inf"),
                                            ("", "is empty")])
def test_csv_nan_inf_and_empty_cells_are_located(tmp_path, cell, expected):
    path = tmp_path / "data.csv"
    path.write_text(f"a,b\n1,2\n3,{cell}\n4,5\n")
    with pytest.raises(DataError, match=f"data.csv: column 'b' row 3 {expected}"):
        files.load_file(path)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_npy_nan_and_inf_are_located(tmp_path, value):
    x = np.zeros((5, 2))
    x[3, 1] = value
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(DataError, match=r"x\.npy: element \[3, 1\] holds (nan|inf)"):
        files.load_file(tmp_path / "x.npy")


def test_values_beyond_float32_range(tmp_path):
    x = np.zeros((5, 2))
    x[2, 0] = 1e39
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(DataError, match="float32 range"):
        files.load_file(tmp_path / "x.npy")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv does not exist"):
        files.load_file(tmp_path / "nope.csv")


@pytest.mark.parametrize("name", ["x.csv", "x.npy", "x.npz"])
def test_empty_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(DataError, match=rf"{name} is empty \(0 bytes\)"):
        files.load_file(tmp_path / name)


@pytest.mark.parametrize(("content", "message"), [
    ("\n\n", r"x\.csv holds no rows"),
    ("a,b\n", r"x\.csv has a header row but no data rows"),
    ("a,b\n1,2\n", r"x\.csv: need at least 2 records.*found 1"),
    ("1,2\n3,4,5\n", r"x\.csv is not a well-formed CSV file.*line 2"),
], ids=["no-rows", "header-only", "one-record", "ragged"])
def test_malformed_csv(tmp_path, content, message):
    (tmp_path / "x.csv").write_text(content)
    with pytest.raises(DataError, match=message):
        files.load_file(tmp_path / "x.csv")


def test_one_dimensional_npy_suggests_reshape(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(10.0))
    with pytest.raises(DataError, match=r"1-D.*reshape\(-1, 1\)"):
        files.load_file(tmp_path / "x.npy")


def test_object_npy_is_never_unpickled(tmp_path):
    np.save(tmp_path / "x.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"x\.npy is not a NumPy \.npy array of numbers"):
        files.load_file(tmp_path / "x.npy")


def test_npz_labels_must_match_records(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), y=np.zeros(3, dtype=int))
    with pytest.raises(DataError, match=r"labels under 'y'.*\(4,\)"):
        files.load_file(tmp_path / "d.npz")


def test_unknown_extension_lists_supported(tmp_path):
    (tmp_path / "x.dat").write_text("1 2\n3 4\n")
    with pytest.raises(DataError) as error:
        datasets.load(tmp_path / "x.dat")
    assert all(suffix in str(error.value) for suffix in (".npy", ".npz", ".csv"))


# --- registry -----------------------------------------------------------------------------------------

def test_registry_names_and_descriptions():
    assert datasets.names() == ["ring8", "grid25", "moons", "swissroll", "digits", "mnist", "shapes",
                                "tinyshakespeare", "pystdlib", "adult", "moses", "chorales"]
    for name in datasets.names():
        description = datasets.describe(name)
        assert description.startswith(("points (2,)", "images (1,", "images (3,", "text ()", "tables (15,", "smiles ()", "music ()")) and "\n" not in description
    with pytest.raises(DataError, match="unknown dataset 'ring9'"):
        datasets.describe("ring9")


def test_load_passes_the_seed_to_synthetic_sets():
    a, b = datasets.load("ring8", seed=1), datasets.load("ring8", seed=2)
    assert isinstance(a, datasets.Dataset)
    np.testing.assert_array_equal(a.x_train, points.ring8(seed=1).x_train)
    assert not np.array_equal(a.x_train, b.x_train)


def test_unknown_dataset_name_lists_the_builtins():
    with pytest.raises(DataError) as error:
        datasets.load("ring9")
    message = str(error.value)
    assert "'ring9'" in message and "nor an existing file or folder" in message
    assert all(name in message for name in datasets.names())
