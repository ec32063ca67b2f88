"""The checkpoint files of the conditional GAN: where they live, how they are written, read and
hashed, and the loaded generator (:class:`GeneratorBundle`).

Files live in ``<cache>/cgan/`` (see :func:`default_cache_dir`); a checkpoint is written
atomically (temporary file, then ``os.replace``) and read with the weights-only loader.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DataError
from .gan_model import build_generator, check_device, require_torch

CHECKPOINT_NAME = "cgan.pt"
FORMAT = 1


# ----------------------------------------------------------------------------- files


def default_cache_dir() -> Path:
    """``$GMSTEP_CACHE``, else ``$XDG_CACHE_HOME/gmstep``, else ``~/.cache/gmstep``."""
    if os.environ.get("GMSTEP_CACHE"):
        return Path(os.environ["GMSTEP_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "gmstep"
    return Path.home() / ".cache" / "gmstep"


def checkpoint_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<cache>/cgan/cgan.pt``."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "cgan" / CHECKPOINT_NAME


def existing_checkpoint(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The checkpoint of ``cache_dir``; a directory that holds ``cgan.pt`` itself works too."""
    path = checkpoint_path(cache_dir)
    if not path.is_file() and cache_dir is not None:
        direct = Path(cache_dir).expanduser() / CHECKPOINT_NAME
        if direct.is_file():
            return direct
    return path


def atomic_save(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` into a temporary file of the same directory, then ``os.replace``."""
    torch = require_torch()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cgan-", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path, device: str) -> dict[str, Any]:
    torch = require_torch()
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 (any failure means: not a usable checkpoint)
        raise DataError(f"{path}: not a readable GAN checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DataError(f"{path}: not a gmstep GAN checkpoint (format {FORMAT})")
    return state


#: Measured training times of one epoch on all ten classes (937 batches of 64), for messages.
GPU_EPOCH_SECONDS = 11
CPU_EPOCH_MINUTES = 5.5


def how_to_get_a_generator(where: Path) -> str:
    """The one-line advice printed when ``where`` holds no generator."""
    return (
        f"no trained conditional GAN in {where}; train one with `gmstep gan train` (the paper's "
        f"50 epochs on all ten classes: about {GPU_EPOCH_SECONDS} s per epoch on one GPU, about "
        f"{CPU_EPOCH_MINUTES:g} min per epoch on 2 CPU cores) or import the authors' generator "
        "with `gmstep gan import FILE` (add --cache DIR to either if you use another cache "
        "directory)"
    )


@dataclass
class GeneratorBundle:
    """A trained generator (eval mode) with the classes it was trained on."""

    model: Any
    classes: tuple[int, ...]
    device: str
    epoch: int
    path: Path
    config: dict[str, Any]

    @property
    def sha256(self) -> str:
        """The SHA-256 of the checkpoint file's content (see :func:`checkpoint_hash`)."""
        return checkpoint_hash(self.path)

    @property
    def origin(self) -> str:
        """``trained N epochs`` (``of at most B batches`` with ``max_batches``) or
        ``imported from FILE``."""
        if self.config.get("imported_from"):
            return f"imported from {self.config['imported_from']}"
        text = f"trained {self.epoch} epoch{'s' if self.epoch != 1 else ''}"
        if self.config.get("max_batches"):
            b = int(self.config["max_batches"])
            text += f" of at most {b} batch{'es' if b != 1 else ''}"
        return text


_HASHES: dict[tuple[str, int, int], str] = {}


def checkpoint_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes, memoised per (path, size, modification time)."""
    import hashlib

    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def load_generator(
    cache_dir: str | os.PathLike[str] | None = None, device: str = "cpu"
) -> GeneratorBundle:
    """The trained generator of ``<cache>/cgan/cgan.pt`` (one-line error if there is none)."""
    require_torch()
    device = check_device(device)
    path = existing_checkpoint(cache_dir)
    if not path.is_file():
        raise DataError(how_to_get_a_generator(path.parent))
    state = load_checkpoint(path, device)
    model = build_generator()
    try:
        model.load_state_dict(state["generator"])
    except (KeyError, RuntimeError) as exc:
        raise DataError(f"{path}: generator weights do not fit ({type(exc).__name__})") from None
    model.to(device)
    model.eval()
    config = dict(state["config"])
    return GeneratorBundle(
        model, tuple(int(c) for c in config["classes"]), device, int(state["epoch"]), path, config
    )

