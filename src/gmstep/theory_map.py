"""``T(w)``, ``Q(w)`` and the coupling ``G`` of the fixed point of :mod:`gmstep.theory_solver`,
in one floating-point precision (docs/THEORY.md):

    Q(w) = (P + sum_r a_r S_r)^-1,   a_r = rho_r w_r,   T_q = tr(S_q Q) / m,   G_qr = tr(Q S_q Q S_r) / m.

The inverse by LAPACK ``potrf`` + ``potri`` on the lower triangle only (``k^3`` flops), the traces
in one pass over that triangle; the coupling with one product fewer than components when
``P = lambda I`` (``sum_r a_r Q S_r = I - lambda Q``). The iteration that uses them, and which
precision when, is :mod:`gmstep.theory_solver`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import linalg

from .theory_moments import Moments
from .theory_start import pooled_traces


class NotPositiveDefinite(Exception):
    """The Cholesky factorisation failed (in single precision: leave it to double)."""


def inverse_lower(mat: np.ndarray) -> np.ndarray:
    """The lower triangle of the inverse of a symmetric positive definite matrix (strict upper
    triangle zero): LAPACK ``potrf`` + ``potri``, ``k^3`` flops in all; in double precision by LU
    if the Cholesky factorisation fails, in single precision :class:`NotPositiveDefinite`."""
    potrf, potri = linalg.get_lapack_funcs(("potrf", "potri"), (mat,))
    c, info = potrf(mat, lower=True, overwrite_a=True, clean=True)
    if info == 0:
        inv, info = potri(c, lower=True, overwrite_c=True)
        if info == 0:
            return inv
    if mat.dtype != np.float64:
        raise NotPositiveDefinite
    return np.tril(linalg.inv(mat, check_finite=False))


def trace_with_lower(s: np.ndarray, q: np.ndarray) -> float:
    """``tr(S Q)`` for symmetric ``S`` and ``Q`` given by its lower triangle: one pass,
    ``2 <S, tril(Q)> - <diag S, diag Q>`` (``<S, L> = <S, L^T>``: the transpose of a
    Fortran-ordered ``L``, as LAPACK returns it, is read in place instead of copied)."""
    lower = q.T if q.flags.f_contiguous else q
    return 2.0 * float(np.vdot(s, lower)) - float(np.dot(np.diagonal(s), np.diagonal(q)))


def symmetric_from_lower(q: np.ndarray) -> np.ndarray:
    """The full symmetric matrix from its lower triangle (strict upper triangle zero):
    ``L + L^T`` with the diagonal halved (exact)."""
    full = q + q.T
    full.flat[:: len(q) + 1] *= 0.5
    return full


class PrecisionMap:
    """``T(w)``, ``Q(w)`` and the coupling ``G`` in one floating-point precision
    (``Q = (P + sum_r a_r S_r)^-1`` with ``a_r = rho_r w_r``)."""

    def __init__(self, moments: Sequence[Moments], rho: np.ndarray, m: float, pen: np.ndarray,
                 lam: float | None, dtype: type) -> None:
        self.s: list[np.ndarray] = [np.asarray(mo.S, dtype) for mo in moments]
        self.rho, self.m, self.lam = rho, m, lam  # lam: the scalar penalty, None for another P
        self.pen: np.ndarray = np.asarray(pen, dtype)
        self._axpy = linalg.get_blas_funcs("axpy", (self.pen,))

    def evaluate(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``T_q = tr(S_q Q) / m`` and the lower triangle of ``Q``."""
        mat = self.pen.copy()
        flat = mat.reshape(-1)
        for s, a in zip(self.s, self.rho * w, strict=True):
            if a:
                self._axpy(s.reshape(-1), flat, a=a)  # in place: mat += a S
        q = inverse_lower(mat.T)  # the same symmetric matrix in Fortran order: LAPACK needs no copy
        return np.array([trace_with_lower(s, q) for s in self.s]) / self.m, q

    def coupling(self, w: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``G_ab = tr(Q S_a Q S_b) / m`` and the full ``Q`` (from its lower triangle).

        With ``P = lambda I`` the component ``e`` of largest ``a_e`` takes
        ``Q S_e = (I - lambda Q - sum_{r != e} a_r Q S_r) / a_e`` (the definition of ``Q``)
        instead of a product."""
        q = symmetric_from_lower(q)
        a, lam = self.rho * w, self.lam
        e = int(np.argmax(a)) if lam is not None and a.max() > 0 else -1
        qs = [q @ s if r != e else q for r, s in enumerate(self.s)]
        if lam is not None and e >= 0:
            rest = np.multiply(q, float(-lam / a[e]), order="C")  # in place from here: no temporaries
            rest.flat[:: len(q) + 1] += 1.0 / a[e]
            flat = rest.reshape(-1)  # a view (C order, as the products q @ s)
            for r, p in enumerate(qs):
                if r != e and a[r]:
                    self._axpy(np.ascontiguousarray(p).reshape(-1), flat, a=float(-a[r] / a[e]))
            assert rest.dtype == q.dtype  # else the in-place updates above went to a cast copy
            qs[e] = rest
        kk = len(self.s)
        g = np.empty((kk, kk))
        for i in range(kk):
            for j in range(i, kk):
                g[i, j] = g[j, i] = np.einsum("ij,ji->", qs[i], qs[j]) / self.m  # tr(Q S_i Q S_j)
        return g, q

    def pooled_coupling(self, w: np.ndarray, q: np.ndarray) -> np.ndarray:
        """``G`` as if all ``S_r`` were equal, ``Q S_r = (I - lambda Q) / sum_s a_s``:
        ``G_qr = tr((I - lambda Q)^2) / (m (sum_s a_s)^2)``, from the traces of ``Q`` and ``Q^2``
        (``k^2``; a start for the quasi-Newton Jacobian only). The exact ``G`` for another ``P``."""
        if self.lam is None:
            return self.coupling(w, q)[0]
        tr_q, tr_q2 = pooled_traces(q)
        val = (len(q) - 2.0 * self.lam * tr_q + self.lam**2 * tr_q2) / (self.m * float(self.rho @ w) ** 2)
        return np.full((len(self.s), len(self.s)), val)
