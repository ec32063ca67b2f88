"""The backend seam: the array operations a task's sequence (:func:`gmstep.engine.task._task_rows`)
calls, on NumPy (:class:`NumpyOps`, the default) or on PyTorch (:mod:`gmstep.engine.torch_ops`).

The sequence, and so the mathematics (docs/MATH.md), is written once in ``_task_rows``; a backend
supplies the same few operations on its own arrays:

    data_sets, init_params, empty, product (out = a b + add), gradient_matrix (G), activation,
    noise (the Hermite noise Z), train_features (S), ridge (a^, training error, condition,
    residual), test_sums, sign_errors, to_numpy (F^ for the theory), host (values to floats)
    and parallel (run independent items).

:class:`NumpyOps` is :mod:`gmstep.engine.steps` and :func:`gmstep.readout.ridge` as they are, so
the NumPy engine's numbers do not depend on this seam. PyTorch is imported only when the torch
backend is asked for (``import gmstep`` stays free of it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import network, readout
from ..activations import Activation
from ..activations import get as get_activation
from ..errors import ConfigError
from . import steps
from .datasets import DataSets
from .parallel import OrderedNoise, run_parallel
from .streams import stream


class NumpyOps:
    """The NumPy engine: block-wise fused products on the task's threads (:mod:`.steps`)."""

    name = "numpy"
    product = staticmethod(steps.product)
    gradient_matrix = staticmethod(steps.gradient_matrix)
    train_features = staticmethod(steps.train_features)
    test_sums = staticmethod(steps.test_sums)
    sign_errors = staticmethod(steps.sign_errors)

    @staticmethod
    def data_sets(ds: DataSets) -> tuple[Any, Any, Any]:
        return ds.grad, ds.train, ds.test

    @staticmethod
    def init_params(n: int, k: int, tr: float, key: Sequence[int], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """``F`` and ``a`` from the stream ``key`` (:func:`gmstep.network.init_params`)."""
        return network.init_params(n, k, tr, stream(*key), dtype.type)

    @staticmethod
    def empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return np.empty(shape, dtype)

    @staticmethod
    def activation(name: str) -> Activation:
        return get_activation(name)

    @staticmethod
    def noise(key: Sequence[int], rows: int, k: int, dtype: np.dtype) -> OrderedNoise:
        """The Hermite noise of stream ``key``, drawn block by block in row order."""
        return OrderedNoise(stream(*key))

    @staticmethod
    def ridge(phi: np.ndarray, y: np.ndarray, lam: float) -> readout.RidgeFit:
        return readout.ridge(phi, y, lam)

    @staticmethod
    def to_numpy(a: np.ndarray) -> np.ndarray:
        return a

    @staticmethod
    def host(values: Sequence[Any]) -> list[float | None]:
        return [None if v is None else float(v) for v in values]

    @staticmethod
    def parallel(fn: Callable[[int], Any], count: int) -> list[Any]:
        return run_parallel(fn, count)


NUMPY = NumpyOps()


def ops_for(p: Mapping[str, Any]) -> Any:
    """The operations of resolved point ``p``'s backend (``backend``, ``device``, ``rng``)."""
    if p.get("backend", "numpy") == "numpy":
        return NUMPY
    from . import torch_ops  # PyTorch only when asked for

    return torch_ops.ops(p["device"], p["rng"])


def require_torch() -> Any:
    """The ``torch`` module, or a one-line error saying what to do."""
    try:
        import torch
    except ImportError:
        raise ConfigError("backend", "= torch needs PyTorch: run `make install` (or pip install torch), "
                          "or use --set backend=numpy") from None
    return torch


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
