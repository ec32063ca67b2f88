"""The table benchmark's teacher conventions (benchmarks/theory_table.py).

``component`` normalises the single-index teacher by the largest component covariance,
``||xi|| = 1 / sqrt(max_c ||Sigma_c||_op)``, instead of gmstep's mixture covariance. Checked
against dense eigenvalues, and through the theory: on a fixed ``F^`` the errors are quadratic in
``xi`` for the (positively homogeneous) ReLU target, so they scale by the factor squared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gmstep import data, network, theory
from helpers import load_module

ROOT = Path(__file__).resolve().parents[1]


table = load_module(ROOT / "benchmarks" / "theory_table.py", "theory_table")


@pytest.mark.parametrize("alignment", [0.0, 0.6])
def test_component_teacher_norm_against_dense_eigenvalues(alignment):
    rng = np.random.default_rng(3)
    theta = 7.0
    mix = data.draw_mixture(40, [0.5, 0.5], [1, 1], theta, alignment, rng)
    xi = data.teacher(mix, rng) * table.component_teacher_factor(mix)
    top = max(np.linalg.eigvalsh(mix.covariance(c))[-1] for c in range(2))
    assert top == pytest.approx(1.0 + theta)
    assert np.linalg.norm(xi) == pytest.approx(1.0 / np.sqrt(top), rel=1e-12)
    if alignment == 0.0:  # orthogonal spikes: the mixture's norm is 1 + theta / 2
        assert table.component_teacher_factor(mix) ** 2 == pytest.approx((1 + theta / 2) / (1 + theta))


def test_theory_errors_scale_with_the_teacher_norm_squared():
    rng = np.random.default_rng(5)
    n, k, m = 30, 20, 40
    mix = data.draw_mixture(n, [0.5, 0.5], [1, 1], 9.0, 0.0, rng)
    xi = data.teacher(mix, rng)
    f_hat, _ = network.init_params(n, k, mix.tr, rng)
    c = table.component_teacher_factor(mix)
    base = theory.predict(data.MixtureProblem(mix, "regression", xi), f_hat, "relu", m, 1e-2)
    scaled = theory.predict(data.MixtureProblem(mix, "regression", c * xi), f_hat, "relu", m, 1e-2)
    assert c**2 == pytest.approx(5.5 / 10)  # (1 + theta / 2) / (1 + theta)
    assert scaled.test_error == pytest.approx(c**2 * base.test_error, rel=1e-9)
    assert scaled.train_error == pytest.approx(c**2 * base.train_error, rel=1e-9)
