"""Running an experiment: tasks in, rows written to disk as they finish, resumable.

``run(exp, out)`` creates ``<out>/<name>/`` with ``meta.json`` and ``results.csv``, executes the
pending tasks (serially, in ``jobs`` processes, or on a Dask cluster; see
:mod:`gmstep.executors`), appends each task's rows as it completes, and at the end rewrites
``results.csv`` in canonical order and draws the plot. ``resume=True`` keeps the finished tasks
of an earlier run of the same configuration and runs only the rest.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__, results
from .errors import ResultsError
from .experiments import Experiment

TaskKey = tuple[tuple[str, ...], int]


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; finished rows are on disk."""

    def __init__(self, signum: int, done: int = 0, total: int = 0, directory: Path | None = None):
        self.signum = signum
        self.done = done
        self.total = total
        self.directory = directory
        super().__init__(f"interrupted by signal {signum}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` while the block runs."""

    def handler(signum, frame):  # noqa: ARG001
        raise Interrupted(signum)

    try:
        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@dataclass
class Results:
    """The rows of a finished (or loaded) experiment, with summaries for notebooks and plots."""

    experiment: Experiment
    rows: list[dict[str, Any]]
    directory: Path | None = None
    elapsed: float = 0.0

    def summary(self, metric: str = "test_error") -> list[dict[str, Any]]:
        """Mean, standard deviation and count of ``metric`` per sweep point, activation and model,
        over the trials whose status is ``ok``."""
        import numpy as np

        groups: dict[tuple, list[float]] = {}
        bad: dict[tuple, int] = {}
        cols = self.experiment.sweep_columns
        for row in self.rows:
            key = (*(row[c] for c in cols), row["activation"], row["model"])
            groups.setdefault(key, [])
            if row.get("status", "ok") == "ok":
                groups[key].append(row[metric])
            else:
                bad[key] = bad.get(key, 0) + 1
        out = []
        for key, vals in groups.items():
            arr = np.asarray(vals, dtype=float)
            out.append({
                **dict(zip(cols, key[:-2], strict=True)),
                "activation": key[-2],
                "model": key[-1],
                "mean": float(arr.mean()) if arr.size else float("nan"),
                "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
                "count": int(arr.size),
                "excluded": bad.get(key, 0),
            })
        return out

    def max_gap(self, metric: str = "test_error") -> float:
        """Largest ``|mean_nn - mean_hermite| / mean_nn`` over sweep points and activations."""
        means: dict[tuple, dict[str, float]] = {}
        for s in self.summary(metric):
            key = tuple(v for k, v in s.items() if k not in ("model", "mean", "std", "count", "excluded"))
            means.setdefault(key, {})[s["model"]] = s["mean"]
        gaps = [abs(d["nn"] - d["hermite"]) / abs(d["nn"])
                for d in means.values() if "nn" in d and "hermite" in d and d["nn"] != 0]
        return max(gaps) if gaps else float("nan")

    def problems(self) -> dict[str, int]:
        """How many rows have each non-ok status."""
        out: dict[str, int] = {}
        for row in self.rows:
            if row.get("status", "ok") != "ok":
                out[row["status"]] = out.get(row["status"], 0) + 1
        return out

    def to_pandas(self):
        """The rows as a pandas DataFrame (pandas is not a dependency of gmstep)."""
        import pandas as pd

        return pd.DataFrame(self.rows)


def task_key(row: Mapping[str, Any], sweep_columns: Sequence[str]) -> TaskKey:
    return tuple(results.format_value(row[c]) for c in sweep_columns), int(row["trial"])


def canonical_order(exp: Experiment, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows sorted by point (sweep order), trial, activation and model (configuration order)."""
    cols = exp.sweep_columns
    point_pos = {
        tuple(results.format_value(p[c]) for c in cols): i for i, p in enumerate(exp.points())
    }
    act_pos = {a: i for i, a in enumerate(exp.params["activations"])}
    model_pos = {m: i for i, m in enumerate(exp.params["models"])}

    def key(row):
        pk, trial = task_key(row, cols)
        return point_pos[pk], trial, act_pos[row["activation"]], model_pos[row["model"]]

    return sorted(rows, key=key)


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ between two experiment dicts."""
    diffs = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section), new.get(section)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs += [f"{section}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            diffs.append(section)
    return diffs


def load_finished(exp: Experiment, directory: Path) -> list[dict[str, Any]]:
    """Rows of the complete tasks of an earlier run of ``exp`` in ``directory``.

    Refuses a directory whose ``meta.json`` describes another configuration, and a results file
    that is not one of ours.
    """
    meta = results.read_meta(directory)
    diffs = config_differences(meta["experiment"], _jsonable(exp.to_dict()))
    if diffs:
        raise ResultsError(
            f"cannot resume {directory}: the configuration differs in {', '.join(diffs)}"
            " (run without --resume to start again, or use another --out)"
        )
    path = directory / results.RESULTS
    if not path.exists():
        return []
    header, rows = results.read_table(path)
    expected = results.columns(exp.sweep_columns)
    if header != expected:
        raise ResultsError(f"{path} is not a results file of this experiment (columns {header})")
    known = {
        task_key({**p, "trial": t}, exp.sweep_columns)
        for p in exp.points() for t in range(exp.params["trials"])
    }
    groups: dict[TaskKey, list[dict[str, Any]]] = {}
    for row in rows:
        key = task_key(row, exp.sweep_columns)
        if key not in known:
            raise ResultsError(f"{path} holds a row of an unknown task {key}: not this experiment's")
        groups.setdefault(key, []).append(row)
    per_task = exp.rows_per_task()
    return [r for g in groups.values() if len(g) == per_task for r in g]


def _jsonable(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj, default=str))


def run(
    exp: Experiment,
    out: str | Path | None = "results",
    *,
    resume: bool = False,
    progress: bool = True,
    jobs: int = 1,
    scheduler: str | None = None,
    plot: bool = True,
) -> Results:
    """Run every pending task of ``exp`` and return all its rows.

    With ``out=None`` nothing is written (a notebook run). Otherwise rows reach
    ``<out>/<name>/results.csv`` as tasks finish; on SIGINT/SIGTERM :class:`Interrupted` is
    raised after the finished rows are safely on disk.
    """
    from . import executors

    start = time.perf_counter()
    tasks = exp.tasks()
    points = exp.points()
    cols = results.columns(exp.sweep_columns)
    directory = None
    writer = None
    finished: list[dict[str, Any]] = []
    previous_elapsed = 0.0
    if out is not None:
        directory = Path(out) / exp.name
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsError(f"cannot create {directory}: {exc.strerror or exc}") from None
        if resume and (directory / results.META).exists():
            finished = load_finished(exp, directory)
            previous_elapsed = float(results.read_meta(directory).get("elapsed_seconds", 0.0))
            results.write_table(directory / results.RESULTS, cols, finished)
            writer = results.ResultsWriter(directory / results.RESULTS, cols, fresh=False)
        else:
            writer = results.ResultsWriter(directory / results.RESULTS, cols, fresh=True)
        meta = _meta(exp, "running", previous_elapsed)
        results.write_meta(directory, meta)
    done_keys = {task_key(r, exp.sweep_columns) for r in finished}
    pending = [
        (i, t) for i, t in tasks
        if (tuple(results.format_value(points[i][c]) for c in exp.sweep_columns), t) not in done_keys
    ]
    rows = list(finished)
    bar = _progress(len(tasks), len(tasks) - len(pending), exp.name, progress)
    try:
        with signals_raise():
            for task_rows in executors.execute(exp, pending, jobs=jobs, scheduler=scheduler):
                if writer is not None:
                    writer.write(task_rows)
                rows.extend(task_rows)
                bar.update(1)
    except Interrupted as exc:
        bar.close()
        elapsed = previous_elapsed + time.perf_counter() - start
        if directory is not None:
            writer.close()
            results.write_meta(directory, _meta(exp, "interrupted", elapsed))
        exc.done = len(rows) // max(exp.rows_per_task(), 1)
        exc.total = len(tasks)
        exc.directory = directory
        raise
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    rows = [dict(r) for r in canonical_order(exp, rows)]
    elapsed = previous_elapsed + time.perf_counter() - start
    res = Results(exp, rows, directory, elapsed)
    if directory is not None:
        results.write_table(directory / results.RESULTS, cols, rows)
        meta = _meta(exp, "complete", elapsed)
        meta["problems"] = res.problems()
        meta["max_relative_gap"] = res.max_gap()
        results.write_meta(directory, meta)
        if plot:
            from . import plotting

            plotting.plot_results(res, directory)
    return res


def _meta(exp: Experiment, status: str, elapsed: float) -> dict[str, Any]:
    from . import config

    return {
        "name": exp.name,
        "status": status,
        "sweep": exp.sweep_columns,
        "seed": exp.params["seed"],
        "version": __version__,
        "elapsed_seconds": round(elapsed, 3),
        "tasks": len(exp.tasks()),
        "rows_per_task": exp.rows_per_task(),
        "experiment": _jsonable(exp.to_dict()),
        "resolved_example": _jsonable(config.resolved(exp.point_params(exp.points()[0]))),
        "machine": results.machine_summary(),
    }


def load(directory: str | Path) -> Results:
    """Results saved by :func:`run` (complete or not)."""
    directory = Path(directory)
    meta = results.read_meta(directory)
    try:
        exp = Experiment.from_dict(meta["experiment"])
    except Exception as exc:  # noqa: BLE001 - a foreign or damaged meta.json
        raise ResultsError(f"{directory / results.META} holds no valid experiment ({exc})") from None
    path = directory / results.RESULTS
    if not path.exists():
        raise ResultsError(f"{path} not found")
    header, rows = results.read_table(path)
    if header != results.columns(exp.sweep_columns):
        raise ResultsError(f"{path} does not have the columns of its meta.json")
    return Results(exp, rows, directory, float(meta.get("elapsed_seconds", 0.0)))


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, initial: int, name: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="task", dynamic_ncols=True)
