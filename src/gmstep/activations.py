"""Activation functions, their derivatives and their in-place kernels.

An :class:`Activation` pairs ``sigma`` with ``sigma'``; both act entrywise on arrays. It also
carries the in-place kernels the engine calls on its cache-sized tiles: ``fn_into(u, out)`` sets
``out = sigma(u)`` and ``fn_deriv_into(u, s, d)`` sets ``s = sigma(u)``, ``d = sigma'(u)``, with
exactly the values of ``fn`` and ``deriv``. An activation made without them gets generic ones
(``fn``/``deriv`` copied into the output), so every activation, a user's too, runs in the
engine. The registry holds the paper's activations (ReLU, tanh, sigmoid; with fused kernels) and
common others (erf, GELU, sin, softplus, the identity ``linear``). Users add their own with
:func:`register` or pass an :class:`Activation` directly to the Python API. docs/MATH.md lists
them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from .errors import ConfigError

ArrayFn = Callable[[np.ndarray], np.ndarray]
#: ``fn_into(u, out)``: ``out = sigma(u)`` in place.
IntoFn = Callable[[np.ndarray, np.ndarray], None]
#: ``fn_deriv_into(u, s, d)``: ``s = sigma(u)`` and ``d = sigma'(u)`` in place.
DerivIntoFn = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class Activation:
    """An entrywise activation ``fn`` with its derivative ``deriv`` and in-place kernels.

    ``fn_into`` and ``fn_deriv_into`` default to the generic kernels (:func:`generic_into`,
    :func:`generic_deriv_into`); a fused kernel must give the same values as ``fn``/``deriv``.
    """

    name: str
    fn: ArrayFn
    deriv: ArrayFn
    fn_into: IntoFn | None = field(default=None, repr=False, compare=False)
    fn_deriv_into: DerivIntoFn | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.fn_into is None:
            object.__setattr__(self, "fn_into", generic_into(self.fn))
        if self.fn_deriv_into is None:
            object.__setattr__(self, "fn_deriv_into", generic_deriv_into(self.fn, self.deriv))

    def __call__(self, u: np.ndarray) -> np.ndarray:
        return self.fn(u)


@dataclass(frozen=True)
class generic_into:  # noqa: N801 (used as a function)
    """The kernel ``out = fn(u)`` (computed out of place, then copied in); picklable whenever
    ``fn`` is, so an activation with it can be sent to worker processes."""

    fn: ArrayFn

    def __call__(self, u: np.ndarray, out: np.ndarray) -> None:
        np.copyto(out, self.fn(u), casting="same_kind")


@dataclass(frozen=True)
class generic_deriv_into:  # noqa: N801 (used as a function)
    """The kernel ``s = fn(u)``, ``d = deriv(u)`` (computed out of place, then copied in)."""

    fn: ArrayFn
    deriv: ArrayFn

    def __call__(self, u: np.ndarray, s: np.ndarray, d: np.ndarray) -> None:
        np.copyto(s, self.fn(u), casting="same_kind")
        np.copyto(d, self.deriv(u), casting="same_kind")


def _relu(u: np.ndarray) -> np.ndarray:
    return np.maximum(u, 0.0)


def _relu_deriv(u: np.ndarray) -> np.ndarray:
    # sigma'(0) = 0 by convention (docs/MATH.md).
    return (u > 0).astype(u.dtype)


def _relu_into(u: np.ndarray, out: np.ndarray) -> None:
    np.maximum(u, 0.0, out=out)


def _relu_deriv_into(u: np.ndarray, s: np.ndarray, d: np.ndarray) -> None:
    np.maximum(u, 0.0, out=s)
    np.greater(u, 0.0, out=d)  # sigma'(0) = 0


def _tanh_into(u: np.ndarray, out: np.ndarray) -> None:
    np.tanh(u, out=out)


def _tanh_deriv_into(u: np.ndarray, s: np.ndarray, d: np.ndarray) -> None:
    np.tanh(u, out=s)
    np.multiply(s, s, out=d)
    np.subtract(1.0, d, out=d)


def _tanh_deriv(u: np.ndarray) -> np.ndarray:
    t = np.tanh(u)
    return 1.0 - t * t


def _sigmoid(u: np.ndarray) -> np.ndarray:
    return special.expit(u)


def _sigmoid_deriv(u: np.ndarray) -> np.ndarray:
    s = special.expit(u)
    return s * (1.0 - s)


def _sigmoid_into(u: np.ndarray, out: np.ndarray) -> None:
    special.expit(u, out=out)


def _sigmoid_deriv_into(u: np.ndarray, s: np.ndarray, d: np.ndarray) -> None:
    special.expit(u, out=s)
    np.subtract(1.0, s, out=d)
    d *= s


def _sin_into(u: np.ndarray, out: np.ndarray) -> None:
    np.sin(u, out=out)


def _sin_deriv_into(u: np.ndarray, s: np.ndarray, d: np.ndarray) -> None:
    np.sin(u, out=s)
    np.cos(u, out=d)


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
    Activation("relu", _relu, _relu_deriv, _relu_into, _relu_deriv_into),
    Activation("tanh", np.tanh, _tanh_deriv, _tanh_into, _tanh_deriv_into),
    Activation("sigmoid", _sigmoid, _sigmoid_deriv, _sigmoid_into, _sigmoid_deriv_into),
    Activation("erf", special.erf, _erf_deriv),
    Activation("gelu", _gelu, _gelu_deriv),
    Activation("sin", np.sin, np.cos, _sin_into, _sin_deriv_into),
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
