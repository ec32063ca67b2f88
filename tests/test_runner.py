"""The runner: files written as tasks finish, resume, in-process interrupts, numerical guards."""

from __future__ import annotations

import json
import math
import os
import signal
from functools import partial

import numpy as np
import pytest

from gmstep import Experiment, ResultsError, executors, results, runner
from gmstep.engine.task import TaskResult, run_task
from helpers import make_experiment, quiet_run

small_experiment = partial(make_experiment, {"n": 10, "m": 10, "trials": 3, "activations": ["relu", "tanh"],
                                        "models": ["nn", "hermite"], "redraw": "trial"}, {"k_over_m": [0.5, 1.0, 2.0]})


@pytest.fixture
def reference(tmp_path_factory):
    """An uninterrupted run of small_experiment(): (experiment, bytes of its results.csv)."""
    exp = small_experiment()
    out = tmp_path_factory.mktemp("ref")
    quiet_run(exp, out)
    return exp, (out / exp.name / "results.csv").read_bytes()


def test_run_without_output_dir_gives_every_row_finite_or_flagged():
    exp = small_experiment()
    res = quiet_run(exp, None)
    assert res.directory is None and res.complete
    assert len(res.rows) == len(exp.tasks()) * exp.rows_per_task() == 36
    for row in res.rows:
        assert row["status"] in results.STATUSES
        if row["status"] == "ok":
            assert math.isfinite(row["train_error"]) and math.isfinite(row["test_error"])
    # the rows are the tasks' own rows, in canonical order
    assert list(res.rows[:4]) == run_task(exp, 0, 0)


def test_files_meta_and_plot(tmp_path):
    exp = small_experiment()
    res = runner.run(exp, tmp_path, progress=False, plot=True)
    d = tmp_path / exp.name
    assert sorted(p.name for p in d.iterdir()) == [".lock", "meta.json", "results.csv", "small.pdf", "small.png"]
    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["sessions"] == 1
    assert meta["tasks"] == meta["tasks_done"] == 9 and meta["rows_per_task"] == 4
    assert meta["problems"] == res.problems() == {}
    assert meta["elapsed_seconds"] > 0
    loaded = runner.load(d)
    assert loaded.rows == res.rows and loaded.complete
    assert loaded.max_gap() == res.max_gap()


@pytest.mark.parametrize("fraction", [0.0, 0.13, 0.31, 0.5, 0.77, 0.99])
def test_resume_after_a_cut_at_any_byte_gives_the_same_file(tmp_path, reference, fraction):
    """A kill leaves a prefix of the appended file; resuming must reproduce the full file."""
    exp, ref = reference
    head = ref.index(b"\n") + 1
    out = tmp_path / "run"
    quiet_run(exp, out)
    d = out / exp.name
    cut = head + int(fraction * (len(ref) - head))
    # a run that appended in a different order: reverse the task blocks, then cut
    lines = ref[head:].splitlines(keepends=True)
    blocks = [b"".join(lines[i:i + 4]) for i in range(0, len(lines), 4)][::-1]
    (d / "results.csv").write_bytes((ref[:head] + b"".join(blocks))[:cut])
    meta = json.loads((d / "meta.json").read_text())
    meta["status"] = "running"
    (d / "meta.json").write_text(json.dumps(meta))
    res = quiet_run(exp, out, resume=True)
    assert (d / "results.csv").read_bytes() == ref
    assert res.complete and json.loads((d / "meta.json").read_text())["sessions"] == meta["sessions"] + 1


def test_resume_runs_only_the_missing_tasks(tmp_path, reference, monkeypatch):
    exp, ref = reference
    d = tmp_path / exp.name
    d.mkdir()
    quiet_run(exp, tmp_path)
    lines = ref.splitlines(keepends=True)
    (d / "results.csv").write_bytes(b"".join(lines[:1 + 4 * 4 + 2]))  # 4 tasks and half of one
    seen = []
    real = executors.execute

    def spy(exp_, tasks, **kw):
        seen.extend(tasks)
        return real(exp_, tasks, **kw)

    monkeypatch.setattr(executors, "execute", spy)
    quiet_run(exp, tmp_path, resume=True)
    assert seen == exp.tasks()[4:]
    assert (d / "results.csv").read_bytes() == ref


def test_resume_of_a_complete_run_runs_nothing_and_keeps_the_file(tmp_path, reference, monkeypatch):
    exp, ref = reference
    quiet_run(exp, tmp_path)
    seen = []
    real = executors.execute
    monkeypatch.setattr(executors, "execute", lambda e, t, **kw: (seen.extend(t), real(e, t, **kw))[1])
    res = quiet_run(exp, tmp_path, resume=True)
    assert seen == [] and res.complete
    assert (tmp_path / exp.name / "results.csv").read_bytes() == ref


def test_resume_without_an_earlier_run_is_refused(tmp_path, reference):
    """A wrong --out with --resume must not silently start a fresh run."""
    exp, ref = reference
    with pytest.raises(ResultsError, match=r"^nothing to resume in .*: no earlier run there"):
        quiet_run(exp, tmp_path, resume=True)
    assert not (tmp_path / exp.name / "results.csv").exists()
    res = quiet_run(exp, tmp_path)
    assert res.complete and (tmp_path / exp.name / "results.csv").read_bytes() == ref


def test_resume_with_another_configuration_is_refused_naming_the_keys(tmp_path):
    exp = small_experiment()
    quiet_run(exp, tmp_path)
    other = exp.with_changes(params={"n": 12, "lambda": 1e-3}, sweep={"k_over_m": [0.5, 1.0]})
    with pytest.raises(ResultsError) as info:
        quiet_run(other, tmp_path, resume=True)
    msg = str(info.value)
    assert "\n" not in msg
    assert "params.n (was 10, now 12)" in msg and "params.lambda (was 0.0001, now 0.001)" in msg
    assert "sweep.k_over_m" in msg and "params.m " not in msg
    # plot settings and the description do not decide rows: resuming with new ones is fine
    restyled = Experiment.create(exp.name, exp.params, exp.sweep, {"title": "new"}, "another description")
    assert quiet_run(restyled, tmp_path, resume=True).complete
    assert json.loads((tmp_path / exp.name / "meta.json").read_text())["experiment"]["plot"]["title"] == "new"


def test_elapsed_time_adds_up_over_sessions(tmp_path):
    exp = small_experiment()
    quiet_run(exp, tmp_path)
    d = tmp_path / exp.name
    meta = json.loads((d / "meta.json").read_text())
    meta["elapsed_seconds"] = 1000.0
    (d / "meta.json").write_text(json.dumps(meta))
    res = quiet_run(exp, tmp_path, resume=True)
    again = json.loads((d / "meta.json").read_text())
    assert 1000.0 < again["elapsed_seconds"] < 1100.0 and res.elapsed == pytest.approx(again["elapsed_seconds"],
                                                                                          abs=1e-3)
    assert again["sessions"] == 2


def _interrupting(after: int, signum: int):
    """An executor that runs tasks serially and sends ``signum`` to this process after ``after`` tasks."""
    real = executors.serial

    def execute(exp, tasks, jobs=1, scheduler=None):
        for i, rows in enumerate(real(exp, tasks)):
            if i == after:
                os.kill(os.getpid(), signum)
            yield rows

    return execute


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_in_process_keeps_rows_and_resume_completes(tmp_path, reference, monkeypatch, signum):
    exp, ref = reference
    real_execute = executors.execute
    monkeypatch.setattr(executors, "execute", _interrupting(3, signum))
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(runner.Interrupted) as info:
        quiet_run(exp, tmp_path)
    exc = info.value
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # handlers restored
    assert exc.exit_code == 128 + signum and exc.done == 3 and exc.total == 9
    assert exc.directory == tmp_path / exp.name
    assert "3 of 9 tasks finished" in str(exc)
    d = tmp_path / exp.name
    assert json.loads((d / "meta.json").read_text())["status"] == "interrupted"
    table = results.RowTable(exp)
    assert table.read(d / "results.csv") == 0 and table.tasks_done() == 3
    monkeypatch.setattr(executors, "execute", real_execute)
    quiet_run(exp, tmp_path, resume=True)
    assert (d / "results.csv").read_bytes() == ref


def test_a_signal_during_a_write_is_held_until_the_task_is_written(tmp_path, monkeypatch):
    exp = small_experiment()
    real_write = results.ResultsWriter.write
    calls = []

    def slow_write(self, rows):
        calls.append(len(rows))
        if len(calls) == 2:  # the signal lands between the two halves of the second task
            real_write(self, rows[:2])
            os.kill(os.getpid(), signal.SIGTERM)
            real_write(self, rows[2:])
        else:
            real_write(self, rows)

    monkeypatch.setattr(results.ResultsWriter, "write", slow_write)
    with pytest.raises(runner.Interrupted) as info:
        quiet_run(exp, tmp_path)
    assert info.value.signum == signal.SIGTERM and info.value.done == 2
    table = results.RowTable(exp)
    assert table.read(tmp_path / exp.name / "results.csv") == 0  # no incomplete task
    assert table.tasks_done() == 2


def test_signal_guard_defers_inside_critical_sections_and_ignores_later_signals():
    guard = runner.SignalGuard()
    with guard.installed():
        with pytest.raises(runner.Interrupted) as info, guard.critical():
            os.kill(os.getpid(), signal.SIGINT)
            done = True  # reached: the signal did not interrupt the block
        assert done and info.value.signum == signal.SIGINT
        os.kill(os.getpid(), signal.SIGTERM)  # while stopping: recorded, not raised
        assert guard.pending == signal.SIGTERM
    assert issubclass(runner.Interrupted, BaseException) and not issubclass(runner.Interrupted, Exception)


def test_checked_task_results_flag_nonfinite_numbers():
    nan, inf = float("nan"), float("inf")
    errors = np.array([[0.1, nan, nan, nan], [inf, 0.2, nan, nan], [0.1, 0.2, nan, nan], [0.1, 0.2, 0.5, inf],
                       [0.1, 0.2, 0.5, 0.25]])
    result = TaskResult(0, 0, 3, ("relu",), ("a", "b", "c", "d", "e"), errors,
                        ("ok", "ill-conditioned", "ok", "ok", "ok"))
    out = result.checked(5)
    # NaN train/test errors are non-finite; NaN 0-1 errors are "not computed"; infinite ones are not
    assert out.statuses == ("nonfinite", "ill-conditioned", "ok", "nonfinite", "ok")
    assert out.errors is result.errors
    with pytest.raises(RuntimeError, match="returned 5 rows, expected 3"):
        result.checked(3)


def test_numerical_problems_are_recorded_never_averaged(tmp_path):
    """Huge label noise makes every error overflow: all rows flagged, none in a mean."""
    exp = small_experiment(delta=1e300, trials=1)
    res = runner.run(exp, tmp_path, progress=False, plot=True)
    assert set(res.problems()) == {"nonfinite"} and sum(res.problems().values()) == len(res.rows) == 12
    for s in res.summary().to_dict("records"):
        assert s["count"] == 0 and s["excluded"] == 1 and math.isnan(s["mean"])
    assert math.isnan(res.max_gap())
    meta = json.loads((tmp_path / exp.name / "meta.json").read_text())
    assert meta["problems"] == {"nonfinite": 12} and meta["max_relative_gap"] is None
    assert (tmp_path / exp.name / "small.png").exists()


def test_tiny_penalty_is_flagged_ill_conditioned():
    # Linear features have rank <= n = 4 below every system size here: only lambda keeps them
    # invertible, and lambda = 1e-300 does not.
    exp = small_experiment(**{"lambda": 1e-300, "trials": 1, "n": 4, "activations": ["linear"]})
    res = quiet_run(exp, None)
    assert res.problems().get("ill-conditioned", 0) > 0
    assert all(s["count"] + s["excluded"] == 1 for s in res.summary().to_dict("records"))


def test_summary_and_gap_leave_out_bad_rows():
    exp = small_experiment(trials=2)
    rows = []
    for p, t in exp.tasks():
        for r in run_task(exp, p, t):
            if p == 0 and t == 0 and r["model"] == "nn":
                r = {**r, "test_error": float("nan"), "status": "nonfinite"}
            rows.append(r)
    res = runner.Results(exp, rows)
    first = [s for s in res.summary().to_dict("records") if s["k_over_m"] == 0.5 and s["model"] == "nn"]
    assert all(s["count"] == 1 and s["excluded"] == 1 and math.isfinite(s["mean"]) for s in first)
    assert math.isfinite(res.max_gap())
    assert res.problems() == {"nonfinite": 2} and res.complete


def test_a_fresh_run_never_rereads_its_file_and_appends_one_task_per_write(tmp_path, monkeypatch):
    """Throughput cannot fall as the file grows: the loop only appends, one write per task."""
    exp = small_experiment()
    reads = []
    real_records = results.records
    monkeypatch.setattr(results, "records", lambda path: (reads.append(path), real_records(path))[1])
    sizes = []
    real_write = os.write

    def counting_write(fd, data):
        sizes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(results.os, "write", counting_write)
    quiet_run(exp, tmp_path)
    assert reads == []
    assert len(sizes) == len(exp.tasks())
    assert max(sizes) < 2 * min(sizes)  # every append is one task's rows, whatever the file size


def test_unknown_output_directory_problems_are_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ResultsError, match="cannot create output directory") as info:
        quiet_run(small_experiment(), blocker / "sub")
    assert "\n" not in str(info.value)


def test_load_errors(tmp_path):
    with pytest.raises(ResultsError, match="not a directory"):
        runner.load(tmp_path / "missing")
    (tmp_path / "meta.json").write_text(json.dumps({"experiment": {"name": "x", "params": {"n": -1}}}))
    with pytest.raises(ResultsError, match="holds no valid experiment"):
        runner.load(tmp_path)


def test_reuse_saves_shared_runs_under_the_other_preset(tmp_path):
    """fig6 draws the training error of fig1a's runs: `reproduce all` reuses them."""
    from gmstep import presets, runner

    small = {"params": {"n": 20, "m": 20, "trials": 1}, "sweep": {"k_over_m": [0.5, 2.0]}}
    fig1a = presets.get("fig1a").with_changes(**small)
    fig6 = presets.get("fig6").with_changes(**small)
    source = runner.run(fig1a, tmp_path, progress=False)
    assert runner.find_complete(tmp_path / "fig1a", fig6, same_rows=True) is not None
    assert runner.find_complete(tmp_path / "fig1a", fig6) is None  # another name: not its own results
    assert runner.find_complete(tmp_path / "fig1a", fig1a) is not None
    assert runner.find_complete(tmp_path / "fig1a", fig6.with_changes(params={"seed": 1}), same_rows=True) is None
    res = runner.reuse(source, fig6, tmp_path)
    d = tmp_path / "fig6"
    assert (d / "results.csv").read_text() == (tmp_path / "fig1a" / "results.csv").read_text()
    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["reused_from"] == str(tmp_path / "fig1a")
    assert meta["experiment"]["plot"]["metric"] == "train_error"
    assert (d / "fig6.png").stat().st_size > 0
    assert list(res.rows) == list(runner.run(fig6, None, progress=False).rows)
    with pytest.raises(ResultsError, match="differ"):
        runner.reuse(source, fig6.with_changes(params={"seed": 5}), tmp_path)


def test_results_plot_saves_and_summary_matches_the_rows(tmp_path):
    """Results.plot draws (and saves) a figure; summary() is the mean of the rows it came from."""
    import matplotlib.pyplot as plt

    exp = small_experiment(trials=2)
    res = runner.run(exp, tmp_path, progress=False)
    assert res.figures == [tmp_path / exp.name / f"{exp.name}.png", tmp_path / exp.name / f"{exp.name}.pdf"]
    fig = res.plot(tmp_path / "again.pdf", style="paper", errorbars="sem")
    try:
        assert (tmp_path / "again.pdf").read_bytes()[:5] == b"%PDF-" and fig.get_size_inches()[0] == 3.5
    finally:
        plt.close(fig)
    s = res.summary()
    first = s.iloc[0]
    values = [r["test_error"] for r in res.rows if (r["k_over_m"], r["activation"], r["model"])
              == (first["k_over_m"], first["activation"], first["model"])]
    assert first["count"] == len(values) == 2 and math.isclose(first["mean"], sum(values) / 2, rel_tol=1e-12)
    assert math.isclose(res.max_gap(), max(
        abs(a - b) / abs(a) for a, b in zip(s[s.model == "nn"]["mean"], s[s.model == "hermite"]["mean"], strict=True)))
    assert runner.load(tmp_path / exp.name).summary().equals(s)
