"""Importing the authors' trained generator (a PyTorch state dict) as a gmstep checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import DataError
from .gan_files import FORMAT, atomic_save, checkpoint_hash, checkpoint_path
from .gan_model import NOISE_DIM, NUM_CLASSES, build_generator, require_torch

#: The authors' generator: ``fc`` = Linear(72, 1024), BN, ReLU, Linear(1024, 6272), BN, ReLU;
#: ``deconv`` = ConvTranspose(128, 64), BN, ReLU, ConvTranspose(64, 1), Tanh. Their layer
#: names and the index of the same layer in :func:`build_generator`.
AUTHORS_LAYERS = {
    "fc.0": "0", "fc.1": "1", "fc.3": "3", "fc.4": "4",
    "deconv.0": "7", "deconv.1": "8", "deconv.3": "10",
}
_BATCH_NORMS = ("fc.1", "fc.4", "deconv.1")


def authors_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor of the authors' state dict with its shape (``num_batches_tracked``: ``()``)."""
    d = NOISE_DIM + NUM_CLASSES
    shapes: dict[str, tuple[int, ...]] = {
        "fc.0.weight": (1024, d), "fc.0.bias": (1024,),
        "fc.3.weight": (128 * 7 * 7, 1024), "fc.3.bias": (128 * 7 * 7,),
        "deconv.0.weight": (128, 64, 4, 4), "deconv.0.bias": (64,),
        "deconv.3.weight": (64, 1, 4, 4), "deconv.3.bias": (1,),
    }
    for name, size in zip(_BATCH_NORMS, (1024, 128 * 7 * 7, 64), strict=True):
        for what in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{what}"] = (size,)
        shapes[f"{name}.num_batches_tracked"] = ()
    return shapes


def convert_authors_state(state: Any, source: str) -> dict[str, Any]:
    """The authors' generator state dict as :func:`build_generator`'s, after checking it.

    Every key of :func:`authors_shapes` must be present (``num_batches_tracked`` may be missing,
    as in files of old PyTorch versions) with that exact shape, floating point (the counters:
    integer) and finite; no other key is allowed. Any problem is a one-line :class:`DataError`.
    """
    torch = require_torch()
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise DataError(
            f"{source}: not a state dict (a mapping of names to tensors) but "
            f"{type(state).__name__}"
        )
    shapes = authors_shapes()
    unknown = sorted(set(state) - set(shapes))
    if unknown:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise DataError(
            f"{source}: unexpected keys {', '.join(unknown[:3])}{more}; the authors' generator "
            f"has {', '.join(AUTHORS_LAYERS)} (10 classes, 62-dim noise, 28 x 28)"
        )
    missing = [k for k in shapes if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise DataError(f"{source}: missing {', '.join(missing[:3])}"
                        + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    out: dict[str, Any] = {}
    for key, value in state.items():
        want = shapes[key]
        if not isinstance(value, torch.Tensor):
            raise DataError(f"{source}: {key} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != want:
            raise DataError(
                f"{source}: {key} has shape {tuple(value.shape)}, expected {want} (the authors' "
                "generator for 10 classes, 62-dim noise, 28 x 28 images)"
            )
        if key.endswith("num_batches_tracked"):
            if value.dtype.is_floating_point or value.dtype.is_complex:
                raise DataError(f"{source}: {key} must be an integer, got {value.dtype}")
            out_value = value.to(torch.long)
        else:
            if not value.dtype.is_floating_point:
                raise DataError(f"{source}: {key} must be floating point, got {value.dtype}")
            if not bool(torch.isfinite(value).all()):
                raise DataError(f"{source}: {key} holds non-finite values")
            out_value = value.detach().to(torch.float32).clone()
        layer, _, what = key.rpartition(".")
        out[f"{AUTHORS_LAYERS[layer]}.{what}"] = out_value
    if any(key.endswith("running_var") and bool((value < 0).any()) for key, value in state.items()):
        raise DataError(f"{source}: a batch-norm running variance is negative")
    return out


def import_authors(
    path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Convert the authors' generator state dict at ``path`` to ``<cache>/cgan/cgan.pt``.

    The file is read with ``torch.load(..., weights_only=True)``: only tensors and plain
    containers are unpickled, so a file that carries code is refused before anything runs.
    An existing checkpoint is never overwritten. Returns the new checkpoint's path.
    """
    torch = require_torch()
    src = Path(path).expanduser()
    if not src.is_file():
        raise DataError(f"{src}: no such file")
    target = checkpoint_path(cache_dir)
    if target.exists():
        raise DataError(
            f"{target} already exists; delete it or import into another cache with --cache DIR"
        )
    try:
        state = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (anything unreadable is refused, in one line)
        first = " ".join(str(exc).split())[:160]
        raise DataError(
            f"{src}: refused: not a plain PyTorch state dict readable with the weights-only "
            f"loader ({type(exc).__name__}: {first})"
        ) from None
    generator = convert_authors_state(state, str(src))
    model = build_generator()
    model.load_state_dict(generator, strict=False)  # num_batches_tracked may be absent
    checked = model.state_dict()
    config = {
        "format": FORMAT,
        "classes": list(range(NUM_CLASSES)),
        "noise_dim": NOISE_DIM,
        "imported_from": str(src.resolve()),
        "imported_sha256": checkpoint_hash(src),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(
        {"format": FORMAT, "config": config, "epoch": 0, "generator": checked, "history": []},
        target,
    )
    return target

