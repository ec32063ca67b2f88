"""Hermite expansions (docs/MATH.md §3): closed forms, L2 reconstruction, the degree rule, the surrogate.

Closed forms used (``z ~ N(0, 1)``, ``h_i = E[sigma(b z) He_i(z)] / i!``; by Stein's lemma
``E[f(z) He_i(z)] = E[f^(i)(z)]``):

* ReLU: ``h_0 = b / sqrt(2 pi)``, ``h_1 = b / 2``, ``h_i = b He_{i-2}(0) / (sqrt(2 pi) i!)`` for
  ``i >= 2`` (so ``h_2 = b / (2 sqrt(2 pi))`` and odd ``h_i = 0`` for ``i >= 3``);
  ``E[ReLU(bz)^2] = b^2 / 2``.
* erf: ``h_1 = 2b / sqrt(pi (1 + 2b^2))``, ``h_3 = -2 b^3 / (3 sqrt(pi) (1 + 2b^2)^(3/2))``, even
  ``h_i = 0``; ``E[erf(bz)^2] = (2 / pi) arcsin(2b^2 / (1 + 2b^2))``.
* sin: ``h_i = (-1)^((i-1)/2) e^(-b^2/2) b^i / i!`` for odd ``i``, 0 for even ``i``;
  ``E[sin(bz)^2] = (1 - e^(-2b^2)) / 2``.
* GELU ``u Phi(u)``: ``h_0 = b^2 / sqrt(2 pi (1 + b^2))``, ``h_1 = b / 2``.
* tanh is odd: every even coefficient is 0; sigmoid - 1/2 is odd: ``h_0 = 1/2``, other even ones 0.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate

from gmstep import activations, hermite
from gmstep.errors import ConfigError

SCALES = [0.4, 0.9857, 1.0, 1.7]
SMOOTH = ["tanh", "sigmoid", "erf", "gelu", "softplus", "sin"]


def _phi(z: float) -> float:
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


@pytest.fixture(autouse=True)
def _quiet_quad():
    # QUADPACK warns when it cannot reach 1e-11 relative on nearly vanishing integrands; the
    # assertions below carry their own tolerances.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        yield


def _quad_expectation(fn, kink: bool = False) -> float:
    """``E[fn(z)]`` by adaptive quadrature (independent of the Gauss-Hermite rule)."""
    if kink:  # integrate the two sides of 0 separately
        left = integrate.quad(lambda z: fn(z) * _phi(z), -np.inf, 0.0, epsabs=1e-14, epsrel=1e-11, limit=200)
        right = integrate.quad(lambda z: fn(z) * _phi(z), 0.0, np.inf, epsabs=1e-14, epsrel=1e-11, limit=200)
        return left[0] + right[0]
    return integrate.quad(lambda z: fn(z) * _phi(z), -np.inf, np.inf, epsabs=1e-14, epsrel=1e-11, limit=200)[0]


def _he(i: int, z):
    return np.polynomial.hermite_e.hermeval(z, [0] * i + [1])


# ----------------------------------------------------------------------------- building blocks


def test_nodes_integrate_gaussian_moments():
    for num in (10, 100, 400):  # 400: beyond where NumPy's hermegauss overflows
        z, w = hermite._nodes(num)
        assert np.all(np.isfinite(z)) and np.all(np.isfinite(w))
        assert np.sum(w) == pytest.approx(1.0, abs=1e-13)
        for p, moment in ((2, 1.0), (4, 3.0), (6, 15.0), (8, 105.0)):
            assert np.dot(w, z**p) == pytest.approx(moment, rel=1e-12)
        assert np.dot(w, z**3) == pytest.approx(0.0, abs=1e-10)
    assert hermite.gaussian_expectation(np.cos) == pytest.approx(math.exp(-0.5), rel=1e-13)


def test_hermite_polynomials_recurrence_and_orthogonality():
    z = np.linspace(-3, 3, 11)
    he = hermite.hermite_e(z, 7)
    for i in range(8):
        np.testing.assert_allclose(he[i], _he(i, z), rtol=1e-12, atol=1e-10)
    zq, wq = hermite._nodes(100)
    hq = hermite.hermite_e(zq, 7)
    gram = (hq * wq) @ hq.T  # E[He_i He_j] = i! delta_ij
    np.testing.assert_allclose(gram, np.diag([math.factorial(i) for i in range(8)]), atol=1e-9)


# ----------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("b", SCALES)
def test_relu_coefficients_closed_form(b):
    h = hermite.coefficients("relu", b, 6)
    exact = [b / math.sqrt(2 * math.pi), b / 2]
    exact += [b * _he(i - 2, 0.0) / (math.sqrt(2 * math.pi) * math.factorial(i)) for i in range(2, 7)]
    assert exact[2] == pytest.approx(b / (2 * math.sqrt(2 * math.pi)))
    # h_1 and the odd coefficients are exact: ReLU(z) = (z + |z|) / 2 and the rule is symmetric.
    assert h[1] == pytest.approx(b / 2, rel=1e-14)
    assert abs(h[3]) < 1e-14 and abs(h[5]) < 1e-14
    # Even ones come from |z|, whose kink limits the 100-node rule: measured relative errors
    # 0.41 % (h_0), 0.42 % (h_2), 1.3 % (h_4), growing with i ...
    np.testing.assert_allclose(h[[0, 2]], np.array(exact)[[0, 2]], rtol=6e-3)
    assert h[4] == pytest.approx(exact[4], rel=2e-2)
    # ... and shrinking as O(1/N) with the number of nodes.
    h400 = hermite.coefficients("relu", b, 6, nodes=400)
    assert abs(h400[0] - exact[0]) < abs(h[0] - exact[0]) / 3
    np.testing.assert_allclose(h400[[0, 2, 4]], np.array(exact)[[0, 2, 4]], rtol=5e-3)
    assert hermite.second_moment("relu", b) == pytest.approx(b * b / 2, rel=1e-13)


@pytest.mark.parametrize("b", SCALES)
def test_erf_coefficients_closed_form(b):
    h = hermite.coefficients("erf", b, 5)
    assert h[1] == pytest.approx(2 * b / math.sqrt(math.pi * (1 + 2 * b * b)), rel=1e-12)
    assert h[3] == pytest.approx(-2 * b**3 / (3 * math.sqrt(math.pi) * (1 + 2 * b * b) ** 1.5), rel=1e-10)
    np.testing.assert_allclose(h[[0, 2, 4]], 0.0, atol=1e-14)
    moment = 2 / math.pi * math.asin(2 * b * b / (1 + 2 * b * b))
    # erf(bz)^2 is not a polynomial: 100 nodes leave ~ 4e-9 at b = 1.7.
    assert hermite.second_moment("erf", b) == pytest.approx(moment, rel=1e-7)


@pytest.mark.parametrize("b", SCALES)
def test_sin_coefficients_closed_form(b):
    h = hermite.coefficients("sin", b, 9)
    exact = [0.0 if i % 2 == 0 else (-1) ** ((i - 1) // 2) * math.exp(-b * b / 2) * b**i / math.factorial(i)
             for i in range(10)]
    np.testing.assert_allclose(h, exact, rtol=1e-10, atol=1e-14)
    assert hermite.second_moment("sin", b) == pytest.approx((1 - math.exp(-2 * b * b)) / 2, rel=1e-12)


@pytest.mark.parametrize("b", SCALES)
def test_gelu_and_linear_closed_forms(b):
    h = hermite.coefficients("gelu", b, 2)
    assert h[0] == pytest.approx(b * b / math.sqrt(2 * math.pi * (1 + b * b)), rel=1e-12)
    assert h[1] == pytest.approx(b / 2, rel=1e-12)
    lin = hermite.HermiteModel.build("linear", b, 3)
    np.testing.assert_allclose(lin.coefs, [0.0, b, 0.0, 0.0], atol=1e-14)
    assert lin.tail == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("b", SCALES)
def test_parity_tanh_and_sigmoid(b):
    t = hermite.coefficients("tanh", b, 10)
    np.testing.assert_allclose(t[0::2], 0.0, atol=1e-14)
    assert t[1] > 0
    s = hermite.coefficients("sigmoid", b, 10)
    assert s[0] == pytest.approx(0.5, abs=1e-14)
    np.testing.assert_allclose(s[2::2], 0.0, atol=1e-14)
    assert s[1] > 0


@pytest.mark.parametrize("name", SMOOTH)
def test_coefficients_match_adaptive_quadrature(name):
    act = activations.get(name)
    b = 0.9
    h = hermite.coefficients(name, b, 5)
    for i in range(6):
        ref = _quad_expectation(lambda z, i=i: float(act.fn(np.array(b * z)) * _he(i, z))) / math.factorial(i)
        assert h[i] == pytest.approx(ref, rel=1e-8, abs=1e-13)


# ----------------------------------------------------------------------------- L2 reconstruction


@pytest.mark.parametrize("name", SMOOTH)
def test_l2_reconstruction_error_is_the_tail(name):
    """``E[(sigma(bz) - sum_{i<=L} h_i He_i(z))^2] = h_{>L}^2`` (adaptive quadrature on the left)."""
    act = activations.get(name)
    b = 0.9
    for degree in (0, 1, 3, 6, 10):
        model = hermite.HermiteModel.build(name, b, degree)
        lhs = _quad_expectation(
            lambda z, model=model: float((act.fn(np.array(b * z)) - model.polynomial(np.array(b * z))) ** 2))
        assert lhs == pytest.approx(model.tail**2, rel=1e-5, abs=1e-14)


@pytest.mark.parametrize("name", SMOOTH)
def test_tail_decreases_to_zero_for_smooth_activations(name):
    b = 0.9
    moment = hermite.second_moment(name, b)
    tails = [hermite.HermiteModel.build(name, b, degree).tail for degree in range(0, 21)]
    assert all(t2 <= t1 + 1e-12 for t1, t2 in zip(tails, tails[1:], strict=False))
    assert tails[0] ** 2 == pytest.approx(moment - hermite.coefficients(name, b, 0)[0] ** 2, rel=1e-12)
    assert tails[-1] ** 2 < 1e-4 * moment


def test_relu_tail_converges_to_closed_form_with_nodes():
    """For ReLU the tail inherits the kink's quadrature error; it shrinks as nodes grow."""
    b = 1.0
    exact = b * b / 2 - sum(
        math.factorial(i) * c**2
        for i, c in enumerate([b / math.sqrt(2 * math.pi), b / 2, b / (2 * math.sqrt(2 * math.pi))]))
    err = {num: abs(hermite.HermiteModel.build("relu", b, 3, num).tail ** 2 - exact) / exact for num in (100, 400)}
    assert err[100] < 0.07  # measured 5.8 %
    assert err[400] < err[100] / 3
    # With the exact L2 error on the left (adaptive quadrature split at the kink) the identity holds
    # up to that same quadrature error.
    model = hermite.HermiteModel.build("relu", b, 3, 400)
    lhs = _quad_expectation(lambda z: float((max(b * z, 0.0) - model.polynomial(np.array(b * z))) ** 2), kink=True)
    assert lhs == pytest.approx(exact, rel=0.03)


# ----------------------------------------------------------------------------- degree rule


@pytest.mark.parametrize(("beta", "degree"), [
    (0.0, 1), (0.25, 1), (0.5, 1), (0.6, 2), (2 / 3, 2), (0.74, 3), (0.75, 3), (0.76, 4), (0.8, 4),
    (0.9, 4), (1.0, 4),
])
def test_degree_rule(beta, degree):
    assert hermite.degree_rule(beta) == degree


@pytest.mark.parametrize("beta", [-0.01, 1.01])
def test_degree_rule_rejects_out_of_range(beta):
    with pytest.raises(ConfigError) as info:
        hermite.degree_rule(beta)
    assert info.value.key == "beta"


def test_coefficients_reject_bad_degree_and_scale():
    with pytest.raises(ConfigError) as info:
        hermite.coefficients("tanh", 1.0, -1)
    assert info.value.key == "degree"
    for scale in (0.0, -1.0):
        with pytest.raises(ConfigError) as info:
            hermite.coefficients("tanh", scale, 2)
        assert info.value.key == "scale"


# ----------------------------------------------------------------------------- the surrogate


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "erf"])
def test_polynomial_part(name):
    b = 0.8
    model = hermite.HermiteModel.build(name, b, 4)
    u = np.linspace(-4, 4, 17)
    np.testing.assert_allclose(model.polynomial(u), np.polynomial.hermite_e.hermeval(u / b, model.coefs),
                               rtol=1e-12, atol=1e-14)
    # Projecting the polynomial back onto He_i returns the coefficients.
    assert np.allclose(hermite.coefficients(activations.Activation("p", model.polynomial, np.ones_like), b, 6)[:5],
                       model.coefs, atol=1e-12)
    assert model.polynomial(np.zeros(3, dtype=np.float32)).dtype == np.float32
    degree0 = hermite.HermiteModel.build(name, b, 0)
    np.testing.assert_allclose(degree0.polynomial(u), degree0.coefs[0])


@pytest.mark.parametrize(("name", "b"), [("relu", 1.0), ("tanh", 0.9), ("sigmoid", 1.3), ("erf", 0.7)])
def test_surrogate_noise_and_second_moment(name, b):
    """Monte Carlo with N = 400,000 draws; every tolerance is 5 standard errors.

    The noise ``sigma_l(u) - polynomial(u)`` is N(0, h_{>l}^2): its sample variance has relative
    standard error sqrt(2 / N) = 0.22 %. ``E[sigma_l(bz)^2] = sum i! h_i^2 + h_{>l}^2 = E[sigma(bz)^2]``:
    checked against the closed form (ReLU, erf) or the quadrature moment, with the standard error
    estimated from the sample.
    """
    rng = np.random.default_rng(12345)
    num = 400_000
    model = hermite.HermiteModel.build(name, b, 3)
    assert model.tail > 0
    u = b * rng.standard_normal(num)
    out = model(u, rng)
    noise = out - model.polynomial(u)
    assert abs(noise.mean()) < 5 * model.tail / math.sqrt(num)
    assert noise.var() == pytest.approx(model.tail**2, rel=5 * math.sqrt(2 / num))
    # Independent entries: neighbouring noises are uncorrelated, and a second call draws anew.
    corr = np.corrcoef(noise[:-1], noise[1:])[0, 1]
    assert abs(corr) < 5 / math.sqrt(num)
    again = model(u[:1000], rng) - model.polynomial(u[:1000])
    assert not np.allclose(again, noise[:1000])
    closed = {"relu": b * b / 2, "erf": 2 / math.pi * math.asin(2 * b * b / (1 + 2 * b * b))}
    moment = closed.get(name, hermite.second_moment(name, b))
    sq = out**2
    assert sq.mean() == pytest.approx(moment, abs=5 * sq.std() / math.sqrt(num))
    # Exact identity of the construction (no sampling).
    factorials = np.array([math.factorial(i) for i in range(4)])
    assert float(np.sum(factorials * model.coefs**2)) + model.tail**2 == pytest.approx(
        hermite.second_moment(name, b), rel=1e-12)
    # The mean is h_0 = E[sigma(bz)].
    assert out.mean() == pytest.approx(model.coefs[0], abs=5 * out.std() / math.sqrt(num))


def test_surrogate_keeps_dtype_and_skips_noise_without_tail():
    rng = np.random.default_rng(0)
    model = hermite.HermiteModel.build("tanh", 1.0, 3)
    u32 = rng.standard_normal(50).astype(np.float32)
    assert model(u32, rng).dtype == np.float32
    lin = hermite.HermiteModel("linear", 1.0, 1, np.array([0.0, 1.0]), 0.0)
    u = rng.standard_normal(20)
    np.testing.assert_array_equal(lin(u, rng), lin.polynomial(u))


def test_build_accepts_activation_objects():
    act = activations.Activation("cubic", lambda u: u**3, lambda u: 3 * u**2)
    model = hermite.HermiteModel.build(act, 1.0, 3)
    # z^3 = He_3(z) + 3 He_1(z): h = (0, 3, 0, 1), nothing left over.
    np.testing.assert_allclose(model.coefs, [0.0, 3.0, 0.0, 1.0], atol=1e-12)
    assert model.tail == pytest.approx(0.0, abs=1e-6)
    assert model.activation == "cubic"


@pytest.mark.parametrize("b", [0.3, 1.0, 2.5])
def test_split_quadrature_gives_relu_closed_forms_exactly(b):
    """h_0 = b / sqrt(2 pi), h_1 = b / 2, h_i = b He_{i-2}(0) / (sqrt(2 pi) i!) for i >= 2, and
    E[relu(bz)^2] = b^2 / 2: the split rule integrates each smooth half exactly (to rounding),
    where the paper's 100-node Gauss-Hermite rule is off by about 1 % at h_4 (the kink)."""
    degree = 10
    he0 = hermite.hermite_e(np.zeros(1), degree)[:, 0]  # He_i(0)
    exact = [b / np.sqrt(2 * np.pi), b / 2] + [
        b * he0[i - 2] / (np.sqrt(2 * np.pi) * math.factorial(i)) for i in range(2, degree + 1)
    ]
    split = hermite.coefficients("relu", b, degree, 100, "split")
    np.testing.assert_allclose(split, exact, rtol=1e-12, atol=1e-15)
    assert hermite.second_moment("relu", b, 100, "split") == pytest.approx(b * b / 2, rel=1e-13)
    paper = hermite.coefficients("relu", b, degree, 100)
    assert abs(paper[4] / exact[4] - 1) > 1e-3  # the Gauss-Hermite rule's kink error is real


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "erf", "gelu"])
def test_split_and_gauss_hermite_agree_for_smooth_activations(act):
    split = hermite.coefficients(act, 0.8, 6, 100, "split")
    paper = hermite.coefficients(act, 0.8, 6, 100)
    np.testing.assert_allclose(split, paper, rtol=1e-9, atol=1e-12)


def test_unknown_quadrature_names_the_key():
    with pytest.raises(ConfigError, match="hermite_quadrature"):
        hermite.coefficients("relu", 1.0, 3, 100, "simpson")
