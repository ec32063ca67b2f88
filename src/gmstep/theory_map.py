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

from .scratch import Scratch
from .theory_moments import Moments
from .theory_start import pooled_traces


class NotPositiveDefinite(Exception):
    """The Cholesky factorisation failed (in single precision: leave it to double)."""


def inverse_lower(mat: np.ndarray) -> np.ndarray:
    """The lower triangle of the inverse of a symmetric positive definite matrix (strict upper
    triangle zero), in place where the layout allows: LAPACK ``potrf`` + ``potri``, ``k^3``
    flops in all. :class:`NotPositiveDefinite` if the factorisation fails (``mat`` is then overwritten in
    part)."""
    potrf, potri = linalg.get_lapack_funcs(("potrf", "potri"), (mat,))
    c, info = potrf(mat, lower=True, overwrite_a=True, clean=True)
    if info == 0:
        inv, info = potri(c, lower=True, overwrite_c=True)
        if info == 0:
            return inv
    raise NotPositiveDefinite


def trace_with_lower(s: np.ndarray, q: np.ndarray) -> float:
    """``tr(S Q)`` for symmetric ``S`` and ``Q`` given by its lower triangle: one pass,
    ``2 <S, tril(Q)> - <diag S, diag Q>`` (``<S, L> = <S, L^T>``: the transpose of a
    Fortran-ordered ``L``, as LAPACK returns it, is read in place instead of copied)."""
    lower = q.T if q.flags.f_contiguous else q
    return 2.0 * float(np.vdot(s, lower)) - float(np.dot(np.diagonal(s), np.diagonal(q)))


def symmetric_from_lower(q: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The full symmetric matrix from its lower triangle (strict upper triangle zero):
    ``L + L^T`` with the diagonal halved (exact), in ``out`` if given."""
    full = np.add(q, q.T, out=out)
    full.flat[:: len(q) + 1] *= 0.5
    return full


class PrecisionMap:
    """``T(w)``, ``Q(w)`` and the coupling ``G`` in one floating-point precision
    (``Q = (P + sum_r a_r S_r)^-1`` with ``a_r = rho_r w_r``).

    Its ``k x k`` arrays are work arrays of ``scratch`` (:mod:`gmstep.scratch`), named by the
    precision: two for ``Q`` (an evaluation never overwrites the ``Q`` it is asked to keep, the
    one of the iterate it steps from), the full ``Q``, the products ``Q S_r``, a ``Q`` cast from
    the other precision and, in single precision, the moments cast to it."""

    def __init__(self, moments: Sequence[Moments], rho: np.ndarray, m: float, pen: np.ndarray | None,
                 lam: float | None, dtype: type, scratch: Scratch | None = None) -> None:
        self.dtype = np.dtype(dtype)
        self._name = self.dtype.str
        self.scratch = Scratch() if scratch is None else scratch
        k = moments[0].S.shape[0]
        self.s: list[np.ndarray] = []
        for r, mo in enumerate(moments):
            if mo.S.dtype == self.dtype:
                self.s.append(mo.S)
            else:  # the single-precision copy, in a work array
                self.s.append(self._array(f"s{r}", k))
                np.copyto(self.s[-1], mo.S, casting="unsafe")
        self.rho, self.m, self.lam = rho, m, lam  # lam: the scalar penalty, None for another P
        # P itself only for another penalty; lambda I is added on the diagonal.
        self.pen = None if lam is not None or pen is None else np.asarray(pen, self.dtype)
        self._axpy = linalg.get_blas_funcs("axpy", (self.s[0],))

    def _array(self, name: str, k: int) -> np.ndarray:
        return self.scratch.array(f"theory_solver.{self._name}.{name}", (k, k), self.dtype)

    def cast(self, q: np.ndarray) -> np.ndarray:
        """``q`` in this map's precision (a work array of its own)."""
        out = self._array("cast", len(q))
        np.copyto(out, q, casting="unsafe")
        return out

    def evaluate(self, w: np.ndarray, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``T_q = tr(S_q Q) / m`` and the lower triangle of ``Q`` (in a work array other than
        the one holding ``keep``). In double precision a failed Cholesky factorisation falls
        back to LU on the matrix assembled again (the failed one overwrote part of it); in single
        precision it raises :class:`NotPositiveDefinite`."""
        k = len(self.s[0])
        mat = self._array("q0", k)
        if keep is not None and np.may_share_memory(mat, keep):
            mat = self._array("q1", k)
        try:
            q = inverse_lower(self._assemble(w, mat).T)  # Fortran order: LAPACK needs no copy
        except NotPositiveDefinite:
            if self.dtype != np.float64:
                raise
            q = np.tril(linalg.inv(self._assemble(w, mat), check_finite=False))
        return np.array([trace_with_lower(s, q) for s in self.s]) / self.m, q

    def _assemble(self, w: np.ndarray, mat: np.ndarray) -> np.ndarray:
        """``P + sum_r a_r S_r`` in ``mat`` (``lambda I`` added on the diagonal, after the sum)."""
        flat = mat.reshape(-1)
        a = self.rho * w
        if self.pen is None:
            np.multiply(self.s[0], a[0], out=mat)
            terms = zip(self.s[1:], a[1:], strict=True)
        else:
            np.copyto(mat, self.pen)
            terms = zip(self.s, a, strict=True)
        for s, ar in terms:
            if ar:
                self._axpy(s.reshape(-1), flat, a=ar)  # in place: mat += a S
        if self.pen is None:
            mat.flat[:: len(mat) + 1] += self.lam
        return mat

    def coupling(self, w: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``G_ab = tr(Q S_a Q S_b) / m`` and the full ``Q`` (from its lower triangle; valid
        until the next coupling).

        With ``P = lambda I`` the component ``e`` of largest ``a_e`` needs no product:
        ``a_e Q S_e = I - lambda Q - sum_{r != e} a_r P_r`` (``P_r = Q S_r``, the definition of
        ``Q``), so with ``c_r = tr P_r - lambda <P_r, Q>`` (``Q`` symmetric)

            a_e tr(P_r P_e)   = c_r - sum_s a_s tr(P_r P_s),
            a_e^2 tr(P_e P_e) = tr((I - lambda Q)^2) - 2 sum_s a_s c_s + sum_{s,t} a_s a_t tr(P_s P_t),

        sums over ``s, t != e``, ``tr((I - lambda Q)^2) = k - 2 lambda tr Q + lambda^2 tr Q^2``:
        ``K - 1`` products and ``K (K - 1) / 2`` traces of products. Each term is at most about
        ``k``, so ``G_ee`` is exact to ``eps k / (m a_e^2)``: in ``G D`` (the solver's errors, ``D_ee
        = rho_e w_e^2``) ``eps k / (m rho_e)``, and in the Jacobian ``eps k / (m a_e)`` against
        its diagonal ``1 + T_e``."""
        k = len(q)
        full = symmetric_from_lower(q, self._array("full", k))
        a, lam = self.rho * w, self.lam
        kk = len(self.s)
        e = int(np.argmax(a)) if lam is not None and a.max() > 0 else -1
        prods = {r: np.matmul(full, s, out=self._array(f"qs{r}", k)) for r, s in enumerate(self.s) if r != e}
        g = np.empty((kk, kk))
        for i in prods:
            for j in prods:
                if j >= i:  # tr(Q S_i Q S_j) = <P_i, P_j^T>
                    g[i, j] = g[j, i] = float(np.einsum("ij,ji->", prods[i], prods[j], dtype=float))
        if e >= 0:
            assert lam is not None
            c = {r: float(np.trace(p, dtype=float)) - lam * float(np.vdot(p, full)) for r, p in prods.items()}
            ae = float(a[e])
            for r in prods:
                g[r, e] = g[e, r] = (c[r] - sum(float(a[s]) * g[r, s] for s in prods)) / ae
            total = self._residual_square(q)
            total -= 2.0 * sum(float(a[s]) * c[s] for s in prods)
            total += sum(float(a[s]) * float(a[t]) * g[s, t] for s in prods for t in prods)
            g[e, e] = total / (ae * ae)
        return g / self.m, full

    def pooled_coupling(self, w: np.ndarray, q: np.ndarray) -> np.ndarray:
        """``G`` as if all ``S_r`` were equal, ``Q S_r = (I - lambda Q) / sum_s a_s``:
        ``G_qr = tr((I - lambda Q)^2) / (m (sum_s a_s)^2)``, from the traces of ``Q`` and ``Q^2``
        (``k^2``; a start for the quasi-Newton Jacobian only). The exact ``G`` for another ``P``."""
        if self.lam is None:
            return self.coupling(w, q)[0]
        val = self._residual_square(q) / (self.m * float(self.rho @ w) ** 2)
        return np.full((len(self.s), len(self.s)), val)

    def _residual_square(self, q: np.ndarray) -> float:
        """``tr((I - lambda Q)^2) = k - 2 lambda tr Q + lambda^2 tr Q^2`` (``P = lambda I``; ``q``
        the lower triangle of ``Q``), from the traces of ``Q`` and ``Q^2``."""
        assert self.lam is not None
        tr_q, tr_q2 = pooled_traces(q)
        return len(q) - 2.0 * self.lam * tr_q + self.lam**2 * tr_q2
