"""Small synthetic Fashion-MNIST files for the tests (IDX format, docs/MATH.md §5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers import one_line, write_idx  # noqa: F401 (re-exported)


def write_dataset(
    directory: Path,
    per_class: tuple[int, int] = (6, 2),
    gz: bool = True,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Four small IDX files (train, t10k) with ``per_class`` images of every class; returns the
    concatenated uint8 images (N, 784) and labels, train first."""
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    all_images, all_labels = [], []
    for split, count in zip(("train", "t10k"), per_class, strict=True):
        labels = np.tile(np.arange(10), count).astype(np.uint8)
        # class-dependent brightness so that the classes differ
        images = rng.integers(0, 256, size=(labels.size, 28, 28)) * ((labels[:, None, None] + 1) / 10)
        images = images.astype(np.uint8)
        write_idx(directory / f"{split}-images-idx3-ubyte{suffix}", images, gz)
        write_idx(directory / f"{split}-labels-idx1-ubyte{suffix}", labels, gz)
        all_images.append(images.reshape(-1, 784))
        all_labels.append(labels)
    return np.concatenate(all_images), np.concatenate(all_labels)
