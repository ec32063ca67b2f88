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

The fixed point is solved by Newton's method on ``phi_q(w) = 1 - w_q (1 + T_q)`` in
``w_q = 1 / (1 + delta_q)`` (steps taken in ``log w``; ``phi = w (delta - T)``, zero exactly at the fixed point; unlike
``delta - T(delta)``, whose slope changes sign when ``k > m`` and ``lambda`` is small, it is
monotone for K = 1), Jacobian ``-diag(1 + T) + diag(w) G diag(rho)``, kept up to date between
exact evaluations by Broyden's rank-one updates so that an iteration costs one factorisation and
inverse and no ``k x k x k`` product. Steps are halved until the residual decreases and
``delta >= 0`` (the fixed point is there: ``T >= 0``); failing that, the exact Jacobian and the
plain step ``delta <- T(delta)`` while ``delta <= T(delta)`` (``T`` is increasing in every
``delta_r``, so it cannot overshoot), else the damped step ``delta <- (delta + T(delta)) / 2``.

Two precisions (for ``k >=`` :data:`COARSE_MIN_K`): the iteration starts in single precision
(``potrf`` + ``potri`` about twice as fast) from a model of the pooled equation
(:mod:`gmstep.theory_start`: the top eigenvalue of ``sum_r rho_r S_r`` by power iteration and
one pole for the rest, no factorisation), takes steps on the pooled equation with a one-pole
model of its ``d(kappa)`` (Jacobian of pooled components, ``Q S_r ~ (I - lambda Q) / sum_s a_s``,
no product), then quasi-Newton steps; from the first iterate with ``max |phi| <=``
:data:`COARSE_SWITCH` it takes the exact Jacobian's step and hands that point, not evaluated,
to the double-precision iteration. Its first Jacobian needs no product: the pooled coupling
at its first point (from ``tr Q`` and ``tr Q^2`` in double precision) plus ``G - G_pooled`` of
the single-precision point, ``G`` exact there (the difference, the components' own part of the
coupling, changes little over the hand-over step: fig1a to fig6 at n = m = 500, k = m/4 to
2m, the second double-precision evaluation converges as with the exact product; at k = 3m and
5m some take a third, about what the product would have cost there). Only the
double-precision iteration decides the result: converged means ``max_q |phi_q| <= tol`` in
double precision, i.e. ``|delta_q - T_q(delta)| <= tol (1 + delta_q)``; otherwise the status is
``not-converged`` and the numbers are those of the last iterate (never a silent number). The
start changes the result only within that tolerance.

Cost (``a_r = rho_r w_r``): per iteration one Cholesky factorisation and inverse of
``P + sum_r a_r S_r`` (``k^3`` flops, LAPACK ``potrf`` + ``potri``, only the lower triangle) and
``K`` traces, one pass over that triangle each (``tr(S Q) = 2 <S, tril Q> - <diag S, diag Q>``).
The coupling ``G`` (exact Jacobian, and at the end) needs the products ``Q S_r``; with
``P = lambda I`` they satisfy ``sum_r a_r Q S_r = I - lambda Q``, so the component of largest
``a_e`` needs none: ``K - 1`` products of ``2 k^3`` flops (none for K = 1), then ``K^2``
traces ``G_qr = <Q S_q, (Q S_r)^T> / m``. Typical (fig1a, K = 2, k = m/4 to 2m): 2
single-precision evaluations and 1 single-precision coupling, then 2 double-precision
evaluations and the final coupling (from ``delta = 0`` in double precision alone: 6 to 10
evaluations and 2 couplings of ``K`` products each). Formulations
tried and not kept (docs/PERFORMANCE.md): traces through the Cholesky factor
(``tr(S_q A^-1) = ||L^-1 C_q||_F^2``, ``S_q = C_q C_q^T``; ``K`` triangular solves cost more
than ``potri``), Newton with the exact Jacobian at every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .scratch import Scratch
from .theory_map import NotPositiveDefinite, PrecisionMap
from .theory_moments import Moments
from .theory_start import pooled_start, pooled_step

TOL = 1e-10
MAX_ITER = 200
#: Step halvings tried before the damped fixed-point step.
MAX_HALVINGS = 8
#: From this size ``k`` on the double-precision iteration starts where a single-precision one
#: leads (below it the saving does not pay for the extra evaluations).
COARSE_MIN_K = 96
#: The single-precision iteration ends with the exact Jacobian's step from the first iterate with
#: ``max |phi|`` below this (its error about the square of it: ``1e-5`` or less).
COARSE_SWITCH = 3e-3
COARSE_MAX_ITER = 30
#: At most this many steps on the pooled equation (:func:`gmstep.theory_start.pooled_step`) start the
#: single-precision iteration.
POOLED_STEPS = 3


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


def _jacobian(rho: np.ndarray, w: np.ndarray, t: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``d phi_q / d w_r = -[q = r] (1 + T_q) + w_q rho_r G_qr`` (``d T_q / d w_r = -rho_r G_qr``)."""
    return -np.diag(1.0 + t) + (w[:, None] * g) * rho[None, :]


@dataclass
class _State:
    """An iterate: ``w``, ``T(w)``, the lower triangle of ``Q(w)`` and the current Jacobian."""

    w: np.ndarray
    t: np.ndarray
    q: np.ndarray
    jac: np.ndarray

    @property
    def phi(self) -> np.ndarray:
        return 1.0 - self.w * (1.0 + self.t)


def _newton_step(fmap: PrecisionMap, st: _State) -> _State | None:
    """The quasi-Newton step in ``log w`` (``w <- w exp(dw / w)``, ``dw = -J^-1 phi``; the same
    fixed point and quadratic convergence, but from ``w = 1`` it does not overshoot far below the
    fixed point as the step in ``w`` does when ``k > m``), halved until the residual decreases
    with ``w <= 1`` (``None`` if it never does); the Jacobian (in ``w``) updated by Broyden's
    rank-one formula."""
    phi = st.phi
    dw = _direction(st)
    if dw is None:
        return None
    for _ in range(MAX_HALVINGS):
        w = _log_step(st.w, dw)
        if _admissible(w):
            t, q = fmap.evaluate(w, keep=st.q)
            new = _State(w, t, q, st.jac)
            if np.max(np.abs(new.phi)) < np.max(np.abs(phi)):
                step = new.w - st.w
                new.jac = st.jac + np.outer(new.phi - phi - st.jac @ step, step) / max(float(step @ step), 1e-300)
                return new
        dw = 0.5 * dw
    return None


def _iterate(fmap: PrecisionMap, st: _State, tol: float, max_iter: int) -> tuple[_State, int]:
    """At most ``max_iter`` steps from ``st`` until ``max |phi| <= tol``; returns the last iterate
    and the steps taken."""
    for it in range(max_iter):
        if np.max(np.abs(st.phi)) <= tol:
            return st, it
        new = _newton_step(fmap, st)
        if new is None:
            # T is increasing in every delta_r and T >= 0, so from below (delta <= T(delta)) the
            # plain step delta <- T(delta) cannot overshoot the fixed point; else the damped step.
            d_old = 1.0 / st.w - 1.0
            d_new = st.t.copy() if np.all(d_old <= st.t) else 0.5 * (d_old + st.t)
            w = 1.0 / (1.0 + d_new)
            t, q = fmap.evaluate(w, keep=st.q)
            new = _State(w, t, q, _jacobian(fmap.rho, w, t, fmap.coupling(w, q)[0]))
        st = new
    return st, max_iter


def _direction(st: _State) -> np.ndarray | None:
    """The quasi-Newton direction in ``w``, ``dw = -J^-1 phi`` (``None`` if singular or not finite)."""
    try:
        dw = -np.linalg.solve(st.jac, st.phi)
    except np.linalg.LinAlgError:
        return None
    return dw if np.all(np.isfinite(dw)) else None


def _log_step(w: np.ndarray, dw: np.ndarray) -> np.ndarray:
    """The step ``dw`` taken in ``log w``: ``w exp(dw / w)`` (the exponent capped at 50)."""
    return w * np.exp(np.minimum(dw / w, 50.0))


def _admissible(w: np.ndarray) -> bool:
    """``w = 1 / (1 + delta)`` in ``(0, 1]``, i.e. ``delta >= 0`` (``w > 1`` is refused)."""
    return bool(np.all(w > 0.0) and np.all(w <= 1.0))


def _newton_point(st: _State) -> np.ndarray | None:
    """The full quasi-Newton step in ``log w`` from ``st`` (not evaluated), if it stays in ``(0, 1]``."""
    dw = _direction(st)
    if dw is None:
        return None
    w = _log_step(st.w, dw)
    return w if _admissible(w) else None


def _coarse_start(moments: Sequence[Moments], rho: np.ndarray, m: float, pen: np.ndarray | None,
                  lam: float | None, scratch: Scratch
                  ) -> tuple[np.ndarray, PrecisionMap, int, np.ndarray | None] | None:
    """Where the double-precision iteration starts, the single-precision map, the
    single-precision steps and ``G - G_pooled`` at the last of them (``None`` if it took no
    exact Jacobian's step); ``None`` if a single-precision factorisation fails.

    From :func:`gmstep.theory_start.pooled_start`, steps on the pooled equation
    (:func:`gmstep.theory_start.pooled_step`, at most :data:`POOLED_STEPS`, while each at least
    halves the residual and it is above :data:`COARSE_SWITCH`), then quasi-Newton steps; once
    ``max |phi| <= COARSE_SWITCH`` the exact Jacobian's step, not evaluated here: the first
    double-precision evaluation is its check."""
    fmap = PrecisionMap(moments, rho, m, pen, lam, np.float32, scratch)

    def pooled_state(w: np.ndarray, keep: np.ndarray | None = None) -> _State:  # with the pooled Jacobian
        t, q = fmap.evaluate(w, keep)
        return _State(w, t, q, _jacobian(rho, w, t, fmap.pooled_coupling(w, q)))

    try:
        st = pooled_state(np.ones(len(moments)) if lam is None else pooled_start(fmap.s, rho, m, lam, scratch))
        steps = 0
        while lam is not None and steps < POOLED_STEPS and np.max(np.abs(st.phi)) > COARSE_SWITCH:
            scaled = pooled_step(st.w, st.q, rho, m, lam)
            if scaled is None:
                break
            new = pooled_state(scaled, keep=st.q)
            steps += 1
            before, after = np.max(np.abs(st.phi)), np.max(np.abs(new.phi))
            if after < before:
                st = new
            if not after < 0.5 * before:  # the components' own spread: on with Newton's steps
                break
        for _ in range(COARSE_MAX_ITER):
            if np.max(np.abs(st.phi)) <= COARSE_SWITCH:
                g = fmap.coupling(st.w, st.q)[0]
                st.jac = _jacobian(rho, st.w, st.t, g)
                nxt = _newton_point(st)
                return (st.w if nxt is None else nxt), fmap, steps + 1, g - fmap.pooled_coupling(st.w, st.q)
            stepped = _newton_step(fmap, st)
            if stepped is None:
                break
            st, steps = stepped, steps + 1
    except NotPositiveDefinite:
        return None
    return st.w, fmap, steps, None


def solve(
    moments: Sequence[Moments],
    rho: npt.ArrayLike,
    m: int,
    lam: float,
    test_weights: npt.ArrayLike | None = None,
    tol: float = TOL,
    max_iter: int = MAX_ITER,
    penalty: np.ndarray | None = None,
    scratch: Scratch | None = None,
) -> TheoryResult:
    """Training and test errors of ridge regression predicted by the equations above.

    ``penalty`` replaces ``lambda I`` by any symmetric positive definite matrix (the penalty
    ``a^T P a / 2``; used by the derivative test). ``test_weights`` are the ``pi_q`` of the test
    mixture (default ``rho``). ``iterations`` counts the steps of both precisions; ``max_iter``
    bounds the double-precision ones. ``scratch`` holds the ``k x k`` work arrays
    (:mod:`gmstep.scratch`; fresh ones if ``None``); the result holds none of them.
    """
    rho = np.asarray(rho, float)
    k = moments[0].S.shape[0]
    scratch = Scratch() if scratch is None else scratch
    pen = None if penalty is None else np.asarray(penalty, float)
    scalar = lam if penalty is None else None
    fmap = PrecisionMap(moments, rho, m, pen, scalar, np.float64, scratch)
    start = _coarse_start(moments, rho, m, pen, scalar, scratch) if k >= COARSE_MIN_K else None
    if start is None:
        w, coarse_it = np.ones(len(moments)), 0
        t, q = fmap.evaluate(w)
        jac = _jacobian(rho, w, t, fmap.coupling(w, q)[0])
    else:
        w, coarse, coarse_it, correction = start
        t, q = fmap.evaluate(w)
        # The pooled coupling here corrected by the exact one's difference from it at the last
        # single-precision point (no product), else the exact product in single precision.
        g = coarse.coupling(w, coarse.cast(q))[0] if correction is None else fmap.pooled_coupling(w, q) + correction
        jac = _jacobian(rho, w, t, g)
    st, it = _iterate(fmap, _State(w, t, q, jac), tol, max_iter)
    status = "ok" if np.max(np.abs(st.phi)) <= tol else "not-converged"
    train, test, comp, a_bar = _errors(fmap, moments, rho, st.q, st.w, test_weights)
    if not (np.isfinite(test) and np.isfinite(train)):
        status = "nonfinite"
    return TheoryResult(train, test, comp, 1.0 / st.w - 1.0, a_bar, status, it + coarse_it)


def _errors(
    fmap: PrecisionMap, moments: Sequence[Moments], rho: np.ndarray, q: np.ndarray, w: np.ndarray,
    test_weights: npt.ArrayLike | None,
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Training error, test error, per-component test errors and ``a_bar`` at ``w = 1 / (1 +
    delta)`` (the fixed point when the iteration converged), from the last iterate's ``Q``."""
    kk = len(moments)
    g, q = fmap.coupling(w, q)  # at the last iterate (its Q is at hand: no new inverse)
    rhs = sum(r * wq * mo.t for mo, r, wq in zip(moments, rho, w, strict=True))
    a_bar = q @ rhs
    eps = np.array([0.5 * (mo.e - 2.0 * mo.t @ a_bar + a_bar @ mo.S @ a_bar) for mo in moments])
    dmat = np.diag(rho * w**2)
    comp = np.linalg.solve(np.eye(kk) - g @ dmat, eps)
    pi = rho if test_weights is None else np.asarray(test_weights, float)
    test = float(pi @ comp)
    train = float(0.5 * sum(r * (mo.e - mo.t @ a_bar) * wq for mo, r, wq in zip(moments, rho, w, strict=True)))
    return train, test, comp, a_bar
