"""The precision map of the theory's fixed point (gmstep.theory_map) against plain forms.

* The coupling with one product eliminated (``sum_r a_r Q S_r = I - lambda Q``, its traces
  expanded) equals ``K`` explicit products, and keeps its stated error bound where
  ``lambda Q`` is near ``I``.
* The one-pass trace of a lower triangle (either memory order) equals ``tr(S Q)``; the
  symmetric matrix from it is exact; the pooled coupling is exact when all ``S_r`` are equal.
* A failed Cholesky factorisation: LU of the whole matrix in double precision, a refusal in
  single.
"""

from __future__ import annotations

import numpy as np
import pytest

from gmstep.theory_map import NotPositiveDefinite, PrecisionMap, symmetric_from_lower, trace_with_lower
from helpers import random_moments


def _full_inverse(mom, a, lam):
    mat = lam * np.eye(len(mom[0].S)) + sum(ar * mo.S for ar, mo in zip(a, mom, strict=True))
    return np.linalg.inv(mat)


@pytest.mark.parametrize("rho", [[0.2, 0.5, 0.3], [0.0, 0.6, 0.4], [1.0]])
def test_coupling_with_one_product_eliminated_equals_explicit_products(rho):
    k, m, lam = 50, 70, 1e-3
    mom = [random_moments(k, 10 + q, spike=1.0 + q) for q in range(len(rho))]
    rho = np.array(rho)
    w = np.linspace(0.3, 0.9, len(rho))
    fmap = PrecisionMap(mom, rho, m, lam * np.eye(k), lam, np.float64)
    t, q = fmap.evaluate(w)
    g, full = fmap.coupling(w, q)
    inv = _full_inverse(mom, rho * w, lam)
    np.testing.assert_allclose(full, inv, rtol=1e-10, atol=1e-12 * np.abs(inv).max())
    np.testing.assert_allclose(t, [np.trace(mo.S @ inv) / m for mo in mom], rtol=1e-11)
    direct = np.array([[np.trace(inv @ a.S @ inv @ b.S) / m for b in mom] for a in mom])
    np.testing.assert_allclose(g, direct, rtol=1e-10)
    general = PrecisionMap(mom, rho, m, lam * np.eye(k), None, np.float64)  # no elimination
    np.testing.assert_allclose(general.coupling(w, q)[0], direct, rtol=1e-10)
    single = PrecisionMap(mom, rho, m, lam * np.eye(k), lam, np.float32)  # the same traces in single precision
    np.testing.assert_allclose(single.coupling(w, single.evaluate(w)[1])[0], direct, rtol=2e-4)


@pytest.mark.parametrize("lam", [1e1, 1e3, 1e5])
def test_coupling_without_the_eliminated_product_keeps_its_error_bound_when_lambda_dominates(lam):
    """``lambda Q`` near ``I``: ``tr((I - lambda Q)^2)`` is a difference of terms of size ``k``,
    and ``G_ee`` is only exact to ``eps k / (m a_e^2)``, as the docstring bounds it; what the
    errors use, ``G D`` (``D_ee = rho_e w_e^2``), stays within ``eps k / (m rho_e)`` of the
    explicit products."""
    k, m = 40, 30
    mom = [random_moments(k, 20 + q, spike=1.0 + q) for q in range(2)]
    rho, w = np.array([0.45, 0.55]), np.array([0.97, 0.99])
    fmap = PrecisionMap(mom, rho, m, lam * np.eye(k), lam, np.float64)
    g, _ = fmap.coupling(w, fmap.evaluate(w)[1])
    inv = _full_inverse(mom, rho * w, lam)
    direct = np.array([[np.trace(inv @ a.S @ inv @ b.S) / m for b in mom] for a in mom])
    dmat = np.diag(rho * w**2)
    bound = 16 * np.finfo(float).eps * k / (m * rho.min())
    assert (direct @ dmat)[1, 1] > 100 * bound  # G_ee D_ee (e = 1) is not within rounding of zero
    np.testing.assert_allclose(g @ dmat, direct @ dmat, rtol=1e-8, atol=bound)


def test_trace_of_lower_triangle_either_order_and_symmetric():
    rng = np.random.default_rng(11)
    a = rng.standard_normal((40, 40))
    s, full = a @ a.T, a.T @ a + np.eye(40)
    lower = np.tril(full)
    for tri in (lower, np.asfortranarray(lower)):
        assert trace_with_lower(s, tri) == pytest.approx(np.trace(s @ full), rel=1e-13)
        np.testing.assert_array_equal(symmetric_from_lower(tri), full)


def test_pooled_coupling_exact_for_equal_components():
    k, m, lam = 40, 50, 1e-2
    mo = random_moments(k, 12)
    rho, w = np.array([0.3, 0.7]), np.array([0.6, 0.4])
    fmap = PrecisionMap([mo, mo], rho, m, lam * np.eye(k), lam, np.float64)
    _, q = fmap.evaluate(w)
    np.testing.assert_allclose(fmap.pooled_coupling(w, q), fmap.coupling(w, q)[0], rtol=1e-10)


def test_failed_cholesky_falls_back_to_lu_of_the_whole_matrix():
    """A matrix Cholesky cannot factor (an indefinite penalty, outside what ``solve`` is for):
    the double-precision evaluation inverts the matrix itself by LU, not what the failed
    factorisation left of it; in single precision it refuses."""
    k, m = 30, 25
    mom = [random_moments(k, 3)]
    rho, w = np.array([1.0]), np.array([0.8])
    pen = np.diag(np.r_[-5.0, np.full(k - 1, 1e-2)])
    mat = pen + 0.8 * mom[0].S
    assert np.linalg.eigvalsh(mat).min() < 0 < abs(np.linalg.det(mat))
    t, q = PrecisionMap(mom, rho, m, pen, None, np.float64).evaluate(w)
    inv = np.linalg.inv(mat)
    np.testing.assert_allclose(q, np.tril(inv), rtol=1e-9, atol=1e-12 * np.abs(inv).max())
    np.testing.assert_allclose(t, [np.trace(mom[0].S @ inv) / m], rtol=1e-9)
    with pytest.raises(NotPositiveDefinite):
        PrecisionMap(mom, rho, m, pen, None, np.float32).evaluate(w)
