"""Hermite expansions of activations and the degree-l polynomial surrogate (SPEC 3).

With probabilists' Hermite polynomials ``He_i`` (``He_0 = 1``, ``He_1 = z``,
``He_{i+1}(z) = z He_i(z) - i He_{i-1}(z)``) and ``z ~ N(0, 1)``:

    h_i = E[sigma(b z) He_i(z)] / i!,      so that  sigma(b z) = sum_i h_i He_i(z)   in L2,

    h_{>l} = sqrt(E[sigma(b z)^2] - sum_{i<=l} i! h_i^2),

and the degree-l surrogate is ``sigma_l(u) = sum_{i<=l} h_i He_i(u / b) + h_{>l} zeta`` with
``zeta ~ N(0, 1)`` independent for every entry. Expectations use Gauss-Hermite quadrature for
the weight ``exp(-z^2 / 2)`` (probabilists' nodes), 100 nodes by default as in the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

from .activations import Activation, get
from .errors import ConfigError

DEFAULT_NODES = 100
MAX_DEGREE_RULE = 4


@lru_cache(maxsize=16)
def _nodes(num: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss-Hermite nodes and weights normalised so that sum(w) = 1.

    NumPy's ``hermegauss`` overflows (NaN weights) from about 375 nodes on; SciPy's
    ``roots_hermitenorm`` (asymptotic formulas for many nodes) then gives the same rule.
    """
    with np.errstate(all="ignore"):
        z, w = np.polynomial.hermite_e.hermegauss(num)
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(z))):
        z, w = special.roots_hermitenorm(num)
    w = w / np.sqrt(2.0 * np.pi)
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


def hermite_e(z: np.ndarray, degree: int) -> np.ndarray:
    """Stack ``[He_0(z), ..., He_degree(z)]`` along a new first axis (three-term recurrence)."""
    z = np.asarray(z, dtype=float)
    out = np.empty((degree + 1, *z.shape))
    out[0] = 1.0
    if degree >= 1:
        out[1] = z
    for i in range(1, degree):
        out[i + 1] = z * out[i] - i * out[i - 1]
    return out


def gaussian_expectation(fn, nodes: int = DEFAULT_NODES) -> float:
    """``E[fn(z)]`` for ``z ~ N(0, 1)`` by Gauss-Hermite quadrature."""
    z, w = _nodes(nodes)
    return float(np.dot(w, fn(z)))


def coefficients(
    activation: str | Activation, scale: float, degree: int, nodes: int = DEFAULT_NODES
) -> np.ndarray:
    """``h_0 .. h_degree`` with ``h_i = E[sigma(b z) He_i(z)] / i!`` and ``b = scale``."""
    if degree < 0:
        raise ConfigError("degree", f"must be >= 0, got {degree}")
    if not scale > 0:
        raise ConfigError("scale", f"must be > 0, got {scale}")
    act = get(activation)
    z, w = _nodes(nodes)
    values = act.fn(scale * z)
    he = hermite_e(z, degree)
    factorials = np.array([math.factorial(i) for i in range(degree + 1)], dtype=float)
    return (he @ (w * values)) / factorials


def second_moment(activation: str | Activation, scale: float, nodes: int = DEFAULT_NODES) -> float:
    """``E[sigma(b z)^2]``."""
    act = get(activation)
    return gaussian_expectation(lambda z: act.fn(scale * z) ** 2, nodes)


def residual(coefs: np.ndarray, moment2: float) -> float:
    """``h_{>l} = sqrt(E[sigma^2] - sum_{i<=l} i! h_i^2)``, clipped at 0 against rounding."""
    factorials = np.array([math.factorial(i) for i in range(len(coefs))], dtype=float)
    return float(np.sqrt(max(moment2 - float(np.sum(factorials * coefs**2)), 0.0)))


def degree_rule(beta: float) -> int:
    """``l = ceil(beta / (1 - beta))`` clipped to ``[1, 4]``; ``beta = 1`` gives 4."""
    if not 0.0 <= beta <= 1.0:
        raise ConfigError("beta", f"must be in [0, 1], got {beta}")
    if beta >= 1.0:
        return MAX_DEGREE_RULE
    # A tiny tolerance keeps e.g. beta = 3/4 (ratio 3 up to rounding) at 3.
    raw = math.ceil(beta / (1.0 - beta) - 1e-9)
    return int(min(max(raw, 1), MAX_DEGREE_RULE))


@dataclass(frozen=True)
class HermiteModel:
    """The degree-l surrogate ``sigma_l`` of an activation at scale ``b``."""

    activation: str
    scale: float
    degree: int
    coefs: np.ndarray
    tail: float

    @classmethod
    def build(
        cls,
        activation: str | Activation,
        scale: float,
        degree: int,
        nodes: int = DEFAULT_NODES,
    ) -> HermiteModel:
        act = get(activation)
        coefs = coefficients(act, scale, degree, nodes)
        tail = residual(coefs, second_moment(act, scale, nodes))
        return cls(act.name, float(scale), int(degree), coefs, tail)

    def polynomial(self, u: np.ndarray) -> np.ndarray:
        """``sum_{i<=l} h_i He_i(u / b)`` evaluated entrywise (Clenshaw-free recurrence)."""
        x = u / self.scale
        out = np.full_like(x, self.coefs[0])
        if self.degree == 0:
            return out
        prev, cur = np.ones_like(x), x
        out += self.coefs[1] * cur
        for i in range(1, self.degree):
            prev, cur = cur, x * cur - i * prev
            out += self.coefs[i + 1] * cur
        return out

    def __call__(self, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``sigma_l(u) = polynomial(u) + h_{>l} zeta``, zeta i.i.d. N(0, 1) per entry."""
        out = self.polynomial(u)
        if self.tail > 0.0:
            # Drawn in float64 and rounded, as the engine does: float32 runs see the same numbers.
            noise = rng.standard_normal(size=out.shape).astype(out.dtype, copy=False)
            noise *= self.tail
            out += noise
        return out
