"""Batches of trials (the torch backend): which pending tasks run together, and how many fit.

The NumPy engine computes one task at a time. On the torch backend the trials of one sweep point
(same ``n``, ``m``, ``k``, activations and models) run as one batch: one pass of the engine's
sequence (:func:`gmstep.engine.task.compute_tasks`) whose arrays carry a leading batch dimension,
one host copy for the whole batch. Batches are formed in two places:

- where tasks are scheduled (:func:`units`, called by every executor on the pending tasks):
  a *unit* is the pending trials ``t`` of one point with the same ``t // U``, ``U`` =
  ``batch_trials`` or :data:`MAX_BATCH` (``auto``); a unit is what a worker is handed;
- where a unit runs (:func:`compute_unit`, in the worker that holds the device): its trials in
  batches of :func:`batch_size` (``batch_trials``, or as many tasks as fit in the device's
  memory), again aligned (trial ``t`` in batch ``t // B``).

So the batches depend on the pending tasks, ``batch_trials`` and (``auto``) the device's memory,
never on the executor, ``--jobs`` or the completion order, and a resumed run computes the
missing trials only. A batch's rows equal the same tasks' rows computed one by one to rounding
(about 1e-14 relative: batched products may round differently); every trial keeps its own
random streams.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import config
from ..experiment import Experiment, point_at
from .backend import DEVICE_MEMORY_FRACTION, device_bytes
from .datasets import DataCache
from .task import TaskResult, compute_task, compute_tasks

#: The most trials in one unit or batch.
MAX_BATCH = 64
#: Bytes a batch's arrays may take on the CPU (``auto``): batching gains on small tasks only,
#: where the host overhead per task is what it saves.
CPU_BATCH_BYTES = 128 * 2**20

Unit = tuple[int, tuple[int, ...]]


def device_memory(device: str) -> int | None:
    """The total memory of the CUDA device ``device`` resolves to (bytes), or None on the CPU."""
    from . import torch_ops

    if torch_ops.resolve_device(device) != "cuda":
        return None
    return int(torch_ops.torch.cuda.get_device_properties(torch_ops.torch.cuda.current_device()).total_memory)


def batch_size(p: Mapping[str, Any], memory: int | None = None) -> int:
    """Trials per batch for resolved point ``p``: ``batch_trials``, or for ``auto``
    ``floor(budget / device_bytes(p))`` in ``[1, MAX_BATCH]``, where the budget is
    :data:`~gmstep.engine.backend.DEVICE_MEMORY_FRACTION` of the CUDA device's total memory
    ``memory`` (the same card gives the same batches, so the same numbers; default: asked of the
    device) or :data:`CPU_BATCH_BYTES` on the CPU. The pre-flight
    (:func:`~gmstep.engine.backend.check_device_memory`) has admitted one task in the free memory;
    a batch that does not fit after all is computed task by task."""
    if p.get("backend", "numpy") == "numpy":
        return 1
    if p.get("batch_trials", "auto") != "auto":
        return int(p["batch_trials"])
    if memory is None:
        memory = device_memory(p["device"])
    budget = CPU_BATCH_BYTES if memory is None else DEVICE_MEMORY_FRACTION * memory
    return max(1, min(MAX_BATCH, int(budget // device_bytes(p))))


def units(exp: Experiment, tasks: Sequence[tuple[int, int]]) -> list[Unit]:
    """The tasks as units ``(point_index, trials)`` in the order of their first task: single
    tasks on the NumPy backend, aligned blocks of one point's trials on the torch backend."""
    if exp.params.get("backend", "numpy") == "numpy":
        return [(point_index, (trial,)) for point_index, trial in tasks]
    size = exp.params.get("batch_trials", "auto")
    return _aligned(tasks, MAX_BATCH if size == "auto" else int(size))


def _aligned(tasks: Sequence[tuple[int, int]], size: int) -> list[Unit]:
    """The tasks grouped by point and aligned block of ``size`` trials (trial ``t`` in block
    ``t // size``), in the order of each group's first task."""
    groups: dict[tuple[int, int], list[int]] = {}
    for point_index, trial in tasks:
        groups.setdefault((point_index, trial // size), []).append(trial)
    return [(point_index, tuple(trials)) for (point_index, _), trials in groups.items()]


def compute_unit(exp: Experiment, point_index: int, trials: Sequence[int],
                 cache: DataCache | None = None) -> list[TaskResult]:
    """The tasks of a unit, one :class:`TaskResult` each (in ``trials``' order within a batch),
    computed in batches of :func:`batch_size` aligned trials."""
    p = config.resolved(exp.point_params(point_at(exp, point_index)))
    if p.get("backend", "numpy") == "numpy":
        return [compute_task(exp, point_index, trial, cache) for trial in trials]
    batches = _aligned([(point_index, trial) for trial in trials], batch_size(p))
    return [result for _, batch in batches for result in compute_tasks(exp, point_index, batch, cache)]
