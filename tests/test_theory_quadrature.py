"""Gaussian expectations (gmstep.theory_quadrature) against adaptive integration by SciPy, for
narrow and wide scales (the composite rule is what keeps wide ones exact), and the 2-D
expectations of gmstep.theory_moments.quad2 built on them: symmetric in the two variables,
the conditioned path equal to 2-D Gauss-Hermite where both are exact, and a wide pair against
nested adaptive integration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

from gmstep import theory_moments as tm
from gmstep import theory_quadrature as tq
from gmstep.activations import get
from gmstep.hermite import hermite_e

pytestmark = pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # the reference, near its limits

FUNCTIONS = {"tanh": np.tanh, "sigmoid": special.expit, "kinked": lambda x: np.maximum(x, 0.0) - 0.3 * np.abs(x)}


def _adaptive(fn, m: float, s: float, weight=lambda z: 1.0) -> float:
    """``E[fn(m + s z) weight(z)]`` by adaptive integration, split at the zero crossing."""
    z0 = float(np.clip(-m / s, -30.0, 30.0))

    def f(z):
        return fn(m + s * z) * weight(z) * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

    opts = {"epsabs": 1e-15, "epsrel": 1e-13, "limit": 500}
    return sum(integrate.quad(f, lo, hi, **opts)[0] for lo, hi in ((-40.0, z0), (z0, 40.0)))


# Narrow scales take Gauss-Hermite, exact for smooth functions only (the built-in generic
# activations): the kinked function is checked at wide scales, where its kink is a break point.
CASES = [(name, s) for name in sorted(FUNCTIONS) for s in (0.7, 1.6, 4.0, 12.0, 100.0)
         if not (name == "kinked" and s <= tq.WIDE_SCALE)]


@pytest.mark.parametrize(("name", "s"), CASES)
def test_expectations_match_adaptive_integration(name, s):
    fn = FUNCTIONS[name]
    m = np.array([0.0, 0.37 * s, -1.9])
    got = tq.normal_expectation(fn, m, np.full(3, s))
    got2 = tq.normal_expectation(fn, m, np.full(3, s), power=2)
    for i, mi in enumerate(m):
        assert got[i] == pytest.approx(_adaptive(fn, mi, s), rel=1e-12, abs=2e-13)
        assert got2[i] == pytest.approx(_adaptive(lambda x: fn(x) ** 2, mi, s), rel=1e-12, abs=2e-13)


@pytest.mark.parametrize("s", [1.0, 6.0, 40.0])
def test_hermite_coefficients_match_adaptive_integration(s):
    m = np.array([0.4, -3.0])
    coef, second = tq.neuron_expansion(np.tanh, m, np.full(2, s), 30)
    fact = np.array([math.factorial(j) for j in range(31)], dtype=float)
    for i, mi in enumerate(m):
        assert second[i] == pytest.approx(_adaptive(lambda x: np.tanh(x) ** 2, mi, s), abs=2e-13)
        for lev in (0, 1, 2, 5, 11, 30):
            exact = _adaptive(np.tanh, mi, s, weight=lambda z, lev=lev: hermite_e(np.array([z]), lev)[lev, 0])
            assert coef[i, lev] / math.sqrt(fact[lev]) == pytest.approx(exact / math.sqrt(fact[lev]), abs=1e-12)
        assert np.sum(coef[i] ** 2 / fact) <= second[i] * (1 + 1e-12)  # Parseval: the tail is not negative


def test_quad2_conditioned_path_equals_gauss_hermite_where_both_are_exact(monkeypatch):
    args = (np.array([0.3, -0.2]), np.array([0.9, 1.1]), np.array([0.1, 0.5]), np.array([1.2, 0.8]),
            np.array([0.9995, -0.6]))
    plain = tm.quad2(get("tanh"), get("sigmoid"), *args)
    monkeypatch.setattr(tm, "WIDE_SCALE", 0.0)  # every pair conditioned
    np.testing.assert_allclose(tm.quad2(get("tanh"), get("sigmoid"), *args), plain, rtol=0, atol=1e-12)


def test_quad2_wide_pair_is_symmetric_and_matches_nested_integration():
    """The fig8a case that 2-D Gauss-Hermite got wrong by 1e-2: standard deviations 108 and 33,
    correlation 0.9979, means 127 and 41."""
    mu, su, mv, sv, r = 127.08, 108.43, 40.92, 32.64, 0.99786
    act = get("tanh")
    uv = tm.quad2(act, act, *(np.array([v]) for v in (mu, su, mv, sv, r)))[0]
    vu = tm.quad2(act, act, *(np.array([v]) for v in (mv, sv, mu, su, r)))[0]
    c = math.sqrt(1 - r * r)

    def outer(z1):
        return np.tanh(mu + su * z1) * _adaptive(np.tanh, mv + sv * r * z1, sv * c)

    z0 = -mu / su
    opts = {"epsabs": 1e-13, "epsrel": 1e-11, "limit": 200}
    exact = sum(integrate.quad(lambda z: outer(z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi), lo, hi,
                               points=[-mv / (sv * r)] if lo < -mv / (sv * r) < hi else None, **opts)[0]
                for lo, hi in ((-12.0, z0), (z0, 12.0)))
    assert uv == pytest.approx(exact, abs=1e-11)
    assert vu == pytest.approx(uv, abs=1e-12)
