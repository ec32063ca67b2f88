"""Exact per-component moments (gmstep.theory_moments) against independent computations.

References that cannot be faked: 2-D Gauss-Hermite quadrature with many nodes (smooth
activations), adaptive 2-D integration by SciPy (ReLU with means: the kink defeats Gauss-Hermite),
large-sample Monte Carlo (every activation, with and without means), the arc-cosine kernel
against the conditional formula at zero means, and Stein's lemma for the linear activation.
The faster evaluations against the plain formulas: the in-place arc-cosine matrix against
``s_i s_j J(r_ij)``, and both block-wise matrices (arc-cosine and Mehler) with many row blocks
against one block (Horner's scheme and the quadrature pairs: tests/test_theory_series.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from gmstep import theory_moments as tm
from gmstep import theory_series
from gmstep.activations import get

ACTS = ["relu", "tanh", "sigmoid", "erf", "gelu", "linear"]


def _covariance(k: int, seed: int) -> np.ndarray:
    """A k x k covariance with one pair at correlation about 0.9995 (the slow-series case)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, k))
    a[1] = a[0] + 0.03 * a[1]
    return a @ a.T / k + 1e-3 * np.eye(k)


def _mc(act: str, cov: np.ndarray, mean: np.ndarray, n: int, seed: int):
    rng = np.random.default_rng(seed)
    h = mean + rng.standard_normal((n, len(mean))) @ np.linalg.cholesky(cov).T
    f = get(act).fn(h)
    prod = f[:, :, None] * f[:, None, :]
    return prod.mean(0), prod.std(0) / math.sqrt(n)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("with_mean", [False, True])
def test_pair_matrix_matches_monte_carlo(act, with_mean):
    k = 5
    cov = _covariance(k, 1)
    mean = np.random.default_rng(2).standard_normal(k) * 0.7 if with_mean else np.zeros(k)
    exact = tm.pair_matrix(get(act), cov, mean)
    mc, se = _mc(act, cov, mean, 200_000, 3)
    assert np.all(np.abs(exact - mc) <= 4.5 * se + 1e-12)
    np.testing.assert_allclose(exact, exact.T, rtol=0, atol=1e-14)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "erf", "gelu", "sin"])
@pytest.mark.parametrize("with_mean", [False, True])
def test_smooth_pairs_match_2d_quadrature(act, with_mean):
    k = 6
    cov = _covariance(k, 4)
    mean = np.random.default_rng(5).standard_normal(k) * 0.5 if with_mean else np.zeros(k)
    exact = tm.pair_matrix(get(act), cov, mean)
    s = np.sqrt(np.diag(cov))
    i, j = np.triu_indices(k, 1)
    ref = tm.quad2(get(act), get(act), mean[i], s[i], mean[j], s[j], cov[i, j] / (s[i] * s[j]), nodes=160)
    np.testing.assert_allclose(exact[i, j], ref, rtol=0, atol=2e-9)
    diag = [integrate.quad(lambda z, a=a, b=b: get(act).fn(np.array(a + b * z)) ** 2 * math.exp(-z * z / 2)
                           / math.sqrt(2 * math.pi), -14, 14, epsabs=1e-13)[0] for a, b in zip(mean, s, strict=True)]
    np.testing.assert_allclose(np.diag(exact), diag, rtol=1e-9, atol=1e-12)


def test_series_branch_is_used_and_accurate():
    """Moderate correlations go through Mehler's series (no 2-D fallback): equal to quadrature."""
    cov = np.array([[1.0, 0.5], [0.5, 2.0]])
    mean = np.array([0.3, -0.4])
    s = np.sqrt(np.diag(cov))
    r = 0.5 / (s[0] * s[1])
    coef = tm.neuron_expansion(get("tanh"), mean, s, tm.SERIES_DEGREE)[0]
    second = tm.expect(get("tanh"), mean, s, power=2)
    fact = np.array([math.factorial(j) for j in range(tm.SERIES_DEGREE + 1)], dtype=float)
    tail = np.sqrt(second - (coef**2 / fact).sum(1))
    assert tail[0] * tail[1] * r ** (tm.SERIES_DEGREE + 1) < tm.SERIES_TOL  # the series branch
    ref = tm.quad2(get("tanh"), get("tanh"), mean[:1], s[:1], mean[1:], s[1:], np.array([r]), nodes=160)
    assert tm.pair_matrix(get("tanh"), cov, mean)[0, 1] == pytest.approx(ref[0], abs=1e-11)


@pytest.mark.parametrize("r", [-0.999, -0.6, 0.0, 0.35, 0.9, 0.99999])
def test_relu_pair_with_means_matches_adaptive_integration(r):
    mu, su, mv, sv = 0.4, 1.3, -0.7, 0.8

    def inner(z1: float) -> float:
        u = mu + su * z1
        if u <= 0:
            return 0.0
        a, b = mv + sv * r * z1, sv * math.sqrt(1 - r * r)
        return u * float(tm.relu_mean(np.array(a), np.array(b))) * math.exp(-z1 * z1 / 2) / math.sqrt(2 * math.pi)

    ref = integrate.quad(inner, -mu / su, 14, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
    assert float(tm.relu_pair(mu, su, mv, sv, r)) == pytest.approx(ref, rel=1e-9, abs=1e-13)


def test_arccos_kernel_equals_conditional_formula_at_zero_means():
    r = np.linspace(-0.999, 0.999, 41)
    s_u, s_v = 1.7, 0.6
    np.testing.assert_allclose(tm.relu_pair(0.0, s_u, 0.0, s_v, r), s_u * s_v * tm.arccos_j(r), rtol=1e-10)
    assert tm.arccos_j(np.array(1.0)) == pytest.approx(0.5)
    assert tm.arccos_j(np.array(-1.0)) == pytest.approx(0.0, abs=1e-15)


def test_erf_closed_form_equals_quadrature():
    cov = np.array([[0.7, 0.3], [0.3, 1.4]])
    exact = tm.erf_pair_centred(cov[0, 0], cov[1, 1], cov[0, 1])
    s = np.sqrt(np.diag(cov))
    ref = tm.quad2(get("erf"), get("erf"), [0.0], [s[0]], [0.0], [s[1]], [0.3 / (s[0] * s[1])], nodes=160)
    assert exact == pytest.approx(ref[0], abs=1e-12)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("target_mean", [0.0, 0.45])
def test_target_cross_and_label_moments_match_monte_carlo(act, target_mean):
    k = 4
    rng = np.random.default_rng(8)
    joint = _covariance(k + 1, 9)
    mean = np.concatenate([rng.standard_normal(k) * 0.5 if target_mean else np.zeros(k), [target_mean]])
    cov, cross, var = joint[:k, :k], joint[:k, k], joint[k, k]
    mom = tm.component_moments(act, cov, mean[:k], tm.IndexTarget(cross, var, target_mean, delta=0.3))
    n = 200_000
    h = mean + np.random.default_rng(10).standard_normal((n, k + 1)) @ np.linalg.cholesky(joint).T
    phi = get(act).fn(h[:, :k]) / math.sqrt(k)
    y = np.maximum(h[:, k], 0.0)
    prod = phi * y[:, None]
    assert np.all(np.abs(mom.t - prod.mean(0)) <= 4.5 * prod.std(0) / math.sqrt(n))
    assert mom.e == pytest.approx(float(np.mean(y * y)) + 0.09, rel=0.01)
    label = tm.component_moments(act, cov, mean[:k], tm.LabelTarget(-1.0))
    assert np.all(np.abs(label.t + phi.mean(0)) <= 4.5 * phi.std(0) / math.sqrt(n))
    assert label.e == 1.0


def test_linear_activation_is_stein():
    cov = _covariance(3, 11)
    mean = np.array([0.2, -0.1, 0.5])
    np.testing.assert_allclose(tm.pair_matrix(get("linear"), cov, mean), cov + np.outer(mean, mean))
    # E[u ReLU(nu)] = m E[ReLU(nu)] + Cov(u, nu) P(nu > 0)
    got = tm.relu_index_cross(get("linear"), np.array([0.3]), np.array([1.0]), 0.0, 2.0, np.array([0.5]))
    assert got[0] == pytest.approx(0.3 * 2.0 / math.sqrt(2 * math.pi) + 0.5 * 1.0 * 2.0 * 0.5)


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "gelu"])
@pytest.mark.parametrize("mean_nu", [0.0, 0.6, -0.8])
def test_target_cross_series_equals_conditioning(act, mean_nu):
    """Mehler's series with the exact ReLU coefficients against conditioning on the target."""
    m = np.array([0.0, 0.4, -0.3, 0.1])
    s = np.array([0.7, 1.2, 2.0, 0.9])
    r = np.array([0.1, -0.5, 0.8, 0.3])
    series = tm.relu_index_cross(get(act), m, s, mean_nu, 1.3, r)
    direct = tm._cross_by_conditioning(get(act), m, s, mean_nu, 1.3, r)
    np.testing.assert_allclose(series, direct, rtol=1e-9, atol=1e-12)


def test_relu_centred_matrix_equals_arc_cosine_kernel():
    cov = _covariance(25, 24)
    s = np.sqrt(np.diag(cov))
    expected = np.outer(s, s) * tm.arccos_j(cov / np.outer(s, s))
    np.fill_diagonal(expected, 0.5 * s * s)
    np.testing.assert_allclose(tm.pair_matrix(get("relu"), cov, np.zeros(25)), expected, rtol=1e-14)


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_pair_matrix_block_by_block_equals_one_block(monkeypatch, act):
    """Many row blocks (the lower triangle in pieces, mirrored) give the same matrix as one block,
    the quadrature pairs included (the covariance has a pair at correlation 0.9995)."""
    cov = _covariance(37, 25)
    mean = np.zeros(37)
    whole = tm.pair_matrix(get(act), cov, mean)
    monkeypatch.setattr(theory_series, "_BLOCK_ELEMENTS", 5 * 37)  # blocks of 8 rows
    assert len(theory_series.row_blocks(37)) == 5
    blocks = tm.pair_matrix(get(act), cov, mean)
    np.testing.assert_array_equal(blocks, blocks.T)
    np.testing.assert_allclose(blocks, whole, rtol=1e-13, atol=1e-16)
