"""The two-layer network ``f(x) = a^T sigma(F x) / sqrt(k)`` and its one gradient step
(docs/MATH.md, section 2).

This module is the reference implementation of the network: plain whole-array NumPy, written
for clarity. The engine (:mod:`gmstep.engine.steps`) computes the same step block by block and
in place, and is tested against this module (``tests/test_experiments.py``); only
:func:`init_params` is shared, so both draw the same ``F`` and ``a``.

Arrays are sample-major: ``X`` is ``m x n``, pre-activations ``U = X F^T`` are ``m x k``.
"""

from __future__ import annotations

import numpy as np

from .activations import Activation, get


def init_params(
    n: int, k: int, tr: float, rng: np.random.Generator, dtype: type = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """``F_ij ~ N(0, 1 / tr)`` (``k x n``) and ``a_i ~ N(0, 1 / k)``, independent."""
    f = rng.standard_normal((k, n))
    f /= np.sqrt(tr)  # in place: the same numbers, one array fewer
    a = rng.standard_normal(k) / np.sqrt(k)
    return f.astype(dtype, copy=False), a.astype(dtype, copy=False)


def forward(
    f: np.ndarray, a: np.ndarray, x: np.ndarray, activation: str | Activation,
    pre: np.ndarray | None = None,
) -> np.ndarray:
    """``f(x_i) = a^T sigma(F x_i) / sqrt(k)`` for every row of ``x`` (``pre = X F^T`` if known)."""
    act = get(activation)
    u = x @ f.T if pre is None else pre
    return act.fn(u) @ a / np.sqrt(len(a))


def loss(f: np.ndarray, a: np.ndarray, x: np.ndarray, y: np.ndarray, activation) -> float:
    """``L(F) = (1 / (2 m)) sum_i (y_i - f(x_i))^2``."""
    r = y - forward(f, a, x, activation)
    return float(r @ r / (2 * len(y)))


def gradient(
    f: np.ndarray, a: np.ndarray, x: np.ndarray, y: np.ndarray, activation: str | Activation,
    pre: np.ndarray | None = None,
) -> np.ndarray:
    """``grad_F L = -(1 / (m sqrt(k))) [(a r^T) * sigma'(F X^T)] X`` with ``r = y - f(X)``."""
    act = get(activation)
    u = x @ f.T if pre is None else pre
    k = len(a)
    r = y - act.fn(u) @ a / np.sqrt(k)
    g = act.deriv(u)
    if np.may_share_memory(g, u):
        # A derivative that returns its input (e.g. of u^2 / 2) must not let the in-place
        # products below overwrite the caller's pre-activations.
        g = g.copy()
    g *= a
    g *= r[:, None]
    return -(g.T @ x) / (len(y) * np.sqrt(k))


def gradient_step(
    f: np.ndarray, a: np.ndarray, x: np.ndarray, y: np.ndarray, activation: str | Activation,
    eta: float, pre: np.ndarray | None = None,
) -> np.ndarray:
    """``F^ = F - eta grad_F L`` (one full-batch step on ``F``, ``a`` fixed)."""
    return f - eta * gradient(f, a, x, y, activation, pre)
