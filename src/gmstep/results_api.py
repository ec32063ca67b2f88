"""The :class:`Results` of a run or of a loaded directory: rows, summaries, tables and plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import results, tables
from .config import HERMITE, NN
from .experiment import Experiment


@dataclass
class Results:
    """The rows of a finished (or loaded) experiment, with summaries for notebooks and plots.

    ``rows`` is a sequence of dicts in canonical order (a :class:`gmstep.results.RowTable` for
    runs and loaded directories; any list of row dicts works too).
    """

    experiment: Experiment
    rows: Sequence[dict[str, Any]]
    directory: Path | None = None
    elapsed: float = 0.0
    #: The image files drawn at the end of the run (empty without a plot).
    figures: list[Path] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every task of the experiment has its rows (False for a loaded interrupted run)."""
        if isinstance(self.rows, results.RowTable):
            return self.rows.complete
        return len(self.rows) == len(self.experiment.tasks()) * self.experiment.rows_per_task()

    def summary(self, metric: str = "test_error"):
        """A pandas DataFrame: per sweep point, activation and model, the mean, sd (ddof 1), sem,
        ci95 and count of ``metric`` over the rows whose status is ``ok``, and ``excluded``, the
        number of other rows (a group without any ``ok`` row has mean NaN and count 0); see
        :func:`gmstep.tables.summarize`."""
        return tables.summarize(self.to_pandas(), self.experiment.sweep_columns, metric)

    def max_gap(self, metric: str | None = None) -> float:
        """Largest ``|mean_nn - mean_hermite| / |mean_nn|`` over sweep points and activations
        (groups without ``ok`` rows are skipped; NaN if there is nothing to compare) of ``metric``;
        ``None``: the error the experiment's figure shows (training or generalization)."""
        if metric is None:
            shown = self.experiment.plot.get("metric", "test_error")
            metric = shown if shown in ("train_error", "test_error") else "test_error"
        s = self.summary(metric)
        keys = [*self.experiment.sweep_columns, "activation"]
        nn = s[s["model"] == NN].set_index(keys)["mean"]
        hm = s[s["model"] == HERMITE].set_index(keys)["mean"]
        nn, hm = nn.align(hm, join="inner")
        with np.errstate(all="ignore"):
            gaps = (nn - hm).abs().to_numpy() / nn.abs().to_numpy()
        gaps = gaps[np.isfinite(gaps)]
        return float(gaps.max()) if gaps.size else float("nan")

    def problems(self) -> dict[str, int]:
        """How many rows have each non-ok status."""
        if isinstance(self.rows, results.RowTable):
            return self.rows.problems()
        out: dict[str, int] = {}
        for row in self.rows:
            status = row.get("status", "ok")
            if status != "ok":
                out[status] = out.get(status, 0) + 1
        return out

    def to_pandas(self):
        """The rows as a tidy pandas DataFrame, one row per task, activation and model (sweep
        columns, activation, model, trial, the error columns, status)."""
        return tables.frame(self.rows, self.experiment.sweep_columns)

    def to_xarray(self):
        """The rows as an ``xarray.Dataset`` with dimensions (the sweep columns, trial, activation,
        model); needs the ``xarray`` extra."""
        return tables.to_xarray(self.to_pandas(), self.experiment.sweep_columns)

    def plot(self, path: str | Path | None = None, **options: Any):
        """The figure (a matplotlib Figure; the caller closes it), saved to ``path`` if given (PNG,
        PDF, ...). ``options``: see :func:`gmstep.plotting.make_figure` (style, metric, errorbars,
        logx, logy, activations, title)."""
        from . import plotting

        fig = plotting.make_figure(self, **options)
        if path is not None:
            plotting.save_figure(fig, Path(path))
        return fig

    def __repr__(self) -> str:
        exp = self.experiment
        sweep = ", ".join(f"{c} ({len(v)})" for c, v in exp.sweep.items()) or "nothing"
        where = f", {self.directory}" if self.directory is not None else ""
        state = "" if self.complete else ", incomplete"
        return (f"<Results {exp.name}: {len(self.rows)} rows, sweep {sweep}, {exp.params['trials']} trials, "
                f"{'/'.join(exp.params['activations'])} x {'/'.join(exp.params['models'])}{state}{where}>")
