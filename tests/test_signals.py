"""Ctrl-C and SIGTERM on the real command: exit 130 / 143, rows kept, the printed resume works."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gmstep import Experiment, results
from gmstep.experiment import read_toml
from helpers import ENV, GMSTEP

# 300 tasks of a few milliseconds each: a run of a couple of seconds.
SWEEP_TOML = """\
name = "sweep"

[params]
n = 80
m = 80
trials = 100
activations = ["relu", "tanh"]
redraw = "trial"

[sweep]
k_over_m = [0.5, 1.0, 2.0]
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The TOML file and the bytes of results.csv of an uninterrupted run of it."""
    base = tmp_path_factory.mktemp("signals")
    toml = base / "sweep.toml"
    toml.write_text(SWEEP_TOML)
    ref = base / "reference"
    proc = subprocess.run([str(GMSTEP), "run", "sweep.toml", "--out", str(ref), "--no-progress", "--no-plot"],
                          cwd=base, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return base, (ref / "sweep" / "results.csv").read_bytes()


def data_rows(path: Path) -> int:
    try:
        return max(path.read_bytes().count(b"\n") - 1, 0)
    except FileNotFoundError:
        return 0


def start(base: Path, out: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([str(GMSTEP), "run", "sweep.toml", "--out", out, "--no-progress", "--no-plot", *extra],
                            cwd=base, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(proc: subprocess.Popen, path: Path, rows: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while data_rows(path) < rows:
        assert proc.poll() is None, f"finished before it could be interrupted: {proc.communicate()}"
        assert time.monotonic() < deadline, "no rows appeared"
        time.sleep(0.005)


@pytest.mark.subprocess
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_cleanly_and_the_printed_command_resumes(setup, signum, code):
    base, ref = setup
    out = f"out-{signum}"
    path = base / out / "sweep" / "results.csv"
    proc = start(base, out)
    wait_for_rows(proc, path, 8)  # at least two tasks written
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert stdout == "" and stderr.count("\n") == 1 and "Traceback" not in stderr
    name = signal.Signals(signum).name
    assert stderr.startswith(f"gmstep: interrupted by {name}: ")
    done = int(stderr.split(": ")[2].split(" of ")[0])
    assert 2 <= done < 300 and " of 300 tasks finished and kept in " in stderr

    # the files are consistent: complete tasks only, as many as reported, meta says interrupted
    exp = Experiment.from_dict(read_toml(base / "sweep.toml"))
    table = results.RowTable(exp)
    assert table.read(path) == 0
    assert table.tasks_done() == done
    meta = json.loads((path.parent / "meta.json").read_text())
    assert meta["status"] == "interrupted" and meta["tasks_done"] == done
    assert not list(path.parent.glob(".*.tmp"))

    # the command printed after "resume with:" completes the run, identical to an uninterrupted one
    command = shlex.split(stderr.split("resume with: ", 1)[1])
    assert command[0] == "gmstep" and command[-1] == "--resume" and command.count("--resume") == 1
    proc = subprocess.run([str(GMSTEP), *command[1:]], cwd=base, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert path.read_bytes() == ref
    meta = json.loads((path.parent / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["sessions"] == 2


@pytest.mark.subprocess
def test_second_ctrl_c_during_cleanup_does_not_tear_the_file(setup):
    """Two SIGINTs in a row: the second arrives while stopping and is ignored."""
    base, _ = setup
    out = "out-double"
    path = base / out / "sweep" / "results.csv"
    proc = start(base, out)
    wait_for_rows(proc, path, 4)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in stderr
    exp = Experiment.from_dict(read_toml(base / "sweep.toml"))
    assert results.RowTable(exp).read(path) == 0
