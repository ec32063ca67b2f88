"""The conditional GAN behind the ``cgan`` Fashion-MNIST source (docs/MATH.md §5, InfoGAN architecture).

Generator ``G(z, c)``, ``z ~ U(0, 1)^62``, ``c`` one-hot in ``R^10``::

    [z, c] (72) -> FC 1024, BN, ReLU -> FC 128*7*7, BN, ReLU -> reshape 128 x 7 x 7
      -> ConvTranspose 64 (4, stride 2, pad 1), BN, ReLU          (64 x 14 x 14)
      -> ConvTranspose 1 (4, 2, 1), tanh                          (1 x 28 x 28, in [-1, 1])

Discriminator ``D(u, c)``: the image with the one-hot class broadcast as 10 constant maps
(11 x 28 x 28) -> Conv 64 (4,2,1), LeakyReLU 0.2 -> Conv 128 (4,2,1), BN, LeakyReLU 0.2
-> FC 1024, BN, LeakyReLU 0.2 -> FC 1, sigmoid.

Initialisation: convolution and linear weights ``N(0, 0.02)``, biases 0; batch-norm weights
``N(1, 0.02)`` and biases 0 (the DCGAN convention). Training: binary cross-entropy, Adam
(lr ``2e-4``, betas ``(0.5, 0.999)``), batches of 64 (the last incomplete batch of an epoch is
dropped), training images scaled to ``[-1, 1]`` (``2 u - 1``), samples mapped back with
``(t + 1) / 2``. The data are the 60,000 images of the Fashion-MNIST *training* file.

PyTorch is imported inside the functions, so ``import gmstep.gan`` works without it.
Files live in ``<cache>/cgan/`` (see :func:`default_cache_dir`). :func:`import_authors` converts
the authors' own generator (a state dict with layers ``fc.*`` and ``deconv.*``, read with the
weights-only loader) into the same checkpoint format.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .constraints import COUNT, LABEL, POSITIVE, SEED
from .errors import ConfigError, DataError

NOISE_DIM = 62
NUM_CLASSES = 10
SIDE = 28
BATCH_SIZE = 64
LEARNING_RATE = 2e-4
BETAS = (0.5, 0.999)
DEFAULT_EPOCHS = 50
CHECKPOINT_NAME = "cgan.pt"
FORMAT = 1
_GENERATE_BATCH = 2048


def require_torch() -> Any:
    """The ``torch`` module, or a one-line :class:`ConfigError` saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ConfigError(
            "source", "the conditional GAN needs PyTorch: pip install 'gmstep[gan]'"
        ) from None
    return torch


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


def _existing_checkpoint(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The checkpoint of ``cache_dir``; a directory that holds ``cgan.pt`` itself works too."""
    path = checkpoint_path(cache_dir)
    if not path.is_file() and cache_dir is not None:
        direct = Path(cache_dir).expanduser() / CHECKPOINT_NAME
        if direct.is_file():
            return direct
    return path


def _atomic_save(state: dict[str, Any], path: Path) -> None:
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


def _load_checkpoint(path: Path, device: str) -> dict[str, Any]:
    torch = require_torch()
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 (any failure means: not a usable checkpoint)
        raise DataError(f"{path}: not a readable GAN checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DataError(f"{path}: not a gmstep GAN checkpoint (format {FORMAT})")
    return state


# ----------------------------------------------------------------------------- models


def build_generator() -> Any:
    """The generator as an ``nn.Sequential`` taking ``[z, one_hot(c)]`` (batch x 72)."""
    nn = require_torch().nn
    return nn.Sequential(
        nn.Linear(NOISE_DIM + NUM_CLASSES, 1024),
        nn.BatchNorm1d(1024),
        nn.ReLU(),
        nn.Linear(1024, 128 * 7 * 7),
        nn.BatchNorm1d(128 * 7 * 7),
        nn.ReLU(),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1),
        nn.Tanh(),
    )


def build_discriminator() -> Any:
    """The discriminator as an ``nn.Sequential`` taking image + class maps (batch x 11 x 28 x 28)."""
    nn = require_torch().nn
    return nn.Sequential(
        nn.Conv2d(1 + NUM_CLASSES, 64, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, stride=2, padding=1),
        nn.BatchNorm2d(128),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(128 * 7 * 7, 1024),
        nn.BatchNorm1d(1024),
        nn.LeakyReLU(0.2),
        nn.Linear(1024, 1),
        nn.Sigmoid(),
    )


def init_weights(model: Any, generator: Any) -> None:
    """Linear/conv weights ``N(0, 0.02)``, BN weights ``N(1, 0.02)``, all biases 0."""
    torch = require_torch()
    nn = torch.nn
    for mod in model.modules():
        if isinstance(mod, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(mod.weight, 0.0, 0.02, generator=generator)
            nn.init.zeros_(mod.bias)
        elif isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.normal_(mod.weight, 1.0, 0.02, generator=generator)
            nn.init.zeros_(mod.bias)


def generator_input(noise: Any, labels: Any) -> Any:
    """``[z, one_hot(c)]``: batch x (62 + 10)."""
    torch = require_torch()
    onehot = torch.nn.functional.one_hot(labels, NUM_CLASSES).to(noise.dtype)
    return torch.cat([noise, onehot], dim=1)


def discriminator_input(images: Any, labels: Any) -> Any:
    """Images (batch x 1 x 28 x 28) with 10 constant one-hot class maps appended as channels."""
    torch = require_torch()
    onehot = torch.nn.functional.one_hot(labels, NUM_CLASSES).to(images.dtype)
    maps = onehot[:, :, None, None].expand(-1, -1, images.shape[2], images.shape[3])
    return torch.cat([images, maps], dim=1)


# ----------------------------------------------------------------------------- checks


def _check_classes(classes: Sequence[int] | None) -> tuple[int, ...]:
    if classes is None:
        return tuple(range(NUM_CLASSES))
    values = tuple(classes)
    if not values:
        raise ConfigError("classes", "must be distinct integers in 0..9, got []")
    labels = [LABEL.check("classes", c) for c in values]
    if len(set(labels)) != len(labels):
        raise ConfigError("classes", f"must be distinct integers in 0..9, got {list(values)!r}")
    return tuple(sorted(labels))


def parse_classes(text: str | None) -> tuple[int, ...] | None:
    """``"0,1,5"`` -> ``(0, 1, 5)``; ``None`` stays ``None`` (all classes)."""
    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(
            "classes", f"expected comma-separated integers in 0..9, got {text!r}"
        ) from None
    return _check_classes(values)


def _check_device(device: str) -> str:
    """``cpu``, ``cuda`` (checked to be present) or ``auto`` (``cuda`` when present, else ``cpu``)."""
    torch = require_torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device", "CUDA is not available on this machine; use --device cpu")
        return device
    raise ConfigError("device", f"must be 'auto', 'cpu' or 'cuda', got {device!r}")


# ----------------------------------------------------------------------------- training


def train(
    epochs: int = DEFAULT_EPOCHS,
    classes: Sequence[int] | None = None,
    device: str = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    progress: bool = True,
    max_batches: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Train the CGAN until ``epochs`` epochs are done; return the checkpoint path.

    Per batch (real images ``u``, their labels ``c``, fresh noise ``z``): the discriminator
    takes an Adam step on ``BCE(D(u, c), 1) + BCE(D(G(z, c), c), 0)``, then the generator on
    ``BCE(D(G(z, c), c), 1)``. After every epoch the models, both optimiser states, the number
    of finished epochs, the RNG states (torch noise generator, numpy shuffling generator) and
    the configuration are written atomically to ``<cache>/cgan/cgan.pt``. A checkpoint with the
    same configuration (classes, seed, max_batches and the fixed hyper-parameters) is resumed
    from its next epoch, so an interrupted run continues and a finished one can be extended;
    one with another configuration is an error. ``max_batches`` caps the batches per epoch
    (for quick checks). Nothing touches torch's global RNG. ``device="auto"`` trains on CUDA when
    it is present. With ``progress``, every finished epoch prints one line on stderr: its
    measured wall time, the mean per epoch of this session, and the estimate of the rest
    ``mean x (epochs - done)``.
    """
    torch = require_torch()
    from tqdm.auto import tqdm

    from . import fashion_files

    epochs = POSITIVE.check("epochs", epochs)
    max_batches = None if max_batches is None else POSITIVE.check("max_batches", max_batches)
    trained = _check_classes(classes)
    seed = SEED.check("seed", seed)
    device = _check_device(device)
    path = checkpoint_path(cache_dir)
    config = {
        "format": FORMAT,
        "classes": list(trained),
        "seed": int(seed),
        "max_batches": max_batches,
        "noise_dim": NOISE_DIM,
        "batch_size": BATCH_SIZE,
        "lr": LEARNING_RATE,
        "betas": list(BETAS),
    }
    state = _load_checkpoint(path, "cpu") if path.is_file() else None
    if state is not None and state.get("config", {}).get("imported_from"):
        raise ConfigError(
            "cache",
            f"{path} holds imported weights, which cannot be trained further; pass another "
            "--cache DIR",
        )
    if state is not None and state.get("config") != config:
        raise ConfigError(
            "cache",
            f"{path} holds a GAN trained with another configuration ({state.get('config')}); "
            "delete it or pass another --cache DIR",
        )
    if state is not None and state["epoch"] >= epochs:
        return path

    images, labels = fashion_files.load_fashion_split("train", data_dir)
    keep = np.isin(labels, trained)
    count = int(keep.sum())
    n_batches = count // BATCH_SIZE
    if max_batches is not None:
        n_batches = min(n_batches, max_batches)
    if n_batches == 0:
        raise DataError(
            f"only {count} training images of classes {list(trained)}; a batch needs {BATCH_SIZE}"
        )
    x_all = torch.from_numpy(images[keep].astype(np.float32)).reshape(count, 1, SIDE, SIDE)
    x_all = x_all / 127.5 - 1.0  # [0, 255] -> [-1, 1], i.e. 2 u - 1 with u = pixel / 255
    y_all = torch.from_numpy(labels[keep].astype(np.int64))

    noise_gen = torch.Generator().manual_seed(int(seed))
    gen, disc = build_generator(), build_discriminator()
    init_weights(gen, noise_gen)
    init_weights(disc, noise_gen)
    gen.to(device)
    disc.to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=LEARNING_RATE, betas=BETAS)
    opt_d = torch.optim.Adam(disc.parameters(), lr=LEARNING_RATE, betas=BETAS)
    shuffle = np.random.default_rng(int(seed))
    start, history = 0, []
    if state is not None:
        gen.load_state_dict(state["generator"])
        disc.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_generator"])
        opt_d.load_state_dict(state["opt_discriminator"])
        noise_gen.set_state(state["torch_rng"])
        shuffle.bit_generator.state = json.loads(state["numpy_rng"])
        start, history = int(state["epoch"]), list(state["history"])
    path.parent.mkdir(parents=True, exist_ok=True)

    bce = torch.nn.BCELoss()
    ones = torch.ones(BATCH_SIZE, 1, device=device)
    zeros = torch.zeros(BATCH_SIZE, 1, device=device)
    timer = EpochTimer(start, epochs)
    for epoch in range(start, epochs):
        timer.begin()
        gen.train()
        disc.train()
        order = torch.from_numpy(shuffle.permutation(count))
        sums = [0.0, 0.0]
        bar = tqdm(
            range(n_batches), desc=f"cgan epoch {epoch + 1}/{epochs}", disable=not progress,
            unit="batch", leave=True,
        )
        for b in bar:
            idx = order[b * BATCH_SIZE : (b + 1) * BATCH_SIZE]
            real = x_all[idx].to(device)
            lab = y_all[idx].to(device)
            z = torch.rand(BATCH_SIZE, NOISE_DIM, generator=noise_gen).to(device)
            fake = gen(generator_input(z, lab))
            d_loss = bce(disc(discriminator_input(real, lab)), ones) + bce(
                disc(discriminator_input(fake.detach(), lab)), zeros
            )
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = bce(disc(discriminator_input(fake, lab)), ones)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            sums[0] += d_loss.item()
            sums[1] += g_loss.item()
            if b % 20 == 0:
                bar.set_postfix(d_loss=f"{d_loss.item():.3f}", g_loss=f"{g_loss.item():.3f}")
        bar.close()
        history.append({"epoch": epoch + 1, "d_loss": sums[0] / n_batches,
                        "g_loss": sums[1] / n_batches})
        _atomic_save(
            {
                "format": FORMAT,
                "config": config,
                "epoch": epoch + 1,
                "generator": gen.state_dict(),
                "discriminator": disc.state_dict(),
                "opt_generator": opt_g.state_dict(),
                "opt_discriminator": opt_d.state_dict(),
                "torch_rng": noise_gen.get_state(),
                "numpy_rng": json.dumps(shuffle.bit_generator.state),
                "history": history,
            },
            path,
        )
        line = timer.end(device)
        if progress:
            print(line, file=sys.stderr, flush=True)
    return path


class EpochTimer:
    """Measured wall time per epoch and the estimate of the rest: ``mean x remaining epochs``."""

    def __init__(self, start: int, epochs: int, clock: Any = time.perf_counter) -> None:
        self.done, self.epochs, self.clock = start, epochs, clock
        self.times: list[float] = []
        self._t0 = 0.0

    def begin(self) -> None:
        self._t0 = self.clock()

    def end(self, device: str) -> str:
        """Record the epoch just finished; one line: its time, the mean, the estimated rest."""
        self.times.append(self.clock() - self._t0)
        self.done += 1
        mean = sum(self.times) / len(self.times)
        rest = mean * (self.epochs - self.done)
        return (
            f"cgan: epoch {self.done}/{self.epochs} took {self.times[-1]:.1f} s on {device} "
            f"(mean {mean:.1f} s per epoch); about {_duration(rest)} left"
        )


def _duration(seconds: float) -> str:
    """``42 s``, ``7.5 min`` or ``2.3 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# ----------------------------------------------------------------------------- sampling


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
    device = _check_device(device)
    path = _existing_checkpoint(cache_dir)
    if not path.is_file():
        raise DataError(how_to_get_a_generator(path.parent))
    state = _load_checkpoint(path, device)
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


# ----------------------------------------------------------------------------- the authors' weights

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
    _atomic_save(
        {"format": FORMAT, "config": config, "epoch": 0, "generator": checked, "history": []},
        target,
    )
    return target


def check_class(bundle: GeneratorBundle, cls: int) -> None:
    """A one-line :class:`ConfigError` if ``cls`` is not among the trained classes."""
    if cls not in bundle.classes:
        raise ConfigError(
            "classes",
            f"class {cls} was not trained (the GAN in {bundle.path.parent} knows "
            f"{list(bundle.classes)}); train it with `gmstep gan train --classes ...`",
        )


def generate(
    generator_bundle: GeneratorBundle, cls: int, count: int, rng: np.random.Generator
) -> np.ndarray:
    """``count`` generated images of class ``cls`` as ``(count, 784)`` float64 in ``[0, 1]``.

    The noise ``z ~ U(0, 1)^62`` is drawn with ``rng`` (batch after batch, which equals one
    ``rng.random((count, 62))`` draw), so the output is a deterministic function of ``rng``.
    Eval mode, no gradients, batches of 2048; the tanh output ``t`` is mapped to ``(t + 1) / 2``.
    """
    torch = require_torch()
    check_class(generator_bundle, cls)
    count = COUNT.check("count", count)
    model, device = generator_bundle.model, generator_bundle.device
    model.eval()
    out = np.empty((int(count), SIDE * SIDE))
    with torch.no_grad():
        for start in range(0, int(count), _GENERATE_BATCH):
            b = min(_GENERATE_BATCH, int(count) - start)
            z = torch.from_numpy(rng.random((b, NOISE_DIM)).astype(np.float32)).to(device)
            lab = torch.full((b,), int(cls), dtype=torch.long, device=device)
            t = model(generator_input(z, lab)).reshape(b, -1).cpu().numpy()
            out[start : start + b] = (t.astype(np.float64) + 1.0) / 2.0
    np.clip(out, 0.0, 1.0, out=out)
    return out


def sample_grid(
    path: str | os.PathLike[str],
    classes: Sequence[int] | None = None,
    per_class: int = 10,
    cache_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> Path:
    """A PNG grid of generated samples, one row per class (default: every trained class)."""
    from matplotlib.figure import Figure

    from .fashion_files import CLASS_NAMES

    per_class = POSITIVE.check("per_class", per_class)
    bundle = load_generator(cache_dir)
    rows = bundle.classes if classes is None else _check_classes(classes)
    for c in rows:
        check_class(bundle, c)
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(0.8 * per_class + 1.2, 0.85 * len(rows) + 0.5), layout="constrained")
    axes = fig.subplots(len(rows), per_class, squeeze=False)
    for r, c in enumerate(rows):
        imgs = generate(bundle, c, per_class, rng)
        for j in range(per_class):
            ax = axes[r, j]
            ax.imshow(imgs[j].reshape(SIDE, SIDE), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(f"{c}: {CLASS_NAMES[c]}", fontsize=8)
    fig.suptitle(f"CGAN samples ({bundle.origin}; sha256 {bundle.sha256[:12]})", fontsize=9)
    out = Path(path)
    fig.savefig(out, dpi=72)
    return out
