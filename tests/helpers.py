"""What the tests that drive the installed ``gmstep`` command in a subprocess share."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The console script of the package under test (the virtual environment's, else beside python).
GMSTEP = ROOT / ".venv" / "bin" / "gmstep"
if not GMSTEP.exists():
    GMSTEP = Path(sys.executable).with_name("gmstep")
#: One BLAS thread and a non-interactive plotting backend for the subprocesses.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "MPLBACKEND": "Agg"}
