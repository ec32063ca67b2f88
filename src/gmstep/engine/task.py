"""One task (one sweep point x one trial): every activation's and model's errors.

:func:`run_task` draws (or reuses) the task's data, takes the gradient step for every
activation, fits the readouts and sums the test errors with the fused products of
:mod:`gmstep.engine.steps`; the ``theory`` model's row is the deterministic equivalent of
:mod:`gmstep.theory` on the same ``F^``. docs/MATH.md states the formulas, docs/ARCHITECTURE.md
how a task fits in a run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import config, network, readout, theory
from ..activations import Activation
from ..activations import get as get_activation
from ..experiment import Experiment, point_at
from .datasets import DataCache, DataSets, data_key
from .parallel import OrderedNoise, blocks, run_parallel, single_threaded_blas
from .steps import gradient_matrix, product, sign_errors, surrogate, test_sums, train_features
from .streams import data_identity, stable_id, stream

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
    product(xg, f0.T, pre_grad)
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
        gradient_matrix(pre_grad, yg, a0, act, step, g)
        product(g.T, xg, f_hat, add=f0)
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
        train_features(x, f_hat, act, sur, noise, feats)
        fits = run_parallel(lambda i: readout.ridge(feats[models[i]], y, lam_k), len(models))
        weights = [fit.weights for fit in fits]
        sq, wrong = test_sums(xt, yt, f_hat, act, sur, noise, models, weights, len(blocks(len(y))))
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
