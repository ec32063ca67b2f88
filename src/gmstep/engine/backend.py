"""The backend seam: the array operations a task's sequence (:func:`gmstep.engine.task._task_rows`)
calls, on NumPy (:class:`NumpyOps`, the default) or on PyTorch (:mod:`gmstep.engine.torch_ops`).

The sequence, and so the mathematics (docs/MATH.md), is written once in ``_task_rows``; a backend
supplies the same few operations on its own arrays:

    data_sets, init_params, empty, work (an empty array reused from task to task, NumPy only),
    product (out = a b + add), gradient_matrix (G), activation,
    noise (the Hermite noise Z), train_features (S), ridges (per model: a^, training error,
    condition, residual), test_sums, sign_errors, per_task (F^ for the theory) and host (values
    to floats per task, one copy).

The sequence runs on a batch of trials of one point (given as lists of data sets and stream
keys); the NumPy engine takes one trial at a time (its arrays have no batch dimension), the torch
backend's arrays carry a leading batch dimension (:mod:`gmstep.engine.torch_ops`).

:class:`NumpyOps` is :mod:`gmstep.engine.steps` and :func:`gmstep.readout.ridge` as they are, so
the NumPy engine's numbers do not depend on this seam. PyTorch is imported only when the torch
backend is asked for (``import gmstep`` stays free of it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import gan_model, network, readout
from ..activations import Activation
from ..activations import get as get_activation
from ..config import THEORY
from ..errors import ConfigError
from ..scratch import Scratch
from . import steps
from .datasets import DataSets
from .parallel import OrderedNoise, run_parallel
from .streams import stream


class NumpyOps:
    """The NumPy engine: block-wise fused products on the task's threads (:mod:`.steps`)."""

    name = "numpy"
    batch_errors: tuple[type[Exception], ...] = ()  # one trial at a time: nothing to retry task by task
    product = staticmethod(steps.product)
    gradient_matrix = staticmethod(steps.gradient_matrix)
    train_features = staticmethod(steps.train_features)
    test_sums = staticmethod(steps.test_sums)
    sign_errors = staticmethod(steps.sign_errors)

    @staticmethod
    def data_sets(dss: Sequence[DataSets]) -> tuple[Any, Any, Any]:
        (ds,) = dss  # one trial at a time
        return ds.grad, ds.train, ds.test

    @staticmethod
    def init_params(n: int, k: int, tr: float, keys: Sequence[Sequence[int]],
                    dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """``F`` and ``a`` from the stream ``key`` (:func:`gmstep.network.init_params`)."""
        (key,) = keys
        return network.init_params(n, k, tr, stream(*key), dtype.type)

    @staticmethod
    def empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.empty(shape, dtype)

    @staticmethod
    def work(scratch: Scratch, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An uninitialised array that the next task's request of ``name`` gets again
        (:mod:`gmstep.scratch`: no fresh pages to fault in, task after task)."""
        return scratch.array(f"engine.{name}", shape, dtype)

    @staticmethod
    def activation(name: str) -> Activation:
        return get_activation(name)

    @staticmethod
    def noise(keys: Sequence[Sequence[int]], rows: int, k: int, dtype: np.dtype) -> OrderedNoise:
        """The Hermite noise of stream ``key``, drawn block by block in row order."""
        (key,) = keys
        return OrderedNoise(stream(*key))

    @staticmethod
    def ridges(phis: Sequence[np.ndarray], y: np.ndarray, lam: float) -> list[readout.RidgeFit]:
        """:func:`gmstep.readout.ridge` of every feature matrix, on the task's threads."""
        return run_parallel(lambda i: readout.ridge(phis[i], y, lam), len(phis))

    @staticmethod
    def per_task(a: np.ndarray) -> list[np.ndarray]:
        return [a]

    @staticmethod
    def host(values: Sequence[Any], batch: int) -> list[list[float | None]]:
        return [[None if v is None else float(v) for v in values]]


NUMPY = NumpyOps()


def ops_for(p: Mapping[str, Any]) -> Any:
    """The operations of resolved point ``p``'s backend (``backend``, ``device``, ``rng``)."""
    if p.get("backend", "numpy") == "numpy":
        return NUMPY
    from . import torch_ops  # PyTorch only when asked for

    return torch_ops.ops(p["device"], p["rng"])


def require_torch() -> Any:
    """The ``torch`` module, or a one-line error saying what to do."""
    return gan_model.require_torch("backend", "= torch needs PyTorch: run `make install` (or pip install torch), "
                                   "or use --set backend=numpy")


def check(p: Mapping[str, Any]) -> None:
    """Pre-flight of the torch backend (one-line :class:`ConfigError`): PyTorch importable, a CUDA
    device for ``device = cuda``, and a torch kernel for every activation on a CUDA device."""
    if p.get("backend", "numpy") != "torch":
        return
    torch = require_torch()
    if p["device"] == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "= cuda but torch sees no CUDA device (torch.cuda.is_available() is false); "
                          "use --set device=cpu, or run on a machine with a GPU")
    from . import torch_ops

    device = torch_ops.resolve_device(p["device"])
    for name in p["activations"]:
        torch_ops.kernel(get_activation(name), device)  # raises for a NumPy-only activation on cuda


#: A task is admitted on a GPU if its estimate is at most this fraction of the device's free memory.
DEVICE_MEMORY_FRACTION = 0.8


def device_bytes(p: Mapping[str, Any]) -> int:
    """Bytes of device memory one torch task of resolved point ``p`` holds at its peak: two data
    keys' sets ``2 n (m~ + m + m_test)``, ``F`` and ``F^`` (``2 k n``), the step (``4 m~ k``), the
    training features (``(models + 2) m k``), the noise (``(m + m_test) k``), the test features
    (``3 m_test k``) and the ridge system (``2 min(k, m)^2``), times the bytes of a float."""
    n, m, k, mg, mt = (int(p[key]) for key in ("n", "m", "k", "m_grad", "m_test"))
    models = len([model for model in p["models"] if model != THEORY])
    elements = (2 * n * (mg + m + mt) + 2 * k * n + 4 * mg * k + (models + 2) * m * k + (m + mt) * k
                + 3 * mt * k + 2 * min(k, m) ** 2)
    return elements * (4 if p["dtype"] == "float32" else 8)


def check_device_memory(points: Sequence[Mapping[str, Any]], free: int | None = None) -> None:
    """Refuse (one line) points whose torch task does not fit in :data:`DEVICE_MEMORY_FRACTION` of
    the CUDA device's free memory (``free``: that amount in bytes; default: asked of the device,
    and nothing is checked off a CUDA device)."""
    if not points or points[0].get("backend", "numpy") != "torch":
        return
    if free is None:
        from . import torch_ops

        if torch_ops.resolve_device(points[0]["device"]) != "cuda":
            return
        free = int(torch_ops.torch.cuda.mem_get_info()[0])
    worst = max(points, key=device_bytes)
    need = device_bytes(worst)
    if need > DEVICE_MEMORY_FRACTION * free:
        gb = 2**30
        key = max(("n", "m", "k", "m_test"), key=lambda c: int(worst[c]))
        raise ConfigError(key, f"a torch task needs about {need / gb:.3g} GB of GPU memory (n = {worst['n']}, "
                          f"m = {worst['m']}, k = {worst['k']}, m_test = {worst['m_test']}), more than "
                          f"{DEVICE_MEMORY_FRACTION:.0%} of the {free / gb:.3g} GB free on the device: reduce n, m, "
                          "k or m_test, or --set memory_check=false to run anyway")


def describe(p: Mapping[str, Any]) -> dict[str, Any]:
    """What a run of ``p`` executes on (recorded in meta.json): the backend, and for torch the
    resolved device and random numbers and the torch version (as given, where this machine has no
    torch: a run on remote Dask workers)."""
    if p.get("backend", "numpy") == "numpy":
        return {"backend": "numpy"}
    try:
        from . import torch_ops
    except ImportError:
        return {"backend": "torch", "device": p["device"], "rng": p["rng"], "torch": None}
    device = torch_ops.resolve_device(p["device"])
    return {"backend": "torch", "device": device, "rng": torch_ops.resolve_rng(p["rng"], device),
            "torch": str(torch_ops.torch.__version__)}
