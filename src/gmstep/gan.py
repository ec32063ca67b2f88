"""The conditional GAN behind the ``cgan`` Fashion-MNIST source (docs/MATH.md §5): the public
entry point, and sampling from a trained generator.

The work is split by job: :mod:`gmstep.gan_model` (the networks, ``G(z, c)`` with
``z ~ U(0, 1)^62`` and ``c`` one-hot in ``R^10``, and the checks of classes and device),
:mod:`gmstep.gan_train` (training), :mod:`gmstep.gan_files` (the checkpoint files and the loaded
generator), :mod:`gmstep.gan_import` (the authors' weights) and :mod:`gmstep.gan_stats` (the
cached class statistics). Their public names are importable from here.

Samples are the tanh output ``t`` mapped back to ``[0, 1]`` with ``(t + 1) / 2``. PyTorch is
imported inside the functions, so ``import gmstep.gan`` works without it. Files live in
``<cache>/cgan/`` (see :func:`default_cache_dir`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .constraints import COUNT, POSITIVE
from .errors import ConfigError
from .fashion_files import CLASS_NAMES
from .gan_files import (  # noqa: F401 (re-exported)
    CHECKPOINT_NAME,
    CPU_EPOCH_MINUTES,
    FORMAT,
    GPU_EPOCH_SECONDS,
    GeneratorBundle,
    atomic_save,
    checkpoint_hash,
    checkpoint_path,
    default_cache_dir,
    existing_checkpoint,
    how_to_get_a_generator,
    load_checkpoint,
    load_generator,
)
from .gan_import import (  # noqa: F401 (re-exported)
    AUTHORS_LAYERS,
    authors_shapes,
    convert_authors_state,
    import_authors,
)
from .gan_model import (  # noqa: F401 (re-exported)
    BATCH_SIZE,
    BETAS,
    DEFAULT_EPOCHS,
    LEARNING_RATE,
    NOISE_DIM,
    NUM_CLASSES,
    SIDE,
    build_discriminator,
    build_generator,
    check_device,
    check_gan_classes,
    discriminator_input,
    generator_input,
    init_weights,
    parse_classes,
    require_torch,
)
from .gan_train import EpochTimer, duration_text, train  # noqa: F401 (re-exported)

_GENERATE_BATCH = 2048


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

    per_class = POSITIVE.check("per_class", per_class)
    bundle = load_generator(cache_dir)
    rows = bundle.classes if classes is None else check_gan_classes(classes)
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
