"""Hostile input: broken TOML, wrong values, unwritable places, a full disk, files that are not ours.

Each case ends in exactly one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from gmstep import results
from helpers import GMSTEP, ROOT, main, one_error_line

GOOD = """\
name = "hostile"

[params]
n = 8
m = 8
trials = 2
activations = ["relu"]

[sweep]
rho = [0.25, 0.5, 0.75]
"""


def run_toml(capsys, tmp_path: Path, text: str | bytes, *extra: str) -> tuple[int, str, str]:
    path = tmp_path / "exp.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return main(capsys, "run", path, "--out", tmp_path / "out", "--no-plot", "--no-progress", *extra)


# ----------------------------------------------------------------------------- TOML


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (GOOD.replace("m = 8", "m = = 8"), 5),
        (GOOD.replace('activations = ["relu"]', 'activations = ["relu"'), 9),
        (GOOD.replace("trials = 2", "trials = 2\ntrials = 3"), 7),
        (GOOD.replace('name = "hostile"', 'name = "hostile'), 1),
        (GOOD + "\n[params]\n", 12),
        (GOOD.replace("rho = [", "rho: ["), 10),
    ],
)
def test_toml_syntax_errors_point_at_their_line(capsys, tmp_path, text, line):
    msg = one_error_line(*run_toml(capsys, tmp_path, text)[::2])
    assert f"exp.toml: line {line}, column " in msg and "not valid TOML" in msg


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"\xff\xfe name = 1", "not UTF-8"),
        ("a = " + "[" * 5000 + "]" * 5000, "exp.toml"),
        ("", "name"),
    ],
)
def test_unreadable_toml(capsys, tmp_path, text, message):
    assert message in one_error_line(*run_toml(capsys, tmp_path, text)[::2])


def test_toml_path_problems(capsys, tmp_path):
    assert "no such file" in one_error_line(*main(capsys, "run", tmp_path / "nope.toml")[::2])
    assert "is a directory" in one_error_line(*main(capsys, "run", tmp_path)[::2])


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (("n = 8", 'n = "eight"'), "n"),
        (("n = 8", "n = 8.5"), "n"),
        (("n = 8", "n = 0"), "n"),
        (("n = 8", "n = true"), "n"),
        (("n = 8", "n = 1979-05-27"), "n"),
        (("m = 8", "m = [8]"), "m"),
        (("m = 8", "m = {a = 1}"), "m"),
        (("trials = 2", "trials = 0"), "trials"),
        (("trials = 2", "trials = 2\nalpha = 1.5"), "alpha"),
        (("trials = 2", "trials = 2\nbeta = -1"), "beta"),
        (("trials = 2", "trials = 2\nalignment = 1.01"), "alignment"),
        (("trials = 2", "trials = 2\nratios = [0.5, 0.6]"), "ratios"),
        (("trials = 2", "trials = 2\nlambda = 0"), "lambda"),
        (("trials = 2", "trials = 2\nlambda = nan"), "lambda"),
        (("trials = 2", "trials = 2\nlambda = inf"), "lambda"),
        (("trials = 2", "trials = 2\ndegree = -2"), "degree"),
        (("trials = 2", "trials = 2\nrank = 8"), "rank"),
        (("trials = 2", "trials = 2\nwidth = 3"), "width"),
        (('activations = ["relu"]', 'activations = ["relu", "swish"]'), "activations"),
        (('activations = ["relu"]', "activations = [1]"), "activations"),
        (('activations = ["relu"]', "activations = []"), "activations"),
        (("rho = [0.25, 0.5, 0.75]", "rho = [0.25, 1.5]"), "rho"),
        (("rho = [0.25, 0.5, 0.75]", "rho = 0.5"), "rho"),
        (("rho = [0.25, 0.5, 0.75]", "rho = []"), "rho"),
        (("rho = [0.25, 0.5, 0.75]", "rho = [0.5, 0.5]"), "rho"),
        (("rho = [0.25, 0.5, 0.75]", "speed = [1, 2]"), "speed"),
        (("rho = [0.25, 0.5, 0.75]", "rho = [[0.5]]"), "rho"),
        (("rho = [0.25, 0.5, 0.75]", 'rho = ["a"]'), "rho"),
        (('name = "hostile"', 'name = "hostile"\nplot = 3'), "plot"),
        (('name = "hostile"', 'name = "hostile"\nplot = {kind = "pie"}'), "plot.kind"),
        (('name = "hostile"', 'name = "hostile"\ncolour = "red"'), "colour"),
        (('name = "hostile"', 'name = "../escape"'), "name"),
        (('name = "hostile"', 'name = ".."'), "name"),
        (('name = "hostile"', 'name = ""'), "name"),
        (('name = "hostile"', "name = 3"), "name"),
        (('name = "hostile"', 'description = "no name"'), "name"),
        (("n = 8", "n = 9223372036854775807"), "n"),
        (("trials = 2", "trials = 9223372036854775807"), "trials"),
        (("trials = 2", "trials = 2\nk = 100000000"), "k"),
    ],
)
def test_toml_values_are_checked_with_the_key_named(capsys, tmp_path, change, key):
    old, new = change
    assert old in GOOD
    msg = one_error_line(*run_toml(capsys, tmp_path, GOOD.replace(old, new))[::2])
    assert re.search(rf"(^|[\s:]){re.escape(key)}:", msg), msg
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("results.csv"))


def test_nothing_in_a_configuration_is_evaluated(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    code = f"__import__('os').system('touch {marker}')"
    texts = [
        GOOD.replace('activations = ["relu"]', f'activations = ["{code}"]'),
        GOOD.replace("n = 8", f'n = "{code}"'),
        GOOD.replace('name = "hostile"', f'name = "{code}"'),
        GOOD.replace("rho = [0.25, 0.5, 0.75]", f'rho = ["{code}"]'),
    ]
    for text in texts:
        one_error_line(*run_toml(capsys, tmp_path, text)[::2])
    one_error_line(*main(capsys, "reproduce", "fig1a", "--set", f"n={code}")[::2])
    one_error_line(*main(capsys, "reproduce", "fig1a", "--values", code)[::2])
    one_error_line(*main(capsys, "hermite", code)[::2])
    assert not marker.exists()
    # and the source has no way to do it: no eval/exec, no unpickling of configuration
    for path in (ROOT / "src" / "gmstep").glob("*.py"):
        source = path.read_text()
        assert not re.search(r"(?<![\w.])(eval|exec)\(", source), path
        assert "yaml.load(" not in source and "pickle.load" not in source, path


# ----------------------------------------------------------------------------- where results go


def test_output_directory_under_a_regular_file(capsys, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    code, _, err = main(capsys, "reproduce", "fig1a", "--quick", "--trials", "1", "--values", "1",
                        "--out", blocker / "out", "--no-plot", "--no-progress")
    assert "cannot create output directory" in one_error_line(code, err)


def test_output_directory_in_proc(capsys, tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text(GOOD)
    code, _, err = main(capsys, "run", path, "--out", f"/proc/gmstep-{uuid.uuid4().hex}", "--no-plot",
                        "--no-progress")
    assert "cannot create output directory /proc/" in one_error_line(code, err)


def test_results_file_that_is_a_directory(capsys, tmp_path):
    (tmp_path / "out" / "hostile" / "results.csv").mkdir(parents=True)
    msg = one_error_line(*run_toml(capsys, tmp_path, GOOD)[::2])
    assert "results.csv" in msg and "not a regular file" in msg


def test_read_only_output_directory(capsys, tmp_path, monkeypatch):
    """A read-only file system (simulated: every create or open for writing under the output
    directory fails with EROFS, as a read-only mount gives, without mounting anything)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    real_open, real_mkdir = os.open, os.mkdir

    def refused(path) -> bool:
        return str(os.fspath(path)).startswith(str(ro))

    def ro_open(path, flags, *args, **kwargs):
        if refused(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    def ro_mkdir(path, *args, **kwargs):
        if refused(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", ro_open)
    monkeypatch.setattr(os, "mkdir", ro_mkdir)
    msg = one_error_line(*main(capsys, "run", _good(tmp_path), "--out", ro, "--no-plot", "--no-progress")[::2])
    assert "Read-only file system" in msg


def _good(tmp_path: Path, text: str = GOOD) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


def test_full_disk_simulated(capsys, tmp_path, monkeypatch):
    """os.write fails with ENOSPC at the third task: one line, exit 2, finished rows kept, resumable."""
    toml = _good(tmp_path)
    ref_out = tmp_path / "ref"
    assert main(capsys, "run", toml, "--out", ref_out, "--no-plot", "--no-progress")[0] == 0
    reference = (ref_out / "hostile" / "results.csv").read_bytes()

    real_write = os.write
    calls = []

    def filling(fd, data):
        calls.append(len(data))
        if len(calls) >= 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(results.os, "write", filling)
    out = tmp_path / "out"
    msg = one_error_line(*main(capsys, "run", toml, "--out", out, "--no-plot", "--no-progress")[::2])
    assert "No space left on device" in msg and "resume" in msg
    d = out / "hostile"
    assert json.loads((d / "meta.json").read_text())["status"] == "failed"
    assert (d / "results.csv").read_bytes() == reference[: len(reference.splitlines(keepends=True)[0])
                                                         + sum(calls[:2])]
    monkeypatch.setattr(results.os, "write", real_write)
    assert main(capsys, "run", toml, "--out", out, "--no-plot", "--no-progress", "--resume")[0] == 0
    assert (d / "results.csv").read_bytes() == reference


@pytest.mark.subprocess
def test_full_disk_for_real(tmp_path):
    """The file system refuses writes half-way through the sweep (RLIMIT_FSIZE with SIGXFSZ ignored:
    EFBIG, as a full disk gives ENOSPC, without mounting anything); --resume then completes."""
    import resource
    import signal

    toml = _good(tmp_path, GOOD.replace("trials = 2", "trials = 60"))  # 180 rows: about 12 kB
    ref = subprocess.run([str(GMSTEP), "run", str(toml), "--out", str(tmp_path / "ref"), "--no-plot",
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    reference = (tmp_path / "ref" / "hostile" / "results.csv").read_bytes()

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (6000, 6000))

    argv = [str(GMSTEP), "run", str(toml), "--out", str(tmp_path / "disk"), "--no-plot", "--no-progress"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert "File too large" in one_error_line(proc.returncode, proc.stderr)
    assert not list((tmp_path / "disk" / "hostile").glob(".*.tmp"))
    proc = subprocess.run([*argv, "--resume"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "disk" / "hostile" / "results.csv").read_bytes() == reference


# ----------------------------------------------------------------------------- files that are not ours


@pytest.fixture
def finished(tmp_path, capsys):
    """A finished run of GOOD in tmp_path/out: (toml path, results directory)."""
    toml = _good(tmp_path)
    assert main(capsys, "run", toml, "--out", tmp_path / "out", "--no-plot", "--no-progress")[0] == 0
    return toml, tmp_path / "out" / "hostile"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"id,name\n1,alice\n", "not a gmstep results file"),
        (b"\x00\x01\x02binary", "not a gmstep results file"),
        (b"rho,activation,model,trial,k,train_error,test_error,train_misclassification,test_misclassification,status\n"
             b"0.25,relu,nn,0,8,x,0.1,,,ok\n", "line 2"),
        (b"rho,activation,model,trial,k,train_error,test_error,train_misclassification,test_misclassification,status\n"
             b"0.25,relu,nn\n", "line 2"),
        (b"rho,activation,model,trial,k,train_error,test_error,train_misclassification,test_misclassification,status\n"
             b"0.3,relu,nn,0,8,0.1,0.1,,,ok\n",
         "no task of this experiment"),
    ],
)
def test_resume_over_a_results_file_that_is_not_ours_or_corrupted(capsys, finished, content, message):
    toml, d = finished
    (d / "results.csv").write_bytes(content)
    msg = one_error_line(*main(capsys, "run", toml, "--out", d.parent, "--no-plot", "--no-progress",
                               "--resume")[::2])
    assert message in msg
    assert (d / "results.csv").read_bytes() == content  # left as it was
    msg = one_error_line(*main(capsys, "plot", d)[::2])
    assert message in msg


def test_a_fresh_run_does_not_overwrite_a_foreign_file(capsys, finished):
    toml, d = finished
    (d / "results.csv").write_text("id,name\n1,alice\n")
    msg = one_error_line(*main(capsys, "run", toml, "--out", d.parent, "--no-plot", "--no-progress")[::2])
    assert "refusing to overwrite" in msg
    assert (d / "results.csv").read_text() == "id,name\n1,alice\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a gmstep meta.json"),
        ("[1, 2, 3]", "not a gmstep meta.json"),
        ('{"experiment": {"name": "x", "params": {"n": "big"}}}', "holds no valid experiment"),
        ('{"experiment": 5}', "not a gmstep meta.json"),
    ],
)
def test_foreign_or_corrupted_meta(capsys, finished, content, message):
    toml, d = finished
    (d / "meta.json").write_text(content)
    assert message in one_error_line(*main(capsys, "plot", d)[::2])
    msg = one_error_line(*main(capsys, "run", toml, "--out", d.parent, "--no-plot", "--no-progress",
                               "--resume")[::2])
    assert "meta.json" in msg


@pytest.mark.subprocess
def test_hostile_input_through_the_installed_command(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace("m = 8", "m = = 8"))
    proc = subprocess.run([str(GMSTEP), "run", str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"gmstep: error: {bad}: line 5, column 5: not valid TOML (Invalid value)\n"
