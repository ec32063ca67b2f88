"""Executors: serial, worker processes and Dask give byte-identical results, and stop cleanly.

Every sweep here is tiny; the Dask tests start a real LocalCluster on the loopback interface
(127.0.0.1 only) with two single-threaded workers and take a few seconds each.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from gmstep import activations, executors, experiment, runner
from gmstep.engine import parallel
from gmstep.engine import task as engine_task
from gmstep.errors import ConfigError, DataError, GmstepError
from gmstep.experiment import Experiment
from helpers import make_experiment

#: A sweep with both ridge orientations (k < m and k > m), several test blocks
#: (m_test > ROW_BLOCK), points sharing data (redraw "point") and several trials.
PARAMS = {"n": 40, "m": 36, "m_test": 700, "trials": 2, "seed": 21, "redraw": "point"}
SWEEP = {"k_over_m": [0.5, 1.0, 4.0]}


tiny = partial(make_experiment, PARAMS, SWEEP, name="tiny")


def results_bytes(directory: Path) -> bytes:
    return (directory / "tiny" / "results.csv").read_bytes()


@pytest.fixture(scope="module")
def serial_csv(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("serial")
    runner.run(tiny(), out, jobs=1, progress=False, plot=False)
    return results_bytes(out)


def test_jobs_2_equals_jobs_1_byte_for_byte(serial_csv: bytes, tmp_path: Path) -> None:
    runner.run(tiny(), tmp_path, jobs=2, progress=False, plot=False)
    assert results_bytes(tmp_path) == serial_csv
    assert len(serial_csv.splitlines()) == 1 + 3 * 2 * 3 * 2  # header + points x trials x activations x models


def test_rows_do_not_depend_on_threads_per_task() -> None:
    exp = Experiment.create("t", {**PARAMS, "m": 600, "m_test": 1100, "n": 30, "trials": 1}, {"k_over_m": [0.1]})
    out = {}
    try:
        for threads in (1, 3):
            parallel.set_threads(threads)
            out[threads] = engine_task.run_task(exp, 0, 0)
    finally:
        parallel.set_threads(None)
    assert out[1] == out[3]  # exact equality of every float


def test_schedule_is_a_permutation_grouped_by_data_and_largest_first() -> None:
    exp = tiny()
    tasks = exp.tasks()
    order = executors.schedule(exp, tasks)
    assert sorted(order) == sorted(tasks)
    # redraw "point": data keys are per point, so each point's trials stay together.
    keys = [engine_task.task_data_key(exp, *t) for t in order]
    assert keys == sorted(keys, key=keys.index)
    shared = Experiment.create("s", {**PARAMS, "redraw": "once"}, SWEEP)
    order = executors.schedule(shared, shared.tasks())
    assert [shared.points()[p]["k_over_m"] for p, _ in order][:2] == [4.0, 4.0]  # one data set: largest first


def test_point_at_matches_points() -> None:
    exp = Experiment.create("g", {"n": 10, "m": 10}, {"alpha": [0.1, 0.2, 0.3], "beta": [0.4, 0.5]})
    assert [experiment.point_at(exp, i) for i in range(6)] == exp.points()
    with pytest.raises(IndexError):
        experiment.point_at(exp, 6)


def test_bad_jobs_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--jobs"):
        executors.execute(tiny(), tiny().tasks(), jobs=0)


def test_worker_errors_keep_their_class_and_message(tmp_path: Path) -> None:
    exp = Experiment.create(
        "f", {"dataset": "fashion-mnist", "task": "classification", "n": 784, "m": 20, "trials": 2,
              "data_dir": str(tmp_path / "missing")}, {})
    with pytest.raises(DataError, match="Fashion-MNIST not found"):
        list(executors.execute(exp, exp.tasks(), jobs=2))


def test_closing_the_generator_stops_the_workers() -> None:
    exp = Experiment.create("slow", {"n": 200, "m": 200, "trials": 12, "seed": 1}, {"k_over_m": [2.0]})
    gen = executors.execute(exp, exp.tasks(), jobs=2)
    rows = next(gen)
    assert len(rows.statuses) == exp.rows_per_task()
    gen.close()
    deadline = time.monotonic() + 30
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert multiprocessing.active_children() == []


def test_a_killed_worker_is_a_one_line_error() -> None:
    exp = Experiment.create("slow", {"n": 200, "m": 200, "trials": 12, "seed": 1}, {"k_over_m": [2.0]})
    gen = executors.execute(exp, exp.tasks(), jobs=2)
    next(gen)
    victim = multiprocessing.active_children()[0]
    os.kill(victim.pid, signal.SIGKILL)
    with pytest.raises(GmstepError, match="worker process stopped unexpectedly"):
        for _ in gen:
            pass
    deadline = time.monotonic() + 30
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert multiprocessing.active_children() == []


def cube(u: np.ndarray) -> np.ndarray:
    return u**3 / 3.0


def cube_deriv(u: np.ndarray) -> np.ndarray:
    return u**2


def test_custom_activation_reaches_the_workers(tmp_path: Path) -> None:
    activations.register(activations.Activation("cube3", cube, cube_deriv))
    exp = Experiment.create("tiny", {**PARAMS, "activations": ["cube3", "relu"]}, {"k_over_m": [0.5, 2.0]})
    runner.run(exp, tmp_path / "a", jobs=1, progress=False, plot=False)
    runner.run(exp, tmp_path / "b", jobs=2, progress=False, plot=False)
    assert results_bytes(tmp_path / "a") == results_bytes(tmp_path / "b")


def test_unpicklable_activation_is_refused_for_processes() -> None:
    activations.register(activations.Activation("lam", lambda u: 2 * u, lambda u: 2 + 0 * u))
    exp = Experiment.create("l", {**PARAMS, "activations": ["lam"]}, SWEEP)
    with pytest.raises(ConfigError, match="cannot be sent to worker processes"):
        executors.execute(exp, exp.tasks(), jobs=2)


def test_missing_dask_is_a_one_line_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import fails
    with pytest.raises(ConfigError) as info:
        executors.execute(tiny(), tiny().tasks(), scheduler="local")
    assert str(info.value) == "--scheduler: needs Dask: pip install 'gmstep[cluster]'"


@pytest.mark.subprocess
def test_sigint_with_workers_stops_cleanly_and_keeps_finished_tasks(tmp_path: Path) -> None:
    """A real `gmstep run` in worker processes: SIGINT ends it with 130 and a resumable directory."""
    spec = tmp_path / "exp.toml"
    spec.write_text('name = "intr"\n[params]\nn = 150\nm = 150\ntrials = 200\n[sweep]\nk_over_m = [1.0, 2.0]\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "gmstep.cli", "run", str(spec), "--jobs", "2", "--out", str(tmp_path),
         "--no-progress", "--no-plot"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    csv = tmp_path / "intr" / "results.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not csv.exists() or len(csv.read_text().splitlines()) < 8):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # like Ctrl-C in a terminal: the whole process group
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 130, err
    assert "--resume" in err
    res = runner.load(tmp_path / "intr")
    assert 0 < len(res.rows) < 2 * 200 * 6


# ----------------------------------------------------------------------------- Dask


@pytest.mark.slow
def test_dask_local_cluster_equals_serial(serial_csv: bytes, tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    runner.run(tiny(), tmp_path, jobs=2, scheduler="local", progress=False, plot=False)
    assert results_bytes(tmp_path) == serial_csv


@pytest.mark.slow
def test_dask_scheduler_address_equals_serial(serial_csv: bytes, tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        runner.run(tiny(), tmp_path, scheduler=address, progress=False, plot=False)
    assert results_bytes(tmp_path) == serial_csv


def test_unreachable_scheduler_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dask.distributed")
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", 2)
    with pytest.raises(ConfigError, match="cannot connect"):
        list(executors.execute(tiny(), tiny().tasks(), scheduler="tcp://127.0.0.1:9"))


# ----------------------------------------------------------------------------- security (a cluster is not an open door)


@pytest.mark.slow
def test_local_cluster_listens_on_loopback_only() -> None:
    distributed = pytest.importorskip("dask.distributed")
    client, cluster = executors._connect("local", 2, distributed.Client, distributed.LocalCluster)
    try:
        addresses = [client.scheduler.address, *client.scheduler_info()["workers"]]
        assert len(addresses) == 3
        assert all(a.startswith("tcp://127.0.0.1:") for a in addresses), addresses
    finally:
        client.close()
        cluster.close()


@pytest.mark.slow
def test_tls_scheduler_with_temporary_credentials_equals_serial(serial_csv: bytes, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("dask.distributed")
    pytest.importorskip("cryptography")
    from distributed.security import Security

    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", 5)
    security = Security.temporary()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  protocol="tls://", security=security, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        with pytest.raises(ConfigError, match="--scheduler: cannot connect to the Dask scheduler at tls://"):
            runner.run(tiny(), tmp_path / "plain", scheduler=address, progress=False, plot=False)
        assert not (tmp_path / "plain").exists()  # refused before anything was written
        runner.run(tiny(), tmp_path, scheduler=address, security=security, progress=False, plot=False)
    assert results_bytes(tmp_path) == serial_csv


@pytest.mark.parametrize(("address", "open_door"), [
    ("tcp://10.1.2.3:8786", True), ("192.0.2.7:8786", True), ("tcp://scheduler.example.org:8786", True),
    ("tcp://127.0.0.1:8786", False), ("tcp://localhost:8786", False), ("tcp://[::1]:8786", False),
    ("127.0.0.5:8786", False), ("tls://10.1.2.3:8786", False), ("tls://scheduler.example.org:8786", False),
])
def test_plain_tcp_beyond_loopback_is_an_open_door(address: str, open_door: bool) -> None:
    warning = executors.open_address_warning(address)
    assert (warning is not None) == open_door
    if warning:
        assert "\n" not in warning and "run code on the workers" in warning and "tls://" in warning


def test_the_open_door_warning_is_one_line_before_the_connection(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dask.distributed")
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", 1)
    with pytest.raises(ConfigError, match="cannot connect"):
        executors.check_request(1, "tcp://192.0.2.1:8786")  # TEST-NET-1: never answers
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gmstep: warning: tcp://192.0.2.1:8786 is plain TCP")
