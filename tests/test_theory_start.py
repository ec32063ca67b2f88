"""Starting points of the fixed point (gmstep.theory_start) against exact solutions: a spectrum with
one distinct eigenvalue makes the one-pole step exact, an outlier plus a flat bulk makes the
start's two-pole model exact, and the one-pole root solves its quadratic. ``tr(Q^2)`` from a
lower triangle in either memory order against the full product."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

from gmstep import theory_start as ts
from gmstep.theory_moments import Moments


def _two_level_moments(k: int, top: float, bulk: float, seed: int) -> Moments:
    """``S`` with the eigenvalue ``top`` once and ``bulk`` k - 1 times (random eigenvectors)."""
    basis, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((k, k)))
    return Moments((basis * np.r_[top, np.full(k - 1, bulk)]) @ basis.T, np.zeros(k), 1.0)


def _fixed_point_one_component(mo: Moments, m: float, lam: float) -> float:
    """``w = 1 / (1 + delta)`` of ``delta = tr(S (lambda + w S)^-1) / m`` from the eigenvalues."""
    ev = np.linalg.eigvalsh(mo.S)
    return optimize.brentq(lambda w: 1.0 / w - 1.0 - np.sum(ev / (lam + w * ev)) / m, 1e-12, 1.0, xtol=1e-15)


@pytest.mark.parametrize(("bulk", "m"), [(2e-3, 60), (5e-4, 30)])
def test_pooled_step_is_exact_for_one_distinct_eigenvalue(bulk, m):
    """With all eigenvalues of ``S`` equal, ``d(kappa)`` is one pole: one step lands on the fixed point."""
    k, lam = 40, 1e-3
    mo = Moments(bulk * np.eye(k), np.zeros(k), 1.0)
    w = np.array([1.0])
    q = np.tril(np.linalg.inv(lam * np.eye(k) + mo.S))  # Q at w = 1, lower triangle
    step = ts.pooled_step(w, q, np.array([1.0]), m, lam)
    assert step is not None
    assert step[0] == pytest.approx(_fixed_point_one_component(mo, m, lam), rel=1e-12)


def test_pooled_start_is_exact_for_an_outlier_and_a_flat_bulk():
    """Top eigenvalue apart and the rest equal: the start's two-pole model is the exact ``d``."""
    k, m, lam = 60, 45, 1e-3
    mo = _two_level_moments(k, 0.5, 2e-3, 31)
    start = ts.pooled_start([mo.S, mo.S], np.array([0.3, 0.7]), m, lam)
    np.testing.assert_allclose(start, _fixed_point_one_component(mo, m, lam), rtol=1e-5)  # brentq's xtol on log u
    flat = ts.pooled_start([np.zeros((k, k))], np.array([1.0]), m, lam)  # no eigenvalue: no model
    np.testing.assert_array_equal(flat, [1.0])


def test_one_pole_root_solves_its_quadratic():
    for m, lam, n_pole, mu in [(100.0, 1e-4, 30.0, 0.01), (50.0, 1e-2, 400.0, 1e-5), (10.0, 1e-8, 5.0, 3.0)]:
        u = ts.one_pole_root(m, lam, n_pole, mu)
        assert 0 < u <= 1
        assert m * (1 - u) == pytest.approx(n_pole * mu * u / (lam + mu * u), rel=1e-10, abs=1e-12 * m)


def test_trace_q2_of_a_lower_triangle_in_either_order():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((30, 30))
    full = a @ a.T + np.eye(30)
    for tri in (np.tril(full), np.asfortranarray(np.tril(full))):
        assert ts.trace_q2(tri) == pytest.approx(np.trace(full @ full), rel=1e-13)
