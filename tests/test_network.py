"""The two-layer network and its one gradient step (docs/MATH.md §2).

The analytic gradient ``grad_F L = -(1 / (m sqrt(k))) [(a r^T) * sigma'(F X^T)] X`` is checked
against central differences of :func:`gmstep.network.loss` and against torch autograd.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gmstep import activations, network
from gmstep.activations import Activation

FD_ACTIVATIONS = ["relu", "tanh", "sigmoid", "erf", "gelu", "sin", "softplus"]


def _problem(rng, n, k, m, tr=None):
    tr = tr if tr is not None else 1.5 * n
    f, a = network.init_params(n, k, tr, rng)
    x = rng.standard_normal((m, n))
    y = np.maximum(x @ rng.standard_normal(n) / math.sqrt(n), 0.0) + 0.1 * rng.standard_normal(m)
    return f, a, x, y


def _away_from_kinks(rng, n, k, m, margin=1e-3):
    """A problem whose pre-activations all stay ``margin`` away from 0 (ReLU's kink)."""
    for _ in range(100):
        f, a, x, y = _problem(rng, n, k, m)
        if np.min(np.abs(x @ f.T)) > margin:
            return f, a, x, y
    raise AssertionError("no kink-free draw")  # pragma: no cover


def _central_difference(f, a, x, y, act, i, j, h=1e-6):
    fp, fm = f.copy(), f.copy()
    fp[i, j] += h
    fm[i, j] -= h
    return (network.loss(fp, a, x, y, act) - network.loss(fm, a, x, y, act)) / (2 * h)


def test_init_params_distribution(rng):
    n, k, tr = 300, 200, 420.0
    f, a = network.init_params(n, k, tr, rng)
    assert f.shape == (k, n) and a.shape == (k,)
    # Var(F_ij) = 1 / tr: the sample variance of n k = 60,000 entries has relative s.e. sqrt(2 / 60,000).
    assert f.var() * tr == pytest.approx(1.0, rel=5 * math.sqrt(2 / f.size))
    assert abs(f.mean()) < 5 / math.sqrt(tr * f.size)
    _, a_big = network.init_params(2, 40_000, tr, rng)
    assert a_big.var() * 40_000 == pytest.approx(1.0, rel=5 * math.sqrt(2 / 40_000))
    f32, a32 = network.init_params(5, 4, 7.0, rng, dtype=np.float32)
    assert f32.dtype == np.float32 and a32.dtype == np.float32


def test_forward_and_loss_formulas(rng):
    f, a, x, y = _problem(rng, 6, 5, 7)
    k = len(a)
    for name in ("relu", "tanh"):
        act = activations.get(name)
        expected = np.array([sum(a[j] * act.fn(f[j] @ xi) for j in range(k)) / math.sqrt(k) for xi in x])
        np.testing.assert_allclose(network.forward(f, a, x, name), expected, rtol=1e-12)
        np.testing.assert_allclose(network.forward(f, a, x, name, pre=x @ f.T), expected, rtol=1e-12)
        assert network.loss(f, a, x, y, name) == pytest.approx(np.sum((y - expected) ** 2) / (2 * len(y)), rel=1e-12)


@pytest.mark.parametrize("name", FD_ACTIVATIONS)
def test_gradient_entries_match_central_differences(name, rng):
    # Loss ~ 0.1, step h = 1e-6: truncation h^2 |L'''| ~ 1e-12, rounding eps L / h ~ 1e-11.
    f, a, x, y = _away_from_kinks(rng, n=30, k=20, m=40)
    grad = network.gradient(f, a, x, y, name)
    assert grad.shape == f.shape
    for i, j in [(0, 0), (3, 7), (11, 29), (19, 15), (7, 2)]:
        assert grad[i, j] == pytest.approx(_central_difference(f, a, x, y, name, i, j), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("name", FD_ACTIVATIONS)
def test_full_gradient_matches_central_differences_on_a_tiny_problem(name, rng):
    f, a, x, y = _away_from_kinks(rng, n=4, k=3, m=5)
    grad = network.gradient(f, a, x, y, name)
    numeric = np.array([[_central_difference(f, a, x, y, name, i, j) for j in range(4)] for i in range(3)])
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "erf"])
def test_gradient_step_is_the_spec_formula(name, rng):
    f, a, x, y = _problem(rng, 9, 6, 11)
    eta = 3.7
    act = activations.get(name)
    m, k = len(y), len(a)
    r = y - network.forward(f, a, x, name)
    expected = f + (eta / (m * math.sqrt(k))) * ((np.outer(a, r) * act.deriv(f @ x.T)) @ x)
    np.testing.assert_allclose(network.gradient_step(f, a, x, y, name, eta), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(network.gradient_step(f, a, x, y, name, eta, pre=x @ f.T), expected,
                               rtol=1e-12, atol=1e-15)
    # A small step is a descent step.
    g = network.gradient(f, a, x, y, name)
    assert network.loss(f - 1e-3 * g / np.linalg.norm(g), a, x, y, name) < network.loss(f, a, x, y, name)


def test_gradient_leaves_shared_pre_activations_alone(rng):
    """A derivative that returns its input (sigma = u^2 / 2) must not overwrite ``pre``."""
    quad = Activation("half_square", lambda u: 0.5 * u * u, lambda u: u)
    f, a, x, y = _problem(rng, 5, 4, 6)
    pre = x @ f.T
    before = pre.copy()
    with_pre = network.gradient(f, a, x, y, quad, pre=pre)
    np.testing.assert_array_equal(pre, before)
    np.testing.assert_allclose(with_pre, network.gradient(f, a, x, y, quad), rtol=1e-13)
    numeric = np.array([[_central_difference(f, a, x, y, quad, i, j) for j in range(5)] for i in range(4)])
    np.testing.assert_allclose(with_pre, numeric, rtol=1e-5, atol=1e-9)


def test_gradient_matches_torch_autograd(rng):
    torch = pytest.importorskip("torch")
    torch_fns = {
        "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "erf": torch.erf,
        "gelu": torch.nn.functional.gelu, "sin": torch.sin, "softplus": torch.nn.functional.softplus,
    }
    n, k, m = 12, 8, 15
    f, a, x, y = _problem(rng, n, k, m)
    for name, fn in torch_fns.items():
        ft = torch.tensor(f, dtype=torch.float64, requires_grad=True)
        at, xt, yt = (torch.tensor(v, dtype=torch.float64) for v in (a, x, y))
        pred = fn(xt @ ft.T) @ at / math.sqrt(k)
        loss = ((yt - pred) ** 2).sum() / (2 * m)
        loss.backward()
        assert loss.item() == pytest.approx(network.loss(f, a, x, y, name), rel=1e-12)
        np.testing.assert_allclose(network.gradient(f, a, x, y, name), ft.grad.numpy(), rtol=1e-9, atol=1e-14,
                                   err_msg=name)
