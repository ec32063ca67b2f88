"""Kill a running sweep (SIGKILL) at random moments, several times, and resume: same rows.

Also the states a kill can leave at the edges of a run (during the first writes, during the final
canonical rewrite), produced directly.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from functools import partial
from pathlib import Path

import pytest

from gmstep import Experiment, ResultsError, results
from gmstep.experiment import read_toml
from helpers import ENV, GMSTEP, make_experiment, quiet_run

KILL_TOML = """\
name = "killed"

[params]
n = 60
m = 60
trials = 40
activations = ["relu", "sigmoid"]
redraw = "point"

[sweep]
alpha = [0.0, 0.5, 1.0]
beta = [0.25, 0.75]
"""


def command(out: Path, *extra: str) -> list[str]:
    return [str(GMSTEP), "run", "killed.toml", "--out", str(out), "--no-progress", "--no-plot", *extra]


def lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.subprocess
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_rows(tmp_path):
    (tmp_path / "killed.toml").write_text(KILL_TOML)
    exp = Experiment.from_dict(read_toml(tmp_path / "killed.toml"))
    ref = subprocess.run(command(tmp_path / "ref"), cwd=tmp_path, env=ENV, capture_output=True, text=True,
                         timeout=300)
    assert ref.returncode == 0, ref.stderr
    reference = (tmp_path / "ref" / "killed" / "results.csv").read_bytes()

    rng = random.Random(20250101)
    out = tmp_path / "out"
    path = out / "killed" / "results.csv"
    progress = []
    for attempt in range(5):
        before = lines(path)
        resume = ("--resume",) if (out / "killed" / "meta.json").exists() else ()  # else: nothing to resume
        proc = subprocess.Popen(command(out, *resume), cwd=tmp_path, env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if attempt == 0:
            time.sleep(rng.uniform(0.0, 0.4))  # most likely while starting up or writing the first files
        else:  # once new rows flow, at a random moment of the next fraction of a second
            deadline = time.monotonic() + 120
            while lines(path) <= before and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (-signal.SIGKILL, 0), err
        if path.exists() and (out / "killed" / "meta.json").exists():
            table = results.RowTable(exp)
            table.read(path)  # whatever the moment, the file is readable (at worst a torn task is dropped)
            progress.append(table.tasks_done())
    print("tasks done after each kill:", progress)
    assert progress and max(progress) > 0, progress  # the kills did interrupt a sweep with rows on disk

    resume = ("--resume",) if (out / "killed" / "meta.json").exists() else ()
    done = subprocess.run(command(out, *resume), cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert path.read_bytes() == reference
    meta = json.loads((out / "killed" / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["tasks_done"] == meta["tasks"] == 240
    assert not list(path.parent.glob(".*.tmp"))


# ----------------------------------------------------------------------------- edge states


small = partial(make_experiment, {"n": 8, "m": 8, "trials": 2, "activations": ["relu"], "redraw": "trial"},
                {"rho": [0.25, 0.5, 0.75]}, name="edge")


@pytest.fixture
def reference(tmp_path_factory):
    exp = small()
    out = tmp_path_factory.mktemp("edge-ref")
    quiet_run(exp, out)
    return exp, (out / exp.name / "results.csv").read_bytes(), json.loads((out / exp.name / "meta.json").read_text())


def test_killed_during_the_final_rewrite(tmp_path, reference):
    """Every task appended (in some order), meta still 'running', a half-written temporary file."""
    exp, ref, meta = reference
    d = tmp_path / exp.name
    d.mkdir()
    head, *body = ref.splitlines(keepends=True)
    (d / "results.csv").write_bytes(head + b"".join(body[::-1]))  # completion order != canonical order
    (d / ".results.csv.abc123.tmp").write_bytes(ref[: len(ref) // 2])
    (d / ".meta.json.xyz.tmp").write_text("{")
    (d / "meta.json").write_text(json.dumps({**meta, "status": "running"}))
    quiet_run(exp, tmp_path, resume=True)
    assert (d / "results.csv").read_bytes() == ref
    assert sorted(p.name for p in d.iterdir()) == [".lock", "meta.json", "results.csv"]


def test_killed_after_the_header_before_the_first_meta(tmp_path, reference):
    exp, ref, _ = reference
    d = tmp_path / exp.name
    d.mkdir()
    (d / "results.csv").write_bytes(ref.splitlines(keepends=True)[0])
    with pytest.raises(ResultsError, match="nothing to resume"):  # no meta.json: nothing was computed
        quiet_run(exp, tmp_path, resume=True)
    quiet_run(exp, tmp_path)  # a header without rows is no result: a fresh run may replace it
    assert (d / "results.csv").read_bytes() == ref


def test_killed_while_a_fresh_run_replaced_an_earlier_one(tmp_path, reference):
    """An earlier complete run of another configuration, then a fresh run killed after its header."""
    exp, ref, _ = reference
    other = exp.with_changes(params={"trials": 1})
    quiet_run(other, tmp_path)
    d = tmp_path / exp.name
    (d / "results.csv").write_bytes(ref.splitlines(keepends=True)[0])
    with pytest.raises(ResultsError, match=r"params.n \(was 8, now 9\)"):
        quiet_run(exp.with_changes(params={"n": 9}), tmp_path, resume=True)
    quiet_run(exp, tmp_path, resume=True)  # more trials: an extension of the earlier run (which has no rows left)
    assert (d / "results.csv").read_bytes() == ref


def test_killed_mid_line_many_times(tmp_path, reference):
    """Every possible cut of the appended part of the file resumes to the same file."""
    exp, ref, meta = reference
    d = tmp_path / exp.name
    head = ref.index(b"\n") + 1
    for cut in range(head, len(ref) + 1, 7):
        d.mkdir(exist_ok=True)
        (d / "results.csv").write_bytes(ref[:cut])
        (d / "meta.json").write_text(json.dumps({**meta, "status": "running"}))
        quiet_run(exp, tmp_path, resume=True)
        assert (d / "results.csv").read_bytes() == ref, cut


def test_results_without_meta_are_not_silently_resumed(tmp_path, reference):
    exp, ref, _ = reference
    d = tmp_path / exp.name
    d.mkdir()
    (d / "results.csv").write_bytes(ref[: len(ref) // 2])
    with pytest.raises(ResultsError, match="no meta.json beside it"):
        quiet_run(exp, tmp_path, resume=True)
