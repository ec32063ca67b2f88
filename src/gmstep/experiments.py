"""Declarative experiments and the computation of one task (one sweep point x one trial).

An :class:`Experiment` is a name, fixed parameters (see :mod:`gmstep.config`), a sweep (one or
more parameter columns; several columns form a grid) and plot settings. Its tasks are
independent: each derives its random streams from the root seed and its own identity,

    structure and data sets:  SeedSequence(seed, spawn_key=(0, point_id, trial_id, j))
    F and a:                  SeedSequence(seed, spawn_key=(1, point_id', trial))
    Hermite noise zeta:       SeedSequence(seed, spawn_key=(2, point_id, trial, activation_id))

where ``point_id`` is a hash of the point's parameter values (0 for ``redraw = "once"``),
``trial_id`` is the trial for ``redraw = "trial"`` and 0 otherwise, ``point_id'`` is 0 when
``share_init`` is set, and ``j`` = 0, 1, 2, 3 for structure, gradient batch, training set and
test set. So the same seed gives the same numbers in any execution order, with any parallelism,
and a sweep value gives the same numbers whichever other values are swept with it.

For each activation the network and its Hermite model share the gradient step ``F^`` (computed
with the true activation) and the pre-activations ``X F^T``; only the readout features differ.
"""

from __future__ import annotations

import itertools
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import config, data, hermite, network, readout
from .activations import get as get_activation
from .errors import ConfigError

#: Columns of results.csv after the sweep columns.
ROW_COLUMNS = ("activation", "model", "trial", "train_error", "test_error", "status")
#: Largest number of test samples featurised at once (bounds memory; does not change results).
TEST_CHUNK = 2048
#: A ridge system whose condition bound exceeds this is reported as ill-conditioned.
MAX_CONDITION = 1e12

PLOT_KINDS = ("line", "heatmap")
PLOT_METRICS = ("test_error", "train_error", "gap")


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
        name = config._name("name", name)
        params = config.validate_params(dict(params or {}))
        sweep = validate_sweep(dict(sweep or {}), params)
        plot = validate_plot(dict(plot or {}), sweep)
        exp = cls(name, params, sweep, plot, description)
        for point in exp.points():  # every grid point must be a valid configuration
            config.check_consistency(exp.point_params(point))
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
        clean = [config.PARAMS[key].check(key, v) for v in values]
        if any(isinstance(v, list) for v in clean):
            raise ConfigError(key, "sweep values must be single numbers")
        if len(set(map(repr, clean))) != len(clean):
            raise ConfigError(key, f"sweep values repeat: {clean}")
        out[key] = clean
    if "k_over_m" in out and params.get("k") is not None:
        raise ConfigError("k", "must be null when k_over_m is swept")
    return out


def sweepable() -> list[str]:
    return sorted(k for k, p in config.PARAMS.items() if p.sweepable)


def validate_plot(plot: dict[str, Any], sweep: Mapping[str, Any]) -> dict[str, Any]:
    allowed = {"kind", "metric", "x", "xlabel", "ylabel", "title", "logx", "logy"}
    for key in plot:
        if key not in allowed:
            raise ConfigError(f"plot.{key}", f"unknown plot setting; allowed: {', '.join(sorted(allowed))}")
    out = {"kind": "line", "metric": "test_error", **plot}
    config._choice(*PLOT_KINDS)("plot.kind", out["kind"])
    config._choice(*PLOT_METRICS)("plot.metric", out["metric"])
    for key in ("logx", "logy"):
        if key in out:
            config._bool(f"plot.{key}", out[key])
    for key in ("xlabel", "ylabel", "title"):
        if key in out and not isinstance(out[key], str):
            raise ConfigError(f"plot.{key}", "must be a string")
    if "x" in out and out["x"] not in sweep:
        raise ConfigError("plot.x", f"must be a sweep column ({', '.join(sweep) or 'none'})")
    if out["kind"] == "heatmap" and len(sweep) != 2:
        raise ConfigError("plot.kind", "a heatmap needs exactly two sweep columns")
    return out


# ----------------------------------------------------------------------------- random streams


def stable_id(value: Any) -> int:
    """A 32-bit identity of a JSON-able value that does not depend on the Python process."""
    return zlib.crc32(json.dumps(value, sort_keys=True, default=repr).encode())


def stream(seed: int, *key: int) -> np.random.Generator:
    """The generator of one named random stream."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def data_identity(point: Mapping[str, Any], trial: int, redraw: str) -> tuple[int, int]:
    """``(point_id, trial_id)`` of the structure and data draw under a redraw policy."""
    if redraw == "once":
        return 0, 0
    return stable_id(point), (trial if redraw == "trial" else 0)


# ----------------------------------------------------------------------------- one task


@dataclass
class DataSets:
    problem: Any
    grad: tuple[np.ndarray, np.ndarray]
    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]


def build_problem(p: Mapping[str, Any], rng: np.random.Generator):
    """The data source of a resolved point (a :class:`gmstep.data.Problem`)."""
    dtype = np.dtype(p["dtype"]).type
    if p["dataset"] == "fashion-mnist":
        from . import fashion

        return fashion.build_problem(
            theta=p["theta"], classes=tuple(p["classes"]), centering=p["centering"],
            source=p["source"], data_dir=p["data_dir"], dtype=dtype, rng=rng,
        )
    mix = data.draw_mixture(
        p["n"], p["ratios"], p["rank"], p["theta"], p["alignment"], rng,
        random_spikes=p["spikes"] == "random", mean_norm=p["mean_norm"],
    )
    xi = None
    if p["task"] == "regression":
        xi = data.teacher(mix, rng, spike_aligned=p["target"] == "spike")
    return data.MixtureProblem(mix, p["task"], xi, p["delta"], dtype)


def draw_data(p: Mapping[str, Any], seed: int, ident: tuple[int, int]) -> DataSets:
    """Structure, gradient batch, training set and test set from four independent streams."""
    problem = build_problem(p, stream(seed, 0, *ident, 0))
    grad = problem.sample(p["m_grad"], stream(seed, 0, *ident, 1))
    train = problem.sample(p["m"], stream(seed, 0, *ident, 2))
    test = problem.sample(p["m_test"], stream(seed, 0, *ident, 3))
    return DataSets(problem, grad, train, test)


class DataCache:
    """Keeps the last few drawn data sets: tasks sharing a draw (redraw once/point) reuse it."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._items: dict[str, DataSets] = {}

    def get(self, p: Mapping[str, Any], seed: int, ident: tuple[int, int]) -> DataSets:
        relevant = {k: v for k, v in p.items() if k not in config.MODEL_ONLY}
        key = json.dumps([seed, ident, relevant], sort_keys=True, default=repr)
        if key in self._items:
            self._items[key] = self._items.pop(key)  # most recent last
            return self._items[key]
        item = draw_data(p, seed, ident)
        self._items[key] = item
        while len(self._items) > self.size:
            self._items.pop(next(iter(self._items)))
        return item


def _status(values: Sequence[float], condition: float) -> str:
    if not all(np.isfinite(v) for v in values):
        return "nonfinite"
    if condition > MAX_CONDITION:
        return "ill-conditioned"
    return "ok"


def run_task(
    exp: Experiment, point_index: int, trial: int, cache: DataCache | None = None
) -> list[dict[str, Any]]:
    """All rows of one task: for every activation and model, the training and test errors."""
    point = exp.points()[point_index]
    p = config.resolved(exp.point_params(point))
    seed = p["seed"]
    cache = cache if cache is not None else DataCache(size=1)
    ds = cache.get(p, seed, data_identity(point, trial, p["redraw"]))
    problem = ds.problem
    dtype = np.dtype(p["dtype"]).type
    (xg, yg), (x, y), (xt, yt) = ds.grad, ds.train, ds.test
    k = p["k"]
    init_point = 0 if p["share_init"] else stable_id(point)
    f0, a0 = network.init_params(problem.n, k, problem.tr, stream(seed, 1, init_point, trial), dtype)
    pre_grad = xg @ f0.T  # shared by every activation's gradient step
    scale = p["hermite_scale"] if p["hermite_scale"] is not None else problem.scale
    sqrt_k = np.sqrt(k)
    rows = []
    for name in p["activations"]:
        act = get_activation(name)
        f_hat = network.gradient_step(f0, a0, xg, yg, act, p["eta"], pre=pre_grad)
        pre = x @ f_hat.T
        noise = stream(seed, 2, stable_id(point), trial, stable_id(name))
        surrogate = None
        if "hermite" in p["models"]:
            surrogate = hermite.HermiteModel.build(act, scale, p["degree"], p["hermite_nodes"])

        def features(u: np.ndarray, model: str, act=act, surrogate=surrogate, noise=noise):
            phi = act.fn(u) if model == "nn" else surrogate(u, noise)
            phi /= sqrt_k
            return phi

        fits = {model: readout.ridge(features(pre, model), y, p["lambda"]) for model in p["models"]}
        del pre
        sq = dict.fromkeys(p["models"], 0.0)
        for start in range(0, len(yt), TEST_CHUNK):
            u = xt[start : start + TEST_CHUNK] @ f_hat.T
            yc = yt[start : start + TEST_CHUNK]
            for model in p["models"]:
                r = yc - features(u, model) @ fits[model].weights
                sq[model] += float(r @ r)
        for model in p["models"]:
            fit = fits[model]
            test_err = sq[model] / (2 * len(yt))
            rows.append({
                **point,
                "activation": name,
                "model": model,
                "trial": trial,
                "train_error": fit.train_error,
                "test_error": test_err,
                "status": _status((fit.train_error, test_err), fit.condition),
            })
    return rows
