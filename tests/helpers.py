"""Helpers the test modules share: the installed command, ``main(capsys, ...)``, one-line error
checks, quiet runs and IDX files."""

from __future__ import annotations

import gzip
import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gmstep import cli, runner
from gmstep.experiment import Experiment
from gmstep.theory_moments import Moments

ROOT = Path(__file__).resolve().parents[1]
#: The console script of the package under test (the virtual environment's, else beside python).
GMSTEP = ROOT / ".venv" / "bin" / "gmstep"
if not GMSTEP.exists():
    GMSTEP = Path(sys.executable).with_name("gmstep")
#: One BLAS thread and a non-interactive plotting backend for the subprocesses.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "MPLBACKEND": "Agg"}


def make_experiment(base: Mapping[str, Any], sweep: Mapping[str, list[Any]], name: str = "small",
               **params: Any) -> Experiment:
    """A small experiment: the parameters ``base`` updated by ``params``, over ``sweep``. Test
    modules bind their own base with ``functools.partial``."""
    return Experiment.create(name, {**base, **params}, dict(sweep))


def main(capsys, *argv) -> tuple[int, str, str]:
    """``gmstep ARGV...`` in this process: (exit status, stdout, stderr)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code: int | subprocess.CompletedProcess, err: str = "", *needles: str) -> str:
    """Checks the command failed with exit 2 and one ``gmstep...`` line on stderr, no traceback,
    holding every needle; returns the line. Takes (code, err) or a finished subprocess."""
    if isinstance(code, subprocess.CompletedProcess):
        code, err, needles = code.returncode, code.stderr, (err, *needles) if err else needles
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n") and err.startswith("gmstep"), err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err.strip()


def one_line(exc: pytest.ExceptionInfo) -> str:
    """The message of a raised error, checked to be one line."""
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def quiet_run(exp, out, **kw):
    """:func:`gmstep.runner.run` without progress bar or figure."""
    return runner.run(exp, out, progress=False, plot=False, **kw)


def write_idx(path: Path, array: np.ndarray, gz: bool = True, magic: int | None = None) -> Path:
    """An IDX file of uint8 data: magic, big-endian sizes, bytes (optionally gzip-compressed)."""
    array = np.asarray(array, dtype=np.uint8)
    magic = 0x00000800 | array.ndim if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def load_module(path: Path, name: str):
    """Import the script at ``path`` (a benchmark or the naive reference) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def random_moments(k: int, seed: int, spike: float = 0.3) -> Moments:
    """Moments of one component for the solver's tests: ``S`` a Wishart-like matrix plus a
    spike (positive definite), random ``t``, ``e`` in ``[1, 2)``."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, 3 * k)) / np.sqrt(3 * k)
    u = rng.standard_normal(k)
    s = (a @ a.T + spike * np.outer(u, u)) / k
    return Moments(s, rng.standard_normal(k) / k, 1.0 + rng.random())
