"""One task (one sweep point x one trial): every activation's and model's errors.

:func:`run_task` draws (or reuses) the task's data, takes the gradient step for every
activation, fits the readouts and sums the test errors with the fused products of
:mod:`gmstep.engine.steps`; the ``theory`` model's row is the deterministic equivalent of
:mod:`gmstep.theory` on the same ``F^``. docs/MATH.md states the formulas, docs/ARCHITECTURE.md
how a task fits in a run.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import config, theory
from ..activations import Activation
from ..activations import get as get_activation
from ..config import HERMITE, THEORY
from ..experiment import Experiment, point_at
from ..scratch import Scratch
from .backend import ops_for
from .datasets import DataCache, DataSets, data_key
from .parallel import blocks, single_threaded_blas
from .steps import surrogate
from .streams import data_identity, stable_id

#: A ridge system whose (1-norm) condition number exceeds this is reported as ill-conditioned:
#: its solution may have lost about ``condition * eps`` of its relative accuracy (1e-4 in float64).
MAX_CONDITION = 1e12
#: The same limit for float32 systems (``condition * eps`` about 0.06).
MAX_CONDITION_FLOAT32 = 1e6


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


#: The value columns of :attr:`TaskResult.errors`, in order.
ERROR_COLUMNS = ("train_error", "test_error", "train_misclassification", "test_misclassification")


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one task: row ``i = a M + m`` is activation ``a`` and model ``m`` (in the
    order of the parameters ``activations`` and ``models``, ``M`` models).

    ``errors[i]`` holds the :data:`ERROR_COLUMNS` of row ``i`` (NaN: not computed; the 0-1
    errors are NaN for regression and for the ``theory`` model), ``statuses[i]`` its status.
    """

    point_index: int
    trial: int
    k: int
    activations: tuple[str, ...]
    models: tuple[str, ...]
    errors: np.ndarray
    statuses: tuple[str, ...]
    columns: tuple[str, ...] = ERROR_COLUMNS

    def checked(self, per_task: int) -> TaskResult:
        """This result after the runner's checks: ``per_task`` rows, and status ``nonfinite`` on
        every ``ok`` row whose errors are not finite (a NaN 0-1 error means "not computed")."""
        if len(self.statuses) != per_task or self.errors.shape != (per_task, len(self.columns)):
            raise RuntimeError(f"a task returned {len(self.statuses)} rows, expected {per_task}")
        required = [self.columns.index(c) for c in ("train_error", "test_error")]
        errors = np.where(np.isnan(self.errors), 0.0, self.errors)  # NaN: not computed ...
        errors[:, required] = self.errors[:, required]  # ... except for the errors every row has
        finite = [bool(v) for v in np.isfinite(errors).all(axis=1).reshape(-1)]
        statuses = tuple("nonfinite" if s == "ok" and not ok else s
                         for s, ok in zip(self.statuses, finite, strict=True))
        return dataclasses.replace(self, statuses=statuses)

    def rows(self, point: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The rows as dicts with the columns of results.csv (``point``: the sweep values)."""
        out = []
        for i, (name, model) in enumerate(itertools.product(self.activations, self.models)):
            train, test, train_miss, test_miss = (float(v) for v in self.errors[i])
            out.append({
                **point, "activation": name, "model": model, "trial": self.trial, "k": self.k,
                "train_error": train, "test_error": test,
                "train_misclassification": None if math.isnan(train_miss) else train_miss,
                "test_misclassification": None if math.isnan(test_miss) else test_miss,
                "status": self.statuses[i],
            })
        return out


class _Collector:
    """Fills a :class:`TaskResult` row by row, by index (unfilled rows: NaN, ``nonfinite``)."""

    def __init__(self, p: Mapping[str, Any], point_index: int, trial: int) -> None:
        self.p, self.point_index, self.trial = p, point_index, trial
        self.activations, self.models = tuple(p["activations"]), tuple(p["models"])
        self.errors = np.full((len(self.activations) * len(self.models), len(ERROR_COLUMNS)), np.nan)
        self.statuses = ["nonfinite"] * len(self.errors)

    def add(self, name: str, model: str, values: Sequence[float | None], status: str) -> None:
        i = self.activations.index(name) * len(self.models) + self.models.index(model)
        self.errors[i] = [np.nan if v is None else v for v in values]
        self.statuses[i] = status

    def result(self) -> TaskResult:
        return TaskResult(self.point_index, self.trial, int(self.p["k"]), self.activations, self.models,
                          self.errors, tuple(self.statuses))


def compute_task(exp: Experiment, point_index: int, trial: int, cache: DataCache | None = None) -> TaskResult:
    """One task: for every activation and model, the training and test errors (and, for
    classification, the fractions of sign errors).

    Runs on :func:`~gmstep.engine.parallel.get_threads` threads with single-threaded BLAS; the
    numbers do not depend on the thread count.
    """
    return compute_tasks(exp, point_index, [trial], cache)[0]


def compute_tasks(exp: Experiment, point_index: int, trials: Sequence[int],
                  cache: DataCache | None = None) -> list[TaskResult]:
    """The tasks ``(point_index, t)``, ``t`` in ``trials``, as one batch: one pass of
    :func:`_task_rows` whose arrays carry a leading batch dimension (the torch backend; the NumPy
    engine takes one trial at a time). A batch that fails numerically, or whose trials' data
    sources differ in ``n``, ``tr`` or the Hermite scale, or that does not fit in the device's
    memory, is computed task by task."""
    point = point_at(exp, point_index)
    p = config.resolved(exp.point_params(point))
    cache = cache if cache is not None else DataCache(size=1)
    if len(trials) > 1 and ops_for(p).name == "numpy":
        return [compute_task(exp, point_index, t, cache) for t in trials]
    rows = [_Collector(p, point_index, t) for t in trials]
    with single_threaded_blas():
        readout_needed = any(model != THEORY for model in p["models"])
        dss = [cache.get(p, p["seed"], data_identity(point, t, p["redraw"]), readout_needed) for t in trials]
        if len({(ds.problem.n, ds.problem.tr, ds.problem.scale) for ds in dss}) > 1:
            return [compute_task(exp, point_index, t, cache) for t in trials]
        try:
            with np.errstate(all="ignore"):  # problems are recorded in the status column
                _task_rows(p, point, list(trials), dss, rows, cache.scratch)
        except (ArithmeticError, np.linalg.LinAlgError, *ops_for(p).batch_errors) as exc:
            if len(trials) > 1:  # one task's failure (or a batch too large) must not take the others with it
                return [compute_task(exp, point_index, t, cache) for t in trials]
            if not isinstance(exc, ArithmeticError | np.linalg.LinAlgError):
                raise
            # Extreme but valid parameters (e.g. theta = 1e220, eta = 1e266) overflow or underflow
            # somewhere in the step or the expansion: record the task, never crash the sweep.
            rows = [_Collector(p, point_index, trials[0])]  # every row NaN, status nonfinite
    return [r.result() for r in rows]


def run_task(
    exp: Experiment, point_index: int, trial: int, cache: DataCache | None = None
) -> list[dict[str, Any]]:
    """The rows of :func:`compute_task` as dicts with the columns of results.csv."""
    return compute_task(exp, point_index, trial, cache).rows(point_at(exp, point_index))


def _t(a: Any) -> Any:
    """The transpose of the last two axes (a NumPy array or a tensor; for a matrix, ``a.T``)."""
    return a.swapaxes(-1, -2)


def _task_rows(p: Mapping[str, Any], point: Mapping[str, Any], trials: list[int], dss: Sequence[DataSets],
               rows: Sequence[_Collector], scratch: Scratch) -> None:
    """The computation of the tasks ``trials`` of one point on drawn data ``dss`` (see the module
    docstring for the formulas), with the array work of the point's backend
    (:func:`gmstep.engine.backend.ops_for`). The NumPy engine takes one trial; the torch backend's
    arrays carry a leading batch dimension, one entry per trial (the trials' ``F``, ``a`` and noise
    each from its own stream, the data shared or stacked), and the errors of all reach the host in
    one copy."""
    ops = ops_for(p)
    seed = p["seed"]
    problem = dss[0].problem  # n, tr and the Hermite scale are the batch's (compute_tasks checks)
    dtype = np.dtype(p["dtype"])
    (xg, yg), train, test = ops.data_sets(dss)
    k = p["k"]
    models = [model for model in p["models"] if model != THEORY]  # the readout models
    if models:
        assert train is not None and test is not None  # drawn whenever a readout model is asked for
        (x, y), (xt, yt) = train, test
    init_point = 0 if p["share_init"] else stable_id(point)
    f0, a0 = ops.init_params(problem.n, k, problem.tr, [(seed, 1, init_point, t) for t in trials], dtype)
    lead = tuple(f0.shape[:-2])  # the batch dimension (none for NumPy)
    mg = yg.shape[-1]
    # U~ = X~ F^T: shared by every activation's gradient step.
    pre_grad = ops.work(scratch, "pre_grad", (*lead, mg, k), dtype)
    ops.product(xg, _t(f0), pre_grad)
    scale = p["hermite_scale"] if p["hermite_scale"] is not None else problem.scale
    # F^ = F + eta / (m~ sqrt(k)) [(a r^T) * sigma'(F X~^T)] X~ = F + G^T X~, with G below.
    step = float(p["eta"]) / (mg * math.sqrt(k))
    g = ops.work(scratch, "g", (*lead, mg, k), dtype)
    f_hat = ops.work(scratch, "f_hat", tuple(f0.shape), dtype)
    feats = {model: ops.empty((*lead, y.shape[-1], k), dtype) for model in models} if models else {}
    lam_k = p["lambda"] * k
    limit = MAX_CONDITION_FLOAT32 if dtype == np.float32 else MAX_CONDITION
    classify = p["task"] == "classification"
    pending: list[tuple[str, str, tuple[Any, ...]]] = []  # readout rows: values copied once, at the end
    for name in p["activations"]:
        activation = get_activation(name)  # the registered one: theory and Hermite model are NumPy's
        act = ops.activation(name)
        ops.gradient_matrix(pre_grad, yg, a0, act, step, g)
        ops.product(_t(g), xg, f_hat, add=f0)
        if THEORY in p["models"]:
            for ds, f_task, task_rows in zip(dss, ops.per_task(f_hat), rows, strict=True):
                _theory_row(p, ds.problem, f_task, activation, name, task_rows, scratch)
        if not models:
            continue
        sur = (surrogate(activation, float(scale), int(p["degree"]), int(p["hermite_nodes"]),
                         p["hermite_quadrature"]) if HERMITE in models else None)
        m, m_test = y.shape[-1], yt.shape[-1]
        noise = None
        if sur is not None and sur.tail > 0.0:
            noise = ops.noise([(seed, 2, stable_id(point), t, stable_id(name)) for t in trials], m + m_test, k, dtype)
        # Training features without the 1/sqrt(k): ridge with lambda k on S = sqrt(k) Phi gives
        # weights a^ / sqrt(k) and exactly the same training error and condition bound.
        ops.train_features(x, f_hat, act, sur, noise, feats)
        fits = ops.ridges([feats[model] for model in models], y, lam_k)
        weights = [fit.weights for fit in fits]
        sq, wrong = ops.test_sums(xt, yt, f_hat, act, sur, noise, models, weights, len(blocks(m)))
        for model, fit, total, miss in zip(models, fits, sq, wrong, strict=True):
            test_err = total / (2 * m_test)
            # 0-1 errors of the same predictions: y - residual (training), y - r (test).
            miss_train = ops.sign_errors(y - fit.residual, y) / m if classify else None
            pending.append((name, model, (fit.train_error, test_err, miss_train,
                                          miss / m_test if classify else None, fit.condition)))
    copied = ops.host([v for *_, vals in pending for v in vals], len(rows))  # one copy: [task][value]
    for values, task_rows in zip(copied, rows, strict=True):
        for i, (name, model, _) in enumerate(pending):
            train_err, test_err, miss_train, miss_test, condition = values[5 * i: 5 * i + 5]
            task_rows.add(name, model, (train_err, test_err, miss_train, miss_test),
                          _status((train_err, test_err), condition, limit))


def _theory_row(p: Mapping[str, Any], problem: Any, f_hat: np.ndarray, act: Activation, name: str,
                rows: _Collector, scratch: Scratch) -> None:
    """The ``theory`` row of an activation: the deterministic equivalent on the task's ``F^``
    (:mod:`gmstep.theory`; status ``ok``, ``not-converged`` or ``nonfinite``), its work arrays
    in the worker's ``scratch``."""
    # No 0-1 errors: they depend on more than the second moments the theory uses (docs/THEORY.md).
    if not np.all(np.isfinite(f_hat)):  # an overflowing step: no Gaussian to speak of
        return  # the row stays NaN, nonfinite
    try:
        res = theory.predict(problem, f_hat, act, p["m"], p["lambda"], p["m_test"], scratch)
    except (ArithmeticError, ValueError, np.linalg.LinAlgError):
        return
    rows.add(name, THEORY, (res.train_error, res.test_error, None, None), res.status)
