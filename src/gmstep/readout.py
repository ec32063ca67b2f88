"""Ridge readout on fixed features and its errors (docs/MATH.md, section 2).

This module is the reference implementation of the readout and is used by the engine as it is
(:func:`ridge` on the training features); the engine's test error is a fused sum over blocks of
test rows, tested against :func:`prediction_error` here.

Features are sample-major: ``Phi`` is ``m x k`` with rows ``phi(x_i) = sigma(F^ x_i) / sqrt(k)``.
The ridge estimator

    a^ = argmin (1 / (2m)) ||y - Phi a||^2 + (lambda / 2) ||a||^2
       = (Phi^T Phi + lambda m I_k)^-1 Phi^T y          (primal, k x k)
       = Phi^T (Phi Phi^T + lambda m I_m)^-1 y          (dual, m x m)

is computed from whichever system is smaller; both give the same ``a^``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg


@dataclass(frozen=True)
class RidgeFit:
    """Readout weights, the training error, a condition-number bound of the solved system and the
    training residual ``y - Phi a^`` (the predictions are ``y - residual``)."""

    weights: np.ndarray
    train_error: float
    condition: float
    residual: np.ndarray | None = None


def _solve_spd(mat: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, float]:
    """Solve ``mat x = rhs`` for symmetric positive definite ``mat``; return ``x`` and an estimate of
    the 1-norm condition number ``||mat||_1 ||mat^-1||_1`` (LAPACK ``pocon`` on the Cholesky
    factor, O(n^2)).

    ``mat`` is not overwritten. A non-finite ``mat`` gives NaN and an infinite condition. If the
    factorisation fails (``mat`` not numerically positive
    definite, which a ridge system with ``lambda > 0`` is in exact arithmetic) the system is solved
    by least squares and the condition is reported as infinite.
    """
    anorm = float(np.abs(mat).sum(axis=0).max())
    if not np.isfinite(anorm):  # overflowed features: LAPACK must not see them
        return np.full(mat.shape[:1] + rhs.shape[1:], np.nan), float("inf")
    try:
        factor, lower = linalg.cho_factor(mat, lower=True, overwrite_a=False, check_finite=False)
    except linalg.LinAlgError:
        return linalg.lstsq(mat, rhs, check_finite=False)[0], float("inf")
    x = linalg.cho_solve((factor, lower), rhs, check_finite=False)
    (pocon,) = linalg.get_lapack_funcs(("pocon",), (factor,))
    rcond, info = pocon(factor, anorm, uplo="L")
    return x, (1.0 / rcond if info == 0 and rcond > 0 else float("inf"))


def ridge(phi: np.ndarray, y: np.ndarray, lam: float, method: str = "auto") -> RidgeFit:
    """Fit ``a^`` and return it with the training error

    ``(1 / (2m)) ||y - Phi a^||^2 + (lambda / 2) ||a^||^2`` (penalty included)

    and the condition number estimate of the system solved (see :func:`_solve_spd`).
    ``method`` is ``"primal"``, ``"dual"`` or ``"auto"`` (the smaller of ``k`` and ``m``).
    """
    m, k = phi.shape
    reg = lam * m
    if method == "auto":
        method = "primal" if k <= m else "dual"
    if method == "primal":
        gram = phi.T @ phi
        gram[np.diag_indices_from(gram)] += reg
        weights, cond = _solve_spd(gram, phi.T @ y)
        resid = y - phi @ weights
    elif method == "dual":
        gram = phi @ phi.T
        gram[np.diag_indices_from(gram)] += reg
        coef, cond = _solve_spd(gram, y)
        weights = phi.T @ coef
        # (K + reg I) c = y  =>  y - Phi a^ = y - K c = reg c.
        resid = reg * coef
    else:
        raise ValueError(f"method must be 'auto', 'primal' or 'dual', got {method!r}")
    err = float(resid @ resid) / (2 * m) + 0.5 * lam * float(weights @ weights)
    return RidgeFit(weights, err, cond, resid)


def prediction_error(pred: np.ndarray, y: np.ndarray) -> float:
    """``(1 / (2 m_test)) sum (y - pred)^2``."""
    r = y - pred
    return float(r @ r) / (2 * len(y))
