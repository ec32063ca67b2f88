"""The preprocessing of a Fashion-MNIST class pair (docs/MATH.md §5): class means, covariance
traces, centring and the rescaling of the second class (:class:`PairTransform`), and the
prepared real images (:class:`PreparedPair`, :func:`prepare_pair`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import config
from .constraints import CLASS_PAIR
from .errors import DataError
from .fashion_files import all_cached


@dataclass(frozen=True, eq=False)
class PairTransform:
    """The affine preprocessing of a class pair, from raw class means and covariance traces.

    With raw class means ``mu_i``, raw covariance traces ``t_i = tr(S_i)`` (``S_i`` is the
    covariance of class ``i`` about its own mean, normalised by ``1/N_i``), scales
    ``s_1 = 1``, ``s_2 = sqrt(t_1 / t_2)`` and a centre ``c_i``, an image ``u`` of class ``i``
    becomes ``s_i (u - c_i)``:

    * ``centering="class"``:  ``c_i = mu_i``, so both classes have mean 0;
    * ``centering="common"``: ``c_1 = c_2 = mu = (mu_1 + mu_2) / 2``; the whole centred class-2
      image, offset included, is scaled: ``x_2 = sqrt(t_1 / t_2) (u_2 - mu)`` (docs/MATH.md §5, the
      paper's preprocessing). The prepared class means are ``(mu_1 - mu_2) / 2`` and
      ``s_2 (mu_2 - mu_1) / 2``.

    In both cases the covariances ``S_1`` and ``s_2^2 S_2`` have equal traces, and
    ``trS = tr((S_1 + s_2^2 S_2) / 2) = (t_1 + s_2^2 t_2) / 2 = t_1``: the covariance trace after
    scaling (for common centring the mean offsets are not part of it).
    """

    classes: tuple[int, int]
    centering: str
    means: np.ndarray  # (2, 784) raw class means mu_i
    traces: np.ndarray  # (2,) raw tr(S_i)

    @property
    def scales(self) -> np.ndarray:
        """``(1, sqrt(t_1 / t_2))``."""
        return np.array([1.0, math.sqrt(self.traces[0] / self.traces[1])])

    @property
    def centres(self) -> np.ndarray:
        """``c_i``: the class means (class centring) or twice their average (common centring)."""
        if self.centering == "class":
            return self.means
        return np.broadcast_to(self.means.mean(axis=0), self.means.shape)

    @property
    def offsets(self) -> np.ndarray:
        """The prepared class means ``s_i (mu_i - c_i)``: 0 for class centring."""
        return self.scales[:, None] * (self.means - self.centres)

    @property
    def trS(self) -> float:  # noqa: N802 (the paper's name)
        """``tr((S_1 + S_2) / 2)`` after scaling ``= (t_1 + s_2^2 t_2) / 2``."""
        s = self.scales
        return float((self.traces[0] * s[0] ** 2 + self.traces[1] * s[1] ** 2) / 2.0)

    def prepare(self, i: int, raw: np.ndarray) -> np.ndarray:
        """``s_i (u - c_i)`` for raw images ``u`` (rows) of class index ``i``."""
        return self.scales[i] * (raw - self.centres[i])

    def unprepare(self, i: int, prepared: np.ndarray) -> np.ndarray:
        """The inverse map ``v / s_i + c_i``."""
        return prepared / self.scales[i] + self.centres[i]


def check_centering(centering: Any) -> str:
    return config.PARAMS["centering"].check.check("centering", centering)


def check_classes(classes: Any) -> tuple[int, int]:
    """Two distinct labels in 0..9 (the ``classes`` parameter's constraint)."""
    if isinstance(classes, np.ndarray):
        classes = classes.tolist()
    a, b = CLASS_PAIR.check("classes", classes)
    return a, b


def make_transform(
    means: np.ndarray, traces: Sequence[float], classes: tuple[int, int], centering: str
) -> PairTransform:
    """A :class:`PairTransform` after checking that both traces are positive."""
    totals = np.asarray(traces, dtype=np.float64)
    for c, t in zip(classes, totals, strict=True):
        if not (np.isfinite(t) and t > 0):
            raise DataError(f"class {c} has total variance tr(S) = {t}; cannot rescale it")
    return PairTransform(classes, centering, np.asarray(means, dtype=np.float64), totals)


class PairView:
    """The class pair and centring of the :class:`PairTransform` an object holds as ``transform``."""

    transform: PairTransform

    @property
    def classes(self) -> tuple[int, int]:
        return self.transform.classes

    @property
    def centering(self) -> str:
        return self.transform.centering


@dataclass(frozen=True, eq=False)
class PreparedPair(PairView):
    """The prepared real images of a class pair and their transform (see :class:`PairTransform`).

    ``images[i]`` holds the prepared images of class ``classes[i]`` (rows, read-only).
    """

    transform: PairTransform
    images: tuple[np.ndarray, np.ndarray]
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def trS(self) -> float:  # noqa: N802 (the paper's name)
        return self.transform.trS

    def class_mean(self, i: int) -> np.ndarray:
        """Mean of the prepared images of class index ``i`` (0 or the offset, up to rounding)."""
        key = f"mean{i}"
        if key not in self._cache:
            self._cache[key] = self.images[i].mean(axis=0)
        return self._cache[key]

    def covariance(self, i: int) -> np.ndarray:
        """``(1/N_i) sum (v - vbar)(v - vbar)^T`` over the prepared images of class index ``i``."""
        key = f"cov{i}"
        if key not in self._cache:
            v = self.images[i] - self.class_mean(i)
            self._cache[key] = (v.T @ v) / v.shape[0]
        return self._cache[key]

    def covariance_root(self, i: int) -> np.ndarray:
        """``R = V diag(sqrt(max(w, 0)))`` from ``eigh(C) = (w, V)``, so ``R R^T = C``."""
        key = f"root{i}"
        if key not in self._cache:
            w, v = np.linalg.eigh(self.covariance(i))
            self._cache[key] = v * np.sqrt(np.clip(w, 0.0, None))
        return self._cache[key]


def prepare_pair(
    images: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[int] = (0, 1),
    centering: str = "class",
) -> PreparedPair:
    """Preprocess the images of a class pair (docs/MATH.md §5); a pure function of its arguments.

    For class ``i`` with images ``u`` (rows of ``images[labels == classes[i]]``):
    ``mu_i = mean(u)``, ``t_i = tr(S_i) = mean ||u - mu_i||^2`` (covariance about the class
    mean, ``1/N`` normalisation), ``s_2 = sqrt(t_1 / t_2)``, and the prepared image is

    * ``class``:  ``s_i (u - mu_i)``;
    * ``common``: ``s_i (u - (mu_1 + mu_2) / 2)``: the whole commonly centred image, offset
      included, is scaled (see :class:`PairTransform`).

    ``trS = tr((S_1 + S_2) / 2)`` after the scaling ``= t_1``.
    """
    pair = check_classes(tuple(classes))
    centering = check_centering(centering)
    images = np.asarray(images, dtype=np.float64)
    labels = np.asarray(labels)
    if images.ndim != 2 or images.shape[0] != labels.shape[0]:
        raise DataError(
            f"images {images.shape} and labels {labels.shape} do not match (want N x n and N)"
        )
    per_class = []
    for c in pair:
        u = images[labels == c]
        if u.shape[0] < 2:
            raise DataError(f"class {c} has {u.shape[0]} images; at least 2 are needed")
        per_class.append(u)
    means = np.stack([u.mean(axis=0) for u in per_class])
    traces = [
        float(np.mean(np.sum((u - mu) ** 2, axis=1))) for u, mu in zip(per_class, means, strict=True)
    ]
    transform = make_transform(means, traces, pair, centering)
    prepared = []
    for i, u in enumerate(per_class):
        v = transform.prepare(i, u)
        v.setflags(write=False)
        prepared.append(v)
    return PreparedPair(transform, (prepared[0], prepared[1]))


@functools.lru_cache(maxsize=4)
def prepared_cached(directory: str, classes: tuple[int, int], centering: str) -> PreparedPair:
    images, labels = all_cached(directory)
    return prepare_pair(images, labels, classes, centering)

