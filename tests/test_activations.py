"""Activations: values, derivatives (against central differences), dtypes and the registry."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from gmstep import activations
from gmstep.activations import Activation
from gmstep.errors import ConfigError

ALL = activations.names()
# A grid that avoids the ReLU kink at 0 by more than the finite-difference step.
GRID = np.concatenate([np.linspace(-6.0, -1e-3, 101), np.linspace(1e-3, 6.0, 101)])


def test_paper_activations_are_registered():
    for name in ("relu", "tanh", "sigmoid", "erf", "gelu", "sin", "softplus", "linear"):
        assert name in ALL
        assert activations.get(name).name == name


@pytest.mark.parametrize("name", ALL)
def test_derivative_matches_central_differences(name):
    # Central differences have error h^2 |sigma'''| / 6 ~ 1e-12 plus rounding ~ 1e-16 / h = 1e-10.
    act = activations.get(name)
    h = 1e-6
    numeric = (act.fn(GRID + h) - act.fn(GRID - h)) / (2 * h)
    np.testing.assert_allclose(act.deriv(GRID), numeric, rtol=0, atol=1e-8)


def test_closed_form_values():
    u = np.linspace(-3, 3, 13)
    np.testing.assert_array_equal(activations.get("relu")(u), np.where(u > 0, u, 0.0))
    np.testing.assert_allclose(activations.get("sigmoid")(u), 1 / (1 + np.exp(-u)), rtol=1e-14)
    np.testing.assert_allclose(activations.get("tanh")(u), np.tanh(u), rtol=1e-14)
    np.testing.assert_allclose(activations.get("erf")(u), special.erf(u), rtol=1e-14)
    np.testing.assert_allclose(activations.get("gelu")(u), u * 0.5 * (1 + special.erf(u / np.sqrt(2))),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(activations.get("softplus")(u), np.log1p(np.exp(u)), rtol=1e-13)
    np.testing.assert_array_equal(activations.get("linear")(u), u)
    assert activations.get("sigmoid")(np.array([0.0]))[0] == 0.5


def test_relu_derivative_is_zero_at_zero():
    d = activations.get("relu").deriv(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(d, [0.0, 0.0, 1.0])


@pytest.mark.parametrize("name", ALL)
def test_float32_stays_float32_and_input_is_untouched(name):
    act = activations.get(name)
    u = np.linspace(-2, 2, 9, dtype=np.float32)
    before = u.copy()
    assert act.fn(u).dtype == np.float32
    assert act.deriv(u).dtype == np.float32
    np.testing.assert_array_equal(u, before)


def test_get_returns_activation_objects_unchanged():
    custom = Activation("cube", lambda u: u**3, lambda u: 3 * u**2)
    assert activations.get(custom) is custom


def test_unknown_activation_names_the_key():
    with pytest.raises(ConfigError) as info:
        activations.get("swishy")
    assert info.value.key == "activations"
    assert "swishy" in str(info.value)


def test_register_adds_and_validates(monkeypatch):
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))
    act = activations.register(Activation("cube_2", lambda u: u**3, lambda u: 3 * u**2))
    assert activations.get("cube_2") is act
    assert "cube_2" in activations.names()
    for bad in ("", "has space", "semi;colon"):
        with pytest.raises(ConfigError):
            activations.register(Activation(bad, np.tanh, np.tanh))
