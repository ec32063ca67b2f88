"""Structured Gaussian mixtures and their targets (docs/MATH.md §1).

Sample-covariance checks use N draws and the exact standard error of a sample covariance entry
of a Gaussian, ``sqrt((S_ii S_jj + S_ij^2) / N)``; every tolerance is 6 standard errors (the
largest of ~n^2 entries of a Gaussian-like error stays below that).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gmstep import config, data
from gmstep.engine.datasets import build_problem
from gmstep.errors import ConfigError


def _check_covariance(x, mean, cov):
    num = len(x)
    se_mean = np.sqrt(np.diag(cov) / num)
    np.testing.assert_array_less(np.abs(x.mean(axis=0) - mean), 6 * se_mean)
    sample = np.cov(x, rowvar=False)
    d = np.diag(cov)
    se = np.sqrt((np.outer(d, d) + cov**2) / num)
    np.testing.assert_array_less(np.abs(sample - cov), 6 * se)


# ----------------------------------------------------------------------------- directions


def test_haar_columns_orthonormal_and_avoid(rng):
    g = data.haar_columns(50, 4, rng)
    np.testing.assert_allclose(g.T @ g, np.eye(4), atol=1e-12)
    h = data.haar_columns(50, 6, rng, avoid=g)
    np.testing.assert_allclose(h.T @ h, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(g.T @ h, 0.0, atol=1e-12)


def test_haar_columns_are_isotropic():
    # E[g g^T] = I / n for a Haar unit vector: average over 4000 draws in n = 5.
    rng = np.random.default_rng(1)
    n, reps = 5, 4000
    acc = np.zeros((n, n))
    for _ in range(reps):
        g = data.haar_columns(n, 1, rng)[:, 0]
        acc += np.outer(g, g)
    # Var(g_i^2) = 2 (n - 1) / (n^2 (n + 2)) for a uniform unit vector.
    se = math.sqrt(2 * (n - 1) / (n * n * (n + 2)) / reps)
    np.testing.assert_allclose(np.diag(acc) / reps, 1 / n, atol=6 * se)


@pytest.mark.parametrize("alignment", [-1.0, -0.6, 0.0, 0.3, 1.0])
@pytest.mark.parametrize("ranks", [[1, 1], [2, 2], [3, 2], [2, 4, 3]])
def test_alignment_and_orthonormality(alignment, ranks, rng):
    mix = data.draw_mixture(40, [1 / len(ranks)] * len(ranks), ranks, 5.0, alignment, rng)
    g1 = mix.spikes[0]
    for c, g in enumerate(mix.spikes):
        assert g.shape == (40, ranks[c])
        np.testing.assert_allclose(g.T @ g, np.eye(ranks[c]), atol=1e-12)
    for c in range(1, len(ranks)):
        j = min(ranks[0], ranks[c])
        overlap = g1.T @ mix.spikes[c]
        np.testing.assert_allclose(overlap[:j, :j], alignment * np.eye(j), atol=1e-12)
        np.testing.assert_allclose(overlap[:, j:], 0.0, atol=1e-12)
        np.testing.assert_allclose(overlap[j:, :j], 0.0, atol=1e-12)


# ----------------------------------------------------------------------------- counts


@pytest.mark.parametrize(("ratios", "m", "counts"), [
    ([0.3, 0.7], 10, [3, 7]),
    ([0.0, 1.0], 10, [0, 10]),
    ([1.0, 0.0], 10, [10, 0]),
    ([0.5, 0.5], 7, [3, 4]),
    ([0.2, 0.3, 0.5], 10, [2, 3, 5]),
    ([1 / 3, 1 / 3, 1 / 3], 10, [3, 3, 4]),
    ([0.29, 0.71], 100, [29, 71]),
])
def test_component_counts(ratios, m, counts):
    np.testing.assert_array_equal(data.component_counts(ratios, m), counts)


def test_component_counts_reject_too_many():
    with pytest.raises(ConfigError):
        data.component_counts([0.8, 0.8, -0.6], 10)


@pytest.mark.parametrize(("rho", "counts"), [(0.3, [3, 7]), (0.0, [0, 10]), (1.0, [10, 0])])
def test_samples_grouped_by_component_with_exact_counts(rho, counts, rng):
    mix = data.draw_mixture(8, [rho, 1 - rho], [1, 1], 2.0, 0.0, rng)
    x, comp = mix.sample(10, rng)
    assert x.shape == (10, 8)
    np.testing.assert_array_equal(comp, np.repeat([0, 1], counts))
    mix3 = data.draw_mixture(8, [0.2, 0.3, 0.5], [1, 2, 1], 2.0, 0.0, rng)
    _, comp3 = mix3.sample(10, rng)
    np.testing.assert_array_equal(comp3, [0, 0, 1, 1, 1, 2, 2, 2, 2, 2])


# ----------------------------------------------------------------------------- covariances


@pytest.mark.parametrize(("ranks", "spikes", "alignment", "mean_norm"), [
    ([1, 1], "equal", 0.0, 0.0),
    ([2, 2], "equal", 0.7, 0.0),
    ([3, 2], "random", -0.4, 0.0),
    ([2, 1, 3], "random", 0.5, 1.5),
    ([1, 1], "equal", 0.0, 2.0),
])
def test_sample_covariance_and_mean_match(ranks, spikes, alignment, mean_norm):
    rng = np.random.default_rng(99)
    n, num = 12, 60_000
    c = len(ranks)
    mix = data.draw_mixture(n, [1 / c] * c, ranks, 6.0, alignment, rng,
                            random_spikes=spikes == "random", mean_norm=mean_norm)
    x, comp = mix.sample(num * c, rng)
    for cc in range(c):
        cov = mix.covariance(cc)
        g, t = mix.spikes[cc], mix.strengths[cc]
        np.testing.assert_allclose(cov, np.eye(n) + g @ np.diag(t) @ g.T, atol=1e-12)
        mean = np.zeros(n) if mix.means is None else mix.means[cc]
        _check_covariance(x[comp == cc], mean, cov)
    if mean_norm > 0:
        np.testing.assert_allclose(np.linalg.norm(mix.means, axis=1), mean_norm, rtol=1e-12)
    else:
        assert mix.means is None


def test_sample_dtype(rng):
    mix = data.draw_mixture(6, [0.5, 0.5], [1, 1], 2.0, 0.0, rng)
    x, _ = mix.sample(5, rng, dtype=np.float32)
    assert x.dtype == np.float32


# ----------------------------------------------------------------------------- strengths, trace, scale


@pytest.mark.parametrize(("n", "alpha", "beta"), [(1000, 0.5, 0.74), (400, 0.0, 1.0), (300, 1.0, 0.3), (50, 0.2, 0.0)])
def test_spike_strength_exponent(n, alpha, beta, rng):
    theta = n ** (beta * (1 - alpha))
    assert data.spike_strengths(n, alpha, beta, None) == pytest.approx(theta)
    assert data.spike_strengths(n, alpha, beta, 3.5) == 3.5
    p = config.resolved(config.validate_params({"n": n, "m": 10, "alpha": alpha, "beta": beta}))
    assert p["theta"] == pytest.approx(theta)
    assert p["eta"] == pytest.approx(n ** (alpha * beta))
    problem = build_problem(p, rng)
    np.testing.assert_allclose(problem.mixture.strengths[0], theta)
    np.testing.assert_allclose(problem.mixture.strengths[1], theta)
    assert problem.tr == pytest.approx(n + theta)
    assert problem.scale == pytest.approx(math.sqrt(n / (n + theta)))


@pytest.mark.parametrize("ranks", [[1, 1], [4, 4], [3, 5], [2, 3, 4]])
def test_random_spikes_rescaled_to_equal_sums(ranks, rng):
    theta = 7.0
    mix = data.draw_mixture(30, [1 / len(ranks)] * len(ranks), ranks, theta, 0.0, rng, random_spikes=True)
    assert np.all(mix.strengths[0] >= 0) and np.all(mix.strengths[0] <= theta)
    assert len(set(np.round(mix.strengths[0], 12))) == ranks[0]  # not all equal
    for t in mix.strengths[1:]:
        assert t.sum() == pytest.approx(mix.strengths[0].sum(), rel=1e-12)
        assert np.all(t >= 0)
    assert mix.tr == pytest.approx(30 + mix.strengths[0].sum())


def test_random_spikes_are_uniform_fractions():
    # theta_1 = theta U(0, 1): mean theta / 2, variance theta^2 / 12, over 2000 rank-one draws.
    rng = np.random.default_rng(5)
    theta = 4.0
    values = np.array([data.draw_mixture(6, [0.5, 0.5], [1, 1], theta, 0.0, rng, random_spikes=True).strengths[0][0]
                       for _ in range(2000)])
    assert values.mean() == pytest.approx(theta / 2, abs=5 * theta / math.sqrt(12 * 2000))
    assert values.min() >= 0 and values.max() <= theta


@pytest.mark.parametrize(("ratios", "ranks", "alignment"), [
    ([0.5, 0.5], [1, 1], 0.0), ([0.3, 0.7], [2, 3], 0.8), ([0.2, 0.3, 0.5], [1, 2, 2], -0.5), ([1.0, 0.0], [2, 2], 0.4),
])
def test_mixture_operator_norm_against_dense_eigenvalue(ratios, ranks, alignment, rng):
    mix = data.draw_mixture(25, ratios, ranks, 9.0, alignment, rng, random_spikes=True)
    sigma = sum(r * mix.covariance(c) for c, r in enumerate(ratios))
    assert mix.mixture_operator_norm() == pytest.approx(np.linalg.eigvalsh(sigma)[-1], rel=1e-12)


# ----------------------------------------------------------------------------- targets


@pytest.mark.parametrize("spike_aligned", [False, True])
def test_teacher_norm(spike_aligned, rng):
    mix = data.draw_mixture(30, [0.4, 0.6], [2, 3], 5.0, 0.3, rng, random_spikes=True)
    xi = data.teacher(mix, rng, spike_aligned=spike_aligned)
    assert np.linalg.norm(xi) == pytest.approx(1 / math.sqrt(mix.mixture_operator_norm()), rel=1e-12)
    if spike_aligned:
        direction = sum(g[:, int(np.argmax(t))] for g, t in zip(mix.spikes, mix.strengths, strict=True))
        cos = xi @ direction / (np.linalg.norm(xi) * np.linalg.norm(direction))
        assert cos == pytest.approx(1.0, abs=1e-12)


def test_regression_targets(rng):
    mix = data.draw_mixture(20, [0.5, 0.5], [1, 1], 3.0, 0.0, rng)
    xi = data.teacher(mix, rng)
    x, y = data.MixtureProblem(mix, "regression", xi).sample(50, rng)
    np.testing.assert_allclose(y, np.maximum(x @ xi, 0.0), rtol=1e-14)
    # With label noise delta, y - ReLU(xi^T x) is N(0, delta^2): 20,000 draws.
    x, y = data.MixtureProblem(mix, "regression", xi, delta=0.3).sample(20_000, rng)
    noise = y - np.maximum(x @ xi, 0.0)
    assert noise.std() == pytest.approx(0.3, rel=5 * math.sqrt(1 / (2 * 20_000)))


@pytest.mark.parametrize(("rho", "m"), [(0.5, 10), (0.3, 10), (0.0, 6), (1.0, 6)])
def test_classification_labels_by_component(rho, m, rng):
    mix = data.draw_mixture(10, [rho, 1 - rho], [1, 1], 3.0, 0.0, rng)
    x, y = data.MixtureProblem(mix, "classification").sample(m, rng)
    n1 = int(rho * m + 1e-9)
    np.testing.assert_array_equal(y, [-1.0] * n1 + [1.0] * (m - n1))
    assert x.shape == (m, 10)


def test_problem_dtype_and_protocol(rng):
    mix = data.draw_mixture(10, [0.5, 0.5], [1, 1], 3.0, 0.0, rng)
    problem = data.MixtureProblem(mix, "regression", data.teacher(mix, rng), dtype=np.float32)
    x, y = problem.sample(8, rng)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert problem.n == 10 and problem.tr == mix.tr and problem.scale == mix.scale


def test_spike_aligned_teacher_vanishing_is_an_error(rng):
    g = np.eye(4)[:, :1]
    mix = data.GaussianMixture(np.array([0.5, 0.5]), (g, -g), (np.ones(1), np.ones(1)))
    with pytest.raises(ConfigError) as info:
        data.teacher(mix, rng, spike_aligned=True)
    assert info.value.key == "target"
