"""The command line: the real installed command, one-line errors with exit 2, plot and hermite."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from gmstep import presets
from helpers import GMSTEP, main


def gmstep(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([str(GMSTEP), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def fig1a_run(tmp_path_factory):
    """``gmstep reproduce fig1a --quick --trials 1 --values 0.5,2`` through the installed command."""
    out = tmp_path_factory.mktemp("cli")
    proc = gmstep("reproduce", "fig1a", "--quick", "--trials", "1", "--values", "0.5,2", "--out", str(out),
                  "--no-progress")
    return proc, out / "fig1a"


@pytest.mark.subprocess
def test_reproduce_fig1a_writes_the_three_files(fig1a_run):
    proc, d = fig1a_run
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in d.iterdir()) == [".lock", "fig1a.pdf", "fig1a.png", "meta.json", "results.csv"]
    with open(d / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 3 * 2  # 2 widths x 3 activations x 2 models, 1 trial
    assert [r["k_over_m"] for r in rows[::6]] == ["0.5", "2.0"]
    assert all(r["status"] == "ok" and math.isfinite(float(r["test_error"])) for r in rows)
    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "complete"
    assert meta["experiment"]["params"]["n"] == presets.get("fig1a", quick=True).params["n"]
    assert meta["experiment"]["sweep"] == {"k_over_m": [0.5, 2.0]} and meta["problems"] == {}
    assert (d / "fig1a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (d / "fig1a.pdf").read_bytes()[:5] == b"%PDF-"
    assert "fig1a: 12 rows" in proc.stdout and "gap" in proc.stdout
    assert f"figure: {d / 'fig1a.png'}, {d / 'fig1a.pdf'}" in proc.stdout  # the end of a run names its figure


@pytest.mark.subprocess
def test_plot_draws_again_from_a_directory(fig1a_run, capsys):
    _, d = fig1a_run
    for ext in ("png", "pdf"):
        (d / f"fig1a.{ext}").unlink()
    code, out, err = main(capsys, "plot", str(d))
    assert code == 0, err
    assert out.split() == [str(d / "fig1a.png"), str(d / "fig1a.pdf")]
    assert (d / "fig1a.png").stat().st_size > 1000 and (d / "fig1a.pdf").stat().st_size > 1000


def test_plot_of_a_directory_that_is_not_ours(tmp_path, capsys):
    code, _, err = main(capsys, "plot", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "meta.json not found" in err


@pytest.mark.subprocess
def test_resume_of_a_complete_run_through_the_command(fig1a_run, capsys):
    _, d = fig1a_run
    before = (d / "results.csv").read_bytes()
    code, out, err = main(capsys, "reproduce", "fig1a", "--quick", "--trials", "1", "--values", "0.5,2", "--out",
                          str(d.parent), "--resume", "--no-plot", "--no-progress")
    assert code == 0, err
    assert (d / "results.csv").read_bytes() == before


def hermite_table(out: str) -> dict[str, float]:
    values = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            values[f"h{parts[0]}"] = float(parts[1])
        elif line.startswith(("E[", "h_>l")):
            key, _, val = line.rpartition("=")
            values[key.strip()] = float(val)
    return values


@pytest.mark.subprocess
def test_hermite_relu_coefficients():
    proc = gmstep("hermite", "relu", "--scale", "0.5", "--degree", "3")
    assert proc.returncode == 0, proc.stderr
    h = hermite_table(proc.stdout)
    b = 0.5
    assert h["h1"] == pytest.approx(b / 2, abs=1e-12)  # h1 = E[relu(bz) z] = b / 2, exact by symmetry
    # closed forms for ReLU: h0 = b / sqrt(2 pi), h2 = b / (2 sqrt(2 pi)), h3 = 0, E[relu(bz)^2] = b^2 / 2
    assert h["h0"] == pytest.approx(b / math.sqrt(2 * math.pi), rel=1e-2)
    assert h["h2"] == pytest.approx(b / (2 * math.sqrt(2 * math.pi)), rel=1e-2)
    assert abs(h["h3"]) < 1e-12
    assert h["E[sigma(bz)^2]"] == pytest.approx(b * b / 2, rel=1e-12)
    tail2 = b * b / 2 - h["h0"] ** 2 - h["h1"] ** 2 - 2 * h["h2"] ** 2 - 6 * h["h3"] ** 2
    assert h["h_>l (residual)"] == pytest.approx(math.sqrt(tail2), rel=1e-9)


def test_list_and_params(capsys):
    code, out, _ = main(capsys, "list")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == presets.names()
    code, out, _ = main(capsys, "params")
    assert code == 0
    for key in ("n", "m", "k", "trials", "alpha", "beta", "rho", "alignment", "ratios", "lambda", "degree", "rank"):
        assert any(line.split()[0] == key for line in out.splitlines())
    assert main(capsys, "--help")[0] == 0 and main(capsys, "reproduce", "--help")[0] == 0


BAD_REPRODUCE = [
    (["--set", "n=abc"], "n"),
    (["--set", "n=true"], "n"),
    (["--set", "n=1.5"], "n"),
    (["--set", "n=0"], "n"),
    (["--set", "m=0"], "m"),
    (["--set", "k=0"], "k"),
    (["--trials", "0"], "trials"),
    (["--set", "trials=-3"], "trials"),
    (["--set", "alpha=1.5"], "alpha"),
    (["--set", "alpha=-0.1"], "alpha"),
    (["--set", "beta=2"], "beta"),
    (["--set", "beta=x"], "beta"),
    (["--set", "rho=1.01"], "rho"),
    (["--set", "alignment=-1.5"], "alignment"),
    (["--set", "alignment=2"], "alignment"),
    (["--set", "ratios=0.5,0.6"], "ratios"),
    (["--set", "ratios=0.3"], "ratios"),
    (["--set", "lambda=0"], "lambda"),
    (["--set", "lambda=-1e-4"], "lambda"),
    (["--set", "lambda=nan"], "lambda"),
    (["--set", "degree=-1"], "degree"),
    (["--set", "degree=cubic"], "degree"),
    (["--set", "rank=300"], "rank"),
    (["--set", "rank=0"], "rank"),
    (["--set", "k_over_m=0"], "k_over_m"),
    (["--set", "foo=1"], "foo"),
    (["--set", "activations=relu,swish"], "activations"),
    (["--set", "models=nn,gp"], "models"),
    (["--set", "dtype=float16"], "dtype"),
    (["--set", "seed=-1"], "seed"),
    (["--set", "novalue"], "--set"),
    (["--values", "0.5,abc"], "--values"),
    (["--values", "0.5,,2"], "--values"),
    (["--values", ""], "--values"),
    (["--values", "alpha=0.1"], "--values"),
    (["--values", "0.5,0.5"], "k_over_m"),
    (["--values", "-1,2"], "k_over_m"),
    (["--values=-1,2"], "k_over_m"),
    (["--values", "-0.5"], "k_over_m"),
    (["--trials", "abc"], "--trials"),
    (["--seed", "1.5"], "--seed"),
    (["--seed", "-1"], "seed"),
    (["--jobs", "0"], "--jobs"),
    (["--bogus"], "--bogus"),
]


@pytest.mark.parametrize(("extra", "key"), BAD_REPRODUCE, ids=[" ".join(e) for e, _ in BAD_REPRODUCE])
def test_bad_input_is_one_line_naming_the_key(capsys, tmp_path, extra, key):
    code, out, err = main(capsys, "reproduce", "fig1a", "--quick", "--out", str(tmp_path), "--no-plot",
                          "--no-progress", *extra)
    assert code == 2
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert key in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing was run or written


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["reproduce", "fig99"], "preset"),
        (["reproduce", "all", "--values", "1,2"], "--values"),
        (["hermite", "swish"], "activations"),
        (["hermite", "relu", "--scale", "-1"], "--scale"),
        (["hermite", "relu", "--scale", "-inf"], "--scale"),
        (["hermite", "relu", "--scale", "nan"], "--scale"),
        (["hermite", "relu", "--degree", "-1"], "--degree"),
        (["hermite", "relu", "--degree", "500"], "--degree"),
        (["hermite", "relu", "--nodes", "1"], "--nodes"),
        (["run", "does-not-exist.toml"], "does-not-exist.toml"),
        (["frobnicate"], "frobnicate"),
        ([], "COMMAND"),
    ],
)
def test_other_bad_commands(capsys, argv, key):
    code, _, err = main(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and key in err, err


@pytest.mark.subprocess
def test_bad_input_through_the_installed_command(tmp_path):
    proc = gmstep("reproduce", "fig1a", "--quick", "--set", "alpha=2", "--out", str(tmp_path))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("gmstep: error: alpha: must be in [0.0, 1.0]")


def write_toml(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


TINY_TOML = """\
name = "tiny"
description = "a tiny custom experiment"

[params]
n = 10
m = 10
trials = 2
activations = ["relu", "erf"]

[sweep]
alpha = [0.0, 1.0]

[plot]
title = "tiny"
"""


def test_run_a_toml_file(tmp_path, capsys):
    path = write_toml(tmp_path / "tiny.toml", TINY_TOML)
    code, out, err = main(capsys, "run", str(path), "--out", str(tmp_path / "out"), "--no-progress")
    assert code == 0, err
    assert "tiny: 16 rows" in out
    assert sorted(p.name for p in (tmp_path / "out" / "tiny").iterdir()) == [
        ".lock", "meta.json", "results.csv", "tiny.pdf", "tiny.png"]
    code, _, err = main(capsys, "run", str(path), "--quick")
    assert code == 2 and "--quick" in err


def test_numerical_problems_are_reported_at_the_end(tmp_path, capsys):
    path = write_toml(tmp_path / "bad.toml", TINY_TOML.replace("trials = 2", "trials = 1\ndelta = 1e300"))
    code, out, err = main(capsys, "run", str(path), "--out", str(tmp_path), "--no-progress", "--no-plot")
    assert code == 0
    assert err.count("\n") == 1
    assert "8 of 8 rows have numerical problems (nonfinite: 8)" in err and "status column" in err
    assert json.loads((tmp_path / "tiny" / "meta.json").read_text())["problems"] == {"nonfinite": 8}


def test_plot_of_an_unfinished_run(tmp_path, capsys):
    path = write_toml(tmp_path / "tiny.toml", TINY_TOML)
    assert main(capsys, "run", str(path), "--out", str(tmp_path), "--no-progress", "--no-plot")[0] == 0
    d = tmp_path / "tiny"
    lines = (d / "results.csv").read_text().splitlines(keepends=True)
    (d / "results.csv").write_text("".join(lines[:1 + 4 + 2]))  # one task of four, and half of the next
    code, out, err = main(capsys, "plot", str(d))
    assert code == 0 and (d / "tiny.png").exists()
    assert err.count("\n") == 1 and "unfinished run" in err and "the 4 rows of its finished tasks" in err
    (d / "results.csv").write_text(lines[0])
    code, _, err = main(capsys, "plot", str(d))
    assert code == 2 and err.count("\n") == 1 and "holds no complete task" in err


# ----------------------------------------------------------------------------- figures, compare, summary


@pytest.mark.subprocess
def test_plot_options_on_the_command_line(fig1a_run, capsys):
    _, d = fig1a_run
    code, out, err = main(capsys, "plot", str(d), "--style", "report", "--errorbars", "sem", "--metric",
                          "train_error", "--activations", "relu,tanh", "--logx", "--title", "Mine")
    assert code == 0, err
    code, _, err = main(capsys, "plot", str(d), "--errorbars", "2sd")
    assert code == 2 and err.count("\n") == 1 and "--errorbars" in err
    code, _, err = main(capsys, "plot", str(d), "--activations", "gelu")
    assert code == 2 and err.count("\n") == 1 and "activations" in err
    code, _, err = main(capsys, "plot", str(d), "--metric", "test_misclassification")
    assert code == 2 and err.count("\n") == 1 and "classification only" in err


@pytest.mark.subprocess
def test_summary_prints_the_table(fig1a_run, capsys):
    _, d = fig1a_run
    code, out, err = main(capsys, "summary", str(d))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split() == ["k_over_m", "activation", "model", "mean", "sd", "sem", "ci95", "count", "excluded"]
    assert len(lines) == 1 + 2 * 3 * 2
    with open(d / "results.csv", newline="") as fh:
        first = next(csv.DictReader(fh))
    assert lines[1].split()[:3] == ["0.5", "relu", "nn"]
    assert float(lines[1].split()[3]) == pytest.approx(float(first["test_error"]), rel=1e-5)
    code, _, err = main(capsys, "summary", str(d), "--metric", "test_misclassification")
    assert code == 2 and err.count("\n") == 1 and "classification only" in err


@pytest.mark.subprocess
def test_figure_names_the_command_for_a_missing_panel(fig1a_run, capsys):
    _, d = fig1a_run
    code, _, err = main(capsys, "figure", "1", "--out", str(d.parent))
    assert code == 2 and err.count("\n") == 1
    assert f"gmstep reproduce fig1b --out {d.parent}" in err and "fig1c" in err
    code, _, err = main(capsys, "figure", "9", "--out", str(d.parent))
    assert code == 2 and err.count("\n") == 1 and "1, 2, 3, 4, 5, 6, 7, 8" in err


@pytest.mark.subprocess
def test_figure_composes_the_panels_side_by_side(fig1a_run, tmp_path, capsys):
    import shutil

    from matplotlib.image import imread

    from gmstep import plotting

    _, d = fig1a_run
    for name in ("fig1a", "fig1b", "fig1c"):  # three copies of one run stand for the three panels
        shutil.copytree(d, tmp_path / name)
    code, out, err = main(capsys, "figure", "1", "--out", str(tmp_path))
    assert code == 0, err
    assert out.split() == [str(tmp_path / "figure1.png"), str(tmp_path / "figure1.pdf")]
    height, width = imread(tmp_path / "figure1.png").shape[:2]
    dpi = plotting.PNG_DPI
    assert (height, width) == (round(plotting.PANEL_H * dpi), round(3 * plotting.PANEL_W * dpi))
    assert "warning" not in err
    meta = json.loads((tmp_path / "fig1c" / "meta.json").read_text())
    (tmp_path / "fig1c" / "meta.json").write_text(json.dumps({**meta, "status": "interrupted"}))
    code, _, err = main(capsys, "figure", "1", "--out", str(tmp_path))
    assert code == 0 and err.count("\n") == 1 and "fig1c" in err and "--resume" in err


@pytest.mark.subprocess
def test_compare_overlays_runs_of_one_sweep_and_refuses_others(fig1a_run, tmp_path, capsys):
    import shutil

    from gmstep import runner
    from gmstep.experiment import Experiment

    _, d = fig1a_run
    shutil.copytree(d, tmp_path / "again")
    out = tmp_path / "both.png"
    code, printed, err = main(capsys, "compare", str(d), str(tmp_path / "again"), "--label", "seed 0",
                              "--label", "seed 1", "--out", str(out))
    assert code == 0, err
    assert printed.strip() == str(out) and out.stat().st_size > 1000 and out.with_suffix(".pdf").exists()
    other = Experiment.create("other", {"n": 10, "m": 10, "trials": 1, "activations": ["relu"]}, {"alpha": [0.0, 1.0]})
    runner.run(other, tmp_path, progress=False, plot=False)
    code, _, err = main(capsys, "compare", str(d), str(tmp_path / "other"), "--out", str(out))
    assert code == 2 and err.count("\n") == 1 and "same sweep" in err
    code, _, err = main(capsys, "compare", str(d), str(tmp_path / "again"), "--label", "x", "--out", str(out))
    assert code == 2 and err.count("\n") == 1 and "--label" in err


def test_params_lists_the_allowed_values_of_choice_parameters(capsys):
    code, out, _ = main(capsys, "params")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "allowed: gmm, fashion-mnist" in lines["dataset"]
    assert {"relu", "tanh", "sigmoid"} <= set(lines["activations"].split("allowed:")[1].replace(",", " ").split())
    assert "allowed: real, gaussian, cgan" in lines["source"] and "allowed: nn, hermite" in lines["models"]


@pytest.mark.subprocess
def test_version_comes_from_the_package_metadata(capsys):
    from importlib.metadata import version

    import gmstep

    assert gmstep.__version__ == version("gmstep")
    code, out, _ = main(capsys, "--version")
    assert code == 0 and out.strip() == f"gmstep {version('gmstep')}"
