"""Hermite expansions of activations and the degree-l polynomial surrogate (docs/MATH.md).

This module is the reference implementation of the Hermite model that the engine
(:mod:`gmstep.engine`) is tested against; it also holds the project's one evaluator of Hermite
polynomials, :func:`hermite_e` (the values ``He_0(z) .. He_l(z)``, used for the coefficients here
and for the moments of :mod:`gmstep.theory_moments`), and the one evaluator of the surrogate
polynomial, :meth:`HermiteModel.polynomial` (used by the engine too).

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
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import special

from .activations import Activation, get
from .config import MAX_DEGREE_RULE as MAX_DEGREE_RULE  # noqa: F401 (the degree rule lives in config)
from .config import degree_rule as degree_rule  # noqa: F401
from .errors import ConfigError

DEFAULT_NODES = 100
#: ``gauss-hermite``: the paper's rule (``nodes`` probabilists' Gauss-Hermite nodes).
#: ``split``: Gauss-Legendre with ``nodes`` nodes on each of ``[-12, 0]`` and ``[0, 12]`` against
#: the normal density; exact up to rounding for activations smooth away from 0, ReLU included,
#: whose kink at 0 costs the Gauss-Hermite rule about 1 % on ``h_4`` with 100 nodes.
QUADRATURES = ("gauss-hermite", "split")
_SPLIT_HALF_WIDTH = 12.0  # the normal density is below 1e-31 beyond


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


@lru_cache(maxsize=16)
def _split_nodes(num: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``E[f(z)] = int f(z) phi(z) dz`` as two Gauss-Legendre rules of ``num``
    nodes on ``[-12, 0]`` and ``[0, 12]`` (``phi`` the standard normal density)."""
    x, wl = np.polynomial.legendre.leggauss(num)
    half = _SPLIT_HALF_WIDTH / 2
    zp = half * (x + 1.0)  # [0, 12]
    wp = half * wl * np.exp(-0.5 * zp * zp) / np.sqrt(2.0 * np.pi)
    z = np.concatenate([-zp[::-1], zp])
    w = np.concatenate([wp[::-1], wp])
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


def quadrature_rule(nodes: int = DEFAULT_NODES, quadrature: str = "gauss-hermite") -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``z_j`` and weights ``w_j`` with ``E[f(z)] ~ sum_j w_j f(z_j)``, ``z ~ N(0, 1)``."""
    if quadrature == "gauss-hermite":
        return _nodes(nodes)
    if quadrature == "split":
        return _split_nodes(nodes)
    raise ConfigError("hermite_quadrature", f"must be one of {', '.join(QUADRATURES)}; got {quadrature!r}")


def gaussian_expectation(fn, nodes: int = DEFAULT_NODES, quadrature: str = "gauss-hermite") -> float:
    """``E[fn(z)]`` for ``z ~ N(0, 1)`` by quadrature (Gauss-Hermite unless ``quadrature="split"``)."""
    z, w = quadrature_rule(nodes, quadrature)
    return float(np.dot(w, fn(z)))


def coefficients(
    activation: str | Activation, scale: float, degree: int, nodes: int = DEFAULT_NODES,
    quadrature: str = "gauss-hermite",
) -> np.ndarray:
    """``h_0 .. h_degree`` with ``h_i = E[sigma(b z) He_i(z)] / i!`` and ``b = scale``."""
    if degree < 0:
        raise ConfigError("degree", f"must be >= 0, got {degree}")
    if not scale > 0:
        raise ConfigError("scale", f"must be > 0, got {scale}")
    act = get(activation)
    z, w = quadrature_rule(nodes, quadrature)
    values = act.fn(scale * z)
    he = hermite_e(z, degree)
    factorials = np.array([math.factorial(i) for i in range(degree + 1)], dtype=float)
    return (he @ (w * values)) / factorials


def second_moment(
    activation: str | Activation, scale: float, nodes: int = DEFAULT_NODES, quadrature: str = "gauss-hermite"
) -> float:
    """``E[sigma(b z)^2]``."""
    act = get(activation)
    return gaussian_expectation(lambda z: act.fn(scale * z) ** 2, nodes, quadrature)


def residual(coefs: np.ndarray, moment2: float) -> float:
    """``h_{>l} = sqrt(E[sigma^2] - sum_{i<=l} i! h_i^2)``, clipped at 0 against rounding."""
    factorials = np.array([math.factorial(i) for i in range(len(coefs))], dtype=float)
    return float(np.sqrt(max(moment2 - float(np.sum(factorials * coefs**2)), 0.0)))


@dataclass(frozen=True)
class HermiteModel:
    """The degree-l surrogate ``sigma_l`` of an activation at scale ``b``.

    ``monomial`` holds ``p(u) = sum_{i<=l} h_i He_i(u / b) = sum_j c_j u^j`` in the monomial
    basis of ``u`` (converted once from ``coefs``; Horner's rule then costs 2 l passes over the
    data instead of the recurrence's 5 l).
    """

    activation: str
    scale: float
    degree: int
    coefs: np.ndarray
    tail: float
    monomial: tuple[float, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.monomial:
            in_z = np.polynomial.hermite_e.herme2poly(self.coefs)
            monomial = tuple(float(c) / float(self.scale) ** j for j, c in enumerate(in_z))
            object.__setattr__(self, "monomial", monomial or (0.0,))

    @classmethod
    def build(
        cls,
        activation: str | Activation,
        scale: float,
        degree: int,
        nodes: int = DEFAULT_NODES,
        quadrature: str = "gauss-hermite",
    ) -> HermiteModel:
        act = get(activation)
        coefs = coefficients(act, scale, degree, nodes, quadrature)
        tail = residual(coefs, second_moment(act, scale, nodes, quadrature))
        return cls(act.name, float(scale), int(degree), coefs, tail)

    def polynomial(self, u: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``p(u) = sum_{i<=l} h_i He_i(u / b)`` entrywise by Horner's rule on :attr:`monomial`
        (into ``out`` when given; a new array of ``u``'s floating type otherwise)."""
        u = np.asarray(u)
        if out is None:
            out = np.empty(u.shape, np.result_type(u.dtype, np.float16))
        c = self.monomial
        if len(c) == 1:
            out.fill(c[0])
            return out
        np.multiply(u, c[-1], out=out)
        out += c[-2]
        for cj in reversed(c[:-2]):
            out *= u
            out += cj
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
