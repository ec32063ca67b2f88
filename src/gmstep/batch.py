"""Reproducing presets: one, or all of them with skip and reuse (``gmstep reproduce``).

:func:`find_complete` decides both whether a preset's directory already holds its complete
results (skipped) and whether the preset whose runs it shares has them (fig6 <- fig1a,
fig5b <- fig1c: their rows are reused, see :func:`gmstep.presets.same_runs`); it reads
``meta.json`` once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import presets, results, runner
from .errors import ConfigError, GmstepError
from .experiment import Experiment


@dataclass
class Outcome:
    """What reproducing one preset did: ``note`` is ``ran``, ``skipped (complete)``,
    ``rows of <preset>`` or ``failed: <error>`` (then ``results`` is None and ``error`` is set)."""

    name: str
    results: runner.Results | None
    wall: float
    note: str
    error: GmstepError | None = None

    @property
    def rows(self) -> int:
        return len(self.results.rows) if self.results is not None else 0

    @property
    def gap(self) -> float:
        """The largest relative network-vs-Hermite gap of the error the preset's figure shows."""
        if self.results is None:
            return float("nan")
        return self.results.max_gap()


def find_complete(directory: str | Path, exp: Experiment, same_rows: bool = False) -> runner.Results | None:
    """The results in ``directory`` if its run is complete and was computed with ``exp``'s
    row-defining settings (name, parameters, sweep; see :func:`gmstep.runner.differences`), else None.

    With ``same_rows`` the name may differ: parameters and sweep equal suffice (the rows of another
    preset drawing the same runs).
    """
    directory = Path(directory)
    try:
        meta = results.read_meta(directory)
        if meta.get("status") != "complete":
            return None
        if not same_rows and runner.differences(meta, exp):
            return None
        res = runner.from_meta(directory, meta)
    except GmstepError:
        return None
    if same_rows and (res.experiment.params != exp.params or res.experiment.sweep != exp.sweep):
        return None
    return res


def reproduce(name: str, out: str | Path = "results", *, quick: bool = False,
              params: Mapping[str, Any] | None = None, sweep: Mapping[str, Sequence[Any]] | None = None,
              resume: bool = False, force: bool = False, jobs: int = 1, scheduler: str | None = None,
              plot: bool = True, progress: bool = True,
              report: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run the preset ``name`` (with ``params``/``sweep`` overrides, see
    :meth:`gmstep.experiment.Experiment.with_overrides`) into ``<out>/<name>/``, or every preset for ``"all"``.

    One preset runs as :func:`gmstep.runner.run` does (its errors propagate). ``"all"`` skips a
    preset whose complete results are already in ``out``, reuses the complete rows of the preset
    whose runs it shares, runs the others (resuming only those already started, with ``resume``),
    and records a preset's error in its :class:`Outcome` instead of stopping; ``report`` is called
    with each outcome as it is known. An interruption (:class:`gmstep.runner.Interrupted`) stops.
    """
    run_options = dict(progress=progress, force=force, jobs=jobs, scheduler=scheduler, plot=plot)
    if name != "all":
        exp = presets.get(name, quick=quick).with_overrides(params, sweep)
        res = runner.run(exp, out, resume=resume, progress=progress, force=force, jobs=jobs, scheduler=scheduler,
                         plot=plot)
        outcomes = [Outcome(name, res, res.elapsed, "ran")]
    else:
        if sweep:
            raise ConfigError("--values", "cannot be used with 'all'")
        outcomes = []
        for each in presets.names():
            exp = presets.get(each, quick=quick).with_overrides(params)
            outcomes.append(_reproduce_one(each, exp, Path(out), resume, run_options))
            if report is not None:
                report(outcomes[-1])
        return outcomes
    if report is not None:
        report(outcomes[0])
    return outcomes


def _reproduce_one(name: str, exp: Experiment, out: Path, resume: bool, run_options: dict[str, Any]) -> Outcome:
    """One preset of ``reproduce("all")``: skip, reuse or run; a GmstepError becomes ``failed``."""
    directory = out / exp.name
    start = time.perf_counter()
    done = find_complete(directory, exp)
    if done is not None:
        return Outcome(name, done, done.elapsed, "skipped (complete)")
    try:
        other = presets.same_runs(name)
        shared = find_complete(out / other, exp, same_rows=True) if other is not None else None
        if shared is not None:
            res = runner.reuse(shared, exp, out, plot=run_options["plot"], force=run_options["force"])
            return Outcome(name, res, time.perf_counter() - start, f"rows of {shared.experiment.name}")
        resume = resume and (directory / results.META).exists()  # presets not started yet: fresh
        res = runner.run(exp, out, resume=resume, **run_options)
        return Outcome(name, res, res.elapsed, "ran")
    except GmstepError as exc:
        return Outcome(name, None, time.perf_counter() - start, f"failed: {exc}", exc)
