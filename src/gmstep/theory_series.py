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
from functools import lru_cache

import numpy as np
from scipy import linalg

#: Truncation bound (absolute, on ``E[sigma sigma]``) above which a pair of Mehler's series is
#: evaluated by 2-D quadrature instead.
SERIES_TOL = 1e-10

#: Elements of a row block of a pair matrix (128 KB in float64): its few arrays stay in cache.
_BLOCK_ELEMENTS = 16384


def row_blocks(k: int) -> list[tuple[int, int]]:
    """Row ranges ``(i0, i1)`` covering ``0..k`` with about :data:`_BLOCK_ELEMENTS` entries each."""
    rows = max(8, _BLOCK_ELEMENTS // max(k, 1))
    return [(i, min(i + rows, k)) for i in range(0, k, rows)]


def symmetric_by_rows(k: int, fill: Callable[[int, int], np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
    """The symmetric ``k x k`` matrix computed on its lower part only, row block by row block:
    ``fill(i0, i1)`` returns rows ``i0:i1``, columns ``0:i1``; the strict upper triangle is
    copied from the strict lower one (about half the work of the whole matrix, in cache-sized
    pieces, and exactly symmetric), in ``out`` if given (``k x k`` float64)."""
    out = np.empty((k, k)) if out is None else out
    for i0, i1 in row_blocks(k):
        out[i0:i1, :i1] = fill(i0, i1)
        out[:i0, i0:i1] = out[i0:i1, :i0].T
        diag = out[i0:i1, i0:i1]
        np.copyto(diag, diag.T, where=_strict_upper(i1 - i0))
    return out


@lru_cache(maxsize=8)
def _strict_upper(n: int) -> np.ndarray:
    """The mask of the strict upper triangle of an ``n x n`` matrix (read-only, cached)."""
    mask = np.triu(np.ones((n, n), bool), 1)
    mask.flags.writeable = False
    return mask


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


def series_thresholds(coef: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``tau = (sqrt(SERIES_TOL) / tail)^(1 / (L+1))``, ``tail^2 = E[sigma^2] - sum_l c_l^2 / l!``:
    the truncation bound ``tail_i tail_j |r_ij|^(L+1)`` exceeds :data:`SERIES_TOL` exactly where
    ``|r_ij| > tau_i tau_j`` (``inf`` where the series is exact)."""
    return _thresholds(series_tails(coef, second))


def _thresholds(tails: np.ndarray) -> np.ndarray:
    """:func:`series_thresholds` from :func:`series_tails` (its last column is the tail after ``L``)."""
    with np.errstate(divide="ignore"):
        return np.asarray((math.sqrt(SERIES_TOL) / tails[:, -1]) ** (1.0 / tails.shape[1]))


def series_tails(coef: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``tail_i(L) = sqrt(E[sigma_i^2] - sum_{l <= L} c_l(i)^2 / l!)`` for ``L = 0..deg`` (``k x
    (deg + 1)``): the root of what the degrees above ``L`` carry, from the exact second moment."""
    fact = np.array([math.factorial(j) for j in range(coef.shape[1])], dtype=float)
    return np.sqrt(np.maximum(second[:, None] - np.cumsum(coef * coef / fact, axis=1), 0.0))


def series_fails(tau: np.ndarray, r: np.ndarray, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The pairs ``i > j`` of a row block ``R`` (rows ``offset, offset + 1, ...``, columns from 0)
    whose series truncation bound exceeds :data:`SERIES_TOL`: ``|r_ij| > tau_i tau_j``
    (:func:`series_thresholds`; one pass, no power of ``R``)."""
    return _lower_pairs(_fails(tau, np.abs(r), offset), offset)


def _fails(tau: np.ndarray, absr: np.ndarray, offset: int) -> np.ndarray:
    """The mask ``|r_ij| > tau_i tau_j`` of a row block (rows from ``offset``, columns from 0)."""
    return absr > tau[offset: offset + len(absr), None] * tau[None, : absr.shape[1]]


def _lower_pairs(mask: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """The entries ``(i, j)``, ``i > j``, set in ``mask`` (rows ``offset, ...``, columns from 0)."""
    ib, jb = np.nonzero(mask)
    ib += offset
    keep = jb < ib
    return ib[keep], jb[keep]


#: A block's series stops at the lowest degree ``L`` whose remainder bound
#: ``max tail_i(L) max tail_j(L) max |r_ij|^(L+1)`` (Cauchy-Schwarz over the degrees above ``L``)
#: is below this, absolute on ``E[sigma_i sigma_j]``, over the pairs the series answers for.
REMAINDER_TOL = 1e-13


class MehlerSeries:
    """Mehler's series of ``k`` neurons (coefficients ``coef``, ``k x (L+1)``, second moments
    ``second``), summed on blocks of a correlation matrix.

    On a block the sum stops at the lowest degree whose remainder bound is below
    :data:`REMAINDER_TOL` for every pair it answers for (off the diagonal; with ``quadrature``,
    not the pairs of :func:`series_fails`, which 2-D quadrature answers for): weakly correlated
    neurons (fig1a: ``|r| <= 0.19``) need about half the degrees. Horner's scheme from there, in
    place: ``out <- out o R``, then the rank-one ``out += c_l c_l^T / l!`` (BLAS ``ger``)."""

    def __init__(self, coef: np.ndarray, second: np.ndarray) -> None:
        self.coef, self.second = coef, second
        self.degrees = mehler_degrees(coef, second)
        self.tails = series_tails(coef, second)
        self.tau = _thresholds(self.tails)
        self._ger = linalg.get_blas_funcs("ger", (np.zeros(1),))

    def top_degree(self, i0: int, i1: int, rmax: float) -> int:
        """The lowest degree whose remainder bound on the block (rows ``i0:i1``, columns ``0:i1``,
        ``|r| <= rmax``) is below :data:`REMAINDER_TOL` (the highest degree if none)."""
        powers = rmax ** np.arange(1, len(self.degrees) + 1)  # |r|^(L+1)
        bound = self.tails[i0:i1].max(axis=0) * self.tails[:i1].max(axis=0) * powers
        ok = np.nonzero(bound <= REMAINDER_TOL)[0]
        return int(ok[0]) if len(ok) else len(self.degrees) - 1

    def block(self, i0: int, i1: int, r: np.ndarray, quadrature: bool = False
              ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """The series on rows ``i0:i1``, columns ``0:i1`` of ``R`` (``r``, unit diagonal), and
        the pairs ``i > j`` left to quadrature (none without ``quadrature``)."""
        absr = np.abs(r)
        absr[block_diagonal(i0, i1)] = 0.0
        if quadrature:
            bad = _fails(self.tau, absr, i0)
            pairs = _lower_pairs(bad, i0)
            absr[bad] = 0.0
        else:
            pairs = (np.zeros(0, int), np.zeros(0, int))
        top = self.top_degree(i0, i1, float(absr.max(initial=0.0)))
        return self._horner(self.coef[i0:i1], self.coef[:i1], r, top), pairs

    def _horner(self, rows: np.ndarray, cols: np.ndarray, r: np.ndarray, top: int) -> np.ndarray:
        """``sum_{l <= top} (c_l(rows) c_l(cols)^T / l!) o R^l`` over the degrees that matter."""
        out = np.zeros(r.shape)
        started = False
        for j in range(top, -1, -1):
            if started:
                out *= r
            if self.degrees[j]:
                # in place: out^T is Fortran-ordered
                self._ger(1.0, cols[:, j], rows[:, j] / self.degrees[j], a=out.T, overwrite_a=1)
                started = True
        return out


def mehler_sum(coef: np.ndarray, r: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``sum_l (c_l c_l^T / l!) o R^l`` (``o`` entrywise) for a symmetric ``R`` with a unit
    diagonal, block by block on the lower triangle (:class:`MehlerSeries`: within
    :data:`REMAINDER_TOL` of the whole series)."""
    series = MehlerSeries(coef, second)
    return symmetric_by_rows(len(coef), lambda i0, i1: series.block(i0, i1, r[i0:i1, :i1])[0])
