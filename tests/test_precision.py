"""Single precision (``dtype = float32``) and the exactness of the engine's fast kernels.

The documented tolerance (docs/PERFORMANCE.md): at the paper's ridge penalty lambda = 1e-4 a
float32 run changes the training and test errors by less than 1e-4 relative (the float32 run
sees the same random numbers, rounded, so the change is rounding only); the change grows like
the condition of the ridge system, about 1 / lambda.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from gmstep import activations, hermite
from gmstep.engine.datasets import draw_data
from gmstep.engine.parallel import OrderedNoise
from gmstep.engine.steps import surrogate
from gmstep.engine.task import run_task
from gmstep.experiment import Experiment

FLOAT32_TOLERANCE = 1e-4


def _rows(dtype: str, **extra) -> list[dict]:
    exp = Experiment.create(
        "p", {"n": 80, "m": 70, "trials": 2, "seed": 4, "dtype": dtype, "redraw": "trial", **extra},
        {"k_over_m": [0.5, 1.0, 3.0]},
    )
    return [r for i, t in exp.tasks() for r in run_task(exp, i, t)]


def test_float32_within_the_documented_tolerance_of_float64() -> None:
    rows64, rows32 = _rows("float64"), _rows("float32")
    assert len(rows64) == len(rows32) == 3 * 2 * 3 * 2
    for a, b in zip(rows32, rows64, strict=True):
        assert (a["activation"], a["model"], a["trial"]) == (b["activation"], b["model"], b["trial"])
        assert a["status"] == "ok"
        for col in ("train_error", "test_error"):
            assert abs(a[col] - b[col]) <= FLOAT32_TOLERANCE * abs(b[col]), (a, b)
    # ... and it is a real float32 computation: not bit-identical to float64.
    assert any(a["test_error"] != b["test_error"] for a, b in zip(rows32, rows64, strict=True))


def test_float32_data_are_float32_and_the_same_draws() -> None:
    exp32 = Experiment.create("p", {"n": 30, "m": 20, "dtype": "float32"}, {})
    exp64 = Experiment.create("p", {"n": 30, "m": 20}, {})
    from gmstep import config

    d32 = draw_data(config.resolved(exp32.params), 0, (0, 0))
    d64 = draw_data(config.resolved(exp64.params), 0, (0, 0))
    for (x32, y32), (x64, y64) in zip((d32.grad, d32.train, d32.test), (d64.grad, d64.train, d64.test), strict=True):
        assert x32.dtype == y32.dtype == np.float32
        np.testing.assert_array_equal(x32, x64.astype(np.float32))
        np.testing.assert_array_equal(y32, y64.astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "sin", "erf", "gelu", "softplus", "linear"])
def test_in_place_kernels_equal_the_activation_bit_for_bit(name: str, dtype) -> None:
    act = activations.get(name)
    u = np.concatenate([np.linspace(-6, 6, 401), [0.0, -0.0, 1e-30, -1e-30]]).astype(dtype).reshape(5, 81)
    s, d, out = np.empty_like(u), np.empty_like(u), np.empty_like(u)
    act.fn_into(u, out)
    act.fn_deriv_into(u, s, d)
    np.testing.assert_array_equal(out, act.fn(u).astype(dtype))
    np.testing.assert_array_equal(s, act.fn(u).astype(dtype))
    np.testing.assert_array_equal(d, act.deriv(u).astype(dtype))


def test_a_reregistered_name_gets_the_generic_kernel() -> None:
    mine = activations.Activation("relu", lambda u: np.maximum(u, 0.0) * 2, lambda u: 2.0 * (u > 0))
    original = activations.get("relu")
    activations.register(mine)
    try:
        u = np.linspace(-1, 1, 7)
        out, s, d = np.empty_like(u), np.empty_like(u), np.empty_like(u)
        activations.get("relu").fn_into(u, out)
        activations.get("relu").fn_deriv_into(u, s, d)
        np.testing.assert_array_equal(out, 2 * np.maximum(u, 0.0))
        np.testing.assert_array_equal(s, 2 * np.maximum(u, 0.0))
        np.testing.assert_array_equal(d, 2.0 * (u > 0))
    finally:
        activations.register(original)


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4, 6])
@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
def test_monomial_horner_equals_the_hermite_series(name: str, degree: int) -> None:
    scale = 0.37
    sur = surrogate(activations.get(name), scale, degree, 100)
    reference = hermite.HermiteModel.build(name, scale, degree, 100)
    u = np.linspace(-3, 3, 601)  # |u / b| up to 8
    out = np.empty_like(u)
    sur.polynomial(u, out)
    expected = np.polynomial.hermite_e.hermeval(u / scale, reference.coefs)  # NumPy's Clenshaw
    np.testing.assert_allclose(out, expected, rtol=1e-11, atol=1e-12 * np.abs(expected).max())
    assert sur.tail == reference.tail


def test_ordered_noise_equals_one_sequential_draw_whatever_the_thread_order() -> None:
    rows, k, blocks = 7, 5, 6
    expected = np.random.default_rng(3).standard_normal((rows * blocks, k))
    noise = OrderedNoise(np.random.default_rng(3))
    out = np.empty((blocks, rows, k))
    threads = [threading.Thread(target=noise.fill, args=(i, out[i])) for i in reversed(range(blocks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    np.testing.assert_array_equal(out.reshape(-1, k), expected)
    # float32: the same normals, rounded.
    noise32 = OrderedNoise(np.random.default_rng(3))
    out32 = np.empty((rows, k), np.float32)
    noise32.fill(0, out32)
    np.testing.assert_array_equal(out32, expected[:rows].astype(np.float32))


def test_ordered_noise_abort_releases_waiting_blocks() -> None:
    noise = OrderedNoise(np.random.default_rng(0))
    errors = []

    def later() -> None:
        try:
            noise.fill(1, np.empty(3))
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=later)
    t.start()
    noise.abort()
    t.join(timeout=30)
    assert not t.is_alive() and len(errors) == 1
