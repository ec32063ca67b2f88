"""Structured Gaussian mixtures and their targets (docs/MATH.md, section 1).

Component ``c`` of the mixture is ``x | c ~ N(mu_c, Sigma_c)`` with

    Sigma_c = I_n + Gamma_c diag(theta_c) Gamma_c^T,

``Gamma_c`` an ``n x d_c`` matrix with orthonormal columns (the spike directions) and
``theta_c >= 0`` the spike strengths. Everything is stored in O(n d): a sample is drawn as

    x = z + Gamma_c diag(sqrt(1 + theta_c) - 1) Gamma_c^T z + mu_c,   z ~ N(0, I_n),

whose covariance is exactly ``Sigma_c`` because ``Gamma_c^T Gamma_c = I``.

A *problem* is anything with ``n``, ``tr`` (the ``F`` initialisation uses ``N(0, 1/tr)``),
``scale`` (the Hermite scale ``b``) and ``sample(m, rng) -> (X, y)``; :class:`MixtureProblem`
is the Gaussian-mixture one, the Fashion-MNIST problems live in :mod:`gmstep.fashion`.

The Gaussian-mixture sampling draws from ``rng``: a NumPy generator (the host), or a device
stream of the torch backend (``rng = device``, :class:`gmstep.engine.torch_ops.DeviceStream`),
which also brings the structure's host arrays to its device (``on``) and supplies ``cast`` and
``relu``; the formulas are these, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .errors import ConfigError


class Problem(Protocol):
    """What the experiment runner needs from a data source."""

    n: int
    tr: float
    scale: float

    def sample(self, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``m`` inputs (rows of an ``m x n`` array) and their targets."""
        ...


def _on(rng: Any, a: Any) -> Any:
    """The host array ``a`` where ``rng`` draws: as it is for a NumPy generator."""
    return rng.on(a) if hasattr(rng, "on") else a


def _cast(rng: Any, a: Any, dtype: Any) -> Any:
    return rng.cast(a, dtype) if hasattr(rng, "cast") else a.astype(dtype, copy=False)


def _relu(rng: Any, a: Any) -> Any:
    return rng.relu(a) if hasattr(rng, "relu") else np.maximum(a, 0.0)


def haar_columns(n: int, d: int, rng: np.random.Generator, avoid: np.ndarray | None = None):
    """An ``n x d`` matrix with Haar-distributed orthonormal columns.

    With ``avoid`` (``n x p``, orthonormal columns) the columns are Haar in the orthogonal
    complement of ``span(avoid)``. Cost O(n d (d + p)); no ``n x n`` matrix is formed.
    """
    g = rng.standard_normal((n, d))
    if avoid is not None and avoid.size:
        g -= avoid @ (avoid.T @ g)
    q, r = np.linalg.qr(g)
    # Sign fix so that the distribution is exactly Haar (QR's signs are not).
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    q *= signs
    if avoid is not None and avoid.size:
        # One more projection removes the rounding left by the first.
        q -= avoid @ (avoid.T @ q)
        q, _ = np.linalg.qr(q)
    return q


def component_counts(ratios: Sequence[float] | np.ndarray, m: int) -> np.ndarray:
    """Exact counts: ``int(rho_c m)`` for every component but the last, which takes the rest."""
    counts = [int(r * m + 1e-9) for r in ratios[:-1]]
    counts.append(m - sum(counts))
    if counts[-1] < 0:
        raise ConfigError("rho", f"ratios {list(ratios)} give more than m = {m} samples")
    return np.array(counts, dtype=int)


@dataclass(frozen=True)
class GaussianMixture:
    """A realised structure: ratios, spike directions, strengths and means of every component."""

    ratios: np.ndarray  # (C,)
    spikes: tuple[np.ndarray, ...]  # Gamma_c, each n x d_c with orthonormal columns
    strengths: tuple[np.ndarray, ...]  # theta_c, each (d_c,)
    means: np.ndarray | None = None  # (C, n) or None for zero means

    @property
    def n(self) -> int:
        return int(self.spikes[0].shape[0])

    @property
    def num_components(self) -> int:
        return len(self.ratios)

    @property
    def tr(self) -> float:
        """``tr(Sigma_1) = n + sum(theta_1)``."""
        return float(self.n + np.sum(self.strengths[0]))

    @property
    def scale(self) -> float:
        """The Hermite scale ``b = sqrt(n / tr)``."""
        return float(np.sqrt(self.n / self.tr))

    def covariance(self, c: int) -> np.ndarray:
        """The dense ``Sigma_c`` (for tests and small n only)."""
        g, t = self.spikes[c], self.strengths[c]
        return np.eye(self.n) + (g * t) @ g.T

    def mixture_operator_norm(self) -> float:
        """``||sum_c rho_c Sigma_c||_op = 1 + lambda_max(W^T W)``, ``W = [sqrt(rho_c theta_c) Gamma_c]``."""
        w = np.concatenate(
            [g * np.sqrt(r * t) for g, t, r in zip(self.spikes, self.strengths, self.ratios, strict=True)],
            axis=1,
        )
        if w.shape[1] == 0:
            return 1.0
        return float(1.0 + np.linalg.eigvalsh(w.T @ w)[-1])

    def sample(
        self, m: int, rng: np.random.Generator, dtype: np.dtype | type = np.float64
    ) -> tuple[np.ndarray, np.ndarray]:
        """``m`` samples, rows grouped by component with exact counts; returns ``(X, component)``."""
        counts = component_counts(self.ratios, m)
        x = rng.standard_normal((m, self.n))
        comp = np.repeat(np.arange(self.num_components), counts)
        start = 0
        for c, count in enumerate(counts):
            if count == 0:
                continue
            rows = slice(start, start + count)
            g, t = _on(rng, self.spikes[c]), _on(rng, np.sqrt(1.0 + self.strengths[c]) - 1.0)
            x[rows] += ((x[rows] @ g) * t) @ g.T
            if self.means is not None:
                x[rows] += _on(rng, self.means[c])
            start += count
        return _cast(rng, x, dtype), comp


def spike_strengths(n: int, alpha: float, beta: float, theta: float | None) -> float:
    """``theta = n^(beta (1 - alpha))`` unless given explicitly."""
    if theta is not None:
        return float(theta)
    return float(n ** (beta * (1.0 - alpha)))


def draw_mixture(
    n: int,
    ratios: Sequence[float],
    ranks: Sequence[int],
    theta: float,
    alignment: float,
    rng: np.random.Generator,
    random_spikes: bool = False,
    mean_norm: float = 0.0,
) -> GaussianMixture:
    """Draw spike directions, strengths and means.

    ``Gamma_1`` is Haar. For ``c >= 2`` the first ``min(d_1, d_c)`` columns are
    ``a Gamma_1 + sqrt(1 - a^2) Gamma_c'`` with ``Gamma_c'`` Haar in the orthogonal complement of
    ``span(Gamma_1)``, so ``Gamma_c`` is exactly orthonormal and its overlap with ``Gamma_1`` is
    exactly ``a`` column by column. Strengths are ``theta`` for every spike, or ``theta U(0, 1)``
    (``random_spikes``), then rescaled so that ``sum(theta_c) = sum(theta_1)`` for every c.
    Means (``mean_norm > 0``) are ``mean_norm`` times independent uniform unit vectors.
    """
    num = len(ratios)
    g1 = haar_columns(n, ranks[0], rng)
    spikes = [g1]
    for c in range(1, num):
        other = haar_columns(n, ranks[c], rng, avoid=g1)
        j = min(ranks[0], ranks[c])
        gc = other.copy()
        gc[:, :j] = alignment * g1[:, :j] + np.sqrt(max(1.0 - alignment**2, 0.0)) * other[:, :j]
        spikes.append(gc)
    strengths = []
    for c in range(num):
        t = np.full(ranks[c], theta, dtype=float)
        if random_spikes:
            t *= rng.uniform(0.0, 1.0, size=ranks[c])
        strengths.append(t)
    if random_spikes:
        total = strengths[0].sum()
        for c in range(1, num):
            s = strengths[c].sum()
            strengths[c] = strengths[c] * (total / s) if s > 0 else np.full(ranks[c], total / ranks[c])
    means = None
    if mean_norm > 0:
        dirs = rng.standard_normal((num, n))
        means = mean_norm * dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    return GaussianMixture(np.asarray(ratios, float), tuple(spikes), tuple(strengths), means)


def teacher(mix: GaussianMixture, rng: np.random.Generator, spike_aligned: bool = False):
    """The single-index direction ``xi`` with ``||xi|| = 1 / sqrt(||Sigma||_op)``.

    Random: ``xi ~ N(0, I_n)`` rescaled. Spike-aligned: the sum of each component's strongest
    spike direction, rescaled.
    """
    if spike_aligned:
        xi = sum(g[:, int(np.argmax(t))] for g, t in zip(mix.spikes, mix.strengths, strict=True))
    else:
        xi = rng.standard_normal(mix.n)
    norm = np.linalg.norm(xi)
    if norm == 0:
        raise ConfigError("target", "the spike-aligned teacher vanishes (alignment = -1?)")
    return xi / (norm * np.sqrt(mix.mixture_operator_norm()))


@dataclass(frozen=True)
class MixtureProblem:
    """Regression (``y = ReLU(xi^T x) + delta eps``) or classification (``y = 2c - 3``)."""

    mixture: GaussianMixture
    task: str  # "regression" or "classification"
    xi: np.ndarray | None = None
    delta: float = 0.0
    dtype: type = np.float64

    @property
    def n(self) -> int:
        return self.mixture.n

    @property
    def tr(self) -> float:
        return self.mixture.tr

    @property
    def scale(self) -> float:
        return self.mixture.scale

    def sample(self, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        x, comp = self.mixture.sample(m, rng)
        if self.task == "classification":
            # Components are 0-based here: c = 1 -> -1, c = 2 -> +1.
            y = _on(rng, 2.0 * (comp + 1) - 3.0)
        else:
            y = _relu(rng, x @ _on(rng, self.xi))
            if self.delta > 0:
                y = y + self.delta * rng.standard_normal(m)
        return _cast(rng, x, self.dtype), _cast(rng, y, self.dtype)
