"""The settings of a figure that an experiment declares (``[plot]``), checked without drawing.

They live below :mod:`gmstep.experiment` (which validates an experiment's ``[plot]`` table) and
are used by :mod:`gmstep.plotting`, which draws: ``style`` (``paper`` or ``report``),
``errorbars`` (``none``, ``sd``, ``sem``, ``ci95``), ``metric``, ``activations``, ``models``,
``xlim``, ``ylim``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ConfigError

STYLES = ("paper", "report")
ERRORBARS = ("none", "sd", "sem", "ci95")
METRICS = ("test_error", "train_error", "gap", "test_misclassification", "train_misclassification")
#: ``[plot]`` settings this module adds to those of :func:`gmstep.experiment.validate_plot`.
SETTINGS = ("style", "errorbars", "activations", "models", "xlim", "ylim")


def validate_settings(plot: Mapping[str, Any]) -> None:
    """One-line :class:`ConfigError` for a bad value of a setting of :data:`SETTINGS`."""
    if "style" in plot and plot["style"] not in STYLES:
        raise ConfigError("plot.style", f"must be one of {', '.join(STYLES)}, got {plot['style']!r}")
    if "errorbars" in plot and plot["errorbars"] not in ERRORBARS:
        raise ConfigError("plot.errorbars", f"must be one of {', '.join(ERRORBARS)}, got {plot['errorbars']!r}")
    for key in ("activations", "models"):
        if key in plot and (not isinstance(plot[key], list | tuple) or not plot[key]
                            or not all(isinstance(v, str) for v in plot[key])):
            raise ConfigError(f"plot.{key}", "must be a non-empty list of names")
    for key in ("xlim", "ylim"):
        if key in plot:
            v = plot[key]
            if (not isinstance(v, list | tuple) or len(v) != 2 or any(isinstance(x, bool) for x in v)
                    or not all(isinstance(x, int | float) and np.isfinite(x) for x in v) or not v[0] < v[1]):
                raise ConfigError(f"plot.{key}", f"must be two increasing numbers [low, high], got {v!r}")
