"""Starting points for the fixed point of :mod:`gmstep.theory_solver`, from the pooled equation.

Scaling every ``w_q`` alike, the fixed point ``delta_q = tr(S_q Q) / m`` implies one scalar
equation in ``u = sum_r a_r`` (``a_r = rho_r w_r``, ``kappa = lambda / u``):

    m (1 - u) = d(kappa),     d(kappa) = tr(Sbar (kappa + Sbar)^-1) = sum_i mu_i / (kappa + mu_i),

``Sbar = sum_r a_r S_r / u`` with eigenvalues ``mu_i`` (the ``a``-weighted sum of
``delta_q = T_q``: ``sum_r a_r delta_r = sum_r rho_r (1 - w_r)``). Models of ``d`` with one or
two poles make it a quadratic or a 1-D root, and land close to the components' fixed point
(within the spread of the components, about 2e-4 on fig1a) far faster than Newton's steps from
``delta = 0``. Nothing here decides a result: the solver's double-precision iteration does
(docs/THEORY.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize

from .scratch import Scratch


def trace_q2(q: np.ndarray) -> float:
    """``tr(Q^2) = ||Q||_F^2`` for symmetric ``Q`` given by its lower triangle:
    ``2 <L, L> - <diag, diag>`` (read in memory order: no copy of a Fortran-ordered triangle)."""
    flat = q.T if q.flags.f_contiguous else q
    diag = np.diagonal(q).astype(float)
    return 2.0 * float(np.vdot(flat, flat)) - float(diag @ diag)


def pooled_traces(q: np.ndarray) -> tuple[float, float]:
    """``tr Q`` and ``tr Q^2`` for symmetric ``Q`` given by its lower triangle (what the pooled
    equation needs of ``Q``, with no product)."""
    return float(np.diagonal(q).sum(dtype=float)), trace_q2(q)


def one_pole_root(m: float, lam: float, n_pole: float, mu: float) -> float:
    """The root ``u`` in ``(0, 1]`` of ``m (1 - u) = N mu u / (lambda + mu u)`` (the pooled
    equation with ``d(kappa) = N mu / (kappa + mu)``): ``m mu u^2 + (N mu + m lambda - m mu) u - m lambda = 0``."""
    a, b, c = m * mu, n_pole * mu + m * lam - m * mu, -m * lam
    disc = math.sqrt(b * b - 4.0 * a * c)
    return (2.0 * -c) / (b + disc) if b > 0 else (disc - b) / (2.0 * a)  # the stable form of the positive root


def pooled_step(w: np.ndarray, q: np.ndarray, rho: np.ndarray, m: float, lam: float) -> np.ndarray | None:
    """``w`` scaled by one step on the pooled equation (all components scaled alike).

    With ``u = sum_r a_r`` and ``kappa = lambda / u`` the fixed point implies
    ``m (1 - u) = d(kappa)``, ``d(kappa) = tr(Sbar (kappa + Sbar)^-1)`` for ``Sbar = sum_r a_r S_r / u``
    (the weighted sum of ``delta_q = T_q``). At the current point ``d = k - lambda tr Q`` and
    ``d'(kappa) = -u (tr Q - lambda tr Q^2)`` (no product); ``d`` is a sum of poles
    ``mu_i / (kappa + mu_i)`` over the eigenvalues of ``Sbar``, and the one pole ``N mu / (kappa + mu)``
    with the same value and slope (``mu = -d / d' - kappa``, a weighted mean of the eigenvalues) is
    solved exactly. Far from the fixed point this is much better than Newton's step on the same
    two numbers (fig1a: residual 0.8 to 1e-2 to the components' own scale, about 2e-4, in two
    steps, against 0.8, 0.19, 5e-3). ``q``: the lower triangle of ``Q`` at ``w``. ``None`` if the
    model degenerates."""
    u = float(rho @ w)
    tr_q, tr_q2 = pooled_traces(q)
    kappa = lam / u
    d = len(q) - lam * tr_q
    slope = -u * (tr_q - lam * tr_q2)
    if not (d > 0 and slope < 0 and np.isfinite(d + slope)):
        return None
    mu = -d / slope - kappa
    if not mu > 0:
        return None
    target = one_pole_root(m, lam, d * (kappa + mu) / mu, mu)
    return w * (target / u) if 0 < target <= 1 else None


#: Steps of the power iteration for the top eigenvalue of the pooled second moment (the start).
POWER_STEPS = 12


def pooled_start(s: Sequence[np.ndarray], rho: np.ndarray, m: float, lam: float,
                 scratch: Scratch | None = None) -> np.ndarray:
    """A start for the iteration: the pooled equation ``m (1 - u) = d(lambda / u)`` solved for a
    model of ``d`` from ``Sbar = sum_r rho_r S_r`` without a factorisation: the top eigenvalue
    ``mu_1`` (power iteration; for ReLU the mean of the features makes it stand apart) as a
    pole of its own, the rest as one pole ``N mu / (kappa + mu)`` with the first two moments of
    the other eigenvalues (``mu = (tr Sbar^2 - mu_1^2) / (tr Sbar - mu_1)``,
    ``N = (tr Sbar - mu_1)^2 / (tr Sbar^2 - mu_1^2)``). Only the start: ``w = 1`` where the model
    degenerates. ``sbar`` is a work array of ``scratch`` (:mod:`gmstep.scratch`)."""
    ones = np.ones(len(s))
    sbar = (Scratch() if scratch is None else scratch).array("theory_start.sbar", s[0].shape, s[0].dtype)
    np.multiply(s[0], float(rho[0]), out=sbar)
    for r, sq in zip(rho[1:], s[1:], strict=True):
        sbar += float(r) * sq
    v = np.full(len(sbar), 1.0 / math.sqrt(len(sbar)), sbar.dtype)
    for _ in range(POWER_STEPS):
        v = sbar @ v
        norm = float(np.linalg.norm(v))
        if not norm > 0:
            return ones
        v /= norm
    top = float(v @ (sbar @ v))
    p1 = float(np.trace(sbar, dtype=float)) - top
    p2 = float(np.vdot(sbar, sbar)) - top * top
    if not (top > 0 and p1 > 0 and p2 > 0):
        return ones
    mu, n_pole = p2 / p1, p1 * p1 / p2

    def excess(log_u: float) -> float:  # m (1 - u) - d(lambda / u): decreasing in u, negative at u = 1
        u = math.exp(log_u)
        return m * (1.0 - u) - top * u / (lam + top * u) - n_pole * mu * u / (lam + mu * u)

    lo = math.log(1e-12)
    if not excess(lo) > 0:
        return ones
    return ones * math.exp(optimize.brentq(excess, lo, 0.0, xtol=1e-6))
