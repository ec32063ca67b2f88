"""The data of a task: the data source (structure), the gradient batch, training and test sets.

A resolved point (:func:`gmstep.config.resolved`) names a data source: a Gaussian mixture
(:mod:`gmstep.data`, docs/MATH.md) or Fashion-MNIST (:mod:`gmstep.fashion`). Its structure and
its three data sets come from independent streams (:mod:`gmstep.engine.streams`); tasks with the
same :func:`data_key` draw the same data, which :class:`DataCache` keeps for reuse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import config, data, fashion
from ..scratch import Scratch
from .parallel import run_parallel
from .streams import stream


@dataclass
class DataSets:
    """A task's data source and its ``(X, y)`` sets (``train``/``test`` ``None``: not drawn)."""

    problem: Any
    grad: tuple[np.ndarray, np.ndarray]
    train: tuple[np.ndarray, np.ndarray] | None  # None: not drawn (a theory-only task)
    test: tuple[np.ndarray, np.ndarray] | None


def build_problem(p: Mapping[str, Any], rng: np.random.Generator):
    """The data source of a resolved point (a :class:`gmstep.data.Problem`)."""
    dtype = np.dtype(p["dtype"]).type
    if p["dataset"] == "fashion-mnist":
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
    way; real images are still picked for all three sets, so the gradient batch is too; the
    gaussian and cgan sources draw the gradient batch alone).
    """
    problem = build_problem(p, stream(seed, 0, *ident, 0))
    sizes = (p["m_grad"], p["m"], p["m_test"])
    device = device_streams(p) if isinstance(problem, data.MixtureProblem) else None

    def one(j: int) -> tuple[np.ndarray, np.ndarray]:
        key = (seed, 0, *ident, j + 1)
        return problem.sample(sizes[j], stream(*key) if device is None else device(key))

    joint = getattr(problem, "joint_draw", False)  # real Fashion-MNIST images: the sets share no image
    if not readout and not joint:
        return DataSets(problem, one(0), None, None)
    if isinstance(problem, data.MixtureProblem):  # immutable and thread-safe (on a device: in turn)
        grad, train, test = run_parallel(one, 3) if device is None else [one(j) for j in range(3)]
    elif joint:
        rngs = [stream(seed, 0, *ident, j + 1) for j in range(3)]
        grad, train, test = problem.sample_disjoint(sizes, rngs, stream(seed, 0, *ident, 4))
        if not readout:
            train = test = None
    else:
        grad, train, test = (one(j) for j in range(3))
    return DataSets(problem, grad, train, test)


def device_streams(p: Mapping[str, Any]) -> Any:
    """With the torch backend's device random numbers (``rng = device``, or ``auto`` on a GPU):
    the maker of device streams that draw a Gaussian mixture's three data sets on the device
    (:class:`gmstep.engine.torch_ops.DeviceStream`, keyed by the same stream keys as NumPy's
    draws); else None (NumPy draws them)."""
    if not _device_rng_possible(p):
        return None
    from . import torch_ops

    ops = torch_ops.ops(p["device"], p["rng"])
    return ops.stream if ops.rng == "device" else None


def _device_rng_possible(p: Mapping[str, Any]) -> bool:
    """The torch backend with ``rng`` other than ``numpy``: its data may be drawn on the device."""
    return p.get("backend", "numpy") == "torch" and p.get("rng", "auto") != "numpy"


def data_key(p: Mapping[str, Any], seed: int, ident: tuple[int, int]) -> str:
    """Tasks with the same key draw the same structure and data sets (the torch backend's device
    random numbers draw other Gaussian-mixture data sets for the same key: they are keyed apart)."""
    relevant = {k: v for k, v in p.items() if k not in config.MODEL_ONLY}
    if _device_rng_possible(p):
        relevant["rng"] = p["rng"]
    return json.dumps([seed, ident, relevant], sort_keys=True, default=repr)


class DataCache:
    """Keeps the last few drawn data sets: tasks sharing a draw (redraw once/point) reuse it.
    One per worker (process or thread); it also carries the worker's :attr:`scratch`, the work
    arrays the theory model reuses from task to task (:mod:`gmstep.scratch`)."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._items: dict[str, DataSets] = {}
        self.scratch = Scratch()

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
