"""Ridge readout (docs/MATH.md §2): primal = dual = normal equations, the error formulas, the fallback."""

from __future__ import annotations

import numpy as np
import pytest

from gmstep import readout


def _features(rng, m, k):
    phi = np.tanh(rng.standard_normal((m, k))) / np.sqrt(k)
    y = rng.standard_normal(m)
    return phi, y


def _objective(phi, y, lam, a):
    r = y - phi @ a
    return r @ r / (2 * len(y)) + 0.5 * lam * a @ a


@pytest.mark.parametrize(("m", "k"), [(40, 15), (15, 40), (30, 30)])
@pytest.mark.parametrize("lam", [1e-4, 0.3])
def test_primal_dual_and_normal_equations_agree(m, k, lam, rng):
    phi, y = _features(rng, m, k)
    # Normal equations of the objective: (Phi^T Phi + lambda m I_k) a = Phi^T y.
    closed = np.linalg.solve(phi.T @ phi + lam * m * np.eye(k), phi.T @ y)
    fits = {method: readout.ridge(phi, y, lam, method) for method in ("primal", "dual", "auto")}
    for fit in fits.values():
        np.testing.assert_allclose(fit.weights, closed, rtol=1e-7, atol=1e-10)
        assert fit.train_error == pytest.approx(_objective(phi, y, lam, closed), rel=1e-8)
    # Dual form a = Phi^T (Phi Phi^T + lambda m I_m)^-1 y.
    dual = phi.T @ np.linalg.solve(phi @ phi.T + lam * m * np.eye(m), y)
    np.testing.assert_allclose(fits["primal"].weights, dual, rtol=1e-7, atol=1e-10)


def test_solution_is_the_minimiser(rng):
    phi, y = _features(rng, 25, 10)
    lam = 0.05
    fit = readout.ridge(phi, y, lam)
    # Zero gradient of the objective: -(1/m) Phi^T (y - Phi a) + lambda a = 0.
    grad = -phi.T @ (y - phi @ fit.weights) / len(y) + lam * fit.weights
    np.testing.assert_allclose(grad, 0.0, atol=1e-12)
    for _ in range(5):  # and any perturbation increases it
        other = fit.weights + 1e-3 * rng.standard_normal(10)
        assert _objective(phi, y, lam, other) > fit.train_error


def test_training_error_includes_the_penalty(rng):
    phi, y = _features(rng, 20, 8)
    lam = 0.5
    fit = readout.ridge(phi, y, lam)
    r = y - phi @ fit.weights
    data_term = r @ r / (2 * 20)
    penalty = 0.5 * lam * fit.weights @ fit.weights
    assert penalty > 1e-3 * data_term  # the penalty matters here
    assert fit.train_error == pytest.approx(data_term + penalty, rel=1e-12)


def test_auto_picks_the_smaller_system(rng, monkeypatch):
    seen = []
    real = readout._solve_spd

    def spy(mat, rhs):
        seen.append(mat.shape[0])
        return real(mat, rhs)

    monkeypatch.setattr(readout, "_solve_spd", spy)
    readout.ridge(*_features(rng, 30, 10), 1e-3)
    readout.ridge(*_features(rng, 10, 30), 1e-3)
    assert seen == [10, 10]


@pytest.mark.parametrize(("m", "k"), [(30, 12), (12, 30)])
def test_condition_estimate(rng, m, k):
    """The reported condition is LAPACK's 1-norm estimate of the system actually solved: never
    above the true 1-norm condition number, and (pocon is almost always exact) within a small factor of it."""
    phi, y = _features(rng, m, k)
    phi = phi * np.geomspace(1e-3, 10, k)  # spread the spectrum
    lam = 1e-5
    fit = readout.ridge(phi, y, lam)
    gram = phi.T @ phi if k <= m else phi @ phi.T
    gram += lam * m * np.eye(len(gram))
    true_cond1 = np.linalg.cond(gram, 1)
    assert true_cond1 / 3 <= fit.condition <= true_cond1 * (1 + 1e-9)  # Hager-Higham estimate
    assert fit.condition >= np.linalg.cond(gram, 2) / len(gram)  # 1- and 2-norm conditions agree up to n


def test_condition_is_infinite_when_cholesky_fails():
    mat = np.array([[1.0, 2.0], [2.0, 1.0]])  # symmetric, indefinite
    x, cond = readout._solve_spd(mat, np.array([1.0, 0.0]))
    assert cond == float("inf")
    np.testing.assert_allclose(mat @ x, [1.0, 0.0], atol=1e-12)


def test_bad_method():
    with pytest.raises(ValueError, match="method"):
        readout.ridge(np.ones((3, 2)), np.ones(3), 0.1, method="qr")


def test_prediction_error_formula():
    y = np.array([1.0, -1.0, 2.0, 0.5])
    pred = np.array([0.5, -1.0, 1.0, 1.5])
    assert readout.prediction_error(pred, y) == pytest.approx((0.25 + 0 + 1 + 1) / (2 * 4))


@pytest.mark.parametrize("order", ["C", "F"])
def test_solver_falls_back_on_the_original_matrix(order, rng):
    """If Cholesky fails, the least-squares fallback must see the matrix as given (not half-factored)."""
    mat = np.array(np.diag([4.0, 1.0, -2.0, 3.0]) + 0.1, order=order)  # symmetric, indefinite
    rhs = rng.standard_normal(4)
    before = mat.copy()
    sol, cond = readout._solve_spd(mat, rhs)
    assert cond == float("inf")
    np.testing.assert_array_equal(mat, before)
    np.testing.assert_allclose(before @ sol, rhs, atol=1e-12)
