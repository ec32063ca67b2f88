"""The mixture deterministic equivalent (gmstep.theory_solver) against independent forms.

* K = 1: the standard single-Gaussian ridge equivalent, solved independently by an
  eigendecomposition and a scalar root finder: ``kappa = lambda m / (m - df1(kappa))``,
  ``df1 = tr(S (S + kappa)^-1)``, ``E = eps / (1 - tr(S^2 (S + kappa)^-2) / m)``.
* A component split into two identical halves changes nothing.
* The closed-form per-component test error equals its derivative form: with the penalty
  ``a^T (lambda I + s S_q) a / 2`` the training value's derivative in ``s`` at 0 is
  ``E[a^T S_q a] / 2``, so ``E_q = e_q / 2 - t_q^T a_bar + d E_train / ds`` (central difference).
* The fixed point holds at the returned ``delta``; a cut-off iteration says ``not-converged``.
* The single-precision start changes the result only within the solver's tolerance (the
  cheaper forms of the map itself: tests/test_theory_map.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from gmstep import theory_solver
from gmstep.theory_map import PrecisionMap
from gmstep.theory_solver import solve
from helpers import random_moments


@pytest.mark.parametrize(("k", "m", "lam"), [(30, 60, 1e-2), (60, 40, 1e-3), (50, 50, 1e-4)])
def test_single_component_equals_standard_formula(k, m, lam):
    mo = random_moments(k, 1)
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
    mo = random_moments(40, 2)
    one = solve([mo], [1.0], 50, 1e-3)
    two = solve([mo, mo], [0.3, 0.7], 50, 1e-3)
    assert two.test_error == pytest.approx(one.test_error, rel=1e-9)
    assert two.train_error == pytest.approx(one.train_error, rel=1e-9)
    np.testing.assert_allclose(two.component_test, one.test_error, rtol=1e-9)


@pytest.mark.parametrize("lam", [1e-2, 1e-4])
def test_test_error_equals_derivative_form(lam):
    k, m = 40, 60
    mom = [random_moments(k, 3), random_moments(k, 4, spike=2.0), random_moments(k, 5)]
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
    mom = [random_moments(30, 6), random_moments(30, 7, spike=5.0)]
    res = solve(mom, [0.5, 0.5], 25, 1e-4)
    assert res.status == "ok" and res.iterations < 30
    fmap = PrecisionMap(mom, np.array([0.5, 0.5]), 25, 1e-4 * np.eye(30), 1e-4, np.float64)
    t, _ = fmap.evaluate(1.0 / (1.0 + res.delta))
    np.testing.assert_allclose(res.delta, t, rtol=1e-10)
    cut = solve(mom, [0.5, 0.5], 25, 1e-4, max_iter=1)
    assert cut.status == "not-converged"


def test_test_mix_and_component_errors():
    mom = [random_moments(30, 8), random_moments(30, 9)]
    res = solve(mom, [0.5, 0.5], 40, 1e-3, test_weights=[1.0, 0.0])
    assert res.test_error == pytest.approx(res.component_test[0])
    assert np.all(res.component_test > 0)


@pytest.mark.parametrize(("k", "m", "lam"), [(150, 100, 1e-4), (120, 240, 1e-3)])
def test_single_precision_start_changes_nothing_beyond_tolerance(monkeypatch, k, m, lam):
    mom = [random_moments(k, 13), random_moments(k, 14, spike=3.0)]
    assert k >= theory_solver.COARSE_MIN_K
    fast = solve(mom, [0.4, 0.6], m, lam)
    monkeypatch.setattr(theory_solver, "COARSE_MIN_K", 10**9)
    plain = solve(mom, [0.4, 0.6], m, lam)
    assert fast.status == plain.status == "ok"
    assert fast.test_error == pytest.approx(plain.test_error, rel=1e-9)
    assert fast.train_error == pytest.approx(plain.train_error, rel=1e-9)
    np.testing.assert_allclose(fast.delta, plain.delta, rtol=1e-9)
