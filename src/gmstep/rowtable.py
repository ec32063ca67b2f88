"""The rows of one experiment in memory: preallocated columns at canonical positions, filled
by task, read from and written to ``results.csv`` (the file layout is :mod:`gmstep.results`')."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import config, results
from .engine.task import TaskResult
from .errors import ResultsError
from .experiment import Experiment


class RowTable(Sequence[dict[str, Any]]):
    """All rows of one experiment in preallocated columns at canonical positions.

    Row position ``((p * T + t) * A + a) * M + m`` for point ``p``, trial ``t``, activation
    ``a`` and model ``m`` (``T`` trials, ``A`` activations, ``M`` models), so iteration yields
    rows in canonical order. Only filled positions are rows; a task is complete when its
    ``A * M`` positions are filled. Iterating yields plain dicts, one at a time.
    """

    def __init__(self, exp: Experiment) -> None:
        self.sweep_columns = list(exp.sweep_columns)
        self.columns = results.columns(self.sweep_columns)
        self.points = exp.points()
        self.trials = int(exp.params["trials"])
        self.activations = list(exp.params["activations"])
        self.models = list(exp.params["models"])
        self.per_task = len(self.activations) * len(self.models)
        self.num_tasks = len(self.points) * self.trials
        size = self.num_tasks * self.per_task
        self.value_columns = results.value_columns()
        self.values = {c: np.full(size, np.nan) for c in self.value_columns}
        self.status = np.full(size, -1, dtype=np.int8)
        self.status_names = list(results.STATUSES)
        self._point_index = {self._point_key(p): i for i, p in enumerate(self.points)}
        self.widths = _widths(exp, self.points)
        self._act_index = {a: i for i, a in enumerate(self.activations)}
        self._model_index = {m: i for i, m in enumerate(self.models)}
        self._filled: np.ndarray | None = None

    # --- positions

    def _point_key(self, point: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(results.format_value(point[c]) for c in self.sweep_columns)

    def position(self, point: int, trial: int, activation: int, model: int) -> int:
        return ((point * self.trials + trial) * len(self.activations) + activation) * len(self.models) + model

    def task_index(self, point: int, trial: int) -> int:
        return point * self.trials + trial

    def _locate(self, key: tuple[str, ...], trial: Any, act: Any, model: Any) -> int | None:
        p = self._point_index.get(key)
        a = self._act_index.get(act)
        m = self._model_index.get(model)
        if p is None or a is None or m is None or not isinstance(trial, int) or not 0 <= trial < self.trials:
            return None
        return self.position(p, trial, a, m)

    def _status_code(self, status: Any) -> int:
        status = str(status)
        try:
            return self.status_names.index(status)
        except ValueError:
            if len(self.status_names) >= 127:
                raise ResultsError(f"too many distinct row statuses (new: {status!r})") from None
            self.status_names.append(status)
            return len(self.status_names) - 1

    # --- filling

    def put(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Store the rows of one finished task (rows computed in this process)."""
        for row in rows:
            pos = self._locate(self._point_key(row), int(row["trial"]), row["activation"], row["model"])
            if pos is None:
                raise ValueError(f"a row that is not of this experiment: {dict(row)!r}")
            if results.WIDTH in row and row[results.WIDTH] != self.widths[pos // (self.per_task * self.trials)]:
                raise ValueError(f"a row computed with another width than this experiment's: {dict(row)!r}")
            for c in self.value_columns:
                v = row.get(c) if c in results.OPTIONAL_COLUMNS else row[c]
                self.values[c][pos] = np.nan if v is None or v == "" else float(v)
            self.status[pos] = self._status_code(row.get("status", "ok"))
        self._filled = None

    def put_result(self, result: TaskResult) -> None:
        """Store a finished task's :class:`~gmstep.engine.task.TaskResult` by index: its rows go to
        positions ``position(point, trial, 0, 0)`` onwards, no sweep value is looked up."""
        if (list(result.activations), list(result.models)) != (self.activations, self.models):
            raise ValueError("a task result of other activations or models than this experiment's")
        if not (0 <= result.point_index < len(self.points) and 0 <= result.trial < self.trials):
            raise ValueError(f"a task that is not of this experiment: {(result.point_index, result.trial)}")
        if result.k != self.widths[result.point_index]:
            raise ValueError(f"a task computed with another width than this experiment's: k = {result.k}")
        start = self.position(result.point_index, result.trial, 0, 0)
        rows = slice(start, start + self.per_task)
        for j, c in enumerate(result.columns):
            self.values[c][rows] = result.errors[:, j]
        self.status[rows] = [self._status_code(s) for s in result.statuses]
        self._filled = None

    def read(self, path: Path) -> int:
        """Add the rows of the results file ``path``, streamed; return how many rows of incomplete
        tasks (the task in flight when an earlier run stopped) were dropped.

        Raises a one-line :class:`ResultsError` for a file that is not a results file of this
        experiment or is corrupted.
        """
        path = Path(path)
        header = None
        n_cols = len(self.columns)
        col = {c: i for i, c in enumerate(self.columns)}
        n_sweep = len(self.sweep_columns)
        # Files of a gmstep before the k and 0-1 error columns: refused (their widths are unknown).
        legacy = [*self.sweep_columns, *results.legacy_row_columns()]
        for lineno, fields in results.records(path):
            if header is None:
                header = fields
                if header != self.columns:
                    if results.WIDTH in self.columns and header == legacy:
                        raise ResultsError(f"{path} was written by a gmstep before the k column: run the "
                                           "experiment again (--force to replace it, or another --out)")
                    if results.read_header(path) is None:
                        raise ResultsError(f"{path} is not a gmstep results file (header {','.join(header)[:80]!r})")
                    raise ResultsError(f"{path} is not a results file of this experiment "
                                       f"(columns {','.join(header)}, expected {','.join(self.columns)})")
                continue
            if len(fields) != n_cols:
                raise ResultsError(f"{path} line {lineno}: {len(fields)} fields, expected {n_cols}: corrupted")
            try:
                trial = int(fields[col["trial"]])
            except ValueError:
                raise ResultsError(f"{path} line {lineno}: trial {fields[col['trial']]!r} is not an integer: "
                                   "corrupted") from None
            pos = self._locate(tuple(fields[:n_sweep]), trial, fields[col["activation"]], fields[col["model"]])
            if pos is None:
                raise ResultsError(f"{path} line {lineno}: a row of no task of this experiment "
                                   f"({','.join(fields[: n_sweep + 3])}): not this experiment's results")
            if results.WIDTH in col and results.WIDTH not in self.sweep_columns:
                width = self.widths[pos // (self.per_task * self.trials)]
                if fields[col[results.WIDTH]] != str(width):
                    raise ResultsError(f"{path} line {lineno}: k = {fields[col[results.WIDTH]]!r}, but this experiment "
                                       f"computes that row with k = {width}: not this experiment's results")
            if self.status[pos] >= 0:
                raise ResultsError(f"{path} line {lineno}: a second row for the same task, activation and model "
                                   "(two runs writing to one directory?): corrupted")
            for c in self.value_columns:
                text = fields[col[c]] if c in col else ""
                if not text and c in results.OPTIONAL_COLUMNS:
                    self.values[c][pos] = np.nan
                    continue
                try:
                    self.values[c][pos] = float(text)
                except ValueError:
                    raise ResultsError(f"{path} line {lineno}: {c} {text!r} is not a number: corrupted") from None
            status = fields[col["status"]]
            if not status or len(status) > 64 or not status.isprintable():
                raise ResultsError(f"{path} line {lineno}: status {status!r} is not a status: corrupted")
            self.status[pos] = self._status_code(status)
        if header is None:
            raise ResultsError(f"{path} is empty: not a gmstep results file")
        self._filled = None
        return self.drop_incomplete()

    def drop_incomplete(self) -> int:
        """Forget the rows of tasks that are not complete; return how many rows were dropped."""
        filled = (self.status >= 0).reshape(self.num_tasks, self.per_task)
        partial = filled.any(axis=1) & ~filled.all(axis=1)
        dropped = int(filled[partial].sum())
        if dropped:
            self.status.reshape(self.num_tasks, self.per_task)[partial] = -1
            for c in self.value_columns:
                self.values[c].reshape(self.num_tasks, self.per_task)[partial] = np.nan
            self._filled = None
        return dropped

    # --- queries

    def done_tasks(self) -> np.ndarray:
        """Boolean per task (canonical task order): all its rows are present."""
        return np.asarray((self.status >= 0).reshape(self.num_tasks, self.per_task).all(axis=1))

    def tasks_done(self) -> int:
        return int(self.done_tasks().sum())

    @property
    def complete(self) -> bool:
        return bool((self.status >= 0).all())

    def problems(self) -> dict[str, int]:
        """How many rows carry each status other than ``ok``."""
        counts = np.bincount(self.status[self.status >= 0], minlength=len(self.status_names))
        return {name: int(c) for name, c in zip(self.status_names, counts, strict=False) if name != "ok" and c}

    def filled_positions(self) -> np.ndarray:
        if self._filled is None:
            self._filled = np.flatnonzero(self.status >= 0)
        return self._filled

    def row(self, pos: int) -> dict[str, Any]:
        """The row stored at canonical position ``pos``."""
        pos = int(pos)
        task, rest = divmod(pos, self.per_task)
        a, m = divmod(rest, len(self.models))
        p, t = divmod(task, self.trials)
        row: dict[str, Any] = {results.WIDTH: self.widths[p], **self.points[p], "activation": self.activations[a],
                               "model": self.models[m], "trial": t}
        for c in self.value_columns:
            v = float(self.values[c][pos])
            row[c] = None if c in results.OPTIONAL_COLUMNS and v != v else v
        row["status"] = self.status_names[self.status[pos]]
        return {c: row[c] for c in self.columns}

    def __len__(self) -> int:
        return len(self.filled_positions())

    def __getitem__(self, index):  # type: ignore[override]
        positions = self.filled_positions()
        if isinstance(index, slice):
            return [self.row(p) for p in positions[index]]
        return self.row(positions[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for pos in self.filled_positions():
            yield self.row(pos)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<RowTable: {len(self)} rows, {self.tasks_done()} of {self.num_tasks} tasks>"

    def write(self, path: Path) -> None:
        """Atomically replace ``path`` by these rows in canonical order."""
        results.write_table(Path(path), self.columns, iter(self))


def _widths(exp: Any, points: Sequence[Mapping[str, Any]]) -> list[int]:
    """The hidden width ``k`` of every sweep point (what the ``k`` column of its rows says)."""
    return [int(config.resolved(exp.point_params(pt))["k"]) for pt in points]
