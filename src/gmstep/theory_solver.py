"""The deterministic equivalent of ridge regression on a mixture of feature distributions.

Inputs: per component ``q = 1..K`` its weight ``rho_q`` and moments ``S_q = E[phi phi^T | q]``,
``t_q = E[phi y | q]``, ``e_q = E[y^2 | q]`` (:mod:`gmstep.theory_moments`); the number of
training samples ``m`` and the ridge penalty ``lambda`` of
``a^ = argmin (1/(2m)) ||y - Phi^T a||^2 + (lambda/2) ||a||^2``. With

    Q(delta) = (P + sum_r rho_r S_r / (1 + delta_r))^-1,         P = lambda I (or any SPD penalty)

the equations (docs/THEORY.md) are

    delta_q = tr(S_q Q) / m                                       (fixed point, K unknowns)
    a_bar   = Q sum_q rho_q t_q / (1 + delta_q)
    eps_q   = (e_q - 2 t_q^T a_bar + a_bar^T S_q a_bar) / 2
    G_qr    = tr(S_q Q S_r Q) / m,   D = diag(rho_q / (1 + delta_q)^2)
    E       = (I_K - G D)^-1 eps                                  (per-component test errors)
    E_test  = sum_q pi_q E_q                                      (pi = rho unless given)
    E_train = (1/2) sum_q rho_q (e_q - t_q^T a_bar) / (1 + delta_q)   (penalty included)

The fixed point is solved from ``delta = 0`` by Newton's method on
``phi_q(w) = 1 - w_q (1 + T_q)`` in ``w_q = 1 / (1 + delta_q)`` (``phi = w (delta - T)``, zero
exactly at the fixed point; unlike ``delta - T(delta)``, whose slope changes sign when ``k > m``
and ``lambda`` is small, it is monotone for K = 1), Jacobian
``-diag(1 + T) + diag(w) G diag(rho)``: exact at the start, then kept up to date by Broyden's
rank-one updates so that an iteration costs one factorisation and inverse and no ``k x k x k``
product, recomputed exactly after any iteration whose quasi-Newton step failed.
Steps are halved until the residual decreases and ``delta >= 0`` (the fixed point is there:
``T >= 0``); failing that, the plain step ``delta <- T(delta)`` while ``delta <= T(delta)`` (``T``
is increasing in every ``delta_r``, so it cannot overshoot), else the damped step
``delta <- (delta + T(delta)) / 2``. Converged means ``max_q |phi_q| <= tol``, i.e.
``|delta_q - T_q(delta)| <= tol (1 + delta_q)``; otherwise the status is ``not-converged`` and
the numbers are those of the last iterate (never a silent number).

Cost: per iteration one Cholesky factorisation and inverse of a ``k x k`` matrix (``k^3`` flops,
only its lower triangle kept) and ``K`` traces, each one pass over that triangle
(``tr(S Q) = 2 <S, tril Q> - <diag S, diag Q>``); at the start, at the fixed point and after a
failed quasi-Newton step also ``K`` products ``Q S_q`` (``2 k^3`` flops each) and ``K^2`` traces
for ``G``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import linalg

from .theory_moments import Moments

TOL = 1e-10
MAX_ITER = 200
#: Step halvings tried before the damped fixed-point step.
MAX_HALVINGS = 8


@dataclass(frozen=True)
class TheoryResult:
    """The prediction and how it was obtained."""

    train_error: float
    test_error: float
    component_test: np.ndarray  # E_q, per component (factor 1/2 included)
    delta: np.ndarray
    weights: np.ndarray  # a_bar (the mean readout, in the units of phi)
    status: str  # "ok" or "not-converged" (or "nonfinite")
    iterations: int

    @property
    def component_train_fit(self) -> np.ndarray:
        """Not weighted: ``E_q / (1 + delta_q)^2``, each component's data-fit part of the training error."""
        return self.component_test / (1.0 + self.delta) ** 2


def _inverse_lower(mat: np.ndarray) -> np.ndarray:
    """The lower triangle of the inverse of a symmetric positive definite matrix (strict upper
    triangle zero): LAPACK ``potrf`` + ``potri``, ``k^3`` flops in all; by LU if the Cholesky
    factorisation fails."""
    potrf, potri = linalg.get_lapack_funcs(("potrf", "potri"), (mat,))
    c, info = potrf(mat, lower=True, overwrite_a=False, clean=True)
    if info == 0:
        inv, info = potri(c, lower=True, overwrite_c=True)
        if info == 0:
            return inv
    return np.tril(linalg.inv(mat, check_finite=False))


def _trace(s: np.ndarray, q: np.ndarray) -> float:
    """``tr(S Q)`` for symmetric ``S`` and ``Q`` given by its lower triangle: one pass,
    ``2 <S, tril(Q)> - <diag S, diag Q>``."""
    return 2.0 * float(np.vdot(s, q)) - float(np.dot(np.diagonal(s), np.diagonal(q)))


def _evaluate(
    moments: Sequence[Moments], rho: np.ndarray, m: float, penalty: np.ndarray, delta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``T(delta)`` and ``Q(delta)`` (lower triangle only)."""
    mat = penalty.copy()
    for mo, r, d in zip(moments, rho, delta, strict=True):
        if r:
            mat += (r / (1.0 + d)) * mo.S
    q = _inverse_lower(mat)
    return np.array([_trace(mo.S, q) / m for mo in moments]), q


def _coupling(moments: Sequence[Moments], m: float, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``G_ab = tr(Q S_a Q S_b) / m`` (``K`` products ``Q S_a``) and the full ``Q`` (from its lower
    triangle)."""
    q = q + np.tril(q, -1).T
    qs = [q @ mo.S for mo in moments]
    kk = len(moments)
    g = np.empty((kk, kk))
    for a in range(kk):
        for b in range(a, kk):
            g[a, b] = g[b, a] = np.einsum("ij,ji->", qs[a], qs[b]) / m  # tr(Q S_a Q S_b)
    return g, q


def solve(
    moments: Sequence[Moments],
    rho: npt.ArrayLike,
    m: int,
    lam: float,
    test_weights: npt.ArrayLike | None = None,
    tol: float = TOL,
    max_iter: int = MAX_ITER,
    penalty: np.ndarray | None = None,
) -> TheoryResult:
    """Training and test errors of ridge regression predicted by the equations above.

    ``penalty`` replaces ``lambda I`` by any symmetric positive definite matrix (the penalty
    ``a^T P a / 2``; used by the derivative test). ``test_weights`` are the ``pi_q`` of the test
    mixture (default ``rho``).
    """
    rho = np.asarray(rho, float)
    kk = len(moments)
    k = moments[0].S.shape[0]
    pen = lam * np.eye(k) if penalty is None else np.asarray(penalty, float)
    delta = np.zeros(kk)
    status = "not-converged"
    it = 0
    # Unknowns w_q = 1 / (1 + delta_q) in (0, 1]; residual phi_q = 1 - w_q (1 + T_q), which is
    # zero exactly at the fixed point (phi = w (delta - T)). Unlike delta - T(delta) (whose slope
    # changes sign when k > m and lambda is small) phi is decreasing in w for K = 1.
    w = np.ones(kk)
    t, q = _evaluate(moments, rho, m, pen, delta)
    g, _ = _coupling(moments, m, q)

    def jacobian(w: np.ndarray, t: np.ndarray, g: np.ndarray) -> np.ndarray:
        # d phi_q / d w_r = -[q = r] (1 + T_q) + w_q rho_r G_qr   (d T_q / d w_r = -rho_r G_qr)
        return -np.diag(1.0 + t) + (w[:, None] * g) * rho[None, :]

    jac = jacobian(w, t, g)
    phi = 1.0 - w * (1.0 + t)
    for it in range(1, max_iter + 1):  # noqa: B007 (the count is reported)
        if np.max(np.abs(phi)) <= tol:
            status = "ok"
            break
        try:
            dw = -np.linalg.solve(jac, phi)
        except np.linalg.LinAlgError:
            dw = np.full(kk, np.nan)
        ok = False
        if np.all(np.isfinite(dw)):
            for _ in range(MAX_HALVINGS):  # Newton step, halved until the residual decreases
                new = w + dw
                if np.all(new > 0.0) and np.all(new <= 1.0):
                    t_new, q_new = _evaluate(moments, rho, m, pen, 1.0 / new - 1.0)
                    phi_new = 1.0 - new * (1.0 + t_new)
                    if np.max(np.abs(phi_new)) < np.max(np.abs(phi)):
                        ok = True
                        break
                dw = 0.5 * dw
        if not ok:
            # T is increasing in every delta_r and T >= 0, so from below (delta <= T(delta)) the
            # plain step delta <- T(delta) cannot overshoot the fixed point; else the damped step.
            d_old = 1.0 / w - 1.0
            d_new = t.copy() if np.all(d_old <= t) else 0.5 * (d_old + t)
            new = 1.0 / (1.0 + d_new)
            t_new, q_new = _evaluate(moments, rho, m, pen, d_new)
            phi_new = 1.0 - new * (1.0 + t_new)
        step = new - w
        if not ok:
            # The quasi-Newton step failed: the exact Jacobian at the new point.
            g, _ = _coupling(moments, m, q_new)
            jac = jacobian(new, t_new, g)
        else:  # Broyden's rank-one update
            jac = jac + np.outer(phi_new - phi - jac @ step, step) / max(float(step @ step), 1e-300)
        w, t, q, phi = new, t_new, q_new, phi_new
    delta = 1.0 / w - 1.0
    train, test, comp, a_bar = _errors(moments, rho, m, q, delta, test_weights)
    if not (np.isfinite(test) and np.isfinite(train)):
        status = "nonfinite"
    return TheoryResult(train, test, comp, delta, a_bar, status, it)


def _errors(
    moments: Sequence[Moments], rho: np.ndarray, m: int, q: np.ndarray, delta: np.ndarray,
    test_weights: npt.ArrayLike | None,
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Training error, test error, per-component test errors and ``a_bar`` at ``delta`` (the
    fixed point when the iteration converged), from the last iterate's ``Q``."""
    kk = len(moments)
    g, q = _coupling(moments, m, q)  # at the last iterate (its Q is at hand: no new inverse)
    # Everything below at the last iterate (the fixed point when status is ok).
    inv1 = 1.0 / (1.0 + delta)
    rhs = sum(r * w * mo.t for mo, r, w in zip(moments, rho, inv1, strict=True))
    a_bar = q @ rhs
    eps = np.array([0.5 * (mo.e - 2.0 * mo.t @ a_bar + a_bar @ mo.S @ a_bar) for mo in moments])
    dmat = np.diag(rho * inv1**2)
    comp = np.linalg.solve(np.eye(kk) - g @ dmat, eps)
    pi = rho if test_weights is None else np.asarray(test_weights, float)
    test = float(pi @ comp)
    train = float(0.5 * sum(r * (mo.e - mo.t @ a_bar) * w for mo, r, w in zip(moments, rho, inv1, strict=True)))
    return train, test, comp, a_bar
