"""Gaussian expectations ``E[f(m + s z)]``, ``z ~ N(0, 1)``, accurate for narrow and wide ``s``.

Gauss-Hermite quadrature (:data:`GH_NODES` nodes) is exact to rounding when ``f(m + s z)`` is
smooth at the scale of the density, but an activation that turns over at unit scale (tanh: poles
at distance ``pi / (2 s)`` from the real axis) makes it converge slowly once ``s`` grows: with
200 nodes ``E[tanh(m + s z)^2]`` is off by 7e-14 at ``s = 1.25``, 1e-8 at ``s = 2`` and 1e-2 at
``s = 10`` (large steps and small widths give such ``s``: fig7b, fig8 at ``k = 5``). Above
:data:`WIDE_SCALE` the expectations are taken by a composite Gauss-Legendre rule instead
(:func:`composite_rule`): pieces between fixed points of the density's scale and points
clustered at the argument's zero crossing ``z0 = -m / s`` at the scale ``1 / s``, the normal
density in the weights. Both rules are checked against adaptive integration (tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from functools import lru_cache

import numpy as np

from .hermite import hermite_e

#: Gauss-Hermite nodes of the 1-D expectations and coefficients (narrow ``s``).
GH_NODES = 200
#: Above this standard deviation a 1-D expectation takes the composite rule.
WIDE_SCALE = 1.25
#: Gauss-Legendre nodes on each piece of the composite rule.
PIECE_NODES = 12
#: Fixed break points (the density's scale; beyond 12 the density is below 1e-31).
_GRID = np.array([-12.0, -8.0, -5.0, -3.0, -1.5, 0.0, 1.5, 3.0, 5.0, 8.0, 12.0])
#: Break points around a centre, in units of ``1 / scale``.
_AROUND = np.array([-40.0, -15.0, -6.0, -2.0, -0.5, 0.0, 0.5, 2.0, 6.0, 15.0, 40.0])
#: Neurons (or entries) per chunk of the composite rule (its arrays: chunk x nodes).
_CHUNK = 64
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@lru_cache(maxsize=8)
def gauss_hermite(num: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``E[g(z)] ~ sum_j w_j g(z_j)``, ``z ~ N(0, 1)``."""
    z, w = np.polynomial.hermite_e.hermegauss(num)
    return z, w / math.sqrt(2.0 * math.pi)


@lru_cache(maxsize=8)
def gauss_legendre(num: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``int_{-1}^{1} g(x) dx ~ sum_j w_j g(x_j)`` (read-only, computed once
    per ``num``: ``leggauss`` solves an eigenproblem, about 0.3 ms for 12 nodes)."""
    x, w = np.polynomial.legendre.leggauss(num)
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def norm_pdf(x: np.ndarray) -> np.ndarray:
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def composite_rule(centres: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row ``i`` the nodes and weights (``n x N``) of ``E[g(z)]``, ``z ~ N(0, 1)``, for a ``g``
    smooth at unit scale except near ``z = centres[i, p]``, where it varies at the scale
    ``1 / scales[i, p]``: Gauss-Legendre (:data:`PIECE_NODES` nodes) on the pieces between the
    points ``0, +-1.5, +-3, +-5, +-8, +-12`` and ``centres + {0, +-0.5, +-2, +-6, +-15, +-40} / scales``
    (clipped to ``[-12, 12]``), the density ``phi(z)`` in the weights. A kink of ``g`` at a centre
    is a break point, so piecewise smooth ``g`` (ReLU) are integrated exactly to rounding too."""
    centres, scales = np.atleast_2d(centres), np.atleast_2d(scales)
    n = len(centres)
    around = centres[:, :, None] + _AROUND / np.maximum(scales, 1e-300)[:, :, None]
    points = np.concatenate([np.broadcast_to(_GRID, (n, len(_GRID))),
                             np.clip(around, -12.0, 12.0).reshape(n, -1)], axis=1)
    points.sort(axis=1)
    x, wl = gauss_legendre(PIECE_NODES)
    half = 0.5 * (points[:, 1:] - points[:, :-1])
    z = (0.5 * (points[:, 1:] + points[:, :-1]))[..., None] + half[..., None] * x
    w = half[..., None] * wl * norm_pdf(z)
    return z.reshape(n, -1), w.reshape(n, -1)


def zero_crossing(m: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """``z = -m / slope``, where ``m + slope z`` crosses zero (0 where ``slope = 0``: nothing turns there)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(slope != 0, -m / np.where(slope != 0, slope, 1.0), 0.0)


def _split(fn: Callable[[np.ndarray], np.ndarray], m: np.ndarray, s: np.ndarray
           ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The entries of 1-D ``m``, ``s`` in groups that share a rule: ``(indices, z, w, fn(m + s z))``,
    first all narrow entries with the Gauss-Hermite nodes (``z``, ``w`` of shape ``(N,)``), then
    the wide ones, :data:`_CHUNK` at a time, with their composite rules (``(chunk, N')``)."""
    narrow = np.nonzero(s <= WIDE_SCALE)[0]
    if len(narrow):
        z, w = gauss_hermite(GH_NODES)
        yield narrow, z, w, fn(m[narrow, None] + s[narrow, None] * z)
    wide = np.nonzero(s > WIDE_SCALE)[0]
    for start in range(0, len(wide), _CHUNK):
        idx = wide[start:start + _CHUNK]
        z, w = composite_rule(zero_crossing(m[idx], s[idx])[:, None], s[idx][:, None])
        yield idx, z, w, fn(m[idx, None] + s[idx, None] * z)


def normal_expectation(fn: Callable[[np.ndarray], np.ndarray], m: np.ndarray, s: np.ndarray,
                       power: int = 1) -> np.ndarray:
    """``E[fn(m + s z)^power]`` entry by entry (``m``, ``s`` broadcast together): Gauss-Hermite
    where ``s <=`` :data:`WIDE_SCALE`, the composite rule (centre ``-m / s``, scale ``s``) above."""
    m, s = np.broadcast_arrays(np.asarray(m, float), np.asarray(s, float))
    out = np.empty(m.size)
    for idx, _, w, vals in _split(fn, m.reshape(-1), s.reshape(-1)):
        out[idx] = _weighted(vals**power, w)
    return out.reshape(m.shape)


def neuron_expansion(fn: Callable[[np.ndarray], np.ndarray], m: np.ndarray, s: np.ndarray,
                     degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron, from one evaluation of ``fn`` at the nodes: the Hermite coefficients
    ``c_l(i) = E[fn(m_i + s_i z) He_l(z)]`` (``l <= degree``) and ``E[fn(m_i + s_i z)^2]``;
    Gauss-Hermite for the narrow neurons, the composite rule for the wide ones (as
    :func:`normal_expectation`)."""
    m, s = np.asarray(m, float), np.asarray(s, float)
    coef, second = np.empty((len(m), degree + 1)), np.empty(len(m))
    for idx, z, w, vals in _split(fn, m, s):
        if z.ndim == 1:  # the shared Gauss-Hermite nodes: one product with the polynomials' table
            coef[idx] = (vals * w) @ hermite_e(z, degree).T
        else:
            coef[idx] = np.einsum("in,lin->il", vals * w, hermite_e(z, degree))
        second[idx] = _weighted(vals**2, w)
    return coef, second


def _weighted(vals: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_n vals[i, n] w[n]`` (shared nodes) or ``sum_n vals[i, n] w[i, n]`` (a rule per row)."""
    return vals @ w if w.ndim == 1 else np.einsum("in,in->i", vals, w)
