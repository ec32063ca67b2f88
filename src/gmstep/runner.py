"""Running an experiment: tasks in, rows written to disk as they finish, resumable.

``run(exp, out)`` creates ``<out>/<name>/`` with ``results.csv`` and ``meta.json``, executes the
pending tasks (serially, in ``jobs`` processes, or on a Dask cluster; see
:mod:`gmstep.executors`), appends each task's rows as it completes, and at the end rewrites
``results.csv`` in canonical order and draws the plot.

Guarantees (see also :mod:`gmstep.results`):

- Resume. ``resume=True`` keeps the complete tasks of an earlier run of the same configuration
  (``name``, ``params`` and ``sweep`` of ``meta.json``; plot settings and the description may
  change) and runs only the rest; the final file is byte for byte the one an uninterrupted run
  writes. More trials or more sweep values extend the run (only the new tasks are computed); any
  other difference is refused naming the keys. Without an earlier run, ``resume=True`` is refused
  (a wrong ``out`` must not start a fresh run). ``elapsed_seconds`` in ``meta.json`` adds up the
  sessions (it is refreshed every :data:`META_INTERVAL` seconds, so a SIGKILL loses at most that).
- One run per directory, nothing replaced by accident: see :mod:`gmstep.safety` (the lock, the
  refusal of a directory holding rows without ``resume`` or ``force``, the checks before the disk).
- Interrupts. SIGINT and SIGTERM raise :class:`Interrupted` in the main loop, except while a
  task's rows are being written (a critical section), where the signal is held back until the
  write has finished; the file never holds a torn task because of a signal. Further signals
  during the clean-up are ignored.
- Numerical guards. A row whose numbers are not all finite is marked ``nonfinite`` even if the
  task said ``ok``; rows that are not ``ok`` are left out of every mean and plot, counted in
  ``meta.json["problems"]`` and reported by the command line.
- Memory. Rows live in a preallocated :class:`gmstep.results.RowTable` (33 bytes a row),
  nothing else is kept per task, and the results file is only appended to while the sweep
  runs (never re-read), so memory and time per task do not grow with the sweep.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, config, executors, fashion, results, safety
from .admission import differences, jsonable
from .engine import backend
from .engine.datasets import build_problem
from .engine.streams import stream
from .errors import ConfigError, GmstepError, ResultsError
from .experiment import Experiment, point_at
from .fashion import source_label
from .interrupts import Interrupted, SignalGuard
from .progress import NoBar, progress_bar
from .results_api import Results

#: Seconds between refreshes of meta.json (elapsed time, tasks done) while a sweep runs.
META_INTERVAL = 30.0


# ----------------------------------------------------------------------------- running


def _prepare(exp: Experiment, directory: Path, table: results.RowTable, resume: bool,
             force: bool = False) -> tuple[float, int, bool]:
    """Reopen or claim ``directory`` (which the caller has locked); fill ``table`` with the finished
    rows of an earlier run when resuming. Returns ``(elapsed seconds of earlier sessions, number of
    this session, deferred)``; ``deferred`` means ``force`` found rows to replace: nothing has been
    written yet, and the caller replaces the files once the first task is done.

    Order of writes (each atomic): results.csv (header, or the kept rows), then meta.json, so
    that a kill at any point leaves a directory that a resume reads correctly.
    """
    path = directory / results.RESULTS
    results.remove_stale_temporaries(directory)
    previous, session = 0.0, 1
    existing = safety.existing_rows(directory)
    if resume and not existing.has_meta:
        if path.exists() and path.stat().st_size and _has_rows(path):
            raise ResultsError(f"cannot resume {directory}: results.csv has no meta.json beside it "
                               "(--force to replace it, or another --out)")
        raise ResultsError(f"nothing to resume in {directory}: no earlier run there "
                           "(run without --resume to start one)")
    if resume:
        meta = results.read_meta(directory)
        diffs = differences(meta, exp, extend=True)
        if diffs:
            raise ResultsError(
                f"cannot resume {directory}: the configuration differs from its meta.json in "
                f"{'; '.join(diffs)} (only more trials or more sweep values can be added; "
                "--force to replace the run, or use another --out)"
            )
        try:
            previous = max(float(meta.get("elapsed_seconds") or 0.0), 0.0)
            session = int(meta.get("sessions") or 1) + 1
        except (TypeError, ValueError):
            raise ResultsError(f"{directory / results.META} is corrupted (elapsed_seconds, sessions)") from None
        if path.exists():
            table.read(path)
        table.write(path)  # without the torn line and the incomplete task of the earlier run
        if differences(meta, exp):  # an extension: the earlier figure no longer shows these rows
            _remove_figures(exp, directory)
    else:
        if path.exists() and not path.is_file():
            raise ResultsError(f"cannot write {path}: not a regular file")
        if path.exists() and path.stat().st_size and results.read_header(path) is None:
            raise ResultsError(f"refusing to overwrite {path}: not a gmstep results file "
                               "(move it away or choose another --out)")
        if existing.rows:
            if not force:
                raise ResultsError(safety.refusal(directory, existing))
            return previous, session, True
        table.write(path)  # the header only
    results.write_meta(directory, _meta(exp, "running", previous, session, table))
    return previous, session, False


def _replace(exp: Experiment, directory: Path, table: results.RowTable, session: int, elapsed: float) -> None:
    """``--force``: replace the earlier run by this one, whose first task is in ``table``.

    results.csv first (atomically, with the new rows), then meta.json: a kill in between leaves new
    rows beside the old meta.json, which a resume refuses (the configurations differ) and which
    cannot be mistaken for rows of the old configuration. The old figures are removed.
    """
    table.write(directory / results.RESULTS)
    results.write_meta(directory, _meta(exp, "running", elapsed, session, table))
    _remove_figures(exp, directory, "inputs.png")


def _remove_figures(exp: Experiment, directory: Path, *more: str) -> None:
    """Delete the figures an earlier run drew (they would show other rows than the file's)."""
    for name in (f"{exp.name}.png", f"{exp.name}.pdf", *more):
        with suppress(OSError):
            (directory / name).unlink()


def _has_rows(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.readline()
            return bool(fh.readline())
    except OSError:
        return False


def run(
    exp: Experiment,
    out: str | Path | None = "results",
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    jobs: int = 1,
    scheduler: str | None = None,
    plot: bool = True,
    security: Any = None,
) -> Results:
    """Run every pending task of ``exp`` and return all its rows.

    With ``out=None`` nothing is written (a notebook run). Otherwise, after every check that needs
    no disk (configuration, data presence, the Dask scheduler's connection, memory admission),
    ``<out>/<name>/`` is locked for the run (a second run there is refused naming the holder) and
    rows reach its ``results.csv`` as tasks finish; on SIGINT/SIGTERM :class:`Interrupted` is
    raised once the finished rows are safely on disk and ``meta.json`` says ``interrupted``.

    A directory holding rows is refused unless ``resume`` (continue it; more trials or sweep
    values may be added) or ``force`` (replace it, once the new run's first task is done: until
    then the old files stay). A failure after the start keeps every finished row and writes
    ``status: failed`` and its ``reason`` to meta.json; ``resume`` continues such a run.
    ``security`` is a ``distributed.security.Security`` for a ``tls://`` scheduler (default: Dask's
    configuration). Problems raise one-line :class:`~gmstep.errors.GmstepError` subclasses.
    """
    start = time.perf_counter()
    if out is not None and exp.name in (".", ".."):  # would write into or above the output directory
        raise ConfigError("name", f"must not be {exp.name!r}: it names the directory <out>/<name>")
    if resume and force:
        raise ConfigError("--force", "cannot be combined with --resume (--resume keeps the finished rows, "
                          "--force replaces them)")
    # Every check that needs no disk comes first.
    executors.check_request(jobs, scheduler, security)
    safety.check_data(exp)
    safety.check_backend(exp, scheduler)
    safety.admit_memory(exp, len(exp.points()) * exp.params["trials"], jobs, scheduler)
    directory = Path(out) / exp.name if out is not None else None
    lock = None
    if directory is not None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsError(f"cannot create output directory {directory}: "
                               f"{results.describe_os_error(exc)}") from None
        lock = safety.RunLock(directory).acquire()
    try:
        return _run(exp, directory, resume, force, progress, jobs, scheduler, plot, security, start)
    finally:
        if lock is not None:
            lock.release()


def _run(exp: Experiment, directory: Path | None, resume: bool, force: bool, progress: bool, jobs: int,
         scheduler: str | None, plot: bool, security: Any, start: float) -> Results:
    """:func:`run` once the checks have passed and ``directory`` (if any) is locked."""
    table = results.RowTable(exp)
    guard = SignalGuard.active() or SignalGuard()  # share the command line's guard: one stopping state
    previous, session = 0.0, 1
    writer: results.ResultsWriter | None = None
    bar: Any = NoBar()
    gen: Any = None
    prepared = completed = deferred = False

    def elapsed() -> float:
        return previous + time.perf_counter() - start

    def stopped(status: str, reason: str | None = None) -> None:
        if prepared and not completed and directory is not None:
            meta = _meta(exp, status, elapsed(), session, table)
            if reason is not None:
                meta["reason"] = reason
            with suppress(ResultsError):
                results.write_meta(directory, meta)

    with guard.installed():
        try:
            if directory is not None:
                with guard.critical():
                    previous, session, deferred = _prepare(exp, directory, table, resume, force)
                    prepared = not deferred
                if not deferred:
                    writer = results.ResultsWriter(directory / results.RESULTS, table.columns)
                    _inputs_figure(exp, directory, plot)
            pending = _pending(exp, table)
            bar = progress_bar(table.num_tasks, table.num_tasks - len(pending), exp.name, progress)
            last_meta = time.perf_counter()
            per_task = exp.rows_per_task()
            with np.errstate(all="ignore"):  # problems are recorded per row, not printed
                extra = {"security": security} if security is not None else {}
                gen = executors.execute(exp, pending, jobs=jobs, scheduler=scheduler, **extra)
                for outcome in gen:
                    done = outcome.checked(per_task)
                    with guard.critical():
                        if writer is not None:
                            writer.write(done.rows(point_at(exp, done.point_index)))
                        table.put_result(done)
                        replaced = deferred
                        if deferred and directory is not None:  # --force: the new run has done a task
                            _replace(exp, directory, table, session, elapsed())
                            deferred, prepared = False, True
                            writer = results.ResultsWriter(directory / results.RESULTS, table.columns)
                    if replaced:
                        _inputs_figure(exp, directory, plot)
                    bar.update(1)
                    last_meta = _heartbeat(exp, directory, table, guard, session, elapsed(), last_meta)
            _close(gen)
            bar.close()
            if writer is not None:
                writer.close()
            res = Results(exp, table, directory, elapsed())
            if directory is not None:
                with guard.critical():
                    _write_complete(exp, directory, table, res, session)
                    completed = True
                if plot:
                    from . import plotting

                    res.figures = plotting.plot_results(res, directory)
            return res
        except Interrupted as exc:
            guard.stopping = True
            _cleanup(gen, writer, bar)
            stopped("interrupted")
            exc.done, exc.total, exc.directory = table.tasks_done(), table.num_tasks, directory
            raise
        except Exception as exc:  # noqa: BLE001 - recorded in meta.json, then raised unchanged
            _record_failure(exc, guard, gen, writer, bar, stopped)
            raise
        finally:
            _cleanup(gen, writer, bar)


def _pending(exp: Experiment, table: results.RowTable) -> list[Any]:
    """The tasks ``(point, trial)`` of ``exp`` that ``table`` has no rows of yet."""
    done = table.done_tasks()
    return [(p, t) for p, t in exp.tasks() if not done[table.task_index(p, t)]]


def _inputs_figure(exp: Experiment, directory: Path | None, plot: bool) -> None:
    """``inputs.png`` of a Fashion-MNIST run that is drawn and saved (:func:`write_inputs_figure`)."""
    if plot and directory is not None and exp.params["dataset"] == "fashion-mnist":
        write_inputs_figure(exp, directory)


def _heartbeat(exp: Experiment, directory: Path | None, table: results.RowTable, guard: SignalGuard,
               session: int, elapsed: float, last_meta: float) -> float:
    """``meta.json`` (``running``) again once ``META_INTERVAL`` s have passed; the time of the last write."""
    if directory is not None and time.perf_counter() - last_meta > META_INTERVAL:
        with guard.critical():
            results.write_meta(directory, _meta(exp, "running", elapsed, session, table))
        return time.perf_counter()
    return last_meta


def _write_complete(exp: Experiment, directory: Path, table: results.RowTable, res: Results, session: int,
                    **extra: str) -> None:
    """``results.csv`` in canonical order and ``meta.json`` of a complete run (with ``extra`` keys)."""
    table.write(directory / results.RESULTS)  # canonical order
    meta = {**_meta(exp, "complete", res.elapsed, session, table), **extra}
    meta["problems"] = res.problems()
    meta["max_relative_gap"] = res.max_gap()
    results.write_meta(directory, meta)


def _record_failure(exc: Exception, guard: SignalGuard, gen: Any, writer: results.ResultsWriter | None, bar: Any,
                    stopped: Any) -> None:
    """Clean up after ``exc`` (a signal meanwhile waits) and record it: ``stopped("failed", reason)``."""
    stopping, guard.stopping = guard.stopping, True
    try:
        _cleanup(gen, writer, bar)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        stopped("failed", reason if isinstance(exc, GmstepError) else f"{type(exc).__name__}: {reason}")
    finally:
        guard.stopping = stopping


def write_inputs_figure(exp: Experiment, directory: Path) -> Path:
    """``inputs.png``: raw images and the network's inputs of both classes (Fashion-MNIST runs)."""
    p = config.resolved(exp.point_params(exp.points()[0]))
    seed = p["seed"]
    problem = build_problem(p, stream(seed, 0, 0, 0, 0))
    return fashion.save_inputs_figure(problem, directory / "inputs.png", stream(seed, 3))


def _close(gen: Any) -> None:
    close = getattr(gen, "close", None)
    if close is not None:
        close()


def _cleanup(gen: Any, writer: results.ResultsWriter | None, bar: Any) -> None:
    _close(gen)
    if writer is not None:
        writer.close()
    bar.close()


def _meta(exp: Experiment, status: str, elapsed: float, session: int, table: results.RowTable) -> dict[str, Any]:
    meta = {
        "name": exp.name,
        "status": status,
        "sweep": exp.sweep_columns,
        "seed": exp.params["seed"],
        "version": __version__,
        "elapsed_seconds": round(elapsed, 3),
        "sessions": session,
        "tasks": table.num_tasks,
        "tasks_done": table.tasks_done(),
        "rows_per_task": exp.rows_per_task(),
        "experiment": jsonable(exp.to_dict()),
        "resolved_example": jsonable(config.resolved(exp.point_params(exp.points()[0]))),
        "machine": results.machine_summary(),
        "execution": backend.describe(exp.params),  # the resolved backend, device and random numbers
    }
    if exp.params.get("dataset") == "fashion-mnist":  # which images the numbers come from

        meta["source"] = source_label(exp.params)
    return meta


def reuse(source: Results, exp: Experiment, out: str | Path, plot: bool = True, force: bool = False) -> Results:
    """Save the complete rows of ``source`` as the results of ``exp``, an experiment with the same
    parameters and sweep (another preset drawing the same figure from the same runs, e.g. fig6
    from fig1a's): ``<out>/<exp.name>/`` gets ``results.csv``, ``meta.json`` (with ``reused_from``)
    and the figure in ``exp``'s plot settings."""
    if source.experiment.params != exp.params or source.experiment.sweep != exp.sweep:
        raise ResultsError(f"cannot reuse {source.directory}: its parameters or sweep differ from {exp.name}'s")
    directory = Path(out) / exp.name
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(f"cannot create {directory}: {exc.strerror or exc}") from None

    with safety.RunLock(directory):
        existing = safety.existing_rows(directory)
        if existing.rows and not force:
            raise ResultsError(safety.refusal(directory, existing))
        return _reuse(source, exp, directory, plot)


def _reuse(source: Results, exp: Experiment, directory: Path, plot: bool) -> Results:
    table = results.RowTable(exp)
    table.put(list(source.rows))
    if table.tasks_done() != table.num_tasks:
        raise ResultsError(f"cannot reuse {source.directory}: it is not complete")
    res = Results(exp, table, directory, source.elapsed)
    _write_complete(exp, directory, table, res, 1, reused_from=str(source.directory))
    if plot:
        from . import plotting

        res.figures = plotting.plot_results(res, directory)
    return res


def load(directory: str | Path) -> Results:
    """Results saved by :func:`run` (complete or not: the complete tasks of an interrupted run)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ResultsError(f"{directory} is not a directory")
    return from_meta(directory, results.read_meta(directory))


def from_meta(directory: Path, meta: Mapping[str, Any]) -> Results:
    """The results in ``directory`` whose ``meta.json`` holds ``meta`` (read once by the caller)."""
    try:
        exp = Experiment.from_dict(meta["experiment"])
    except (GmstepError, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ResultsError(f"{directory / results.META} holds no valid experiment ({exc})") from None
    path = directory / results.RESULTS
    if not path.exists():
        raise ResultsError(f"{path} not found")
    table = results.RowTable(exp)
    table.read(path)
    try:
        elapsed = float(meta.get("elapsed_seconds") or 0.0)
    except (TypeError, ValueError):
        elapsed = 0.0
    return Results(exp, table, directory, elapsed)


# Reproducing presets (skip complete runs, reuse shared ones) builds on run/load above.
from .batch import Outcome as Outcome  # noqa: E402
from .batch import find_complete as find_complete  # noqa: E402
from .batch import reproduce as reproduce  # noqa: E402
