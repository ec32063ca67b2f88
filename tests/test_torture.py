"""Torture: the installed command in subprocesses, hurt in every way we can produce on one machine.

Random SIGKILLs (also of worker processes), concurrent starts into one directory, a full disk
(``RLIMIT_FSIZE``: writes beyond the limit fail with EFBIG, as ENOSPC would on a full disk, without
mounting anything), a memory limit (``RLIMIT_AS``) and an unreachable Dask scheduler; each is
followed by ``--resume`` (or a plain rerun where nothing was written), and the final results.csv
must equal an uninterrupted run's byte for byte. No finished row is ever lost: after every
failure, the rows on disk are a superset of the rows before it.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ENV, GMSTEP, one_error_line

pytestmark = pytest.mark.subprocess

TOML = """\
name = "torture"

[params]
n = 16
m = 16
trials = 30
activations = ["relu", "tanh"]
redraw = "point"

[sweep]
alpha = [0.0, 0.5, 1.0]
"""


def command(out: Path, *extra: str) -> list[str]:
    return [str(GMSTEP), "run", "torture.toml", "--out", str(out), "--no-progress", "--no-plot", *extra]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """``(working directory, reference results.csv bytes)``."""
    cwd = tmp_path_factory.mktemp("torture")
    (cwd / "torture.toml").write_text(TOML)
    ref = subprocess.run(command(cwd / "ref"), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    return cwd, (cwd / "ref" / "torture" / "results.csv").read_bytes()


def rows(directory: Path) -> set[bytes]:
    """The complete data lines of results.csv (a torn last line is not a row)."""
    try:
        data = (directory / "results.csv").read_bytes()
    except FileNotFoundError:
        return set()
    lines = data.split(b"\n")[1:-1]  # header and the part after the last newline left out
    return set(lines)


def finish(cwd: Path, out: Path, reference: bytes) -> None:
    """Resume (or start, where no run left a meta.json) and compare with the uninterrupted run."""
    resume = ("--resume",) if (out / "torture" / "meta.json").exists() else ()
    done = subprocess.run(command(out, *resume), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (out / "torture" / "results.csv").read_bytes() == reference
    meta = json.loads((out / "torture" / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["tasks_done"] == meta["tasks"] == 90


def test_random_sigkills_with_worker_processes(setup, tmp_path):
    cwd, reference = setup
    rng = random.Random(13)
    out = tmp_path / "out"
    d = out / "torture"
    kept: set[bytes] = set()
    for attempt in range(4):
        resume = ("--resume",) if (d / "meta.json").exists() else ()
        jobs = ("--jobs", "2") if attempt % 2 else ()
        proc = subprocess.Popen(command(out, *resume, *jobs), cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        time.sleep(rng.uniform(0.8, 2.5))  # start-up takes about a second: before, during or after the first rows
        os.killpg(proc.pid, signal.SIGKILL)  # the command and its workers
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (-signal.SIGKILL, 0), err
        now = rows(d)
        assert finished_rows(kept) <= now, "a finished row was lost"
        kept = now
    finish(cwd, out, reference)


def finished_rows(lines: set[bytes]) -> set[bytes]:
    """The rows of complete tasks (all 4 rows of an alpha and a trial): a resume keeps every one of
    them; it may drop only the rows of a task whose write a kill tore."""
    by_task: dict[tuple[bytes, bytes], set[bytes]] = {}
    for line in lines:
        fields = line.split(b",")
        by_task.setdefault((fields[0], fields[3]), set()).add(line)
    return {line for task in by_task.values() if len(task) == 4 for line in task}


def test_concurrent_starts_into_one_directory(setup, tmp_path):
    cwd, reference = setup
    out = tmp_path / "out"
    procs = [subprocess.Popen(command(out), cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outcomes = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 2, 2], outcomes
    for code, err in outcomes:
        if code == 2:
            msg = one_error_line(code, err)
            assert "is in use by another gmstep run (pid " in msg or "--force to replace it" in msg, msg
    assert (out / "torture" / "results.csv").read_bytes() == reference


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_full_disk_then_resume(setup, tmp_path):
    """Writes fail once results.csv would pass 9000 bytes (about a third of the run)."""
    cwd, reference = setup
    out = tmp_path / "out"
    proc = subprocess.run(command(out), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300,
                          preexec_fn=_limit_file_size(9000))
    one_error_line(proc, "File too large", "--resume")
    d = out / "torture"
    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "failed" and "File too large" in meta["reason"]
    assert 0 < meta["tasks_done"] < 90
    kept = finished_rows(rows(d))  # (the failed write may have left part of its task: a resume drops it)
    assert kept <= set(reference.split(b"\n")[1:-1]) and len(kept) == 4 * meta["tasks_done"]
    assert not list(d.glob(".*.tmp"))
    finish(cwd, out, reference)


def test_memory_limit_then_resume(tmp_path):
    """Under RLIMIT_AS, a run that does not fit is refused before the disk; forced past the check,
    it fails at its big point with every finished row kept, and resumes without the limit."""
    cwd = tmp_path
    big = TOML.replace("trials = 30", "trials = 2").replace("[sweep]\nalpha = [0.0, 0.5, 1.0]",
                                                             "[sweep]\nn = [16, 32, 400000]")
    (cwd / "torture.toml").write_text(big)
    ref = subprocess.run(command(cwd / "ref"), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    reference = (cwd / "ref" / "torture" / "results.csv").read_bytes()

    limit = 450 * 2**20

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    out = cwd / "out"
    proc = subprocess.run(command(out), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300,
                          preexec_fn=cap)
    one_error_line(proc, "the run needs about", "memory_check=false")
    assert not (out / "torture").exists()
    proc = subprocess.run(command(out, "--set", "memory_check=false"), cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=300, preexec_fn=cap)
    # Where the allocation fails depends on the threads' timing: inside NumPy's QR (of the big
    # point's structure) NumPy's C code prints a line of its own before gmstep reports the error.
    err = "".join(line for line in proc.stderr.splitlines(keepends=True) if line != "init_gqr_common failed init\n")
    one_error_line(proc.returncode, err, "out of memory")
    d = out / "torture"
    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "failed" and "MemoryError" in meta["reason"]
    assert meta["tasks_done"] == 4 and len(rows(d)) == 16  # the two small points, 2 trials each
    done = subprocess.run(command(out, "--resume"), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (d / "results.csv").read_bytes() == reference


def test_unreachable_scheduler_then_resume(setup, tmp_path):
    """A resume sent to a scheduler that does not answer is refused before it touches the directory."""
    cwd, reference = setup
    out = tmp_path / "out"
    proc = subprocess.run(command(out, "--set", "trials=10"), cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    d = out / "torture"
    before = {p.name: p.read_bytes() for p in d.iterdir() if p.name != ".lock"}
    code = ("import sys; from gmstep import executors, cli; executors.CONNECT_TIMEOUT = 2; "
            "sys.exit(cli.main(sys.argv[1:]))")
    args = command(out, "--resume", "--scheduler", "tcp://127.0.0.1:1")[1:]
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=120)
    one_error_line(proc, "--scheduler: cannot connect to the Dask scheduler at tcp://127.0.0.1:1")
    assert {p.name: p.read_bytes() for p in d.iterdir() if p.name != ".lock"} == before
    finish(cwd, out, reference)  # more trials (10 -> 30): the resume extends the run
