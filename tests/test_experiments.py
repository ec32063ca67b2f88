"""Experiments and the computation of one task: rows, reproducibility, redraw policies.

Every experiment here is tiny (n, m of a few dozen), so the whole file runs in seconds.
"""

from __future__ import annotations

import math
import random
import tomllib
from pathlib import Path

import numpy as np
import pytest

from gmstep import activations, config, hermite, network, readout
from gmstep.engine import datasets, parallel, streams
from gmstep.engine import task as engine_task
from gmstep.engine.datasets import DataCache
from gmstep.engine.task import run_task
from gmstep.experiment import ROW_COLUMNS, Experiment

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_experiment.toml"


def run_all(exp: Experiment, order: list[tuple[int, int]] | None = None) -> dict[tuple[int, int], list[dict]]:
    """Rows of every task, keyed by task, computed in ``order`` with one fresh cache."""
    cache = DataCache()
    return {task: run_task(exp, *task, cache) for task in (order or exp.tasks())}


def numbers(rows: dict) -> dict:
    return {task: [(r["activation"], r["model"], r["train_error"], r["test_error"]) for r in rs]
            for task, rs in rows.items()}


REDRAWS = [
    {"redraw": "once"},
    {"redraw": "point"},
    {"redraw": "trial"},
    {"redraw": "trial", "share_init": True},
]


# ----------------------------------------------------------------------------- grid and rows


def test_points_and_tasks_order(tiny_experiment):
    exp = tiny_experiment(sweep={"alpha": [0.0, 0.5], "beta": [0.2, 0.4, 0.6]}, params={"trials": 2})
    pts = exp.points()
    assert len(pts) == 6
    assert pts[0] == {"alpha": 0.0, "beta": 0.2} and pts[1] == {"alpha": 0.0, "beta": 0.4}
    assert pts[3] == {"alpha": 0.5, "beta": 0.2}
    assert exp.tasks() == [(i, t) for i in range(6) for t in range(2)]
    assert exp.rows_per_task() == 6
    assert tiny_experiment().points() == [{}]


def test_rows_of_a_task(tiny_experiment):
    exp = tiny_experiment(sweep={"alignment": [-0.5, 0.5]})
    rows = run_task(exp, 1, 1)
    assert len(rows) == exp.rows_per_task() == 6
    assert [(r["activation"], r["model"]) for r in rows] == [
        (a, mdl) for a in ("relu", "tanh", "sigmoid") for mdl in ("nn", "hermite")]
    for r in rows:
        assert list(r) == ["alignment", *ROW_COLUMNS]
        assert r["alignment"] == 0.5 and r["trial"] == 1
        assert r["status"] == "ok"
        assert math.isfinite(r["train_error"]) and r["train_error"] > 0
        assert math.isfinite(r["test_error"]) and r["test_error"] > 0
    # The network and its Hermite model share F^ but not the features.
    assert rows[0]["test_error"] != rows[1]["test_error"]


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "erf", "sin"])
@pytest.mark.parametrize(("task", "sizes"), [
    ("regression", {}),
    ("classification", {}),
    ("regression", {"m": 600, "m_test": 1100, "k_over_m": 0.1}),  # several row blocks
])
def test_task_recomputed_from_the_building_blocks(name, task, sizes, tiny_experiment):
    """run_task = draw data, init, one step with the true activation, ridge on sigma or sigma_l.

    The reference uses the plain functions of gmstep.network / hermite / readout; the Hermite
    noise is the stream of the task, drawn row by row for the training and then the test features.
    """
    exp = tiny_experiment(params={"activations": [name], "redraw": "trial", "degree": 2, "lambda": 1e-3,
                                  "task": task, **sizes}, sweep={"alignment": [0.0, 0.4]})
    point_index, trial = 1, 1
    rows = run_task(exp, point_index, trial)
    point = exp.points()[point_index]
    p = config.resolved(exp.point_params(point))
    seed, k = p["seed"], p["k"]
    act = activations.get(name)
    ds = datasets.draw_data(p, seed, streams.data_identity(point, trial, "trial"))
    (xg, yg), (x, y), (xt, yt) = ds.grad, ds.train, ds.test
    assert xg.shape == (p["m"], p["n"]) and x.shape == (p["m"], p["n"]) and xt.shape == (p["m_test"], p["n"])
    f0, a0 = network.init_params(p["n"], k, ds.problem.tr,
                                 streams.stream(seed, 1, streams.stable_id(point), trial))
    f_hat = network.gradient_step(f0, a0, xg, yg, act, p["eta"])
    nn_fit = readout.ridge(act.fn(x @ f_hat.T) / math.sqrt(k), y, p["lambda"])
    nn_test = readout.prediction_error(act.fn(xt @ f_hat.T) / math.sqrt(k) @ nn_fit.weights, yt)
    surrogate = hermite.HermiteModel.build(act, ds.problem.scale, 2)
    noise = streams.stream(seed, 2, streams.stable_id(point), trial, streams.stable_id(name))
    he_fit = readout.ridge(surrogate(x @ f_hat.T, noise) / math.sqrt(k), y, p["lambda"])
    he_test = readout.prediction_error(surrogate(xt @ f_hat.T, noise) / math.sqrt(k) @ he_fit.weights, yt)
    by_model = {r["model"]: r for r in rows}
    assert by_model["nn"]["train_error"] == pytest.approx(nn_fit.train_error, rel=1e-9)
    assert by_model["nn"]["test_error"] == pytest.approx(nn_test, rel=1e-9)
    assert by_model["hermite"]["train_error"] == pytest.approx(he_fit.train_error, rel=1e-9)
    assert by_model["hermite"]["test_error"] == pytest.approx(he_test, rel=1e-9)


def test_degree_rule_is_used_for_auto(tiny_experiment):
    """``degree = "auto"`` gives the numbers of the degree the rule picks (and not of another)."""
    betas = [0.0, 0.6, 0.74, 0.8]
    params = {"activations": ["relu"], "models": ["hermite"], "trials": 1}
    auto = run_all(tiny_experiment(params={**params, "degree": "auto"}, sweep={"beta": betas}))
    for i, (beta, degree) in enumerate(zip(betas, [1, 2, 3, 4], strict=True)):
        assert config.resolved(config.validate_params({"beta": beta, "degree": "auto"}))["degree"] == degree
        fixed = run_all(tiny_experiment(params={**params, "degree": degree}, sweep={"beta": [beta]}))
        assert fixed[(0, 0)] == auto[(i, 0)]
        other = run_all(tiny_experiment(params={**params, "degree": degree + 1}, sweep={"beta": [beta]}))
        assert other[(0, 0)] != auto[(i, 0)]


# ----------------------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("policy", REDRAWS, ids=lambda p: "-".join(map(str, p.values())))
def test_same_seed_same_rows_in_any_order(policy, tiny_experiment):
    exp = tiny_experiment(params=policy, sweep={"alignment": [-0.5, 0.0, 0.5]})
    first = run_all(exp)
    assert run_all(exp) == first
    order = exp.tasks()
    random.Random(3).shuffle(order)
    assert order != exp.tasks()
    assert run_all(exp, order) == first
    # One cache per task (as separate worker processes would have) changes nothing either.
    assert {task: run_task(exp, *task, DataCache(size=1)) for task in reversed(exp.tasks())} == first


@pytest.mark.parametrize("policy", REDRAWS, ids=lambda p: "-".join(map(str, p.values())))
def test_different_seed_different_rows(policy, tiny_experiment):
    exp = tiny_experiment(params=policy, sweep={"alignment": [-0.5, 0.5]})
    base = numbers(run_all(exp))
    other = numbers(run_all(exp.with_changes(params={"seed": 8})))
    for task in base:
        for (a1, m1, tr1, te1), (a2, m2, tr2, te2) in zip(base[task], other[task], strict=True):
            assert (a1, m1) == (a2, m2)
            assert tr1 != tr2 and te1 != te2


@pytest.mark.parametrize("policy", REDRAWS, ids=lambda p: "-".join(map(str, p.values())))
@pytest.mark.parametrize(("column", "values"), [
    ("alignment", [-0.5, 0.0, 0.5]), ("k_over_m", [0.5, 1.0, 2.0]), ("lambda", [1e-3, 1e-2]),
])
def test_sub_sweep_gives_the_same_numbers(policy, column, values, tiny_experiment):
    exp = tiny_experiment(params=policy, sweep={column: values})
    full = run_all(exp)
    for i, value in enumerate(values):
        sub = exp.with_changes(sweep={column: [value]})
        part = run_all(sub)
        for trial in range(exp.params["trials"]):
            assert part[(0, trial)] == full[(i, trial)]


def test_trials_differ(tiny_experiment):
    for policy in REDRAWS:
        rows = numbers(run_all(tiny_experiment(params=policy)))
        assert rows[(0, 0)] != rows[(0, 1)]


# ----------------------------------------------------------------------------- redraw policies


def test_data_identity():
    point = {"alpha": 0.5}
    assert streams.data_identity(point, 3, "once") == (0, 0)
    pid = streams.stable_id(point)
    assert streams.data_identity(point, 3, "point") == (pid, 0)
    assert streams.data_identity(point, 3, "trial") == (pid, 3)
    assert streams.stable_id({"alpha": 0.5}) == pid  # stable across calls (crc32 of JSON)
    assert streams.stable_id({"alpha": 0.25}) != pid


@pytest.mark.parametrize(("redraw", "draws"), [("once", 1), ("point", 3), ("trial", 6)])
def test_redraw_policies_count_data_draws(redraw, draws, tiny_experiment, monkeypatch):
    calls = []
    real = datasets.draw_data

    def spy(p, seed, ident):
        calls.append(ident)
        return real(p, seed, ident)

    monkeypatch.setattr(datasets, "draw_data", spy)
    exp = tiny_experiment(params={"redraw": redraw, "activations": ["tanh"]}, sweep={"lambda": [1e-3, 1e-2, 1e-1]})
    run_all(exp)
    assert len(calls) == draws


def test_once_shares_the_data_across_points(tiny_experiment):
    p = config.resolved(tiny_experiment().point_params({}))
    a = datasets.draw_data(p, 7, (0, 0))
    b = datasets.draw_data(p, 7, (0, 0))
    c = datasets.draw_data(p, 7, (0, 1))
    np.testing.assert_array_equal(a.train[0], b.train[0])
    assert not np.array_equal(a.train[0], c.train[0])
    # The four streams are independent: the gradient batch, training and test sets differ.
    assert not np.array_equal(a.grad[0], a.train[0])
    assert not np.array_equal(a.train[0], a.test[0][: len(a.train[0])])


def test_share_init_shares_f_and_a_across_points(tiny_experiment, monkeypatch):
    seen = []
    real = network.init_params

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out[0].copy())
        return out

    monkeypatch.setattr(network, "init_params", spy)
    for share, same in ((True, True), (False, False)):
        seen.clear()
        exp = tiny_experiment(params={"share_init": share, "trials": 1, "activations": ["tanh"]},
                              sweep={"eta_exponent": [0.0, 0.5]})
        run_all(exp)
        assert len(seen) == 2
        assert np.array_equal(seen[0], seen[1]) is same


# ----------------------------------------------------------------------------- numerics


def test_float32_close_to_float64(tiny_experiment):
    params = {"activations": ["tanh", "sigmoid"], "k_over_m": 0.5, "lambda": 1e-2, "trials": 1, "n": 40, "m": 40}
    exp64 = tiny_experiment(params=params)
    exp32 = tiny_experiment(params={**params, "dtype": "float32"})
    rows64, rows32 = run_task(exp64, 0, 0), run_task(exp32, 0, 0)
    for r64, r32 in zip(rows64, rows32, strict=True):
        if r64["model"] == "nn":  # the Hermite noise is drawn in the working precision: not comparable
            assert r32["test_error"] == pytest.approx(r64["test_error"], rel=1e-3)
            assert r32["train_error"] == pytest.approx(r64["train_error"], rel=1e-3)


def test_status_flags():
    assert engine_task._status((1.0, 2.0), 10.0) == "ok"
    assert engine_task._status((1.0, math.inf), 10.0) == "nonfinite"
    assert engine_task._status((math.nan, 1.0), 10.0) == "nonfinite"
    assert engine_task._status((1.0, 2.0), 1e13) == "ill-conditioned"
    assert engine_task._status((1.0, 2.0), 1e7, engine_task.MAX_CONDITION_FLOAT32) == "ill-conditioned"


def test_overflowing_parameters_give_nonfinite_rows_not_a_crash(tiny_experiment):
    """theta = 7e220 makes the Hermite scale b = sqrt(n / tr) underflow (b^9 = 0) and eta = 1e266
    overflows the step: every row is recorded as nonfinite with NaN errors."""
    exp = tiny_experiment(params={
        "n": 11, "m": 6, "k": 14, "lambda": 7.7e-26, "activations": ["erf", "softplus"], "degree": 9,
        "hermite_nodes": 10, "eta": 1.4e266, "theta": 7e220, "m_grad": 3, "mean_norm": 1e-300,
    })
    rows = run_task(exp, 0, 0)
    assert len(rows) == 4
    assert all(r["status"] == "nonfinite" and math.isnan(r["test_error"]) for r in rows)


def test_rank_deficient_features_with_tiny_lambda_are_flagged_ill_conditioned(tiny_experiment):
    # Linear features X F^T have rank <= n = 4 < min(k, m) = 12: only lambda m = 2e-14 keeps the
    # 12 x 12 system invertible, so its condition number is ~1e14.
    params = {"n": 4, "m": 20, "k": 12, "lambda": 1e-15, "activations": ["linear"], "models": ["nn"]}
    rows = run_task(tiny_experiment(params=params), 0, 0)
    assert rows[0]["status"] == "ill-conditioned"
    # The same features with a sound penalty are fine: the flag is about the system, not the data.
    rows = run_task(tiny_experiment(params={**params, "lambda": 1e-4}), 0, 0)
    assert rows[0]["status"] == "ok"


def test_classification_task(tiny_experiment):
    rows = run_task(tiny_experiment(params={"task": "classification", "rho": 0.3}), 0, 0)
    assert all(r["status"] == "ok" for r in rows)
    assert all(0 < r["test_error"] < 100 for r in rows)


# ----------------------------------------------------------------------------- the example TOML


def test_example_toml_builds_and_runs_at_tiny_size():
    spec = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    exp = Experiment.from_dict(spec)
    assert exp.name == "custom_experiment" or exp.name
    assert exp.description
    assert exp.params["activations"] == ["erf", "gelu"]
    assert len(exp.params["ratios"]) == 3
    assert exp.sweep_columns == ["alignment"]
    assert exp.params["n"] == exp.params["m"] == 300 and exp.params["trials"] == 3
    small = exp.with_changes(params={"n": 30, "m": 20, "trials": 1}, sweep={"alignment": [exp.sweep["alignment"][0]]})
    rows = run_all(small)[(0, 0)]
    assert len(rows) == small.rows_per_task() == 4
    assert all(r["status"] == "ok" for r in rows)


def test_thread_count_does_not_change_rows(tiny_experiment):
    if not hasattr(parallel, "set_threads"):
        pytest.skip("no thread setting in this engine")
    exp = tiny_experiment(params={"m": 600, "m_test": 1100, "k_over_m": 0.1, "trials": 1})
    try:
        parallel.set_threads(1)
        one = run_all(exp)
        parallel.set_threads(3)
        three = run_all(exp)
    finally:
        parallel.set_threads(None)
    assert one == three


def test_hermite_quadrature_reaches_the_hermite_model_only(tiny_experiment):
    """``hermite_quadrature = "split"`` changes the ReLU Hermite model's coefficients (exact instead
    of the paper's Gauss-Hermite values), so its rows change and the network's do not."""
    base = {"activations": ["relu"], "models": ["nn", "hermite"]}
    paper = run_task(tiny_experiment(params=base), 0, 0)
    split = run_task(tiny_experiment(params={**base, "hermite_quadrature": "split"}), 0, 0)
    assert paper[0] == split[0]  # the network row
    assert paper[1]["test_error"] != split[1]["test_error"]
    assert abs(paper[1]["test_error"] / split[1]["test_error"] - 1) < 0.05  # a ~1 % change of h_i


def test_with_overrides_turns_a_fixed_value_of_a_swept_column_into_its_sweep(tiny_experiment):
    exp = tiny_experiment(sweep={"alpha": [0.5, 1.0]})
    assert exp.with_overrides() is exp
    assert exp.with_overrides(params={"alpha": 0.75}).sweep == {"alpha": [0.75]}
    assert exp.with_overrides(params={"alpha": [0.25, 0.3]}).sweep == {"alpha": [0.25, 0.3]}
    # A new sweep of the column is used as it is: the fixed value does not replace it.
    assert exp.with_overrides(params={"alpha": 0.75}, sweep={"alpha": [0.3]}).sweep == {"alpha": [0.3]}
    changed = exp.with_overrides(params={"trials": 3}, sweep={"alpha": [0.3]})
    assert (changed.params["trials"], changed.sweep) == (3, {"alpha": [0.3]})


def test_from_toml_reads_the_layout_of_from_dict(tmp_path: Path, tiny_experiment):
    path = tmp_path / "e.toml"
    path.write_text('name = "t"\n[params]\nn = 24\nm = 20\n[sweep]\nalpha = [0.5, 1.0]\n', encoding="utf-8")
    exp = Experiment.from_toml(path)
    assert exp == Experiment.from_dict({"name": "t", "params": {"n": 24, "m": 20}, "sweep": {"alpha": [0.5, 1.0]}})
    path.write_text('name = "t"\n[params\n', encoding="utf-8")
    with pytest.raises(config.ConfigError, match=r"line 2, column \d+: not valid TOML"):
        Experiment.from_toml(path)
    with pytest.raises(config.ConfigError, match="no such file"):
        Experiment.from_toml(tmp_path / "missing.toml")


def test_task_result_rows_are_by_index_and_equal_run_task(tiny_experiment):
    exp = tiny_experiment(params={"models": ["theory", "nn", "hermite"], "task": "classification"},
                          sweep={"alpha": [0.5, 1.0]})
    res = engine_task.compute_task(exp, 1, 1)
    acts, models = exp.params["activations"], exp.params["models"]
    assert (res.point_index, res.trial, res.errors.shape) == (1, 1, (len(acts) * len(models), 4))
    rows = run_task(exp, 1, 1)
    assert [(r["activation"], r["model"]) for r in rows] == [(a, m) for a in acts for m in models]
    assert res.rows(exp.points()[1]) == rows
    for i, row in enumerate(rows):
        for j, column in enumerate(engine_task.ERROR_COLUMNS):
            value = row[column]
            assert (math.isnan(res.errors[i, j]) if value is None else res.errors[i, j] == value)
        assert res.statuses[i] == row["status"]
    theory = [r for r in rows if r["model"] == "theory"]
    assert all(r["train_misclassification"] is None and math.isfinite(r["test_error"]) for r in theory)
    nn = [r for r in rows if r["model"] == "nn"]
    assert all(0.0 <= r["test_misclassification"] <= 1.0 for r in nn)


def test_with_overrides_validates_like_any_experiment(tiny_experiment):
    exp = tiny_experiment(sweep={"k_over_m": [0.5, 1.0, 2.0]})
    out = exp.with_overrides({"k_over_m": 0.25, "trials": 3})
    assert out.sweep["k_over_m"] == [0.25] and out.params["trials"] == 3
    assert exp.sweep["k_over_m"] == [0.5, 1.0, 2.0]  # the experiment given is left unchanged
    with pytest.raises(config.ConfigError, match="trials"):
        exp.with_overrides({"trials": 0})
