"""One run per directory, no command destroys results, checks before the disk, memory admission.

The subprocess torture tests (random kills, concurrent starts, full disk, memory limit,
unreachable scheduler) live in test_torture.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from gmstep import ConfigError, Experiment, ResultsError, admission, cli, executors, results, safety
from gmstep.errors import DataError
from helpers import make_experiment, quiet_run

small = partial(make_experiment, {"n": 8, "m": 8, "trials": 2, "activations": ["relu"], "redraw": "trial"},
                {"rho": [0.25, 0.5, 0.75]}, name="safe")


def csv_bytes(out: Path, name: str = "safe") -> bytes:
    return (out / name / "results.csv").read_bytes()


@pytest.fixture
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    quiet_run(small(), out)
    return csv_bytes(out)


# ----------------------------------------------------------------------------- the lock


def _holder(directory: Path) -> subprocess.Popen:
    """A separate process that takes the lock of ``directory`` and sleeps."""
    code = ("import sys, time; from gmstep import safety; safety.RunLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.subprocess
def test_a_second_run_is_refused_naming_the_holder_and_a_dead_holders_lock_is_taken_over(tmp_path, reference):
    d = tmp_path / "safe"
    d.mkdir()
    holder = _holder(d)
    try:
        with pytest.raises(ResultsError) as info:
            quiet_run(small(), tmp_path)
        msg = str(info.value)
        assert "\n" not in msg and f"{d} is in use by another gmstep run (pid {holder.pid} on host " in msg
        assert " since 20" in msg and "UTC" in msg
        assert not (d / "results.csv").exists()  # the refused run wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    quiet_run(small(), tmp_path)  # the kernel released the dead holder's lock: taken over
    assert csv_bytes(tmp_path) == reference
    assert json.loads((d / ".lock").read_text())["pid"] == os.getpid()


def test_the_lock_is_released_after_a_run_and_after_a_failure(tmp_path):
    quiet_run(small(), tmp_path)
    with safety.RunLock(tmp_path / "safe"):
        pass
    with pytest.raises(ResultsError, match="holds 12 rows"):
        quiet_run(small(), tmp_path)
    with safety.RunLock(tmp_path / "safe"):
        pass


# ----------------------------------------------------------------------------- no command destroys results


def test_running_into_a_directory_with_rows_is_refused(tmp_path, reference):
    quiet_run(small(), tmp_path)
    other = small(trials=1)
    with pytest.raises(ResultsError) as info:
        quiet_run(other, tmp_path)
    d = tmp_path / "safe"
    assert str(info.value) == (f"{d} holds 12 rows of a complete run; --resume to continue, --force to replace it, "
                               "or another --out")
    assert csv_bytes(tmp_path) == reference
    meta = json.loads((d / "meta.json").read_text())
    meta["status"] = "interrupted"
    (d / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ResultsError, match="holds 12 rows of an interrupted run"):
        quiet_run(other, tmp_path)


def test_force_replaces_only_after_the_first_task(tmp_path, reference, monkeypatch):
    quiet_run(small(), tmp_path)
    d = tmp_path / "safe"
    (d / "safe.png").write_bytes(b"old figure")
    old_meta = (d / "meta.json").read_bytes()
    other = small(trials=1, seed=3)
    seen: list[bytes] = []
    real = executors.execute

    def watching(exp, tasks, **kw):
        for rows in real(exp, tasks, **kw):
            seen.append(csv_bytes(tmp_path))  # what the directory holds while the first task is handed over
            yield rows

    monkeypatch.setattr(executors, "execute", watching)
    res = quiet_run(other, tmp_path, force=True)
    assert seen[0] == reference  # old rows untouched until the new run's first task was done
    assert res.complete and len(res.rows) == 6
    assert not (d / "safe.png").exists()  # the old figure went with the old rows
    fresh = tmp_path / "fresh"
    monkeypatch.setattr(executors, "execute", real)
    quiet_run(other, fresh)
    assert csv_bytes(tmp_path) == csv_bytes(fresh)
    assert (d / "meta.json").read_bytes() != old_meta


def test_force_that_fails_before_its_first_task_keeps_the_old_files(tmp_path, reference, monkeypatch):
    quiet_run(small(), tmp_path)
    d = tmp_path / "safe"
    before = {p.name: p.read_bytes() for p in d.iterdir() if p.name != ".lock"}

    def broken(exp, tasks, **kw):
        raise DataError("the data vanished")
        yield  # pragma: no cover

    monkeypatch.setattr(executors, "execute", broken)
    with pytest.raises(DataError):
        quiet_run(small(trials=1), tmp_path, force=True)
    assert {p.name: p.read_bytes() for p in d.iterdir() if p.name != ".lock"} == before


def test_force_and_resume_together_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="--force: cannot be combined with --resume"):
        quiet_run(small(), tmp_path, resume=True, force=True)


def test_force_through_the_command_line(tmp_path, capsys):
    base = ["reproduce", "fig2b", "--quick", "--set", "n=8", "--set", "m=8", "--set", "activations=relu",
            "--trials", "1", "--out", str(tmp_path), "--no-plot", "--no-progress"]
    assert cli.main(base) == 0
    path = tmp_path / "fig2b" / "results.csv"
    full = path.read_bytes()
    capsys.readouterr()
    assert cli.main([*base, "--values", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds" in err and "--force to replace it" in err
    assert path.read_bytes() == full
    assert cli.main([*base, "--values", "0", "--force"]) == 0
    assert path.read_bytes().count(b"\n") == 1 + 2  # header + 1 value x 1 trial x relu x 2 models


# ----------------------------------------------------------------------------- failures later


def test_a_failure_later_keeps_rows_records_the_reason_and_resumes(tmp_path, reference, monkeypatch):
    real = executors.execute

    def failing(exp, tasks, **kw):
        for i, rows in enumerate(real(exp, tasks, **kw)):
            if i == 3:
                raise RuntimeError("worker lost\nsecond line")
            yield rows

    monkeypatch.setattr(executors, "execute", failing)
    with pytest.raises(RuntimeError):
        quiet_run(small(), tmp_path)
    d = tmp_path / "safe"
    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "failed" and meta["reason"] == "RuntimeError: worker lost second line"
    assert meta["tasks_done"] == 3
    monkeypatch.setattr(executors, "execute", real)
    with pytest.raises(ResultsError, match="holds 6 rows of an interrupted run"):
        quiet_run(small(), tmp_path)
    quiet_run(small(), tmp_path, resume=True)
    assert csv_bytes(tmp_path) == reference


# ----------------------------------------------------------------------------- extend


@pytest.mark.parametrize("change", ["trials", "values", "both"])
def test_resume_with_more_trials_or_values_adds_only_the_missing_tasks(tmp_path, change, monkeypatch):
    first = small()
    final = first
    if change in ("trials", "both"):
        final = final.with_changes(params={"trials": 3})
    if change in ("values", "both"):
        final = final.with_changes(sweep={"rho": [0.1, 0.25, 0.5, 0.75]})
    fresh = tmp_path / "fresh"
    quiet_run(final, fresh)
    quiet_run(first, tmp_path)
    (tmp_path / "safe" / "safe.png").write_bytes(b"figure of the smaller run")
    seen: list = []
    real = executors.execute
    monkeypatch.setattr(executors, "execute", lambda e, t, **kw: (seen.extend(t), real(e, t, **kw))[1])
    quiet_run(final, tmp_path, resume=True)
    old = {(first.points()[p]["rho"], t) for p, t in first.tasks()}
    assert {(final.points()[p]["rho"], t) for p, t in seen} == {
        (final.points()[p]["rho"], t) for p, t in final.tasks()} - old
    assert csv_bytes(tmp_path) == csv_bytes(fresh)
    assert json.loads((tmp_path / "safe" / "meta.json").read_text())["experiment"]["params"]["trials"] == \
        final.params["trials"]
    assert not (tmp_path / "safe" / "safe.png").exists()  # (with plot=False): no stale figure beside the rows


@pytest.mark.parametrize(("change", "named"), [
    ({"params": {"trials": 1}}, "params.trials (was 2, now 1)"),
    ({"sweep": {"rho": [0.25, 0.5]}}, "sweep.rho"),
    ({"params": {"lambda": 1e-3}}, "params.lambda"),
])
def test_any_other_change_on_resume_is_refused(tmp_path, change, named):
    quiet_run(small(), tmp_path)
    with pytest.raises(ResultsError) as info:
        quiet_run(small().with_changes(**change), tmp_path, resume=True)
    assert named in str(info.value) and "\n" not in str(info.value)


def test_memory_check_is_not_a_difference(tmp_path, reference):
    quiet_run(small(), tmp_path)
    quiet_run(small(memory_check=False), tmp_path, resume=True)
    assert csv_bytes(tmp_path) == reference


# ----------------------------------------------------------------------------- canonical values


def test_a_single_value_reproduces_its_row_of_the_linspace_sweep_bit_for_bit(tmp_path):
    values = [float(v) for v in np.linspace(0, 1, 6)]
    assert repr(values[3]) == "0.6000000000000001"
    params = {"n": 8, "m": 8, "trials": 2, "activations": ["relu", "tanh"], "redraw": "point"}
    full = quiet_run(Experiment.create("lin", params, {"alpha": values}), tmp_path / "full")
    one = quiet_run(Experiment.create("lin", params, {"alpha": [0.6]}), tmp_path / "one")
    assert [r for r in full.rows if r["alpha"] == 0.6] == list(one.rows) and len(one.rows) == 8
    lines = (tmp_path / "one" / "lin" / "results.csv").read_text().splitlines()[1:]
    assert all(line.startswith("0.6,") for line in lines)
    assert set(lines) <= set((tmp_path / "full" / "lin" / "results.csv").read_text().splitlines())


# ----------------------------------------------------------------------------- memory admission


def test_memory_admission_counts_every_task_in_flight():
    exp = small(n=2000, m=2000, trials=4)
    from gmstep import config

    p = config.resolved(exp.point_params(exp.points()[0]))
    one = safety.process_memory(p, 1)
    assert one > 2000 * (2000 * 7) * 8  # data of the task and the cached data set
    memory = int(one * 2.5 / safety.MEMORY_FRACTION)
    safety.admit_memory(exp, 12, jobs=1, memory=memory)  # one process (its threads' scratch is small)
    with pytest.raises(ConfigError) as info:
        safety.admit_memory(exp, 12, jobs=4, memory=memory)
    msg = str(info.value)
    assert msg.startswith("--jobs: the run needs about") and "x 4 at once" in msg and "use --jobs 2 or fewer" in msg
    assert "memory_check=false" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match=r"^(n|m|k|m_test): the run needs about .* reduce n, m, k or m_test"):
        safety.admit_memory(exp, 12, jobs=1, memory=one // 4)
    safety.admit_memory(small(n=2000, m=2000, memory_check=False), 12, jobs=4, memory=one // 4)


def test_memory_admission_refuses_a_huge_run_before_touching_the_disk(tmp_path, capsys):
    code = cli.main(["reproduce", "fig1a", "--quick", "--set", "n=760000", "--out", str(tmp_path),
                     "--no-plot", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "the run needs about" in err
    assert not any(tmp_path.iterdir())


def test_a_row_table_beyond_the_machine_is_refused_even_without_the_memory_check(monkeypatch):
    """The row table is allocated whole: memory_check=false cannot let it through."""
    exp = small(trials=10**6, memory_check=False)
    rows = len(exp.points()) * 10**6 * exp.rows_per_task()
    monkeypatch.setattr(safety, "physical_memory", lambda: 2 * rows * results.bytes_per_row() - 2)
    with pytest.raises(ConfigError, match=rf"^trials: {rows} rows to compute: far more than this machine can hold"):
        safety.admit_memory(exp, 1)
    monkeypatch.setattr(safety, "physical_memory", lambda: 2 * rows * results.bytes_per_row())
    safety.admit_memory(exp, 1)  # exactly half the physical memory: allowed


def test_available_memory_is_positive_and_below_physical():
    avail = safety.available_memory()
    assert avail is not None and 0 < avail <= admission.physical_memory()


# ----------------------------------------------------------------------------- data presence


def test_missing_fashion_mnist_is_refused_before_the_disk(tmp_path, capsys):
    code = cli.main(["reproduce", "fig3a", "--quick", "--set", f"data_dir={tmp_path / 'none'}",
                     "--out", str(tmp_path / "out"), "--no-plot", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Fashion-MNIST not found" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.subprocess
def test_missing_generator_is_refused_before_the_disk(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GMSTEP_CACHE", str(tmp_path / "cache"))
    pytest.importorskip("torch")
    code = cli.main(["reproduce", "fig3a", "--quick", "--set", "source=cgan",
                     "--out", str(tmp_path / "out"), "--no-plot", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no trained conditional GAN" in err
    assert not (tmp_path / "out").exists()


def test_existing_rows_counts_complete_lines(tmp_path):
    assert safety.existing_rows(tmp_path) == safety.Existing(0, None, False)
    (tmp_path / results.RESULTS).write_bytes(b"h\n1\n2\n3")
    assert safety.existing_rows(tmp_path).rows == 2


# ----------------------------------------------------------------------------- the issue's cases, as typed


@pytest.mark.parametrize(("argv", "needles"), [
    (["reproduce", "fig2a", "--quick", "--set", "ratios=0.3,0.7"], ("ratios", "rho")),
    (["reproduce", "fig1a", "--quick", "--values", "0.0001,0.001,0.002", "--set", "m=50"],
     ("k_over_m", "width k below 1")),
    (["reproduce", "fig1a", "--quick", "--values", "0.02,0.025", "--set", "m=50"], ("k_over_m", "both give")),
    (["reproduce", "fig1a", "--quick", "--set", "eta_exponent=200"], ("eta_exponent: must be in [-30.0, 30.0]",)),
])
def test_the_issues_mislabelling_commands_give_one_line(tmp_path, capsys, argv, needles):
    code = cli.main([*argv, "--out", str(tmp_path), "--no-plot", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("gmstep: error: "), err
    for needle in needles:
        assert needle in err, err
    assert not any(tmp_path.iterdir())
