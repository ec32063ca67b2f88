"""The declarative :class:`Experiment`: a name, fixed parameters, a sweep and plot settings.

An :class:`Experiment` is a name, fixed parameters (see :mod:`gmstep.config`), a sweep (one or
more parameter columns; several columns form a grid) and plot settings. It holds no numbers:
:func:`gmstep.engine.task.run_task` computes a task (one sweep point x one trial) of it, and
docs/ARCHITECTURE.md shows how a run flows from here to results.csv. The parameters and what
they mean are in docs/MATH.md.
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config, plot_options
from .errors import ConfigError

#: Columns of results.csv after the sweep columns.
#: ``k`` is the hidden width the row was computed with (left out when ``k`` itself is swept);
#: the 0-1 errors are empty for regression.
ROW_COLUMNS = ("activation", "model", "trial", "k", "train_error", "test_error", "train_misclassification",
               "test_misclassification", "status")

PLOT_KINDS = ("line", "heatmap")
PLOT_METRICS = ("test_error", "train_error", "gap", "test_misclassification", "train_misclassification")


@dataclass(frozen=True)
class Experiment:
    """What to run: parameters, the swept columns and their values, and how to plot."""

    name: str
    params: dict[str, Any]
    sweep: dict[str, list[Any]]
    plot: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    @classmethod
    def create(
        cls,
        name: str,
        params: Mapping[str, Any] | None = None,
        sweep: Mapping[str, Sequence[Any]] | None = None,
        plot: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> Experiment:
        """Validate everything and build an experiment (the one entry point for all sources)."""
        name = config.check_name("name", name)
        params = config.validate_params(dict(params or {}))
        sweep = validate_sweep(dict(sweep or {}), params)
        plot = validate_plot(dict(plot or {}), sweep)
        exp = cls(name, params, sweep, plot, description)
        for point in exp.points():  # every grid point must be a valid configuration
            config.check_consistency(exp.point_params(point))
        config.check_distinct_widths(exp.sweep_columns, [exp.point_params(pt) for pt in exp.points()])
        return exp

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Experiment:
        """From the TOML layout: ``name``, ``description``, ``[params]``, ``[sweep]``, ``[plot]``."""
        allowed = {"name", "description", "params", "sweep", "plot"}
        for key in spec:
            if key not in allowed:
                raise ConfigError(key, f"unknown top-level key; allowed: {', '.join(sorted(allowed))}")
        if "name" not in spec:
            raise ConfigError("name", "missing: every experiment needs a name")
        for key in ("params", "sweep", "plot"):
            if key in spec and not isinstance(spec[key], Mapping):
                raise ConfigError(key, f"must be a table, got {type(spec[key]).__name__}")
        desc = spec.get("description", "")
        if not isinstance(desc, str):
            raise ConfigError("description", "must be a string")
        return cls.create(spec["name"], spec.get("params"), spec.get("sweep"), spec.get("plot"), desc)

    @classmethod
    def from_toml(cls, path: str | Path) -> Experiment:
        """From a TOML file in the layout of :meth:`from_dict` (see :func:`read_toml`)."""
        return cls.from_dict(read_toml(Path(path)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "params": dict(self.params),
            "sweep": {k: list(v) for k, v in self.sweep.items()},
            "plot": dict(self.plot),
        }

    def with_changes(
        self,
        params: Mapping[str, Any] | None = None,
        sweep: Mapping[str, Sequence[Any]] | None = None,
        name: str | None = None,
    ) -> Experiment:
        """A copy with some parameters and/or sweep values replaced (validated again)."""
        new_params = {**self.params, **(params or {})}
        new_sweep = {**self.sweep, **(sweep or {})}
        return Experiment.create(name or self.name, new_params, new_sweep, self.plot, self.description)

    def with_overrides(
        self, params: Mapping[str, Any] | None = None, sweep: Mapping[str, Sequence[Any]] | None = None
    ) -> Experiment:
        """A copy with a user's overrides (the command line's ``--set``, ``--values``, ...).

        As :meth:`with_changes`, except that a fixed value given for a swept column (and no new
        sweep of it) replaces its sweep by that single value (or list of values); no overrides
        return the experiment itself.
        """
        params = dict(params or {})
        sweep = {key: list(values) for key, values in (sweep or {}).items()}
        for key in list(params):
            if key in self.sweep and key not in sweep:
                value = params.pop(key)
                sweep[key] = value if isinstance(value, list) else [value]
        if not params and not sweep:
            return self
        return self.with_changes(params=params, sweep=sweep)

    @property
    def sweep_columns(self) -> list[str]:
        return list(self.sweep)

    def points(self) -> list[dict[str, Any]]:
        """The grid of sweep values, first column slowest."""
        cols = self.sweep_columns
        return [dict(zip(cols, vals, strict=True)) for vals in itertools.product(*self.sweep.values())]

    def point_params(self, point: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.params, **point}

    def tasks(self) -> list[tuple[int, int]]:
        """``(point index, trial)`` for every task, in canonical order."""
        return [(i, t) for i in range(len(self.points())) for t in range(self.params["trials"])]

    def rows_per_task(self) -> int:
        return len(self.params["activations"]) * len(self.params["models"])


def validate_sweep(sweep: dict[str, Any], params: Mapping[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for key, values in sweep.items():
        if key not in config.PARAMS:
            raise ConfigError(key, f"unknown sweep column; allowed: {', '.join(sweepable())}")
        if not config.PARAMS[key].sweepable:
            raise ConfigError(key, f"cannot be swept; sweepable: {', '.join(sweepable())}")
        if not isinstance(values, list | tuple) or not values:
            raise ConfigError(key, f"sweep values must be a non-empty list, got {values!r}")
        clean = [config.canonical(config.PARAMS[key].check(key, v)) for v in values]
        if any(isinstance(v, list) for v in clean):
            raise ConfigError(key, "sweep values must be single numbers")
        if len(set(map(repr, clean))) != len(clean):
            raise ConfigError(key, f"sweep values repeat: {clean}")
        out[key] = clean
    if "k_over_m" in out and params.get("k") is not None:
        raise ConfigError("k", "must be null when k_over_m is swept")
    config.check_sweep(list(out), params)
    return out


def sweepable() -> list[str]:
    return sorted(k for k, p in config.PARAMS.items() if p.sweepable)


def validate_plot(plot: dict[str, Any], sweep: Mapping[str, Any]) -> dict[str, Any]:
    allowed = {"kind", "metric", "x", "xlabel", "ylabel", "title", "logx", "logy", *plot_options.SETTINGS}
    for key in plot:
        if key not in allowed:
            raise ConfigError(f"plot.{key}", f"unknown plot setting; allowed: {', '.join(sorted(allowed))}")
    plot_options.validate_settings(plot)
    out = {"kind": "line", "metric": "test_error", **plot}
    config.choice(*PLOT_KINDS)("plot.kind", out["kind"])
    config.choice(*PLOT_METRICS)("plot.metric", out["metric"])
    for key in ("logx", "logy"):
        if key in out:
            config.check_bool(f"plot.{key}", out[key])
    for key in ("xlabel", "ylabel", "title"):
        if key in out and not isinstance(out[key], str):
            raise ConfigError(f"plot.{key}", "must be a string")
    if "x" in out and out["x"] not in sweep:
        raise ConfigError("plot.x", f"must be a sweep column ({', '.join(sweep) or 'none'})")
    if out["kind"] == "heatmap" and len(sweep) != 2:
        raise ConfigError("plot.kind", "a heatmap needs exactly two sweep columns")
    return out


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML experiment file (data only: nothing in it is ever evaluated).

    Errors are one line naming the file and, for a syntax error, its line and column.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except IsADirectoryError:
        raise ConfigError(str(path), "is a directory, not a TOML file") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "not a TOML file (not UTF-8 text)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else "syntax error"
        where = _TOML_POSITION.search(msg)
        if where:
            msg = msg[: where.start()]
            raise ConfigError(str(path),
                              f"line {where.group(1)}, column {where.group(2)}: not valid TOML ({msg})") from None
        raise ConfigError(str(path), f"not valid TOML ({msg})") from None
    except RecursionError:
        raise ConfigError(str(path), "not valid TOML (nested too deeply)") from None


def point_at(exp: Experiment, index: int) -> dict[str, Any]:
    """``exp.points()[index]`` without building the grid (first column slowest)."""
    cols = exp.sweep_columns
    sizes = [len(exp.sweep[c]) for c in cols]
    if not 0 <= index < math.prod(sizes):
        raise IndexError(f"point index {index} out of range")
    out: dict[str, Any] = {}
    for col, size in zip(reversed(cols), reversed(sizes), strict=True):
        index, j = divmod(index, size)
        out[col] = exp.sweep[col][j]
    return {c: out[c] for c in cols}
