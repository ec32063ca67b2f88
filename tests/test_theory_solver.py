"""The mixture deterministic equivalent (gmstep.theory_solver) against independent forms.

* K = 1: the standard single-Gaussian ridge equivalent, solved independently by an
  eigendecomposition and a scalar root finder: ``kappa = lambda m / (m - df1(kappa))``,
  ``df1 = tr(S (S + kappa)^-1)``, ``E = eps / (1 - tr(S^2 (S + kappa)^-2) / m)``.
* A component split into two identical halves changes nothing.
* The closed-form per-component test error equals its derivative form: with the penalty
  ``a^T (lambda I + s S_q) a / 2`` the training value's derivative in ``s`` at 0 is
  ``E[a^T S_q a] / 2``, so ``E_q = e_q / 2 - t_q^T a_bar + d E_train / ds`` (central difference).
* The fixed point holds at the returned ``delta``; a cut-off iteration says ``not-converged``.
* The cheaper formulations against the plain ones: the coupling with one product eliminated
  (``sum_r a_r Q S_r = I - lambda Q``) equals ``K`` explicit products, the one-pass trace of a
  lower triangle (either memory order) equals ``tr(S Q)``, the pooled coupling is exact when all
  ``S_r`` are equal, and the single-precision start changes the result only within the
  solver's tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from gmstep import theory_solver
from gmstep.theory_moments import Moments
from gmstep.theory_solver import _Map, _symmetric, _trace, solve


def _moments(k: int, seed: int, spike: float = 0.3) -> Moments:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, 3 * k)) / np.sqrt(3 * k)
    u = rng.standard_normal(k)
    s = (a @ a.T + spike * np.outer(u, u)) / k
    return Moments(s, rng.standard_normal(k) / k, 1.0 + rng.random())


@pytest.mark.parametrize(("k", "m", "lam"), [(30, 60, 1e-2), (60, 40, 1e-3), (50, 50, 1e-4)])
def test_single_component_equals_standard_formula(k, m, lam):
    mo = _moments(k, 1)
    res = solve([mo], [1.0], m, lam)
    assert res.status == "ok"
    w, v = np.linalg.eigh(mo.S)
    w = np.clip(w, 0, None)
    lo = lam
    if np.sum(w / (w + lam)) >= m:  # k > m: start where df1 falls below m
        lo = optimize.brentq(lambda x: np.sum(w / (w + x)) - m, 1e-300, 1e6, xtol=1e-300, rtol=1e-15) * (1 + 1e-12)
    kappa = optimize.brentq(lambda x: x - lam * m / (m - np.sum(w / (w + x))), lo, 1e6, xtol=1e-15, rtol=1e-14)
    tv = v.T @ mo.t
    a = v @ (tv / (w + kappa))
    eps = 0.5 * (mo.e - 2 * mo.t @ a + a @ mo.S @ a)
    test = eps / (1 - np.sum(w**2 / (w + kappa) ** 2) / m)
    assert res.delta[0] == pytest.approx(kappa / lam - 1, rel=1e-9)
    assert res.test_error == pytest.approx(test, rel=1e-9)
    assert res.train_error == pytest.approx(0.5 * (mo.e - mo.t @ a) / (1 + res.delta[0]), rel=1e-9)


def test_identical_halves_equal_one_component():
    mo = _moments(40, 2)
    one = solve([mo], [1.0], 50, 1e-3)
    two = solve([mo, mo], [0.3, 0.7], 50, 1e-3)
    assert two.test_error == pytest.approx(one.test_error, rel=1e-9)
    assert two.train_error == pytest.approx(one.train_error, rel=1e-9)
    np.testing.assert_allclose(two.component_test, one.test_error, rtol=1e-9)


@pytest.mark.parametrize("lam", [1e-2, 1e-4])
def test_test_error_equals_derivative_form(lam):
    k, m = 40, 60
    mom = [_moments(k, 3), _moments(k, 4, spike=2.0), _moments(k, 5)]
    rho = [0.2, 0.5, 0.3]
    res = solve(mom, rho, m, lam)
    assert res.status == "ok"
    for q, mo in enumerate(mom):
        h = 1e-4 * lam
        up = solve(mom, rho, m, lam, penalty=lam * np.eye(k) + h * mo.S).train_error
        down = solve(mom, rho, m, lam, penalty=lam * np.eye(k) - h * mo.S).train_error
        derivative = (up - down) / (2 * h)
        assert 0.5 * mo.e - mo.t @ res.weights + derivative == pytest.approx(res.component_test[q], rel=1e-6)


def test_fixed_point_holds_and_status():
    mom = [_moments(30, 6), _moments(30, 7, spike=5.0)]
    res = solve(mom, [0.5, 0.5], 25, 1e-4)
    assert res.status == "ok" and res.iterations < 30
    fmap = _Map(mom, np.array([0.5, 0.5]), 25, 1e-4 * np.eye(30), 1e-4, np.float64)
    t, _ = fmap.evaluate(1.0 / (1.0 + res.delta))
    np.testing.assert_allclose(res.delta, t, rtol=1e-10)
    cut = solve(mom, [0.5, 0.5], 25, 1e-4, max_iter=1)
    assert cut.status == "not-converged"


def test_test_mix_and_component_errors():
    mom = [_moments(30, 8), _moments(30, 9)]
    res = solve(mom, [0.5, 0.5], 40, 1e-3, test_weights=[1.0, 0.0])
    assert res.test_error == pytest.approx(res.component_test[0])
    assert np.all(res.component_test > 0)


def _full_inverse(mom, a, lam):
    mat = lam * np.eye(len(mom[0].S)) + sum(ar * mo.S for ar, mo in zip(a, mom, strict=True))
    return np.linalg.inv(mat)


@pytest.mark.parametrize("rho", [[0.2, 0.5, 0.3], [0.0, 0.6, 0.4], [1.0]])
def test_coupling_with_one_product_eliminated_equals_explicit_products(rho):
    k, m, lam = 50, 70, 1e-3
    mom = [_moments(k, 10 + q, spike=1.0 + q) for q in range(len(rho))]
    rho = np.array(rho)
    w = np.linspace(0.3, 0.9, len(rho))
    fmap = _Map(mom, rho, m, lam * np.eye(k), lam, np.float64)
    t, q = fmap.evaluate(w)
    g, full = fmap.coupling(w, q)
    inv = _full_inverse(mom, rho * w, lam)
    np.testing.assert_allclose(full, inv, rtol=1e-10, atol=1e-12 * np.abs(inv).max())
    np.testing.assert_allclose(t, [np.trace(mo.S @ inv) / m for mo in mom], rtol=1e-11)
    direct = np.array([[np.trace(inv @ a.S @ inv @ b.S) / m for b in mom] for a in mom])
    np.testing.assert_allclose(g, direct, rtol=1e-10)
    general = _Map(mom, rho, m, lam * np.eye(k), None, np.float64)  # no elimination
    np.testing.assert_allclose(general.coupling(w, q)[0], direct, rtol=1e-10)
    single = _Map(mom, rho, m, lam * np.eye(k), lam, np.float32)  # the eliminated product built in place
    np.testing.assert_allclose(single.coupling(w, single.evaluate(w)[1])[0], direct, rtol=2e-4)


def test_trace_of_lower_triangle_either_order_and_symmetric():
    rng = np.random.default_rng(11)
    a = rng.standard_normal((40, 40))
    s, full = a @ a.T, a.T @ a + np.eye(40)
    lower = np.tril(full)
    for tri in (lower, np.asfortranarray(lower)):
        assert _trace(s, tri) == pytest.approx(np.trace(s @ full), rel=1e-13)
        np.testing.assert_array_equal(_symmetric(tri), full)


def test_pooled_coupling_exact_for_equal_components():
    k, m, lam = 40, 50, 1e-2
    mo = _moments(k, 12)
    rho, w = np.array([0.3, 0.7]), np.array([0.6, 0.4])
    fmap = _Map([mo, mo], rho, m, lam * np.eye(k), lam, np.float64)
    _, q = fmap.evaluate(w)
    np.testing.assert_allclose(fmap.pooled_coupling(w, q), fmap.coupling(w, q)[0], rtol=1e-10)


@pytest.mark.parametrize(("k", "m", "lam"), [(150, 100, 1e-4), (120, 240, 1e-3)])
def test_single_precision_start_changes_nothing_beyond_tolerance(monkeypatch, k, m, lam):
    mom = [_moments(k, 13), _moments(k, 14, spike=3.0)]
    assert k >= theory_solver.COARSE_MIN_K
    fast = solve(mom, [0.4, 0.6], m, lam)
    monkeypatch.setattr(theory_solver, "COARSE_MIN_K", 10**9)
    plain = solve(mom, [0.4, 0.6], m, lam)
    assert fast.status == plain.status == "ok"
    assert fast.test_error == pytest.approx(plain.test_error, rel=1e-9)
    assert fast.train_error == pytest.approx(plain.train_error, rel=1e-9)
    np.testing.assert_allclose(fast.delta, plain.delta, rtol=1e-9)

