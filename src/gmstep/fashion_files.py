"""Reading the Fashion-MNIST files (docs/MATH.md §5): IDX format, the data search, the cached arrays.

A leaf module (numpy only) shared by :mod:`gmstep.fashion` (the data source of the experiments)
and :mod:`gmstep.gan` (the conditional GAN trained on the training file), so that neither of
those imports the other for the files.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError

N_PIXELS = 784
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
ENV_VAR = "GMSTEP_FASHION_MNIST"
DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
SPLITS = ("train", "t10k")
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

_HOW_TO_GET = (
    "install it with `apt-get install dataset-fashion-mnist`, or pass the directory with "
    "`--set data_dir=DIR` or the environment variable GMSTEP_FASHION_MNIST=DIR"
)


# ----------------------------------------------------------------------------- files


def split_file_names(split: str) -> tuple[str, str]:
    """The images and labels file names of a split (``train`` or ``t10k``), without ``.gz``."""
    return f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte"


def _locate(directory: Path, name: str) -> Path | None:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding the four Fashion-MNIST IDX files (each plain or ``.gz``).

    The first location *given* is used, with no fall-back: the argument ``data_dir``, else the
    environment variable ``GMSTEP_FASHION_MNIST``, else ``/usr/share/datasets/fashion-mnist``
    (Debian's ``dataset-fashion-mnist``). Raises :class:`DataError` (one line, saying how to
    get the data) when a file is missing.
    """
    if data_dir is not None and str(data_dir) != "":
        directory, origin = Path(data_dir).expanduser(), "data_dir"
    elif os.environ.get(ENV_VAR):
        directory, origin = Path(os.environ[ENV_VAR]).expanduser(), ENV_VAR
    else:
        directory, origin = DEFAULT_DATA_DIR, "default location"
    missing = [
        name for split in SPLITS for name in split_file_names(split)
        if _locate(directory, name) is None
    ]
    if missing:
        raise DataError(
            f"Fashion-MNIST not found in {directory} ({origin}; missing "
            f"{', '.join(missing)}[.gz]); {_HOW_TO_GET}"
        )
    return directory.resolve()


def _resolve_idx_path(path: Path) -> Path:
    """Accept ``name`` and ``name.gz`` for each other."""
    if path.is_file():
        return path
    if path.suffix == ".gz" and path.with_suffix("").is_file():
        return path.with_suffix("")
    gz = path.with_name(path.name + ".gz")
    if gz.is_file():
        return gz
    raise DataError(f"{path}: no such IDX file (nor with/without .gz)")


def read_idx(path: str | os.PathLike[str], kind: str | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes, gzip-compressed or plain (detected by magic bytes).

    Format: a big-endian magic number ``0x0000 08 D`` (type code ``0x08`` = uint8, ``D`` the
    number of dimensions), ``D`` big-endian 32-bit sizes, then ``prod(sizes)`` bytes. Only
    ``0x00000803`` (images, 3-d) and ``0x00000801`` (labels, 1-d) are accepted; ``kind``
    (``"images"`` or ``"labels"``) demands one of them. The declared sizes must match the byte
    count exactly (truncated files and trailing bytes are errors). Every problem is a one-line
    :class:`DataError` naming the file.
    """
    p = _resolve_idx_path(Path(path))
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{p}: corrupt or truncated gzip data ({exc})") from None
    if len(raw) < 4:
        raise DataError(f"{p}: truncated: {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    expected = {"images": IMAGES_MAGIC, "labels": LABELS_MAGIC, None: None}[kind]
    if magic not in (IMAGES_MAGIC, LABELS_MAGIC) or (expected is not None and magic != expected):
        want = (
            f"0x{expected:08x} for {kind}" if expected is not None
            else "0x00000803 (images) or 0x00000801 (labels)"
        )
        raise DataError(f"{p}: bad magic number 0x{magic:08x}, expected {want}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{p}: truncated: the {ndim}-d IDX header needs {header} bytes")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = math.prod(dims)
    actual = len(raw) - header
    if actual < size:
        raise DataError(
            f"{p}: truncated: the header declares shape {dims} ({size} bytes of data) "
            f"but the file holds {actual}"
        )
    if actual > size:
        raise DataError(f"{p}: {actual - size} unexpected bytes after the declared shape {dims}")
    return np.frombuffer(raw, dtype=np.uint8, count=size, offset=header).reshape(dims).copy()


def read_split(directory: str | os.PathLike[str], split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` uint8 of one split, validated.

    Checks: images are 28 x 28, labels lie in ``0..9``, and the two files hold the same count.
    """
    directory = Path(directory)
    img_name, lbl_name = split_file_names(split)
    img_path = _locate(directory, img_name) or directory / img_name
    lbl_path = _locate(directory, lbl_name) or directory / lbl_name
    images = read_idx(img_path, kind="images")
    labels = read_idx(lbl_path, kind="labels")
    if images.shape[1:] != IMAGE_SHAPE:
        raise DataError(
            f"{img_path}: images are {images.shape[1]} x {images.shape[2]}, expected 28 x 28"
        )
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        bad = int(labels.max())
        raise DataError(f"{lbl_path}: label {bad} out of range 0..9")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{img_path} holds {images.shape[0]} images but {lbl_path} holds "
            f"{labels.shape[0]} labels"
        )
    return images, labels


@functools.lru_cache(maxsize=4)
def _split_cached(directory: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_split(directory, split)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_fashion_split(
    split: str = "train", data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The raw uint8 images ``(N, 28, 28)`` and labels of one split (memoised, read-only)."""
    if split not in SPLITS:
        raise ConfigError("split", f"must be one of {', '.join(SPLITS)}, got {split!r}")
    return _split_cached(str(find_data_dir(data_dir)), split)


@functools.lru_cache(maxsize=2)
def all_cached(directory: str) -> tuple[np.ndarray, np.ndarray]:
    parts = [_split_cached(directory, split) for split in SPLITS]
    images = np.concatenate([im.reshape(im.shape[0], N_PIXELS) for im, _ in parts]).astype(
        np.float64
    )
    images /= 255.0
    labels = np.concatenate([lb for _, lb in parts]).astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_fashion_mnist(
    data_dir: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 images as float64 ``(N, 784)`` in ``[0, 1]`` (pixel / 255) and int labels.

    Train file first, then the test file. Memoised per resolved directory; the arrays are
    read-only (copy them before changing them).
    """
    return all_cached(str(find_data_dir(data_dir)))
