"""The dataset registry: built-in names, and paths to user files and image folders.

:func:`load` takes a built-in name (``ring8``, ``grid25``, ``moons``, ``swissroll``, ``digits``, ``mnist``,
``tinyshakespeare``, ``pystdlib``, ``adult``, ``shapes``, ``moses``, ``chorales``) or a path: a ``.npy``/``.npz``/``.csv`` file of points, a
``.csv`` table, a ``.smi`` file of molecules (or a ``.csv``/``.txt`` file read with ``modality="smiles"``),
a text file (``.txt``, ``.py``, ...), a folder of images, or a folder of text files.
A ``.csv`` file is a table (modality ``tables``) when asked (``modality="tables"`` or a ``target``) or
when it is not purely numeric (:func:`genlab.data.table_files.is_table_file`); a purely numeric one stays
points, as it always was. A built-in name wins over a
file of the same name in the working directory; write ``./ring8`` to mean the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from genlab.data import files, images, music, points, shapes, smiles, table_datasets, table_files, text
from genlab.data.dataset import MODALITIES, Dataset, Modality
from genlab.errors import DataError, unknown_choice


@dataclass(frozen=True)
class Builtin:
    """One registered dataset.

    Attributes:
        loader: ``loader(data_dir, seed)`` builds the dataset; each uses only the arguments it needs.
        description: shape, size and source, for ``genlab datasets``.
        modality: ``"points"``, ``"images"`` or ``"text"``.
    """

    loader: Callable[[str | os.PathLike | None, int], Dataset]
    description: str
    modality: Modality


BUILTINS: dict[str, Builtin] = {
    "ring8": Builtin(
        lambda data_dir, seed: points.ring8(seed=seed),
        "(2,), 10,000 train / 2,500 test: 8 Gaussians on the unit circle, std 0.01 "
        "(VEEGAN/PacGAN ring); synthetic, seeded",
        "points"),
    "grid25": Builtin(
        lambda data_dir, seed: points.grid25(seed=seed),
        "(2,), 10,000 train / 2,500 test: 25 Gaussians on {-4,-2,0,2,4}², std 0.05 "
        "(VEEGAN/PacGAN grid); synthetic, seeded",
        "points"),
    "moons": Builtin(
        lambda data_dir, seed: points.moons(seed=seed),
        "(2,), 10,000 train / 2,500 test, 2 classes: two interleaved half circles, noise 0.05; "
        "synthetic (scikit-learn make_moons), seeded",
        "points"),
    "swissroll": Builtin(
        lambda data_dir, seed: points.swissroll(seed=seed),
        "(2,), 10,000 train / 2,500 test: a 2-D swiss roll; synthetic (scikit-learn make_swiss_roll), seeded",
        "points"),
    "digits": Builtin(
        lambda data_dir, seed: images.digits(),
        "(1, 8, 8), 1,438 train / 359 test, 10 classes: handwritten digits; bundled with scikit-learn",
        "images"),
    "mnist": Builtin(
        lambda data_dir, seed: images.mnist(data_dir),
        f"(1, 28, 28), 60,000 train / 10,000 test, 10 classes: handwritten digits; needs {images.MNIST_FILE} "
        f"in --data-dir DIR or {images.DATA_ENV}=DIR",
        "images"),
    "shapes": Builtin(
        lambda data_dir, seed: shapes.shapes(seed),
        f"(3, 32, 32), {shapes.N_TRAIN:,} train / {shapes.N_TEST:,} test, captioned: one or two coloured "
        f"shapes on a 3x3 grid with a caption each; held-out colour-shape pairs appear only in test; "
        f"procedural (PIL), seeded",
        "images"),
    "tinyshakespeare": Builtin(
        lambda data_dir, seed: text.tinyshakespeare(data_dir),
        f"(), 1 train / 1 test document (first 90% / last 10% of 1,115,394 characters): Tiny Shakespeare; "
        f"needs {text.SHAKESPEARE_FILE} in --data-dir DIR or {images.DATA_ENV}=DIR",
        "text"),
    "pystdlib": Builtin(
        lambda data_dir, seed: text.pystdlib(),
        "(), one document per .py file, split 80/20 by file: the running Python's standard library "
        "without its tests (differs between Python versions)",
        "text"),
    "adult": Builtin(
        lambda data_dir, seed: table_datasets.adult(data_dir),
        f"(15,), 32,561 train / 16,281 test, 2 classes (target income): UCI Adult census income, 6 numeric + "
        f"9 categorical columns with missing values; needs {' and '.join(table_datasets.ADULT_FILES)} in --data-dir DIR "
        f"or {images.DATA_ENV}=DIR",
        "tables"),
    "moses": Builtin(
        lambda data_dir, seed: smiles.moses(),
        "(), 1,584,663 train / 176,074 test SMILES: the MOSES benchmark's molecules; needs the molsets "
        "wheel's data files (pip install --no-deps molsets==0.3.1; genlab.data.smiles.moses(n_train=...) "
        "for a subset)",
        "smiles"),
    "chorales": Builtin(
        lambda data_dir, seed: music.chorales(),
        "(), the four-part Bach chorales of music21's bundled corpus as eighth-note time-grid strings, "
        "split 80/20 by piece; needs music21 (pip install 'genlab[science]')",
        "music"),
}


def names() -> list[str]:
    """The built-in dataset names, points first, then images, then text, then tables."""
    return list(BUILTINS)


def describe(name: str) -> str:
    """One line on built-in ``name``: modality, record shape, split sizes, what it is, and its source.

    Raises:
        DataError: ``name`` is not a built-in dataset.
    """
    if name not in BUILTINS:
        raise DataError(f"unknown dataset {name!r}; the built-in datasets are: {', '.join(names())}")
    entry = BUILTINS[name]
    return f"{entry.modality} {entry.description}"


def load(name_or_path: str | os.PathLike, *, data_dir: str | os.PathLike | None = None, seed: int = 0,
         modality: str | None = None, target: str | None = None) -> Dataset:
    """Load a built-in dataset by name, or a user file or image folder by path.

    Args:
        name_or_path: a name from :func:`names`, a ``.npy``/``.npz``/``.csv`` file, a text file, or a folder
            of images or of text files (a folder with no images and some text files is text).
        data_dir: folder of downloaded data files (``mnist.npz``); ``None`` falls back to ``$GENLAB_DATA``.
        seed: seed of the synthetic point sets; files and real images always split the same way.
        modality: ``None`` infers it; ``"tables"`` reads a ``.csv`` file as a table; another value is
            checked against what the data is.
        target: the label column of a table (implies ``modality="tables"`` for a ``.csv`` file).

    Returns:
        The :class:`~genlab.data.dataset.Dataset`, already split into train and test.

    Raises:
        DataError: neither a built-in name nor an existing path, the data is not of ``modality``, or
            the data itself is unusable.
        ConfigError: ``modality`` is not one of the modalities.
    """
    if modality is not None and modality not in MODALITIES:
        raise unknown_choice("modality", modality, MODALITIES)
    if target is not None and modality not in (None, "tables"):
        raise DataError(f"only tables have a target column; {name_or_path} was asked for as {modality}")
    data = _load(name_or_path, data_dir, seed, modality, target)
    if modality is not None and data.modality != modality:
        raise DataError(f"{data.name} holds {data.modality}, not {modality}")
    if target is not None and data.target != target:
        if data.modality != "tables":
            raise DataError(f"{data.name} holds {data.modality}; only tables have a target column")
        data = table_datasets.labelled(data.name, data.x_train, data.x_test, target)
    return data


def _load(name_or_path: str | os.PathLike, data_dir: str | os.PathLike | None, seed: int, modality: str | None,
          target: str | None) -> Dataset:
    if isinstance(name_or_path, str) and name_or_path in BUILTINS:
        return BUILTINS[name_or_path].loader(data_dir, seed)
    path = Path(name_or_path)
    if path.is_file() and (path.suffix.lower() == ".smi" or (
            path.suffix.lower() in (".csv", ".txt") and modality == "smiles")):
        return smiles.smiles_file(path)
    if path.is_file() and path.suffix.lower() == ".csv" and (
            modality == "tables" or target is not None or (modality is None and table_files.is_table_file(path))):
        return table_datasets.table_dataset(path, target=target)
    if path.is_dir() and modality == "music":
        return music.music_folder(path)
    if path.is_dir():
        if _is_text_folder(path):
            return text.text_folder(path)
        return images.image_folder(path)
    if path.is_file() and path.suffix.lower() in text.TEXT_SUFFIXES:
        return text.text_file(path)
    if path.exists():
        return files.load_file(path)
    raise DataError(f"{os.fspath(name_or_path)!r} is neither a built-in dataset ({', '.join(names())}) "
                    f"nor an existing file or folder")


def _is_text_folder(root: Path) -> bool:
    """A folder of text files: it holds some, and no images."""
    suffixes = {p.suffix.lower() for p in root.rglob("*") if p.is_file()}
    return bool(suffixes & set(text.TEXT_SUFFIXES)) and not suffixes & set(images.IMAGE_SUFFIXES)
