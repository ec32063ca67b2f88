"""Shared fixtures of the test suite.

Tests keep every problem small (n, m of a few dozen up to a few hundred); the few moderate-size
checks of the paper's claims live in ``test_agreement.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gmstep.experiment import Experiment
from helpers import make_experiment

#: Parameters of a tiny but complete experiment (every activation family of the paper, both models).
TINY: dict[str, Any] = {
    "n": 24,
    "m": 20,
    "k_over_m": 1.0,
    "trials": 2,
    "activations": ["relu", "tanh", "sigmoid"],
    "models": ["nn", "hermite"],
    "seed": 7,
}


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh generator with a fixed seed (every test sees the same numbers)."""
    return np.random.default_rng(20250101)


@pytest.fixture
def tiny_experiment():
    """Factory: a small validated experiment, ``tiny_experiment(params=..., sweep=...)``."""

    def make(params: dict[str, Any] | None = None, sweep: dict[str, list[Any]] | None = None,
             name: str = "tiny") -> Experiment:
        return make_experiment(TINY, sweep or {}, name, **(params or {}))

    return make
