"""Activation functions and their derivatives.

An :class:`Activation` pairs ``sigma`` with ``sigma'``; both act entrywise on arrays. The
registry holds the paper's activations (ReLU, tanh, sigmoid) and common others (erf, GELU, sin,
softplus, quadratic-free identity ``linear``). Users add their own with :func:`register` or pass
an :class:`Activation` directly to the Python API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from .errors import ConfigError

ArrayFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Activation:
    """An entrywise activation ``fn`` with its derivative ``deriv``."""

    name: str
    fn: ArrayFn
    deriv: ArrayFn

    def __call__(self, u: np.ndarray) -> np.ndarray:
        return self.fn(u)


def _relu(u: np.ndarray) -> np.ndarray:
    return np.maximum(u, 0.0)


def _relu_deriv(u: np.ndarray) -> np.ndarray:
    # sigma'(0) = 0 by convention (SPEC 2).
    return (u > 0).astype(u.dtype)


def _tanh_deriv(u: np.ndarray) -> np.ndarray:
    t = np.tanh(u)
    return 1.0 - t * t


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return special.expit(u)


def _sigmoid_deriv(u: np.ndarray) -> np.ndarray:
    s = special.expit(u)
    return s * (1.0 - s)


# Python floats (not NumPy scalars) so that float32 inputs stay float32 (NEP 50).
_TWO_OVER_SQRT_PI = float(2.0 / np.sqrt(np.pi))
_INV_SQRT_2PI = float(1.0 / np.sqrt(2.0 * np.pi))


def _erf_deriv(u: np.ndarray) -> np.ndarray:
    return _TWO_OVER_SQRT_PI * np.exp(-u * u)


def _gelu(u: np.ndarray) -> np.ndarray:
    # GELU(u) = u * Phi(u), Phi the standard normal cdf.
    return u * special.ndtr(u)


def _gelu_deriv(u: np.ndarray) -> np.ndarray:
    return special.ndtr(u) + u * _INV_SQRT_2PI * np.exp(-0.5 * u * u)


def _softplus(u: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, u)


def _identity(u: np.ndarray) -> np.ndarray:
    return u.copy()


def _ones(u: np.ndarray) -> np.ndarray:
    return np.ones_like(u)


_REGISTRY: dict[str, Activation] = {}


def register(act: Activation) -> Activation:
    """Add ``act`` to the registry under ``act.name`` (replacing any earlier one)."""
    if not act.name or not act.name.replace("_", "").isalnum():
        raise ConfigError("activation", f"name must be alphanumeric, got {act.name!r}")
    _REGISTRY[act.name] = act
    return act


for _act in (
    Activation("relu", _relu, _relu_deriv),
    Activation("tanh", np.tanh, _tanh_deriv),
    Activation("sigmoid", _sigmoid, _sigmoid_deriv),
    Activation("erf", special.erf, _erf_deriv),
    Activation("gelu", _gelu, _gelu_deriv),
    Activation("sin", np.sin, np.cos),
    Activation("softplus", _softplus, _sigmoid),
    Activation("linear", _identity, _ones),
):
    register(_act)


def names() -> list[str]:
    """Names of the registered activations."""
    return sorted(_REGISTRY)


def get(act: str | Activation) -> Activation:
    """Look an activation up by name (an :class:`Activation` is returned as it is)."""
    if isinstance(act, Activation):
        return act
    if isinstance(act, str) and act in _REGISTRY:
        return _REGISTRY[act]
    raise ConfigError("activations", f"unknown activation {act!r}; allowed: {', '.join(names())}")
