"""gmstep: two-layer networks after one gradient step on structured Gaussian mixtures,
compared with their Hermite polynomial equivalents.

The public API: :class:`Experiment` (what to run), :func:`run` (run it, optionally writing
``<out>/<name>/``), :func:`load` (read saved results), :mod:`presets` (the paper's figures), and
the modules :mod:`data`, :mod:`network`, :mod:`hermite`, :mod:`readout`, :mod:`activations`.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("gmstep")  # the one place the version is written: pyproject.toml
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"

from . import activations, data, hermite, network, presets, readout  # noqa: E402
from .activations import Activation, register  # noqa: E402
from .errors import ConfigError, DataError, GmstepError, ResultsError  # noqa: E402
from .experiment import Experiment  # noqa: E402
from .runner import Results, load, run  # noqa: E402

__all__ = [
    "Activation", "ConfigError", "DataError", "Experiment", "GmstepError", "Results", "ResultsError",
    "__version__", "activations", "data", "hermite", "load", "network", "presets", "readout", "register", "run",
]
