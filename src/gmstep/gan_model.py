"""The networks of the conditional GAN (docs/MATH.md §5, InfoGAN architecture) and its checks.

Generator ``G(z, c)``, ``z ~ U(0, 1)^62``, ``c`` one-hot in ``R^10``::

    [z, c] (72) -> FC 1024, BN, ReLU -> FC 128*7*7, BN, ReLU -> reshape 128 x 7 x 7
      -> ConvTranspose 64 (4, stride 2, pad 1), BN, ReLU          (64 x 14 x 14)
      -> ConvTranspose 1 (4, 2, 1), tanh                          (1 x 28 x 28, in [-1, 1])

Discriminator ``D(u, c)``: the image with the one-hot class broadcast as 10 constant maps
(11 x 28 x 28) -> Conv 64 (4,2,1), LeakyReLU 0.2 -> Conv 128 (4,2,1), BN, LeakyReLU 0.2
-> FC 1024, BN, LeakyReLU 0.2 -> FC 1, sigmoid.

Initialisation: convolution and linear weights ``N(0, 0.02)``, biases 0; batch-norm weights
``N(1, 0.02)`` and biases 0 (the DCGAN convention). PyTorch is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .constraints import LABEL
from .errors import ConfigError

NOISE_DIM = 62
NUM_CLASSES = 10
SIDE = 28
BATCH_SIZE = 64
LEARNING_RATE = 2e-4
BETAS = (0.5, 0.999)
DEFAULT_EPOCHS = 50


def require_torch(key: str = "source",
                  message: str = "the conditional GAN needs PyTorch: pip install 'gmstep[gan]'") -> Any:
    """The ``torch`` module, or a one-line :class:`ConfigError` (``key``: ``message``) saying how to
    install it."""
    try:
        import torch
    except ImportError:
        raise ConfigError(key, message) from None
    return torch


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


def check_gan_classes(classes: Sequence[int] | None) -> tuple[int, ...]:
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
    return check_gan_classes(values)


def check_device(device: str) -> str:
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

