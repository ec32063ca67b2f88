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

How a task is computed (every step exact; docs/PERFORMANCE.md has the measurements):

    U~ = X~ F^T                                   once per task, for every activation
    G  = eta / (m~ sqrt(k)) (r a^T) * sigma'(U~),  r = y~ - sigma(U~) a / sqrt(k)
    F^ = F + G^T X~
    S  = sigma(X F^T)  or  p(X F^T) + h_{>l} Z   (S = sqrt(k) Phi; p the Hermite polynomial)
    a^ / sqrt(k) = ridge(S, y, lambda k)         (the smaller of the k x k and m x m systems)
    test error = sum over blocks of test rows of |y - S_test (a^ / sqrt(k))|^2 / (2 m_test)

Products run block by block (:data:`ROW_BLOCK` rows) with single-threaded BLAS, spread over
:func:`get_threads` threads; entrywise work runs in place in cache-sized tiles; the Hermite
noise ``Z`` is drawn in row order (training rows, then test rows) whatever the thread count.
So the numbers depend neither on the thread count nor on the number of processes.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import special

from . import config, data, hermite, network, readout
from .activations import Activation
from .activations import get as get_activation
from .errors import ConfigError

#: Columns of results.csv after the sweep columns.
#: ``k`` is the hidden width the row was computed with (left out when ``k`` itself is swept);
#: the 0-1 errors are empty for regression.
ROW_COLUMNS = ("activation", "model", "trial", "k", "train_error", "test_error", "train_misclassification",
               "test_misclassification", "status")
#: A ridge system whose (1-norm) condition number exceeds this is reported as ill-conditioned:
#: its solution may have lost about ``condition * eps`` of its relative accuracy (1e-4 in float64).
MAX_CONDITION = 1e12
#: The same limit for float32 systems (``condition * eps`` about 0.06).
MAX_CONDITION_FLOAT32 = 1e6

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
        name = config._name("name", name)
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
    from . import plotting

    allowed = {"kind", "metric", "x", "xlabel", "ylabel", "title", "logx", "logy", *plotting.SETTINGS}
    for key in plot:
        if key not in allowed:
            raise ConfigError(f"plot.{key}", f"unknown plot setting; allowed: {', '.join(sorted(allowed))}")
    plotting.validate_settings(plot)
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


# ----------------------------------------------------------------------------- execution settings

#: Rows in every block of a large product: blocks of the gradient batch, the training set, the
#: test set and the rows of ``F^``. Every product is computed block by block with
#: single-threaded BLAS, so the numbers depend on this constant but never on the number of
#: threads, processes or machines-of-one-kind a sweep runs on.
ROW_BLOCK = 512
#: Test samples featurised at once (one block; bounds memory to a few ``ROW_BLOCK x k`` arrays).
TEST_CHUNK = ROW_BLOCK
#: Elements per tile of the entrywise work (activation, Hermite polynomial, noise, prediction),
#: small enough to stay in a core's L2 cache while all of it is applied.
TILE = 1 << 16

_settings: dict[str, int | None] = {"threads": None}
_pool_state: dict[str, Any] = {"pool": None, "size": 0}
_local = threading.local()
_blas: dict[str, Any] = {}


def default_threads() -> int:
    """Threads one process uses for a task: ``$GMSTEP_THREADS``, else the usable cores."""
    env = os.environ.get("GMSTEP_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ConfigError("GMSTEP_THREADS", f"must be a positive integer, got {env!r}") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def set_threads(threads: int | None) -> None:
    """Threads used inside one task (``None``: :func:`default_threads`). Never changes results."""
    if threads is not None and threads < 1:
        raise ConfigError("threads", f"must be >= 1, got {threads}")
    _settings["threads"] = threads


def get_threads() -> int:
    threads = _settings["threads"]
    return int(threads) if threads is not None else default_threads()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Every BLAS library of the process limited to one thread while the block runs.

    Multi-threaded BLAS changes the last bits of a product with the thread count (and threaded
    OpenBLAS factorisations slow down badly on a busy machine); gmstep parallelises over fixed
    blocks instead, see :data:`ROW_BLOCK`.
    """
    if "controller" not in _blas:
        from threadpoolctl import ThreadpoolController

        _blas["controller"] = ThreadpoolController()
    with _blas["controller"].limit(limits=1, user_api="blas"):
        yield


def _pool(size: int) -> ThreadPoolExecutor:
    if _pool_state["pool"] is None or _pool_state["size"] != size:
        if _pool_state["pool"] is not None:
            _pool_state["pool"].shutdown(wait=True)
        _pool_state["pool"] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="gmstep")
        _pool_state["size"] = size
    return _pool_state["pool"]


def _parallel(fn: Callable[[int], Any], count: int, abort: Callable[[], None] | None = None) -> list[Any]:
    """``[fn(0), ..., fn(count - 1)]``, on the task's threads when there are several.

    The results are the same whatever the number of threads: ``fn(i)`` must only write what item
    ``i`` owns. On an error (or an interrupt in the main thread) the pending items are cancelled,
    ``abort`` releases any item waiting for another, and the first error is raised once every
    running item has stopped.
    """
    threads = get_threads()
    if threads <= 1 or count <= 1:
        return [fn(i) for i in range(count)]
    err = np.geterr()  # NumPy's error state is per thread: carry the caller's over

    def call(i: int) -> Any:
        with np.errstate(**err):
            return fn(i)

    futures = [_pool(threads).submit(call, i) for i in range(count)]
    try:
        wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.done() and not f.cancelled() and f.exception() is not None for f in futures):
            raise next(f.exception() for f in futures if f.done() and f.exception() is not None)
    except BaseException:
        for f in futures:
            f.cancel()
        if abort is not None:
            abort()
        wait(futures)
        raise
    return [f.result() for f in futures]


def _scratch(name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A per-thread reusable work array (contents undefined)."""
    size = math.prod(shape)
    bufs = _local.__dict__.setdefault("bufs", {})
    buf = bufs.get(name)
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = bufs[name] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def _blocks(rows: int, size: int = ROW_BLOCK) -> list[slice]:
    return [slice(s, min(s + size, rows)) for s in range(0, rows, size)]


def _tiles(rows: int, cols: int) -> list[slice]:
    return _blocks(rows, max(1, TILE // max(cols, 1)))


# ----------------------------------------------------------------------------- kernels


@dataclass(frozen=True)
class Kernel:
    """In-place evaluation of an activation: ``fn(u, out)`` sets ``out = sigma(u)``;
    ``fn_deriv(u, s, d)`` sets ``s = sigma(u)`` and ``d = sigma'(u)``."""

    fn: Callable[[np.ndarray, np.ndarray], None]
    fn_deriv: Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def _generic_kernel(act: Activation) -> Kernel:
    def fn(u: np.ndarray, out: np.ndarray) -> None:
        np.copyto(out, act.fn(u), casting="same_kind")

    def fn_deriv(u: np.ndarray, s: np.ndarray, d: np.ndarray) -> None:
        np.copyto(s, act.fn(u), casting="same_kind")
        np.copyto(d, act.deriv(u), casting="same_kind")

    return Kernel(fn, fn_deriv)


def _relu_fd(u: np.ndarray, s: np.ndarray, d: np.ndarray) -> None:
    np.maximum(u, 0.0, out=s)
    np.greater(u, 0.0, out=d)  # sigma'(0) = 0


def _tanh_fd(u: np.ndarray, s: np.ndarray, d: np.ndarray) -> None:
    np.tanh(u, out=s)
    np.multiply(s, s, out=d)
    np.subtract(1.0, d, out=d)


def _sigmoid_fd(u: np.ndarray, s: np.ndarray, d: np.ndarray) -> None:
    special.expit(u, out=s)
    np.subtract(1.0, s, out=d)
    d *= s


def _sin_fd(u: np.ndarray, s: np.ndarray, d: np.ndarray) -> None:
    np.sin(u, out=s)
    np.cos(u, out=d)


#: In-place versions of the registered activations (the same values as their ``fn``/``deriv``).
_BUILTIN_KERNELS: dict[str, Kernel] = {
    "relu": Kernel(lambda u, out: np.maximum(u, 0.0, out=out), _relu_fd),
    "tanh": Kernel(lambda u, out: np.tanh(u, out=out), _tanh_fd),
    "sigmoid": Kernel(lambda u, out: special.expit(u, out=out), _sigmoid_fd),
    "sin": Kernel(lambda u, out: np.sin(u, out=out), _sin_fd),
}
#: The registry's objects when this module was imported: a name registered again later (a user's
#: own ``relu``) is not one of these and gets the generic kernel.
_BUILTIN_ACTS = {name: get_activation(name) for name in _BUILTIN_KERNELS}


def kernel(act: Activation) -> Kernel:
    """The in-place kernel of ``act`` (a fast one for the built-in activations)."""
    if _BUILTIN_ACTS.get(act.name) is act:
        return _BUILTIN_KERNELS[act.name]
    return _generic_kernel(act)


@dataclass(frozen=True)
class Surrogate:
    """The degree-l Hermite model as ``p(u) + tail zeta`` with ``p`` in the monomial basis of ``u``.

    ``p(u) = sum_{i<=l} h_i He_i(u / b) = sum_j c_j u^j`` (converted once; Horner's rule then
    costs 2 l passes over the data instead of the recurrence's 5 l).
    """

    model: hermite.HermiteModel
    monomial: tuple[float, ...]

    @property
    def tail(self) -> float:
        return self.model.tail

    def polynomial(self, u: np.ndarray, out: np.ndarray) -> None:
        """``out = p(u)`` by Horner's rule."""
        c = self.monomial
        if len(c) == 1:
            out.fill(c[0])
            return
        np.multiply(u, c[-1], out=out)
        out += c[-2]
        for cj in reversed(c[:-2]):
            out *= u
            out += cj


@lru_cache(maxsize=256)
def surrogate(act: Activation, scale: float, degree: int, nodes: int, quadrature: str = "gauss-hermite") -> Surrogate:
    """The Hermite model of ``act`` at scale ``b`` (cached: built once per process and setting)."""
    model = hermite.HermiteModel.build(act, scale, degree, nodes, quadrature)
    in_z = np.polynomial.hermite_e.herme2poly(model.coefs)
    monomial = tuple(float(c) / float(scale) ** j for j, c in enumerate(in_z))
    return Surrogate(model, monomial or (0.0,))


class OrderedNoise:
    """One generator's standard normals handed out in a fixed order of blocks.

    Block ``i`` waits until blocks ``0 .. i-1`` have drawn, so the draws are those of one
    sequential pass (train features row by row, then test features) whichever thread asks first.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.next = 0
        self.failed = False
        self.cond = threading.Condition()

    def fill(self, index: int, out: np.ndarray) -> None:
        """Block ``index``'s normals into ``out``: always drawn in float64 (and rounded for a
        float32 ``out``), so float32 runs see the same noise as float64 runs."""
        with self.cond:
            self.cond.wait_for(lambda: self.next == index or self.failed)
            if self.failed:
                raise RuntimeError("an earlier block of this task failed")
            try:
                if out.dtype == np.float64:
                    self.rng.standard_normal(out=out)
                else:
                    wide = _scratch("noise64", out.shape, np.float64)
                    self.rng.standard_normal(out=wide)
                    np.copyto(out, wide, casting="same_kind")
            except BaseException:
                self.failed = True
                raise
            finally:
                self.next += 1
                self.cond.notify_all()

    def abort(self) -> None:
        with self.cond:
            self.failed = True
            self.cond.notify_all()


# ----------------------------------------------------------------------------- one task


@dataclass
class DataSets:
    problem: Any
    grad: tuple[np.ndarray, np.ndarray]
    train: tuple[np.ndarray, np.ndarray] | None  # None: not drawn (a theory-only task)
    test: tuple[np.ndarray, np.ndarray] | None


def build_problem(p: Mapping[str, Any], rng: np.random.Generator):
    """The data source of a resolved point (a :class:`gmstep.data.Problem`)."""
    dtype = np.dtype(p["dtype"]).type
    if p["dataset"] == "fashion-mnist":
        from . import fashion

        return fashion.build_problem(
            theta=p["theta"], classes=tuple(p["classes"]), centering=p["centering"],
            source=p["source"], data_dir=p["data_dir"], dtype=dtype, rng=rng,
            gan_stats_samples=p.get("gan_stats_samples", fashion.DEFAULT_GAN_STATS_SAMPLES),
        )
    mix = data.draw_mixture(
        p["n"], p["ratios"], p["rank"], p["theta"], p["alignment"], rng,
        random_spikes=p["spikes"] == "random", mean_norm=p["mean_norm"],
    )
    xi = None
    if p["task"] == "regression":
        xi = data.teacher(mix, rng, spike_aligned=p["target"] == "spike")
    return data.MixtureProblem(mix, p["task"], xi, p["delta"], dtype)


def draw_data(p: Mapping[str, Any], seed: int, ident: tuple[int, int], readout: bool = True) -> DataSets:
    """Structure, gradient batch, training set and test set from four independent streams.

    The three Gaussian-mixture data sets are drawn on the task's threads at once (each from its
    own stream, so the numbers do not depend on it). Real Fashion-MNIST images are picked for
    the three sets at once, without replacement, from a fifth stream, so the sets are disjoint.
    Without ``readout`` (only the ``theory`` model) the training and test sets are not drawn
    (their streams are independent, so the structure and the gradient batch are the same either
    way; real images are still picked for all three sets, so the gradient batch is too).
    """
    problem = build_problem(p, stream(seed, 0, *ident, 0))
    sizes = (p["m_grad"], p["m"], p["m_test"])

    def one(j: int) -> tuple[np.ndarray, np.ndarray]:
        return problem.sample(sizes[j], stream(seed, 0, *ident, j + 1))

    if not readout and not hasattr(problem, "sample_disjoint"):
        return DataSets(problem, one(0), None, None)
    if isinstance(problem, data.MixtureProblem):  # immutable and thread-safe
        grad, train, test = _parallel(one, 3)
    elif hasattr(problem, "sample_disjoint"):  # Fashion-MNIST: the three sets share no image
        rngs = [stream(seed, 0, *ident, j + 1) for j in range(3)]
        grad, train, test = problem.sample_disjoint(sizes, rngs, stream(seed, 0, *ident, 4))
        if not readout:
            train = test = None
    else:
        grad, train, test = (one(j) for j in range(3))
    return DataSets(problem, grad, train, test)


def data_key(p: Mapping[str, Any], seed: int, ident: tuple[int, int]) -> str:
    """Tasks with the same key draw the same structure and data sets."""
    relevant = {k: v for k, v in p.items() if k not in config.MODEL_ONLY}
    return json.dumps([seed, ident, relevant], sort_keys=True, default=repr)


class DataCache:
    """Keeps the last few drawn data sets: tasks sharing a draw (redraw once/point) reuse it."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._items: dict[str, DataSets] = {}

    def get(self, p: Mapping[str, Any], seed: int, ident: tuple[int, int], readout: bool = True) -> DataSets:
        key = data_key(p, seed, ident)
        if key in self._items and readout and self._items[key].train is None:
            del self._items[key]  # drawn for the theory only: draw it whole
        if key in self._items:
            self._items[key] = self._items.pop(key)  # most recent last
            return self._items[key]
        while self._items and len(self._items) >= self.size:  # free memory before drawing
            self._items.pop(next(iter(self._items)))
        item = draw_data(p, seed, ident) if readout else draw_data(p, seed, ident, readout=False)
        self._items[key] = item
        return item


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


def task_data_key(exp: Experiment, point_index: int, trial: int) -> str:
    """The :func:`data_key` of a task (tasks sharing it share their data)."""
    point = point_at(exp, point_index)
    p = config.resolved(exp.point_params(point))
    return data_key(p, p["seed"], data_identity(point, trial, p["redraw"]))


def task_cost(exp: Experiment, point_index: int) -> float:
    """A relative cost estimate of a task: the flops of its products, ``k n (m~ + m + m_test)`` per activation."""
    p = config.resolved(exp.point_params(point_at(exp, point_index)))
    return float(p["k"]) * p["n"] * (p["m_grad"] + p["m"] + p["m_test"]) * len(p["activations"])


def _status(values: Sequence[float], condition: float, limit: float = MAX_CONDITION) -> str:
    if not all(np.isfinite(v) for v in values):
        return "nonfinite"
    if condition > limit:
        return "ill-conditioned"
    return "ok"


def run_task(
    exp: Experiment, point_index: int, trial: int, cache: DataCache | None = None
) -> list[dict[str, Any]]:
    """All rows of one task: for every activation and model, the training and test errors (and,
    for classification, the fractions of sign errors; ``None`` for regression).

    Runs on :func:`get_threads` threads with single-threaded BLAS; the numbers do not depend on
    the thread count.
    """
    point = point_at(exp, point_index)
    p = config.resolved(exp.point_params(point))
    cache = cache if cache is not None else DataCache(size=1)
    with single_threaded_blas():
        readout_needed = any(model != "theory" for model in p["models"])
        ds = cache.get(p, p["seed"], data_identity(point, trial, p["redraw"]), readout_needed)
        try:
            with np.errstate(all="ignore"):  # problems are recorded in the status column
                return _task_rows(p, point, trial, ds)
        except (ArithmeticError, np.linalg.LinAlgError):
            # Extreme but valid parameters (e.g. theta = 1e220, eta = 1e266) overflow or underflow
            # somewhere in the step or the expansion: record the task, never crash the sweep.
            return _failed_rows(p, point, trial)


def _failed_rows(p: Mapping[str, Any], point: Mapping[str, Any], trial: int) -> list[dict[str, Any]]:
    """Rows of a task whose arithmetic broke down: NaN errors, status ``nonfinite``."""
    return [
        {**point, "activation": name, "model": model, "trial": trial, "k": p["k"],
         "train_error": float("nan"), "test_error": float("nan"), "train_misclassification": None,
         "test_misclassification": None, "status": "nonfinite"}
        for name in p["activations"] for model in p["models"]
    ]


def _product(a: np.ndarray, b: np.ndarray, out: np.ndarray, add: np.ndarray | None = None) -> None:
    """``out = a @ b (+ add)`` by blocks of :data:`ROW_BLOCK` rows of ``a``."""
    blocks = _blocks(a.shape[0])

    def block(i: int) -> None:
        rows = blocks[i]
        np.matmul(a[rows], b, out=out[rows])
        if add is not None:
            out[rows] += add[rows]

    _parallel(block, len(blocks))


def _task_rows(p: Mapping[str, Any], point: Mapping[str, Any], trial: int, ds: DataSets) -> list[dict[str, Any]]:
    """The computation of one task on drawn data (see the module docstring for the formulas)."""
    seed = p["seed"]
    problem = ds.problem
    dtype = np.dtype(p["dtype"])
    xg, yg = ds.grad
    k = p["k"]
    models = [model for model in p["models"] if model != "theory"]  # the readout models
    if models:
        (x, y), (xt, yt) = ds.train, ds.test
    init_point = 0 if p["share_init"] else stable_id(point)
    f0, a0 = network.init_params(problem.n, k, problem.tr, stream(seed, 1, init_point, trial), dtype.type)
    # U~ = X~ F^T: shared by every activation's gradient step.
    pre_grad = np.empty((len(yg), k), dtype)
    _product(xg, f0.T, pre_grad)
    scale = p["hermite_scale"] if p["hermite_scale"] is not None else problem.scale
    # F^ = F + eta / (m~ sqrt(k)) [(a r^T) * sigma'(F X~^T)] X~ = F + G^T X~, with G below.
    step = float(p["eta"]) / (len(yg) * math.sqrt(k))
    g = np.empty_like(pre_grad)
    f_hat = np.empty_like(f0)
    feats = {model: np.empty((len(y), k), dtype) for model in models} if models else {}
    lam_k = p["lambda"] * k
    limit = MAX_CONDITION_FLOAT32 if dtype == np.float32 else MAX_CONDITION
    classify = p["task"] == "classification"
    rows = []
    for name in p["activations"]:
        act = get_activation(name)
        kern = kernel(act)
        _gradient_matrix(pre_grad, yg, a0, kern, step, g)
        _product(g.T, xg, f_hat, add=f0)
        if "theory" in p["models"]:
            rows.append(_theory_row(p, point, trial, problem, f_hat, act, name))
        if not models:
            continue
        sur = (surrogate(act, float(scale), int(p["degree"]), int(p["hermite_nodes"]), p["hermite_quadrature"])
               if "hermite" in models else None)
        noise = None
        if sur is not None and sur.tail > 0.0:
            noise = OrderedNoise(stream(seed, 2, stable_id(point), trial, stable_id(name)))
        # Training features without the 1/sqrt(k): ridge with lambda k on S = sqrt(k) Phi gives
        # weights a^ / sqrt(k) and exactly the same training error and condition bound.
        _train_features(x, f_hat, kern, sur, noise, feats)
        fits = _parallel(lambda i: readout.ridge(feats[models[i]], y, lam_k), len(models))
        weights = [fit.weights for fit in fits]
        sq, wrong = _test_sums(xt, yt, f_hat, kern, sur, noise, models, weights, len(_blocks(len(y))))
        for model, fit, total, miss in zip(models, fits, sq, wrong, strict=True):
            test_err = total / (2 * len(yt))
            rows.append({
                **point,
                "activation": name,
                "model": model,
                "trial": trial,
                "k": k,
                "train_error": fit.train_error,
                "test_error": test_err,
                # 0-1 errors of the same predictions: y - residual (training), y - r (test).
                "train_misclassification": sign_errors(y - fit.residual, y) / len(y) if classify else None,
                "test_misclassification": miss / len(yt) if classify else None,
                "status": _status((fit.train_error, test_err), fit.condition, limit),
            })
    return rows


def _theory_row(
    p: Mapping[str, Any], point: Mapping[str, Any], trial: int, problem: Any, f_hat: np.ndarray,
    act: Activation, name: str,
) -> dict[str, Any]:
    """The ``theory`` row of an activation: the deterministic equivalent on the task's ``F^``
    (:mod:`gmstep.theory`; status ``ok``, ``not-converged`` or ``nonfinite``)."""
    from . import theory

    # No 0-1 errors: they depend on more than the second moments the theory uses (docs/THEORY.md).
    row = {**point, "activation": name, "model": "theory", "trial": trial, "k": p["k"],
           "train_error": float("nan"), "test_error": float("nan"), "train_misclassification": None,
           "test_misclassification": None, "status": "nonfinite"}
    if not np.all(np.isfinite(f_hat)):  # an overflowing step: no Gaussian to speak of
        return row
    try:
        res = theory.predict(problem, f_hat, act, p["m"], p["lambda"], p["m_test"])
    except (ArithmeticError, ValueError, np.linalg.LinAlgError):
        return row
    return {**row, "train_error": res.train_error, "test_error": res.test_error, "status": res.status}


def _gradient_matrix(
    pre: np.ndarray, yg: np.ndarray, a0: np.ndarray, kern: Kernel, step: float, out: np.ndarray
) -> None:
    """``G = step * (r a^T) * sigma'(U~)`` (``m~ x k``) with ``r = y~ - sigma(U~) a / sqrt(k)``."""
    k = pre.shape[1]
    sqrt_k = math.sqrt(k)
    blocks = _blocks(pre.shape[0])

    def block(i: int) -> None:
        rows = blocks[i]
        for t in _tiles(rows.stop - rows.start, k):
            sl = slice(rows.start + t.start, rows.start + t.stop)
            u = pre[sl]
            s = _scratch("s", u.shape, pre.dtype)
            d = out[sl]
            kern.fn_deriv(u, s, d)
            r = yg[sl] - s @ a0 / sqrt_k
            d *= a0
            d *= (step * r)[:, None]

    _parallel(block, len(blocks))


def _block_inputs(
    x: np.ndarray, rows: slice, f_hat: np.ndarray, noise: OrderedNoise | None, index: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """A row block's pre-activations ``U = X[rows] F^T`` and, with ``noise``, its Hermite noise
    ``Z`` (block ``index`` of the ordered stream), both in per-thread scratch buffers."""
    nb, k = rows.stop - rows.start, f_hat.shape[0]
    z = None
    if noise is not None:
        z = _scratch("z", (nb, k), x.dtype)
        noise.fill(index, z)
    u = _scratch("u", (nb, k), x.dtype)
    np.matmul(x[rows], f_hat.T, out=u)
    return u, z


def _train_features(
    x: np.ndarray, f_hat: np.ndarray, kern: Kernel, sur: Surrogate | None, noise: OrderedNoise | None,
    feats: dict[str, np.ndarray],
) -> None:
    """``S_nn = sigma(X F^T)`` and ``S_h = p(X F^T) + tail Z`` (rows of ``Z`` drawn in order)."""
    k = f_hat.shape[0]
    blocks = _blocks(x.shape[0])

    def block(i: int) -> None:
        rows = blocks[i]
        nb = rows.stop - rows.start
        try:
            u, z = _block_inputs(x, rows, f_hat, noise, i)
            for t in _tiles(nb, k):
                ut = u[t]
                if "nn" in feats:
                    kern.fn(ut, feats["nn"][rows][t])
                if "hermite" in feats:
                    h = feats["hermite"][rows][t]
                    sur.polynomial(ut, h)
                    if z is not None:
                        zt = z[t]
                        zt *= sur.tail
                        h += zt
        except BaseException:
            if noise is not None:
                noise.abort()
            raise

    _parallel(block, len(blocks), abort=noise.abort if noise is not None else None)


def _test_sums(
    xt: np.ndarray, yt: np.ndarray, f_hat: np.ndarray, kern: Kernel, sur: Surrogate | None,
    noise: OrderedNoise | None, models: list[str], weights: list[np.ndarray], noise_offset: int,
) -> list[float]:
    """``sum_i (y_i - s(x_i)^T w)^2`` per model, and the number of sign errors
    ``#{i: sign(s(x_i)^T w) != sign(y_i)}`` of the same predictions; test features formed block
    by block, never stored whole."""
    k = f_hat.shape[0]
    blocks = _blocks(xt.shape[0], TEST_CHUNK)

    def block(i: int) -> list[float]:
        rows = blocks[i]
        nb = rows.stop - rows.start
        try:
            u, z = _block_inputs(xt, rows, f_hat, noise, noise_offset + i)
            s = _scratch("s", (nb, k), xt.dtype)
            y = yt[rows]
            sums = [0.0] * len(models)
            wrong = [0] * len(models)
            for t in _tiles(nb, k):
                ut, st = u[t], s[t]
                for j, model in enumerate(models):
                    if model == "nn":
                        kern.fn(ut, st)
                    else:
                        sur.polynomial(ut, st)
                        if z is not None:
                            zt = z[t]
                            zt *= sur.tail
                            st += zt
                    r = y[t] - st @ weights[j]
                    sums[j] += float(r @ r)
                    wrong[j] += sign_errors(y[t] - r, y[t])
            return sums, wrong
        except BaseException:
            if noise is not None:
                noise.abort()
            raise

    per_block = _parallel(block, len(blocks), abort=noise.abort if noise is not None else None)
    return ([sum(b[0][j] for b in per_block) for j in range(len(models))],
            [sum(b[1][j] for b in per_block) for j in range(len(models))])


def sign_errors(pred: np.ndarray, y: np.ndarray) -> int:
    """``#{i: sign(pred_i) != sign(y_i)}`` (a prediction of exactly 0 counts as an error)."""
    return int(np.count_nonzero(np.sign(pred) != np.sign(y)))
