"""Batched tasks on the torch backend (gmstep.engine.trial_batch, engine.task.compute_tasks): a
batch's rows equal the same tasks computed one by one (the trials' own NumPy streams), batches
are formed from the pending tasks whatever the executor, a failing batch falls back to single
tasks, and the batch size follows the memory."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from gmstep import config, executors
from gmstep.engine import backend, torch_ops, trial_batch
from gmstep.engine.task import compute_task, compute_tasks
from gmstep.errors import ConfigError
from helpers import main, make_experiment, one_error_line, quiet_run

TORCH_CPU = {"backend": "torch", "device": "cpu", "rng": "numpy"}
BASE = {"n": 30, "m": 40, "k": 24, "activations": ["relu", "tanh"], "models": ["nn", "hermite"], "degree": 3,
        "seed": 5, **TORCH_CPU}
CASES = {
    "regression k<m, Hermite tail noise, theory": {"models": ["nn", "hermite", "theory"]},
    "regression k>m": {"k": 60},
    "classification k<m, redraw per trial": {"task": "classification", "redraw": "trial"},
    "classification k>m, shared data": {"task": "classification", "k": 55, "redraw": "once"},
    "three components, erf": {"ratios": [0.2, 0.3, 0.5], "rank": [1, 2, 1], "activations": ["erf", "sigmoid"]},
    "device random numbers": {"rng": "device", "redraw": "trial"},
    "theory only": {"models": ["theory"]},
}


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    """The largest relative difference of two error arrays (NaN where both are NaN: not computed)."""
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(a[ok]), 1e-300)))


def _csv(directory, name="t"):
    with open(directory / name / "results.csv", newline="") as f:
        return sorted(csv.DictReader(f), key=lambda r: (float(r["k"]), int(r["trial"]), r["activation"], r["model"]))


def _csv_close(a_rows, b_rows, tol=1e-12):
    assert len(a_rows) == len(b_rows) > 0
    for a, b in zip(a_rows, b_rows, strict=True):
        assert (a["trial"], a["activation"], a["model"], a["status"]) == (b["trial"], b["activation"], b["model"],
                                                                          b["status"])
        for key in ("train_error", "test_error", "train_misclassification", "test_misclassification"):
            if a[key] != b[key]:
                assert abs(float(a[key]) - float(b[key])) <= tol * abs(float(a[key])), (key, a, b)


@pytest.mark.parametrize("case", list(CASES))
def test_a_batch_equals_its_tasks_one_by_one(case):
    exp = make_experiment({**BASE, **CASES[case]}, {}, "t", trials=4)
    single = [compute_task(exp, 0, t) for t in range(4)]
    batch = compute_tasks(exp, 0, [0, 1, 2, 3])
    assert [r.trial for r in batch] == [0, 1, 2, 3]
    for one, many in zip(single, batch, strict=True):
        assert one.statuses == many.statuses and all(s == "ok" for s in one.statuses)
        assert _relative(one.errors, many.errors) < 1e-12
    # The trials differ (their own streams): a batch is not one task repeated.
    assert not np.allclose(batch[0].errors[:, 1], batch[1].errors[:, 1])
    if "theory" in CASES[case].get("models", ()):
        assert all(np.isfinite(r.errors[:, :2]).all() for r in batch)


def test_batched_torch_rows_equal_the_numpy_engine():
    params = {**BASE, **CASES["regression k<m, Hermite tail noise, theory"]}
    numpy_exp = make_experiment({**params, "backend": "numpy", "rng": "auto"}, {}, "t", trials=3)
    exp = make_experiment(params, {}, "t", trials=3)
    for ref, got in zip([compute_task(numpy_exp, 0, t) for t in range(3)], compute_tasks(exp, 0, [0, 1, 2]),
                        strict=True):
        assert _relative(ref.errors, got.errors) < 1e-9


def test_units_are_aligned_blocks_of_the_pending_trials():
    exp = make_experiment({**BASE, "batch_trials": 3}, {"k": [10, 20]}, "t", trials=7)
    pending = [(p, t) for p, t in exp.tasks() if (p, t) not in {(0, 1), (1, 3), (1, 4)}]  # some done
    got = trial_batch.units(exp, pending)
    assert got == [(0, (0, 2)), (0, (3, 4, 5)), (0, (6,)), (1, (0, 1, 2)), (1, (5,)), (1, (6,))]
    auto = trial_batch.units(exp.with_changes(params={"batch_trials": "auto"}), pending)
    assert auto == [(0, (0, 2, 3, 4, 5, 6)), (1, (0, 1, 2, 5, 6))]
    numpy_exp = make_experiment({**BASE, "backend": "numpy", "rng": "auto"}, {"k": [10, 20]}, "t", trials=7)
    assert trial_batch.units(numpy_exp, pending) == [(p, (t,)) for p, t in pending]  # one task each


def test_batch_size_follows_the_memory():
    exp = make_experiment({**BASE, "n": 100, "m": 50, "k": 400}, {}, "t")
    p = config.resolved(exp.point_params(exp.points()[0]))
    need = backend.device_bytes(p)
    fraction = backend.DEVICE_MEMORY_FRACTION
    assert trial_batch.batch_size(p, memory=int(5 * need / fraction) + 1) == 5
    assert trial_batch.batch_size(p, memory=int(5 * need / fraction) - 1) == 4
    assert trial_batch.batch_size(p, memory=need) == 1  # one task always runs (admitted beforehand)
    assert trial_batch.batch_size(p, memory=10**15) == trial_batch.MAX_BATCH
    assert trial_batch.batch_size(p) == min(trial_batch.MAX_BATCH, trial_batch.CPU_BATCH_BYTES // need)  # CPU
    assert trial_batch.batch_size({**p, "batch_trials": 3}, memory=need) == 3  # as asked
    assert trial_batch.batch_size({**p, "backend": "numpy"}) == 1


def test_batch_trials_is_a_checked_parameter(capsys):
    code, out, _ = main(capsys, "params")
    assert code == 0 and "batch_trials" in {line.split()[0] for line in out.splitlines() if line.strip()}
    for bad in ("batch_trials=0", "batch_trials=many", "batch_trials=2.5"):
        code, _, err = main(capsys, "reproduce", "fig1a", "--quick", "--set", "backend=torch", "--set", bad,
                            "--out", "/nonexistent/x")
        one_error_line(code, err, "batch_trials")
    code, _, err = main(capsys, "reproduce", "fig1a", "--quick", "--set", "batch_trials=4", "--out", "/nonexistent/x")
    one_error_line(code, err, "batch_trials", "backend=torch")  # NumPy never batches: refused, not ignored


def test_batch_size_and_executors_give_the_same_rows(tmp_path):
    """Batches of 1, 2 and auto agree to rounding; the same batches give the same bytes serially and
    in two worker processes."""
    exp = make_experiment({**BASE, "task": "classification"}, {"k": [12, 50]}, "t", trials=3)
    csvs = {}
    for size in (1, 2, "auto"):
        quiet_run(exp.with_changes(params={"batch_trials": size}), tmp_path / str(size))
        csvs[size] = _csv(tmp_path / str(size))
    _csv_close(csvs[1], csvs[2])
    _csv_close(csvs[1], csvs["auto"])
    quiet_run(exp.with_changes(params={"batch_trials": 2}), tmp_path / "jobs", jobs=2)
    assert (tmp_path / "jobs" / "t" / "results.csv").read_bytes() == (tmp_path / "2" / "t" / "results.csv").read_bytes()


def test_resume_with_some_trials_done_runs_the_missing_ones(tmp_path):
    exp = make_experiment({**BASE, "models": ["nn", "hermite", "theory"]}, {"k": [12, 50]}, "t", trials=2)
    quiet_run(exp, tmp_path / "resumed")
    first = _csv(tmp_path / "resumed")
    more = exp.with_changes(params={"trials": 5})
    quiet_run(more, tmp_path / "resumed", resume=True)
    quiet_run(more, tmp_path / "fresh")
    resumed, fresh = _csv(tmp_path / "resumed"), _csv(tmp_path / "fresh")
    assert len(resumed) == 2 * 5 * 2 * 3
    _csv_close(fresh, resumed)
    assert [r for r in resumed if int(r["trial"]) < 2] == first  # the finished rows are kept as they were


@pytest.mark.parametrize("error", [ArithmeticError, torch.cuda.OutOfMemoryError])
def test_a_failing_batch_falls_back_to_single_tasks(monkeypatch, error):
    exp = make_experiment(BASE, {}, "t", trials=3)
    ref = [compute_task(exp, 0, t) for t in range(3)]
    real = torch_ops.TorchOps.ridges

    def ridges(phis, y, lam):
        if phis[0].dim() == 3 and phis[0].shape[0] > 1:  # a batch of several trials fails
            raise error("batch")
        return real(phis, y, lam)

    monkeypatch.setattr(torch_ops.TorchOps, "ridges", staticmethod(ridges))
    got = trial_batch.compute_unit(exp.with_changes(params={"batch_trials": 3}), 0, [0, 1, 2])
    for one, again in zip(ref, got, strict=True):
        assert one.trial == again.trial and one.statuses == again.statuses
        np.testing.assert_array_equal(one.errors, again.errors)  # computed one by one, as ref


def test_a_single_task_that_fails_numerically_is_recorded_not_raised(monkeypatch):
    exp = make_experiment(BASE, {}, "t", trials=1)

    def ridges(phis, y, lam):
        raise FloatingPointError("overflow")

    monkeypatch.setattr(torch_ops.TorchOps, "ridges", staticmethod(ridges))
    (result,) = compute_tasks(exp, 0, [0])
    assert np.isnan(result.errors).all() and set(result.statuses) == {"nonfinite"}
    monkeypatch.setattr(torch_ops.TorchOps, "ridges", staticmethod(lambda *a: (_ for _ in ()).throw(
        torch.cuda.OutOfMemoryError("full"))))
    with pytest.raises(torch.cuda.OutOfMemoryError):  # not a numerical problem of the task: raised
        compute_tasks(exp, 0, [0])


def test_serial_executor_yields_one_result_per_pending_task():
    exp = make_experiment(BASE, {"k": [12, 50]}, "t", trials=4)
    pending = [(0, 0), (0, 3), (1, 1), (1, 2)]
    got = [(r.point_index, r.trial) for r in executors.serial(exp, pending)]
    assert sorted(got) == pending


def test_device_random_numbers_are_batch_independent_draws():
    """rng=device: each trial's generator is keyed as before, so a batch draws what the tasks
    one by one draw (and rerunning gives the same bits)."""
    exp = make_experiment({**BASE, "rng": "device"}, {}, "t", trials=3)
    first = compute_tasks(exp, 0, [0, 1, 2])
    again = compute_tasks(exp, 0, [0, 1, 2])
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.errors, b.errors)
    with pytest.raises(ConfigError):
        config.validate_params({"batch_trials": -1})
