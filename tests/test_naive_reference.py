"""The straightforward reference (tests/reference/naive.py) and the engine agree.

The reference recomputes everything densely, per activation and model, with the k x k ridge
system and the paper's orientation; on the same random draws its numbers equal the engine's to
rounding. Small cases cover both ridge orientations of the engine (k < m, k > m), random and
equal spike strengths, alignment, non-zero means, label noise, the spike-aligned teacher, the
degree rule, classification and every redraw policy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gmstep import config
from gmstep.engine.task import run_task
from gmstep.experiment import Experiment, point_at
from helpers import load_module

ROOT = Path(__file__).resolve().parents[1]


naive = load_module(ROOT / "tests" / "reference" / "naive.py", "naive_reference")

CASES = {
    "widths, random spikes, alignment": (
        {"n": 40, "m": 30, "trials": 2, "seed": 11, "redraw": "trial", "rank": 2, "spikes": "random",
         "alignment": 0.3},
        {"k_over_m": [0.5, 2.0]},
    ),
    "means, label noise, spike teacher, degree rule": (
        {"n": 40, "m": 30, "trials": 1, "seed": 12, "redraw": "point", "mean_norm": 0.7, "delta": 0.2,
         "target": "spike", "degree": "auto", "beta": 0.5},
        {"alpha": [0.0, 0.8]},
    ),
    "classification, other activations": (
        {"n": 30, "m": 31, "trials": 1, "seed": 13, "task": "classification", "rho": 0.3,
         "activations": ["relu", "erf", "sin"], "m_test": 600},
        {"k_over_m": [1.3]},
    ),
    "redraw once, three components, learning rate": (
        {"n": 25, "m": 20, "trials": 2, "seed": 14, "redraw": "once", "ratios": [0.2, 0.5, 0.3],
         "rank": [1, 2, 3], "eta": 3.0, "lambda": 1e-2},
        {"k_over_m": [0.7, 1.6]},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_engine_and_naive_reference_agree_to_rounding(name: str) -> None:
    params, sweep = CASES[name]
    exp = Experiment.create("x", params, sweep)
    for point_index, trial in exp.tasks():
        fast = run_task(exp, point_index, trial)
        slow = naive.naive_task(exp, point_index, trial)
        assert [(r["activation"], r["model"]) for r in fast] == [(r["activation"], r["model"]) for r in slow]
        for a, b in zip(fast, slow, strict=True):
            assert a["status"] == "ok"
            np.testing.assert_allclose(a["train_error"], b["train_error"], rtol=1e-9, atol=0)
            np.testing.assert_allclose(a["test_error"], b["test_error"], rtol=1e-9, atol=0)
            for col in ("train_misclassification", "test_misclassification"):
                assert (a[col] is None) == (b[col] is None) == (exp.params["task"] == "regression")
                if b[col] is not None:  # the same predictions: the same signs (one point of slack for a tie)
                    size = exp.params["m"] if col.startswith("train") else config.resolved(exp.params)["m_test"]
                    assert abs(a[col] - b[col]) <= 1 / size + 1e-12, (col, a[col], b[col])


def test_naive_run_covers_every_task_in_canonical_order() -> None:
    params, sweep = CASES["redraw once, three components, learning rate"]
    exp = Experiment.create("x", {**params, "activations": ["tanh"], "models": ["nn"]}, sweep)
    rows = naive.naive_run(exp)
    assert [(r["k_over_m"], r["trial"]) for r in rows] == [(p["k_over_m"], t) for p in exp.points() for t in range(2)]


def test_reference_derives_the_same_parameters_as_the_engine() -> None:
    exp = Experiment.create(
        "x", {"n": 50, "m": 40, "degree": "auto"},
        {"beta": [0.0, 0.5, 0.75, 0.9, 1.0], "alpha": [0.0, 0.3]},
    )
    for i in range(len(exp.points())):
        point = point_at(exp, i)
        ours = naive.derived({**exp.params, **point})
        theirs = config.resolved(exp.point_params(point))
        for key in ("k", "m_grad", "m_test", "eta", "theta", "degree", "ratios", "rank"):
            assert ours[key] == theirs[key], key


def test_dense_square_roots_square_to_the_covariances() -> None:
    p = naive.derived({**config.defaults(), "n": 20, "rank": 3, "spikes": "random", "theta": 5.0})
    s = naive.structure(p, np.random.default_rng(0))
    for root in s["roots"]:
        cov = root @ root
        np.testing.assert_allclose(cov, cov.T, atol=1e-12)
        w = np.linalg.eigvalsh(cov)
        assert w.min() == pytest.approx(1.0, abs=1e-10)  # identity off the spikes
        assert np.sum(w > 1 + 1e-9) == 3  # three spikes
        # Random strengths are rescaled so that every component has trace n + sum(theta_1).
        assert np.trace(cov) == pytest.approx(s["tr"], rel=1e-12)
    assert 20 < s["tr"] < 20 + 3 * 5.0


def test_misclassification_is_a_fraction_that_varies_and_matches_exactly() -> None:
    """Classification: the 0-1 errors are the reference's fractions (not a constant), exactly."""
    params, sweep = CASES["classification, other activations"]
    exp = Experiment.create("x", params, sweep)
    fast = run_task(exp, 0, 0)
    slow = naive.naive_task(exp, 0, 0)
    values = {r["test_misclassification"] for r in fast}
    assert len(values) > 1 and all(0 < v < 0.5 for v in values)
    assert [r["test_misclassification"] for r in fast] == [r["test_misclassification"] for r in slow]
    assert [r["train_misclassification"] for r in fast] == [r["train_misclassification"] for r in slow]
