"""Fashion-MNIST as a data source for the one-step experiments (docs/MATH.md §5).

The 70,000 images (train and test files together, pixels scaled to ``[0, 1]``) of a class pair
``(c1, c2)`` are preprocessed once (:func:`prepare_pair`) and then enter the network as

    x = sqrt(theta / trS) x_img + z,        z ~ N(0, I_784),

so the image part carries total variance ``theta`` (``trS`` counts covariance only: with common
centring the class means ``(mu_1 - mu_2) / 2`` and ``s_2 (mu_2 - mu_1) / 2`` add to the mean
squared norm) and the isotropic noise ``784``; labels are
``-1`` for ``c1`` and ``+1`` for ``c2``, ``m // 2`` and ``m - m // 2`` of them, rows grouped by
class. The matching network initialisation is ``F_ij ~ N(0, 1 / (n + theta))`` (``tr = n + theta``)
and the Hermite scale is ``b = 1``.

Three sources of ``x_img`` (:func:`build_problem`): ``real`` images drawn without replacement
within a data set, ``gaussian`` (a class-conditional Gaussian with the real class means and
covariances) and ``cgan`` (the conditional GAN of :mod:`gmstep.gan`).

The preprocessing lives in :mod:`gmstep.fashion_prep`, the CGAN class statistics in
:mod:`gmstep.gan_stats`, the data files in :mod:`gmstep.fashion_files`; their public names are
importable from here.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from . import config, gan
from .config import CENTERINGS, SOURCES  # noqa: F401 (re-exported)
from .constraints import COUNT, NONNEGATIVE, POSITIVE
from .errors import ConfigError, DataError, GmstepError
from .fashion_files import (  # noqa: F401 (re-exported: the public names of the data files)
    CLASS_NAMES,
    DEFAULT_DATA_DIR,
    ENV_VAR,
    IMAGE_SHAPE,
    IMAGES_MAGIC,
    LABELS_MAGIC,
    N_PIXELS,
    NUM_CLASSES,
    SPLITS,
    all_cached,
    find_data_dir,
    load_fashion_mnist,
    load_fashion_split,
    read_idx,
    read_split,
    split_file_names,
)
from .fashion_prep import (  # noqa: F401 (re-exported: the preprocessing of a class pair)
    PairTransform,
    PairView,
    PreparedPair,
    check_centering,
    check_classes,
    make_transform,
    prepare_pair,
    prepared_cached,
)
from .gan_stats import DEFAULT_GAN_STATS_SAMPLES, gan_statistics

# ----------------------------------------------------------------------------- image source


def source_label(params: Mapping[str, Any]) -> str:
    """One line naming the image source of a Fashion-MNIST experiment (meta.json, figures).

    ``real``/``gaussian``: the data directory; ``cgan``: the checkpoint, the first 12 hex digits
    of its SHA-256, how it was made (trained N epochs, or imported) and the sample count of the
    class statistics. Never raises: a missing generator or data directory is said in the line.
    """
    source = params.get("source", "real")
    if source == "cgan":
        samples = params.get("gan_stats_samples", DEFAULT_GAN_STATS_SAMPLES)
        path = gan.existing_checkpoint(None)
        if not path.is_file():
            return f"source: cgan (no generator in {path.parent})"
        try:
            st = path.stat()
            state_text = _checkpoint_origin(str(path), st.st_size, st.st_mtime_ns)
        except (GmstepError, OSError):
            return f"source: cgan (no usable generator in {path})"
        return (
            f"source: cgan {path} ({state_text}; class statistics from {samples:,} samples "
            "per class)"
        )
    try:
        where = str(find_data_dir(params.get("data_dir")))
    except GmstepError:
        where = "Fashion-MNIST not found"
    what = "real images" if source == "real" else "Gaussian with the real class means, covariances"
    return f"source: {source} ({what}, {where})"


@functools.lru_cache(maxsize=8)
def _checkpoint_origin(path: str, size: int, mtime_ns: int) -> str:
    """``trained N epochs, sha256 0123456789ab`` of a checkpoint (memoised per file version)."""
    del size, mtime_ns  # the memo key
    bundle = gan.load_generator(Path(path).parent)
    return f"{bundle.origin}, sha256 {bundle.sha256[:12]}"


def figure_source(res: Any) -> str:
    """The source line of a results object: ``source`` of its meta.json when it has one (the
    source the numbers were computed with), else :func:`source_label` of its parameters."""
    directory = getattr(res, "directory", None)
    if directory is not None:
        try:
            meta = json.loads((Path(directory) / "meta.json").read_text(encoding="utf-8"))
            if isinstance(meta.get("source"), str):
                return meta["source"]
        except (OSError, ValueError):
            pass
    return source_label(res.experiment.params)


# ----------------------------------------------------------------------------- the problem


class FashionProblem(PairView):
    """A Fashion-MNIST binary classification problem (the :class:`gmstep.data.Problem` protocol).

    ``n = 784``, ``tr = n + theta`` (so ``F_ij ~ N(0, 1/(n + theta))``), ``scale = b = 1``.
    ``sample(m, rng)`` returns ``m // 2`` inputs of ``classes[0]`` (label ``-1``) then
    ``m - m // 2`` of ``classes[1]`` (label ``+1``), each ``x = sqrt(theta / trS) v + z`` with
    ``v`` a prepared image and ``z ~ N(0, I_784)``.
    """

    n: int = N_PIXELS
    scale: float = 1.0

    def __init__(
        self,
        *,
        theta: float,
        transform: PairTransform,
        source: str,
        pair: PreparedPair | None = None,
        generator: Any = None,
        dtype: type | np.dtype = np.float64,
    ) -> None:
        self.theta = float(theta)
        self.transform = transform
        self.source = source
        self.pair = pair
        self.generator = generator
        self.dtype = np.dtype(dtype).type

    @property
    def joint_draw(self) -> bool:
        """Whether the data sets of a task must be drawn together (:meth:`sample_disjoint`): real
        images are picked without replacement from one pool; the other sources draw each set alone."""
        return self.source == "real"

    def _prepared(self) -> PreparedPair:
        """The prepared class pair (the real and gaussian sources have one)."""
        if self.pair is None:
            raise DataError(f"the {self.source} source of this problem holds no prepared images")
        return self.pair

    @property
    def tr(self) -> float:
        """``n + theta``."""
        return float(self.n + self.theta)

    @property
    def trS(self) -> float:  # noqa: N802 (the paper's name)
        return self.transform.trS

    @property
    def input_scale(self) -> float:
        """``sqrt(theta / trS)``, the factor on the prepared image."""
        return math.sqrt(self.theta / self.trS)

    def images(self, i: int, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` prepared images (float64 rows) of class index ``i`` (0 or 1).

        ``real``: drawn without replacement; ``gaussian``: ``mean_i + R_i g``, ``g ~ N(0, I)``,
        ``R_i R_i^T`` the prepared class covariance; ``cgan``: fresh generated images, prepared
        with the estimated statistics.
        """
        if count == 0:
            return np.zeros((0, self.n))
        if self.source == "real":
            pool = self._prepared().images[i]
            return pool[rng.choice(pool.shape[0], size=count, replace=False)]
        if self.source == "gaussian":
            g = rng.standard_normal((count, self.n))
            return self._prepared().class_mean(i) + g @ self._prepared().covariance_root(i).T

        raw = gan.generate(self.generator, self.classes[i], count, rng)
        return self.transform.prepare(i, raw)

    def _counts(self, m: Any) -> tuple[int, int]:
        m = COUNT.check("m", m)
        counts = (int(m) // 2, int(m) - int(m) // 2)
        if self.source == "real":
            for i, count in enumerate(counts):
                size = self._prepared().images[i].shape[0]
                if count > size:
                    raise ConfigError(
                        "m",
                        f"m = {m} needs {count} images of class {self.classes[i]} but only "
                        f"{size} exist (real images are drawn without replacement)",
                    )
        return counts

    def sample(self, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(X, y)``: ``X`` is ``m x 784``, ``y`` is ``-1`` (first ``m // 2`` rows) or ``+1``."""
        counts = self._counts(m)
        v = np.concatenate([self.images(i, c, rng) for i, c in enumerate(counts)])
        return self._inputs(v, counts, rng)

    def _inputs(
        self, v: np.ndarray, counts: tuple[int, int], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """``x = sqrt(theta / trS) v + z`` (``z`` from ``rng``) and the labels of ``counts``."""
        x = self.input_scale * v
        x += rng.standard_normal(x.shape)
        y = np.repeat(np.array([-1.0, 1.0]), counts)
        return x.astype(self.dtype, copy=False), y.astype(self.dtype)

    def sample_disjoint(
        self,
        sizes: Sequence[int],
        rngs: Sequence[np.random.Generator],
        pick: np.random.Generator,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Several data sets (e.g. gradient batch, training set, test set) at once.

        ``real``: for each class, the images of all sets are one draw without replacement from
        the class's pool (``pick``), split in order, so no image is in two sets; the noise ``z`` of
        set ``j`` comes from ``rngs[j]``. A class with fewer images than the sets need together
        is a one-line :class:`ConfigError`. ``gaussian`` and ``cgan`` draw fresh images anyway:
        set ``j`` is ``sample(sizes[j], rngs[j])``.
        """
        if len(sizes) != len(rngs):
            raise ValueError("one generator per data set is needed")
        if self.source != "real":
            return [self.sample(size, rng) for size, rng in zip(sizes, rngs, strict=True)]
        counts = [self._counts(size) for size in sizes]
        parts: list[list[np.ndarray]] = [[] for _ in sizes]
        for i in range(2):
            pool = self._prepared().images[i]
            need = sum(c[i] for c in counts)
            if need > pool.shape[0]:
                raise ConfigError(
                    "m",
                    f"the data sets of sizes {', '.join(map(str, sizes))} need {need} images of "
                    f"class {self.classes[i]} together but only {pool.shape[0]} exist (real images "
                    "are drawn without replacement from one pool, so the sets are disjoint)",
                )
            chosen = pool[pick.choice(pool.shape[0], size=need, replace=False)]
            start = 0
            for j, c in enumerate(counts):
                parts[j].append(chosen[start : start + c[i]])
                start += c[i]
        return [
            self._inputs(np.concatenate(parts[j]), counts[j], rngs[j]) for j in range(len(sizes))
        ]


def build_problem(
    *,
    theta: float,
    classes: Sequence[int] = (0, 1),
    centering: str = "class",
    source: str = "real",
    data_dir: str | os.PathLike[str] | None = None,
    dtype: type | np.dtype | str = np.float64,
    rng: np.random.Generator | None = None,
    gan_dir: str | os.PathLike[str] | None = None,
    gan_stats_samples: int = DEFAULT_GAN_STATS_SAMPLES,
) -> FashionProblem:
    """A validated :class:`FashionProblem`.

    ``theta >= 0`` is the total variance of the image part; ``classes`` two distinct labels in
    ``0..9``; ``centering`` ``class`` or ``common``; ``source`` ``real``, ``gaussian`` or
    ``cgan``; ``dtype`` float64 or float32. ``data_dir`` is searched as in
    :func:`find_data_dir` (real and gaussian sources). ``gan_dir`` is the cache directory of
    :mod:`gmstep.gan` (``--cache``; default :func:`gmstep.gan.default_cache_dir`), and the CGAN
    class means and traces are estimated from ``gan_stats_samples`` generated images per class
    (the paper used 10^6). ``rng`` is accepted for a uniform interface but not used: every random
    draw happens in :meth:`FashionProblem.sample`, and the CGAN statistics use a fixed seed.

    The prepared real pairs are memoised, and so are the Gaussian source's covariance roots.
    """
    del rng
    theta = NONNEGATIVE.check("theta", theta)
    pair_classes = check_classes(classes)
    centering = check_centering(centering)
    source = config.PARAMS["source"].check.check("source", source)
    dtype_name: Any = dtype
    with suppress(TypeError):
        dtype_name = np.dtype(dtype).name
    dt = np.dtype(config.PARAMS["dtype"].check.check("dtype", dtype_name))
    if source != "cgan":
        pair = prepared_cached(str(find_data_dir(data_dir)), pair_classes, centering)
        return FashionProblem(
            theta=theta, transform=pair.transform, source=source, pair=pair, dtype=dt
        )
    gan_stats_samples = config.PARAMS["gan_stats_samples"].check.check("gan_stats_samples", gan_stats_samples)

    bundle = gan.load_generator(gan_dir)
    for c in pair_classes:
        gan.check_class(bundle, c)
    stats = [gan_statistics(bundle, c, int(gan_stats_samples)) for c in pair_classes]
    transform = make_transform(
        np.stack([s[0] for s in stats]), [s[1] for s in stats], pair_classes, centering
    )
    return FashionProblem(
        theta=theta, transform=transform, source=source, generator=bundle, dtype=dt
    )


# ----------------------------------------------------------------------------- figure


def save_inputs_figure(
    problem: FashionProblem,
    path: str | os.PathLike[str],
    rng: np.random.Generator,
    per_class: int = 8,
) -> Path:
    """A PNG grid: for each class, a row of raw images (``[0, 1]``, before preprocessing) and a
    row of the inputs ``x = sqrt(theta / trS) v + z`` the network sees (28 x 28, own colour
    scale). Raw images of the gaussian source are the Gaussian draws mapped back through the
    inverse preprocessing and clipped to ``[0, 1]``.
    """
    from matplotlib.figure import Figure

    per_class = POSITIVE.check("per_class", per_class)
    fig = Figure(figsize=(1.0 + 0.9 * per_class, 4.2), layout="constrained")
    axes = fig.subplots(4, per_class, squeeze=False)
    for i, c in enumerate(problem.classes):
        v = problem.images(i, per_class, rng)
        raw = np.clip(problem.transform.unprepare(i, v), 0.0, 1.0)
        x = problem.input_scale * v + rng.standard_normal(v.shape)
        lim = float(np.max(np.abs(x))) or 1.0
        rows = ((raw, 0.0, 1.0, "raw"), (x, -lim, lim, "input x"))
        for r, (data, lo, hi, what) in enumerate(rows):
            for j in range(per_class):
                ax = axes[2 * i + r, j]
                ax.imshow(data[j].reshape(IMAGE_SHAPE), cmap="gray", vmin=lo, vmax=hi)
                ax.set_xticks([])
                ax.set_yticks([])
            axes[2 * i + r, 0].set_ylabel(f"{CLASS_NAMES[c]}\n{what}", fontsize=8)
    fig.suptitle(
        f"Fashion-MNIST {problem.source} inputs, theta = {problem.theta:g}, "
        f"{problem.centering} centring",
        fontsize=9,
    )
    out = Path(path)
    fig.savefig(out, dpi=72)
    return out
