"""The ``theory`` model (gmstep.theory and its integration in the task computation).

* Theory within Monte Carlo error of the network's readout on the same ``F^`` (regression and
  classification, ReLU and tanh, zero and non-zero means), the Monte Carlo averaging the exact
  ridge readout over many fresh training sets and one large test set.
* In a task the theory shares ``F^`` with the network (the same number whether the network is
  run beside it or not) and a theory-only task draws no training or test set.
* Fashion-MNIST's ``gaussian`` source: theory within Monte Carlo error as well.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gmstep import admission, config, data, network, readout, theory
from gmstep.activations import get
from gmstep.engine import datasets, streams
from gmstep.engine.datasets import DataCache
from gmstep.engine.task import run_task
from gmstep.errors import ConfigError


def _monte_carlo(problem, f_hat, act: str, m: int, lam: float, trials: int, rng):
    k = len(f_hat)
    sigma = get(act).fn
    xt, yt = problem.sample(20 * m, rng)
    st = sigma(xt @ f_hat.T) / math.sqrt(k)
    train, test = [], []
    for _ in range(trials):
        x, y = problem.sample(m, rng)
        fit = readout.ridge(sigma(x @ f_hat.T) / math.sqrt(k), y, lam)
        train.append(fit.train_error)
        test.append(readout.prediction_error(st @ fit.weights, yt))
    return np.array(train), np.array(test)


@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize(("task", "mean_norm"), [("regression", 0.0), ("regression", 1.0), ("classification", 0.0)])
def test_theory_within_monte_carlo_error_of_the_network(act, task, mean_norm):
    n, m, k, lam, trials = 160, 160, 80, 1e-3, 40
    rng = np.random.default_rng(3)
    mix = data.draw_mixture(n, [0.5, 0.5], [1, 1], 12.0, 0.0, rng, mean_norm=mean_norm)
    xi = data.teacher(mix, rng) if task == "regression" else None
    problem = data.MixtureProblem(mix, task, xi)
    f0, a0 = network.init_params(n, k, problem.tr, rng)
    xg, yg = problem.sample(m, rng)
    f_hat = network.gradient_step(f0, a0, xg, yg, act, 12.0)
    res = theory.predict(problem, f_hat, act, m, lam)
    assert res.status == "ok"
    train, test = _monte_carlo(problem, f_hat, act, m, lam, trials, rng)
    for pred, mc in ((res.train_error, train), (res.test_error, test)):
        se = mc.std(ddof=1) / math.sqrt(trials)
        # Monte Carlo error plus the finite-size correction of a deterministic equivalent at n = 160.
        assert abs(pred - mc.mean()) <= 4 * se + 0.03 * mc.mean(), (pred, mc.mean(), se)


def _exp(tiny_experiment, models):
    return tiny_experiment(params={"models": models, "n": 30, "m": 24, "activations": ["relu", "tanh"]})


def test_theory_rows_share_f_hat_with_the_network(tiny_experiment):
    both = run_task(_exp(tiny_experiment, ["nn", "theory"]), 0, 1, DataCache())
    alone = run_task(_exp(tiny_experiment, ["theory"]), 0, 1, DataCache())
    th = [(r["activation"], r["train_error"], r["test_error"]) for r in both if r["model"] == "theory"]
    assert th == [(r["activation"], r["train_error"], r["test_error"]) for r in alone]
    assert {r["model"] for r in both} == {"nn", "theory"} and len(both) == 4
    assert all(r["status"] == "ok" for r in both)


def test_theory_only_task_draws_no_readout_data(tiny_experiment, monkeypatch):
    sizes = []
    real = data.MixtureProblem.sample

    def spy(self, m, rng):
        sizes.append(m)
        return real(self, m, rng)

    monkeypatch.setattr(data.MixtureProblem, "sample", spy)
    exp = _exp(tiny_experiment, ["theory"])
    run_task(exp, 0, 0, DataCache())
    assert sizes == [24]  # the gradient batch only
    sizes.clear()
    cache = DataCache()
    run_task(exp, 0, 0, cache)
    run_task(_exp(tiny_experiment, ["nn", "theory"]), 0, 0, cache)  # same data key: drawn whole now
    assert sizes == [24, 24, 24, 120]


def test_theory_task_matches_the_module_on_the_same_f_hat(tiny_experiment):
    exp = _exp(tiny_experiment, ["theory"])
    p = config.resolved(exp.point_params({}))
    ds = datasets.draw_data(p, p["seed"], (0, 0), readout=False)
    assert ds.train is None and ds.test is None
    init = streams.stream(p["seed"], 1, streams.stable_id({}), 0)
    f0, a0 = network.init_params(p["n"], p["k"], ds.problem.tr, init)
    f_hat = network.gradient_step(f0, a0, *ds.grad, "relu", p["eta"])
    res = theory.predict(ds.problem, f_hat, "relu", p["m"], p["lambda"], p["m_test"])
    row = run_task(exp, 0, 0, DataCache())[0]
    assert row["test_error"] == pytest.approx(res.test_error, rel=1e-8)
    assert row["train_error"] == pytest.approx(res.train_error, rel=1e-8)


def test_models_accept_theory_and_name_it_in_errors():
    assert config.validate_params({"models": ["theory"]})["models"] == ["theory"]
    with pytest.raises(ConfigError, match="theory"):
        config.validate_params({"models": ["nn", "bogus"]})


def test_fashion_gaussian_source_within_monte_carlo_error():
    from gmstep import fashion

    try:
        problem = fashion.build_problem(theta=784.0, classes=(0, 1), source="gaussian")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Fashion-MNIST not available: {exc}")
    rng = np.random.default_rng(5)
    m, k, lam, trials = 120, 60, 1e-3, 24
    f0, a0 = network.init_params(784, k, problem.tr, rng)
    xg, yg = problem.sample(m, rng)
    f_hat = network.gradient_step(f0, a0, xg, yg, "relu", 1.0)
    res = theory.predict(problem, f_hat, "relu", m, lam)
    train, test = _monte_carlo(problem, f_hat, "relu", m, lam, trials, rng)
    se = test.std(ddof=1) / math.sqrt(trials)
    assert res.status == "ok"
    assert abs(res.test_error - test.mean()) <= 4 * se + 0.03 * test.mean(), (res.test_error, test.mean(), se)


def test_overflowing_step_gives_a_nonfinite_theory_row(tiny_experiment):
    exp = tiny_experiment(params={
        "n": 11, "m": 6, "k": 14, "lambda": 7.7e-26, "activations": ["erf", "relu"], "models": ["theory"],
        "eta": 1.4e266, "theta": 7e220, "m_grad": 3, "mean_norm": 1e-300,
    })
    rows = run_task(exp, 0, 0)
    assert len(rows) == 2
    assert all(r["status"] == "nonfinite" and math.isnan(r["test_error"]) for r in rows)


def test_three_components_with_means_within_monte_carlo_error():
    n, m, k, lam, trials = 150, 150, 60, 1e-3, 30
    rng = np.random.default_rng(11)
    mix = data.draw_mixture(n, [0.2, 0.5, 0.3], [1, 2, 1], 10.0, 0.3, rng, mean_norm=0.8)
    problem = data.MixtureProblem(mix, "regression", data.teacher(mix, rng), delta=0.1)
    f0, a0 = network.init_params(n, k, problem.tr, rng)
    f_hat = network.gradient_step(f0, a0, *problem.sample(m, rng), "sigmoid", 10.0)
    res = theory.predict(problem, f_hat, "sigmoid", m, lam)
    assert res.status == "ok" and len(res.component_test) == 3
    train, test = _monte_carlo(problem, f_hat, "sigmoid", m, lam, trials, rng)
    for pred, mc in ((res.train_error, train), (res.test_error, test)):
        se = mc.std(ddof=1) / math.sqrt(trials)
        assert abs(pred - mc.mean()) <= 4 * se + 0.03 * mc.mean(), (pred, mc.mean(), se)


def test_work_arrays_reused_from_task_to_task_change_no_number(tiny_experiment):
    """One worker's scratch carried through tasks of different ``k`` (larger, smaller, the
    first again; both solver precisions at these ``k``) gives the numbers of fresh arrays, and
    a result never changes when the scratch is used again."""
    exp = tiny_experiment(params={"models": ["theory"], "n": 150, "m": 110, "activations": ["relu", "tanh"]},
                          sweep={"k_over_m": [1.0, 1.3]})
    order = [0, 1, 0, 1]
    shared = DataCache()
    reused = [run_task(exp, i, 0, shared) for i in order]
    fresh = [run_task(exp, i, 0, DataCache()) for i in order]
    assert reused == fresh
    assert all(r["status"] == "ok" for rows in fresh for r in rows)
    assert shared.scratch.nbytes > 0
    problem = datasets.draw_data(config.resolved(exp.point_params(exp.points()[0])), 7, (0, 0), readout=False).problem
    rng = np.random.default_rng(5)
    first = theory.predict(problem, rng.standard_normal((110, 150)) / 12, "relu", 110, 1e-3, scratch=shared.scratch)
    kept = (first.delta.copy(), first.weights.copy(), first.component_test.copy())
    theory.predict(problem, rng.standard_normal((143, 150)) / 12, "tanh", 110, 1e-3, scratch=shared.scratch)
    for now, before in zip((first.delta, first.weights, first.component_test), kept, strict=True):
        np.testing.assert_array_equal(now, before)


@pytest.mark.parametrize("ratios", [None, [0.3, 0.3, 0.4]])
def test_memory_estimate_covers_the_theory_work_arrays(tiny_experiment, ratios):
    """What a worker keeps of the theory's arrays after tasks of both solver precisions (and
    both eliminated components) stays within what the memory admission counts for it."""
    params = {"models": ["theory"], "n": 150, "m": 110, "activations": ["relu", "tanh"]}
    if ratios:
        params["ratios"] = ratios
    exp = tiny_experiment(params=params, sweep={"k_over_m": [1.0]})
    cache = DataCache()
    for trial in range(3):
        run_task(exp, 0, trial, cache)
    kept = sum(b.nbytes for name, b in cache.scratch._buffers.items() if name.startswith("theory"))
    p = config.resolved(exp.point_params(exp.points()[0]))
    counted = admission.task_memory(p) - admission.task_memory({**p, "models": ["nn"]})
    assert 0 < kept <= counted, (kept, counted)
