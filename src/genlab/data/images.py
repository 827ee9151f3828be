"""Image datasets: scikit-learn's bundled digits, MNIST from ``mnist.npz``, and a folder of images.

Every loader returns float32 ``(n, C, H, W)`` intensities in ``[0, 1]``: ``C = 1`` for grayscale,
``C = 3`` for colour.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from genlab.data.dataset import Dataset, split_records
from genlab.errors import DataError

if TYPE_CHECKING:
    from PIL import Image

#: Environment variable naming the folder that holds downloaded data files such as ``mnist.npz``.
DATA_ENV = "GENLAB_DATA"
MNIST_FILE = "mnist.npz"
MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")
#: File suffixes :func:`image_folder` reads (case-insensitive); other files are ignored.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Pillow band names of single-channel modes; any other band (R, G, B, C, M, Y, K, ...) means colour.
_GRAY_BANDS = {"L", "1", "I", "F"}
_DIGIT_NAMES = tuple(str(k) for k in range(10))


def digits() -> Dataset:
    """The 1,797 8x8 handwritten digits bundled with scikit-learn, fixed-split 80/20.

    Returns:
        ``x_*`` float32 ``(n, 1, 8, 8)`` in ``[0, 1]`` (the 0..16 counts divided by 16);
        ``y_*`` int64 ``(n,)`` digits 0..9, ``class_names`` ``"0"``..``"9"``; 1,438 train / 359 test.
    """
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)  # (1797, 64) counts 0..16, (1797,)
    x = (x.reshape(-1, 1, 8, 8) / 16).astype(np.float32)
    return split_records("digits", "images", x, y.astype(np.int64), _DIGIT_NAMES)


def mnist(data_dir: str | os.PathLike | None = None) -> Dataset:
    """MNIST (LeCun et al. 1998) from ``mnist.npz``, with the file's own 60,000 / 10,000 split.

    Args:
        data_dir: folder holding ``mnist.npz`` (keys ``x_train`` ``(60000, 28, 28)`` uint8, ``y_train``,
            ``x_test``, ``y_test``). ``None`` reads the folder from the ``GENLAB_DATA`` variable.

    Returns:
        ``x_*`` float32 ``(n, 1, 28, 28)`` in ``[0, 1]``; ``y_*`` int64 ``(n,)`` digits 0..9.

    Raises:
        DataError: no folder given, the file is missing, or it is not a valid MNIST archive.
    """
    path = _data_file(MNIST_FILE, data_dir, what="mnist", keys=MNIST_KEYS)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in MNIST_KEYS if key not in archive.files]
            if missing:
                raise DataError(f"{path} lacks the array(s) {', '.join(missing)}; "
                                f"an MNIST archive holds {', '.join(MNIST_KEYS)}")
            arrays = {key: archive[key] for key in MNIST_KEYS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path} is not a readable .npz archive ({error})") from None

    splits = []
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or x.ndim != 3 or y.shape != (len(x),):
            raise DataError(f"{path}: expected x_{part} uint8 (n, 28, 28) and y_{part} (n,), got "
                            f"{x.dtype} {x.shape} and {y.dtype} {y.shape}")
        if not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() > 9)):
            raise DataError(f"{path}: y_{part} must hold the digits 0..9")
        x = x[:, None].astype(np.float32)  # (n, 1, H, W)
        x /= 255
        splits.append((x, y.astype(np.int64)))
    (x_train, y_train), (x_test, y_test) = splits
    return Dataset(name="mnist", modality="images", x_train=x_train, x_test=x_test,
                   y_train=y_train, y_test=y_test, class_names=_DIGIT_NAMES)


def image_folder(path: str | os.PathLike) -> Dataset:
    """A folder of same-size PNG/JPEG images, fixed-split 80/20.

    A flat folder is unlabelled. A folder of sub-folders is labelled: each sub-folder is a class, named
    after it, in sorted order. Hidden files and folders and files of other types are ignored. If any image
    is in colour (an RGB, RGBA, CMYK or YCbCr mode, or a palette with colours) every image becomes RGB;
    otherwise all stay grayscale. Alpha channels are dropped; 16-bit grayscale is scaled by 1/65535.

    Returns:
        ``x_*`` float32 ``(n, C, H, W)`` in ``[0, 1]``, ``C`` 1 or 3; ``y_*`` int64 ``(n,)`` or ``None``.

    Raises:
        DataError: not a folder, no images, images both loose and in sub-folders, an empty class folder,
            an unreadable image, or images of different sizes.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of images")
    files, labels, class_names = _list_images(root)
    arrays = []  # each (H, W, C), C in {1, 3}
    for file in files:
        array = _read_image(file)
        if arrays and array.shape[:2] != arrays[0].shape[:2]:
            (height, width), (expected_h, expected_w) = array.shape[:2], arrays[0].shape[:2]
            raise DataError(f"{file} is {width}x{height} pixels but {files[0]} is {expected_w}x{expected_h}; "
                            f"every image in {root} must have the same size")
        arrays.append(array)
    channels = max(array.shape[-1] for array in arrays)
    x = np.stack([np.broadcast_to(array, (*array.shape[:2], channels)) for array in arrays])  # (n, H, W, C)
    x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (n, C, H, W)
    return split_records(str(root), "images", x, labels, class_names)


def _data_file(filename: str, data_dir: str | os.PathLike | None, *, what: str, keys: tuple[str, ...]) -> Path:
    """Resolve ``filename`` in ``data_dir``, else in ``$GENLAB_DATA``, raising a DataError that says how."""
    how = f"pass --data-dir DIR or set {DATA_ENV}=DIR, where DIR holds {filename}"
    if data_dir is not None:
        folder, source = Path(data_dir), "the data directory"
    elif os.environ.get(DATA_ENV):
        folder, source = Path(os.environ[DATA_ENV]), f"{DATA_ENV}"
    else:
        raise DataError(f"{what} needs the file {filename} (arrays {', '.join(keys)}), "
                        f"and no data directory was given: {how}")
    if folder.is_file():
        raise DataError(f"{source} {folder} is a file; it must be the folder that holds {filename}")
    path = folder / filename
    if not path.is_file():
        raise DataError(f"{what} needs {path}, which does not exist ({source} is {folder}); {how}")
    return path


def _list_images(root: Path) -> tuple[list[Path], np.ndarray | None, tuple[str, ...] | None]:
    """Image files under ``root``, with int64 ``(n,)`` labels and class names when sub-folders are classes."""
    entries = sorted(entry for entry in root.iterdir() if not entry.name.startswith("."))
    loose = [entry for entry in entries if _is_image(entry)]
    folders = [entry for entry in entries if entry.is_dir()]
    if loose and folders:
        raise DataError(f"{root} holds both images ({loose[0].name}, ...) and sub-folders ({folders[0].name}, "
                        f"...); put every image in a class sub-folder, or use a flat folder without labels")
    if loose:
        return loose, None, None
    if not folders:
        raise DataError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)} files, or sub-folders of them "
                        f"for labelled data)")
    files, labels = [], []
    for label, folder in enumerate(folders):
        members = sorted(entry for entry in folder.iterdir() if not entry.name.startswith(".") and _is_image(entry))
        if not members:
            raise DataError(f"class folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                            f"add some or remove the folder")
        files += members
        labels += [label] * len(members)
    return files, np.array(labels, dtype=np.int64), tuple(folder.name for folder in folders)


def _is_image(path: Path) -> bool:
    """Whether ``path`` is a file with a PNG/JPEG suffix."""
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _read_image(path: Path) -> np.ndarray:
    """Decode one image to float32 ``(H, W, C)`` in ``[0, 1]``, ``C`` 1 (grayscale) or 3 (colour)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode.startswith("I;16") or image.mode == "I":  # 16-bit grayscale PNG
                return (np.asarray(image, dtype=np.float32) / 65535)[..., None]
            if _is_colour(image):
                return np.asarray(image.convert("RGB"), dtype=np.float32) / 255
            return (np.asarray(image.convert("L"), dtype=np.float32) / 255)[..., None]
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"{path} is not a readable image ({error})") from None


def _is_colour(image: Image.Image) -> bool:
    """Whether ``image`` has colour: a colour mode, or a palette whose entries are not all gray."""
    if image.mode == "P":
        rgb = np.asarray(image.convert("RGB"))  # (H, W, 3)
        return bool((rgb != rgb[..., :1]).any())
    return not set(image.getbands()) - {"A"} <= _GRAY_BANDS
