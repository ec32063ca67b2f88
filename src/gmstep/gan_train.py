"""Training the conditional GAN (docs/MATH.md §5), resumable epoch by epoch.

Binary cross-entropy, Adam (lr ``2e-4``, betas ``(0.5, 0.999)``), batches of 64 (the last
incomplete batch of an epoch is dropped), training images scaled to ``[-1, 1]`` (``2 u - 1``).
The data are the 60,000 images of the Fashion-MNIST *training* file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import fashion_files
from .constraints import POSITIVE, SEED
from .errors import ConfigError, DataError
from .gan_files import FORMAT, atomic_save, checkpoint_path, load_checkpoint
from .gan_model import (
    BATCH_SIZE,
    BETAS,
    DEFAULT_EPOCHS,
    LEARNING_RATE,
    NOISE_DIM,
    SIDE,
    build_discriminator,
    build_generator,
    check_device,
    check_gan_classes,
    discriminator_input,
    generator_input,
    init_weights,
    require_torch,
)


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
    require_torch()
    epochs = POSITIVE.check("epochs", epochs)
    max_batches = None if max_batches is None else POSITIVE.check("max_batches", max_batches)
    trained = check_gan_classes(classes)
    seed = SEED.check("seed", seed)
    device = check_device(device)
    path = checkpoint_path(cache_dir)
    config = _training_config(trained, seed, max_batches)
    state = _resumable_state(path, config)
    if state is not None and state["epoch"] >= epochs:
        return path
    data = _TrainingData.load(trained, max_batches, data_dir)
    session = _Session.start(int(seed), device, state)
    path.parent.mkdir(parents=True, exist_ok=True)
    timer = EpochTimer(session.start_epoch, epochs)
    for epoch in range(session.start_epoch, epochs):
        timer.begin()
        d_mean, g_mean = session.train_epoch(data, f"cgan epoch {epoch + 1}/{epochs}", progress)
        session.history.append({"epoch": epoch + 1, "d_loss": d_mean, "g_loss": g_mean})
        atomic_save(session.checkpoint(config, epoch + 1), path)
        line = timer.end(device)
        if progress:
            print(line, file=sys.stderr, flush=True)
    return path


def _training_config(trained: tuple[int, ...], seed: int, max_batches: int | None) -> dict[str, Any]:
    """The configuration a checkpoint must match to be resumed."""
    return {
        "format": FORMAT,
        "classes": list(trained),
        "seed": int(seed),
        "max_batches": max_batches,
        "noise_dim": NOISE_DIM,
        "batch_size": BATCH_SIZE,
        "lr": LEARNING_RATE,
        "betas": list(BETAS),
    }


def _resumable_state(path: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint at ``path`` to resume (None if there is none); an imported one or one of
    another configuration is a one-line :class:`ConfigError`."""
    state = load_checkpoint(path, "cpu") if path.is_file() else None
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
    return state


@dataclass
class _TrainingData:
    """The training images of the trained classes in ``[-1, 1]`` and the batches per epoch."""

    images: Any  # tensor count x 1 x 28 x 28
    labels: Any  # tensor count (int64)
    count: int
    n_batches: int

    @classmethod
    def load(
        cls,
        trained: tuple[int, ...],
        max_batches: int | None,
        data_dir: str | os.PathLike[str] | None,
    ) -> _TrainingData:
        """The images ``2 u - 1`` (``u = pixel / 255``) of the classes ``trained``."""
        torch = require_torch()

        images, labels = fashion_files.load_fashion_split("train", data_dir)
        keep = np.isin(labels, trained)
        count = int(keep.sum())
        n_batches = count // BATCH_SIZE
        if max_batches is not None:
            n_batches = min(n_batches, max_batches)
        if n_batches == 0:
            raise DataError(
                f"only {count} training images of classes {list(trained)}; a batch needs "
                f"{BATCH_SIZE}"
            )
        x_all = torch.from_numpy(images[keep].astype(np.float32)).reshape(count, 1, SIDE, SIDE)
        x_all = x_all / 127.5 - 1.0  # [0, 255] -> [-1, 1], i.e. 2 u - 1 with u = pixel / 255
        y_all = torch.from_numpy(labels[keep].astype(np.int64))
        return cls(x_all, y_all, count, n_batches)


@dataclass
class _Session:
    """Both networks, their optimisers and the two random generators of one training run."""

    gen: Any
    disc: Any
    opt_g: Any
    opt_d: Any
    noise_gen: Any  # torch.Generator of the noise z (and of the initialisation)
    shuffle: np.random.Generator
    device: str
    start_epoch: int
    history: list[dict[str, Any]]

    @classmethod
    def start(cls, seed: int, device: str, state: dict[str, Any] | None) -> _Session:
        """Fresh networks initialised from ``seed``, or those of ``state`` to resume."""
        torch = require_torch()
        noise_gen = torch.Generator().manual_seed(seed)
        gen, disc = build_generator(), build_discriminator()
        init_weights(gen, noise_gen)
        init_weights(disc, noise_gen)
        gen.to(device)
        disc.to(device)
        opt_g = torch.optim.Adam(gen.parameters(), lr=LEARNING_RATE, betas=BETAS)
        opt_d = torch.optim.Adam(disc.parameters(), lr=LEARNING_RATE, betas=BETAS)
        shuffle = np.random.default_rng(seed)
        session = cls(gen, disc, opt_g, opt_d, noise_gen, shuffle, device, 0, [])
        if state is not None:
            gen.load_state_dict(state["generator"])
            disc.load_state_dict(state["discriminator"])
            opt_g.load_state_dict(state["opt_generator"])
            opt_d.load_state_dict(state["opt_discriminator"])
            noise_gen.set_state(state["torch_rng"])
            shuffle.bit_generator.state = json.loads(state["numpy_rng"])
            session.start_epoch, session.history = int(state["epoch"]), list(state["history"])
        return session

    def train_epoch(self, data: _TrainingData, desc: str, progress: bool) -> tuple[float, float]:
        """One pass over a fresh permutation; the mean discriminator and generator losses."""
        torch = require_torch()
        from tqdm.auto import tqdm

        self.gen.train()
        self.disc.train()
        order = torch.from_numpy(self.shuffle.permutation(data.count))
        sums = [0.0, 0.0]
        bce = torch.nn.BCELoss()
        targets = (torch.ones(BATCH_SIZE, 1, device=self.device),
                   torch.zeros(BATCH_SIZE, 1, device=self.device))
        bar = tqdm(range(data.n_batches), desc=desc, disable=not progress, unit="batch",
                   leave=True)
        for b in bar:
            idx = order[b * BATCH_SIZE : (b + 1) * BATCH_SIZE]
            d_loss, g_loss = self._step(data.images[idx], data.labels[idx], bce, targets)
            sums[0] += d_loss
            sums[1] += g_loss
            if b % 20 == 0:
                bar.set_postfix(d_loss=f"{d_loss:.3f}", g_loss=f"{g_loss:.3f}")
        bar.close()
        return sums[0] / data.n_batches, sums[1] / data.n_batches

    def _step(self, real: Any, lab: Any, bce: Any, targets: tuple[Any, Any]) -> tuple[float, float]:
        """One Adam step of the discriminator, then one of the generator; their losses
        (``targets``: the labels 1 and 0 of a batch)."""
        torch = require_torch()
        ones, zeros = targets
        real, lab = real.to(self.device), lab.to(self.device)
        z = torch.rand(BATCH_SIZE, NOISE_DIM, generator=self.noise_gen).to(self.device)
        fake = self.gen(generator_input(z, lab))
        d_loss = bce(self.disc(discriminator_input(real, lab)), ones) + bce(
            self.disc(discriminator_input(fake.detach(), lab)), zeros
        )
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        g_loss = bce(self.disc(discriminator_input(fake, lab)), ones)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        return d_loss.item(), g_loss.item()

    def checkpoint(self, config: dict[str, Any], epoch: int) -> dict[str, Any]:
        """Everything needed to resume after ``epoch`` finished epochs."""
        return {
            "format": FORMAT,
            "config": config,
            "epoch": epoch,
            "generator": self.gen.state_dict(),
            "discriminator": self.disc.state_dict(),
            "opt_generator": self.opt_g.state_dict(),
            "opt_discriminator": self.opt_d.state_dict(),
            "torch_rng": self.noise_gen.get_state(),
            "numpy_rng": json.dumps(self.shuffle.bit_generator.state),
            "history": self.history,
        }


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
            f"(mean {mean:.1f} s per epoch); about {duration_text(rest)} left"
        )


def duration_text(seconds: float) -> str:
    """``42 s``, ``7.5 min`` or ``2.3 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"

