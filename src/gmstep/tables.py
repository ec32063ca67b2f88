"""Results as tables: the tidy DataFrame of the rows and the one summary used everywhere.

:func:`frame` turns the rows of a run (a :class:`gmstep.results.RowTable` or a list of row
dicts) into a tidy pandas DataFrame, one row per task, activation and model. :func:`summarize`
is the summary that the notebook API (``Results.summary``), the figures and ``gmstep summary``
all use: per sweep point, activation and model, over the rows whose status is ``ok`` and whose
value is a number,

    mean = (1/c) sum_t v_t,   sd = sqrt(sum_t (v_t - mean)^2 / (c - 1)),   sem = sd / sqrt(c),
    ci95 = t_{0.975, c-1} sem   (Student's t quantile),

with ``c = count``; ``sd``, ``sem`` and ``ci95`` are 0 for ``c = 1`` and NaN for ``c = 0``;
``excluded`` counts the rows whose status is not ``ok``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import results
from .errors import ConfigError

#: The numbers a row carries (``metric`` of :func:`summarize`).
METRICS = ("test_error", "train_error", "test_misclassification", "train_misclassification")
#: Columns of a summary after the grouping columns.
SUMMARY_COLUMNS = ("mean", "sd", "sem", "ci95", "count", "excluded")


def _pandas():
    try:
        import pandas as pd
    except ImportError:  # pandas is a dependency; a broken install still gets one line
        raise ConfigError("pandas", "is needed for tables: pip install pandas") from None
    return pd


def frame(rows: Any, sweep_columns: Sequence[str]):
    """The rows as a tidy DataFrame: the sweep columns, ``activation``, ``model``, ``trial``, ``k``, the
    error columns (float; NaN where a 0-1 error is empty) and ``status``."""
    pd = _pandas()
    if isinstance(rows, results.RowTable):
        pos = rows.filled_positions()
        task, rest = np.divmod(pos, rows.per_task)
        act, model = np.divmod(rest, len(rows.models))
        point, trial = np.divmod(task, rows.trials)
        data: dict[str, Any] = {}
        for c in rows.sweep_columns:
            data[c] = np.asarray([p[c] for p in rows.points])[point]
        data["activation"] = np.array(rows.activations, dtype=object)[act]
        data["model"] = np.array(rows.models, dtype=object)[model]
        data["trial"] = trial.astype(np.int64)
        if results.WIDTH in rows.columns and results.WIDTH not in rows.sweep_columns:
            data[results.WIDTH] = np.asarray(rows.widths, dtype=np.int64)[point]  # the width of each row
        for c in rows.value_columns:
            data[c] = rows.values[c][pos]
        data["status"] = np.array(rows.status_names, dtype=object)[rows.status[pos]]
        df = pd.DataFrame(data, columns=rows.columns)
    else:
        df = pd.DataFrame(list(rows))
    for c in METRICS:
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    if "status" not in df.columns:
        df["status"] = "ok"
    return df


def summarize(df, sweep_columns: Sequence[str], metric: str = "test_error"):
    """Mean, sd, sem, ci95, count and excluded of ``metric`` per sweep point, activation and model
    (formulas in the module docstring), in order of first appearance."""
    from scipy import stats

    pd = _pandas()
    if metric not in METRICS:
        raise ConfigError("metric", f"must be one of {', '.join(METRICS)}, got {metric!r}")
    keys = [*sweep_columns, "activation", "model"]
    out_cols = [*keys, *SUMMARY_COLUMNS]
    if metric not in df.columns or not len(df):
        return pd.DataFrame(columns=out_cols)
    ok = df["status"] == "ok"
    work = df[keys].copy()
    work["v"] = df[metric].where(ok)
    work["bad"] = (~ok).astype(int)
    grouped = work.groupby(keys, sort=False, dropna=False)
    out = grouped["v"].agg(mean="mean", count="count").reset_index()
    sd = grouped["v"].std(ddof=1).to_numpy()
    count = out["count"].to_numpy()
    sd = np.where(count == 1, 0.0, sd)
    sd = np.where(count == 0, np.nan, sd)
    out["sd"] = sd
    with np.errstate(invalid="ignore", divide="ignore"):
        out["sem"] = sd / np.sqrt(count)
        quantile = stats.t.ppf(0.975, np.maximum(count - 1, 1))
    out["ci95"] = np.where(count > 1, quantile * out["sem"].to_numpy(), out["sem"].to_numpy())
    out["excluded"] = grouped["bad"].sum().to_numpy()
    out["count"] = out["count"].astype(int)
    return out[out_cols]


def error_half_width(summary, bars: str) -> np.ndarray | None:
    """Half-widths of error bars of kind ``bars`` (``none``, ``sd``, ``sem``, ``ci95``) for the
    rows of a summary; ``None`` for ``none``."""
    if bars == "none":
        return None
    if bars not in ("sd", "sem", "ci95"):
        raise ConfigError("errorbars", f"must be one of none, sd, sem, ci95, got {bars!r}")
    return np.nan_to_num(summary[bars].to_numpy(dtype=float), nan=0.0)


def to_xarray(df, sweep_columns: Sequence[str]):
    """The tidy frame as an ``xarray.Dataset`` with dimensions ``(*sweep_columns, trial,
    activation, model)``; one variable per error column and ``status``. Needs the ``xarray``
    extra (``pip install 'gmstep[xarray]'``)."""
    try:
        import xarray  # noqa: F401
    except ImportError:
        raise ConfigError("to_xarray", "needs xarray: pip install 'gmstep[xarray]'") from None
    dims = [*sweep_columns, "trial", "activation", "model"]
    values = [c for c in (*METRICS, "status") if c in df.columns]
    indexed = df.set_index(dims)[values]
    return indexed.to_xarray()
