"""Symmetric pair matrices computed on their lower triangle, and Mehler's series on them.

The ``k x k`` moment matrices of :mod:`gmstep.theory_moments` are symmetric, and every entry is
a function of a few per-neuron numbers and the entry of a correlation matrix ``R``. They are
computed row block by row block on the lower triangle only (:func:`symmetric_by_rows`: about
half the work of the whole matrix, in pieces whose arrays stay in cache), the strict upper
triangle copied from the lower one. Mehler's series (docs/THEORY.md)

    E[sigma(u_i) sigma(u_j)] = sum_{l <= L} c_l(i) c_l(j) R_ij^l / l!,   c_l(i) = E[sigma(m_i + s_i z) He_l(z)],

is summed by Horner's scheme on such blocks, and its truncation bound
``tail_i tail_j |R_ij|^(L+1)`` (``tail_i^2 = E[sigma_i^2] - sum_{l <= L} c_l(i)^2 / l!``) picks
the pairs that need 2-D quadrature instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

#: Truncation bound (absolute, on ``E[sigma sigma]``) above which a pair of Mehler's series is
#: evaluated by 2-D quadrature instead.
SERIES_TOL = 1e-10

#: Elements of a row block of a pair matrix (128 KB in float64): its few arrays stay in cache.
_BLOCK_ELEMENTS = 16384


def row_blocks(k: int) -> list[tuple[int, int]]:
    """Row ranges ``(i0, i1)`` covering ``0..k`` with about :data:`_BLOCK_ELEMENTS` entries each."""
    rows = max(8, _BLOCK_ELEMENTS // max(k, 1))
    return [(i, min(i + rows, k)) for i in range(0, k, rows)]


def symmetric_by_rows(k: int, fill: Callable[[int, int], np.ndarray]) -> np.ndarray:
    """The symmetric ``k x k`` matrix computed on its lower part only, row block by row block:
    ``fill(i0, i1)`` returns rows ``i0:i1``, columns ``0:i1``; the strict upper triangle is
    copied from the strict lower one (about half the work of the whole matrix, in cache-sized
    pieces, and exactly symmetric)."""
    out = np.empty((k, k))
    for i0, i1 in row_blocks(k):
        out[i0:i1, :i1] = fill(i0, i1)
        out[:i0, i0:i1] = out[i0:i1, :i0].T
        diag = out[i0:i1, i0:i1]
        upper = np.triu_indices(i1 - i0, 1)
        diag[upper] = diag.T[upper]
    return out


def block_diagonal(i0: int, i1: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the global diagonal entries ``(i, i)``, ``i0 <= i < i1``, in the rows ``i0:i1``."""
    return np.arange(i1 - i0), np.arange(i0, i1)


def mehler_degrees(coef: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``l!`` where degree ``l`` of Mehler's series matters and 0 where it does not:
    ``max_i c_l(i)^2 / l! <= 1e-18 max_i E[sigma_i^2]`` (the even degrees of an odd activation
    with zero means, zero up to the quadrature's rounding, and the negligible top degrees).
    Skipped together they change an entry by less than ``4e-17 max E[sigma^2]``, below
    rounding; starting Horner's scheme below them also keeps the products away from subnormal
    numbers, which are slow."""
    fact = np.array([math.factorial(j) for j in range(coef.shape[1])], dtype=float)
    cutoff = 1e-18 * float(np.max(second)) if len(second) else 0.0
    keep = np.max(coef * coef, axis=0, initial=0.0) / fact > cutoff
    return np.where(keep, fact, 0.0)


def mehler_block(rows: np.ndarray, cols: np.ndarray, r: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """``sum_l (c_l(rows) c_l(cols)^T / l!) o R^l`` for one block ``R`` by Horner's scheme from the
    top degree that matters (``degrees``: :func:`mehler_degrees`), in place: ``out <- out o R``,
    then ``out += c_l c_l^T / l!`` (three passes per degree over a block that stays in cache)."""
    out = np.zeros(r.shape)
    term = np.empty(r.shape)
    started = False
    for j in range(len(degrees) - 1, -1, -1):
        if started:
            out *= r
        if degrees[j]:
            np.multiply.outer(rows[:, j] / degrees[j], cols[:, j], out=term)
            out += term
            started = True
    return out


def mehler_sum(coef: np.ndarray, r: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``sum_{l <= L} (c_l c_l^T / l!) o R^l`` (``o`` entrywise) for a symmetric ``R``, the degrees
    that do not matter skipped (:func:`mehler_degrees`), on the lower triangle block by block."""
    degrees = mehler_degrees(coef, second)
    return symmetric_by_rows(len(coef), lambda i0, i1: mehler_block(coef[i0:i1], coef[:i1], r[i0:i1, :i1], degrees))


def series_thresholds(coef: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``tau = (sqrt(SERIES_TOL) / tail)^(1 / (L+1))``, ``tail^2 = E[sigma^2] - sum_l c_l^2 / l!``:
    the truncation bound ``tail_i tail_j |r_ij|^(L+1)`` exceeds :data:`SERIES_TOL` exactly where
    ``|r_ij| > tau_i tau_j`` (``inf`` where the series is exact)."""
    deg = coef.shape[1] - 1
    fact = np.array([math.factorial(j) for j in range(deg + 1)], dtype=float)
    tail = np.sqrt(np.maximum(second - (coef * coef / fact).sum(axis=1), 0.0))
    with np.errstate(divide="ignore"):
        return np.asarray((math.sqrt(SERIES_TOL) / tail) ** (1.0 / (deg + 1)))


def series_fails(tau: np.ndarray, r: np.ndarray, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The pairs ``i > j`` of a row block ``R`` (rows ``offset, offset + 1, ...``, columns from 0)
    whose series truncation bound exceeds :data:`SERIES_TOL`: ``|r_ij| > tau_i tau_j``
    (:func:`series_thresholds`; one pass, no power of ``R``)."""
    rows = len(r)
    mask = np.abs(r) > tau[offset: offset + rows, None] * tau[None, : r.shape[1]]
    ib, jb = np.nonzero(np.tril(mask, offset - 1))
    return ib + offset, jb
