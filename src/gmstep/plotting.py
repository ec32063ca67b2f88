"""Figures of a run, in two styles, and composites of several runs.

Every number drawn comes from :func:`gmstep.tables.summarize` (the mean over the trials whose
status is ``ok``; rows with another status are left out and counted).

Line plots show, per activation, the chosen metric against the first sweep column: the network
(model ``nn``) as markers, the Hermite model as a line, and a ``theory`` model (predicted
errors) as a thin line drawn over the markers, all in the activation's colour.

- ``paper`` style (docs/MATH.md §4, the published look; the default of the paper's presets): filled
  markers, Hermite lines styled per activation (ReLU solid, tanh dashed, sigmoid dotted), a
  legend "Neural Network / Hermite Model" beside the activations, no title, no error bars,
  linear axes with y from 0 (and k/m from 0 to 5), one fixed figure size for every run so that
  panels line up, PNG and vector PDF.
- ``report`` style: a title, a grey line of the fixed parameters, error bars (markers) and bands
  (lines) of one standard deviation, and a note saying which is which.

Options (settings of ``[plot]``, overridden by keyword arguments or command-line flags):
``metric`` (``test_error``, ``train_error``, ``gap``, ``test_misclassification``,
``train_misclassification``), ``errorbars`` (``none``, ``sd``, ``sem``, ``ci95``), ``logx``,
``logy``, ``activations``, ``models``, ``title`` (on/off or the text), ``xlim``, ``ylim``.

``gap`` is the relative gap ``|E_nn - E_h| / E_nn`` of the two models' mean test errors
(``E_h`` is the Hermite model of degree ``l``; for ``l = 1`` the linear model ``E_lin``).

Heat maps show a metric over two swept columns (first column on the x axis), one panel per
activation: the network's mean error, or the relative gap. Cells are placed by value, whatever
the order of the swept values. Paper style: a linear ``magma_r`` scale for errors, the gap clipped
to [0, 1] on a logarithmic scale from 4 % to 100 %.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError
from .plot_options import ERRORBARS, METRICS, SETTINGS, STYLES, validate_settings  # noqa: F401 (public names)

COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
#: Paper style: one colour, marker and Hermite line style per activation.
ACTIVATION_COLOURS = {"relu": "#0072B2", "tanh": "#D55E00", "sigmoid": "#009E73", "erf": "#CC79A7",
                      "gelu": "#E69F00", "sin": "#56B4E9", "linear": "#000000"}
ACTIVATION_LINESTYLES = {"relu": "-", "tanh": "--", "sigmoid": ":", "erf": "-.", "gelu": (0, (5, 1, 1, 1)),
                         "sin": (0, (1, 3)), "linear": (0, (8, 2))}
LABELS = {
    "test_error": "generalization error",
    "train_error": "training error",
    "test_misclassification": "test misclassification (0-1 error)",
    "train_misclassification": "training misclassification (0-1 error)",
    "k_over_m": "width $k/m$",
    "alpha": r"$\alpha$",
    "beta": r"$\beta$",
    "rho": r"mixture ratio $\rho$",
    "alignment": "alignment $a$",
    "rank": "covariance rank $d$",
    "eta_exponent": r"$e$ ($\eta = n^e$)",
}
MODEL_LABELS = {"nn": "Neural Network", "hermite": "Hermite Model", "theory": "Theory"}
ACTIVATION_LABELS = {"relu": "ReLU", "tanh": "tanh", "sigmoid": "sigmoid", "erf": "erf", "gelu": "GELU",
                     "sin": "sin"}
BASE = {
    "font.family": "serif",
    "mathtext.fontset": "cm",
    "font.size": 9,
    "axes.labelsize": 10,
    "axes.titlesize": 10,
    "legend.fontsize": 8.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "figure.dpi": 100,
}
REPORT = {**BASE, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6, "axes.spines.top": False,
          "axes.spines.right": False, "savefig.bbox": "tight", "savefig.pad_inches": 0.04}
PAPER = {**BASE, "axes.grid": False, "axes.spines.top": True, "axes.spines.right": True}
#: Kept for callers of the earlier module.
STYLE = REPORT
NOTE_COLOUR = "#555555"
#: Paper style geometry in inches: every panel is PANEL wide and high, axes at fixed offsets.
PANEL_W, PANEL_H = 3.5, 3.0
AX_LEFT, AX_BOTTOM, AX_W, AX_H = 0.62, 0.48, 2.73, 1.82
HEAT_W, BAR_GAP, BAR_W = 1.85, 0.1, 0.12
PNG_DPI = 200


def _pyplot():
    """pyplot, on the non-interactive Agg backend unless a backend was chosen already (a notebook's
    inline backend, ``MPLBACKEND``)."""
    import os
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def activation_label(name: str) -> str:
    return ACTIVATION_LABELS.get(name, name)


# ----------------------------------------------------------------------------- options


@dataclass
class Options:
    """What to draw and how (see the module docstring)."""

    style: str
    metric: str
    errorbars: str
    logx: bool
    logy: bool
    activations: list[str]
    models: list[str]
    title: str | None
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def resolve_options(res, style: str | None = None, metric: str | None = None, errorbars: str | None = None,
                    logx: bool | None = None, logy: bool | None = None, activations: Sequence[str] | None = None,
                    models: Sequence[str] | None = None, title: bool | str | None = None) -> Options:
    """The options of a figure of ``res``: keyword arguments over the run's ``[plot]`` settings
    over the style's defaults. Bad values raise a one-line :class:`ConfigError` naming the option."""
    exp = res.experiment
    s = dict(exp.plot)
    style = style or s.get("style", "report")
    if style not in STYLES:
        raise ConfigError("style", f"must be one of {', '.join(STYLES)}, got {style!r}")
    metric = metric or s.get("metric", "test_error")
    if metric not in METRICS:
        raise ConfigError("metric", f"must be one of {', '.join(METRICS)}, got {metric!r}")
    if "misclassification" in metric and exp.params.get("task") != "classification":
        raise ConfigError("metric", f"{metric} exists for classification only; this run is a regression")
    errorbars = errorbars or s.get("errorbars", "none" if style == "paper" else "sd")
    if errorbars not in ERRORBARS:
        raise ConfigError("errorbars", f"must be one of {', '.join(ERRORBARS)}, got {errorbars!r}")
    run_acts = list(exp.params["activations"])
    acts = list(activations) if activations is not None else list(s.get("activations", run_acts))
    unknown = [a for a in acts if a not in run_acts]
    if unknown or not acts:
        raise ConfigError("activations", f"must be among this run's activations ({', '.join(run_acts)}), "
                          f"got {', '.join(unknown) or 'none'}")
    run_models = _models_in(res)
    chosen = list(models) if models is not None else [m for m in s.get("models", run_models) if m in run_models]
    if not set(chosen) <= set(run_models) or not chosen:
        raise ConfigError("models", f"must be among this run's models ({', '.join(run_models)}), got {chosen!r}")
    if title is None:
        title = style == "report"
    text = (title if isinstance(title, str) else s.get("title", exp.name)) if title else None
    return Options(style=style, metric=metric, errorbars=errorbars,
                   logx=bool(s.get("logx", False)) if logx is None else bool(logx),
                   logy=bool(s.get("logy", False)) if logy is None else bool(logy),
                   activations=acts, models=chosen, title=text,
                   xlim=tuple(s["xlim"]) if "xlim" in s else None, ylim=tuple(s["ylim"]) if "ylim" in s else None,
                   settings=s)


def _models_in(res) -> list[str]:
    """The run's models, and ``theory`` if rows of it are present."""
    models = list(res.experiment.params["models"])
    if "theory" not in models and any(r.get("model") == "theory" for r in res.rows):
        models.append("theory")
    return models


# ----------------------------------------------------------------------------- statistics


def summary(res, metric: str):
    """:func:`gmstep.tables.summarize` of ``res`` (Results, or anything with experiment and rows)."""
    from . import tables

    summarize = getattr(res, "summary", None)
    if callable(summarize):
        return summarize(metric)
    return tables.summarize(tables.frame(res.rows, res.experiment.sweep_columns), res.experiment.sweep_columns,
                            metric)


def excluded_rows(rows: Iterable[Mapping[str, Any]]) -> int:
    """How many rows have a status other than ``ok`` (they are left out of every mean)."""
    return sum(1 for r in rows if r.get("status", "ok") != "ok")


def gap_label(degree: Any) -> str:
    """``|E_nn - E_lin| / E_nn`` for the degree-1 (linear) model, ``E_herm,l`` otherwise."""
    if degree == 1:
        model = r"E_{\mathrm{lin}}"
    elif isinstance(degree, int):
        model = rf"E_{{\mathrm{{herm}},{degree}}}"
    else:
        model = r"E_{\mathrm{herm}}"
    return rf"relative gap $|E_{{\mathrm{{nn}}}} - {model}|\,/\,E_{{\mathrm{{nn}}}}$"


def _degree(exp) -> Any:
    return exp.params.get("degree")


def line_data(res, opts: Options) -> list[dict[str, Any]]:
    """What a line plot draws: per activation, value of the other sweep columns and model, the
    sorted x values, means and error half-widths (``gap``: per activation, the relative gap of
    the network's and the Hermite model's mean test errors, model ``gap``)."""
    from . import tables

    exp = res.experiment
    cols = exp.sweep_columns
    xcol = opts.settings.get("x", cols[0] if cols else None)
    others = [c for c in cols if c != xcol]
    base = "test_error" if opts.metric == "gap" else opts.metric
    s = summary(res, base)
    half = tables.error_half_width(s, opts.errorbars)
    s = s.assign(half=half if half is not None else np.zeros(len(s)))
    out = []
    for act in opts.activations:
        sa = s[s["activation"] == act]
        groups = [((), sa)] if not others else list(sa.groupby(others, sort=True))
        for ov, g in groups:
            ov = ov if isinstance(ov, tuple) else (ov,)
            per_model = {}
            for model in opts.models if opts.metric != "gap" else ("nn", "hermite"):
                gm = g[g["model"] == model]
                if len(gm):
                    xm = gm[xcol].to_numpy(dtype=float) if xcol else np.zeros(len(gm))
                    order = np.argsort(xm, kind="stable")
                    per_model[model] = (xm[order], gm["mean"].to_numpy(float)[order],
                                        gm["half"].to_numpy(float)[order], gm["count"].to_numpy(int)[order])
            if opts.metric == "gap":
                if "nn" not in per_model or "hermite" not in per_model:
                    continue
                xn, mn, _, cn = per_model["nn"]
                xh, mh, _, _ = per_model["hermite"]
                common, i, j = np.intersect1d(xn, xh, return_indices=True)
                with np.errstate(all="ignore"):
                    gap = np.abs(mn[i] - mh[j]) / np.abs(mn[i])
                per_model = {"gap": (common, gap, np.zeros_like(gap), cn[i])}
            if per_model:
                out.append({"activation": act, "others": dict(zip(others, ov, strict=True)), "models": per_model})
    return out


def heatmap_grid(rows_or_res, exp=None, metric: str = "test_error", activation: str | None = None):
    """``(x values, y values, Z)`` with the values sorted and ``Z[j, i]`` the metric at
    ``(x_i, y_j)`` for ``activation`` (default: the first); ``metric = "gap"`` gives
    ``|mean_nn - mean_hermite| / mean_nn`` of the test errors. Accepts a Results, or rows and the
    experiment."""
    res = rows_or_res if exp is None else _Rows(exp, rows_or_res)
    exp = res.experiment
    xcol, ycol = exp.sweep_columns
    act = activation or exp.params["activations"][0]
    xs = np.array(sorted(float(v) for v in exp.sweep[xcol]))
    ys = np.array(sorted(float(v) for v in exp.sweep[ycol]))
    s = summary(res, "test_error" if metric == "gap" else metric)
    s = s[s["activation"] == act]
    means = {(float(a), float(b), m): v for a, b, m, v in
             zip(s[xcol], s[ycol], s["model"], s["mean"], strict=True)}
    z = np.full((len(ys), len(xs)), np.nan)
    for i, xv in enumerate(xs):
        for j, yv in enumerate(ys):
            nn = means.get((xv, yv, "nn"))
            if metric == "gap":
                hm = means.get((xv, yv, "hermite"))
                if nn is not None and hm is not None and nn != 0:
                    z[j, i] = abs(nn - hm) / abs(nn)
            elif nn is not None:
                z[j, i] = nn
    return xs, ys, z


def heatmap_spread(rows_or_res, exp=None, metric: str = "test_error", activation: str | None = None) -> float:
    """Median over grid cells of the network's coefficient of variation ``sd / mean`` over trials
    (of ``metric``, or of the test error for ``gap``); NaN if no cell has two trials."""
    res = rows_or_res if exp is None else _Rows(exp, rows_or_res)
    act = activation or res.experiment.params["activations"][0]
    s = summary(res, "test_error" if metric == "gap" else metric)
    s = s[(s["activation"] == act) & (s["model"] == "nn") & (s["count"] > 1) & (s["mean"] != 0)]
    cv = (s["sd"] / s["mean"].abs()).to_numpy(float)
    return float(np.median(cv)) if cv.size else float("nan")


@dataclass
class _Rows:
    experiment: Any
    rows: Any


# ----------------------------------------------------------------------------- figures


def make_figure(res, **options: Any):
    """The figure of ``res`` (anything with ``experiment`` and ``rows``) as a matplotlib Figure,
    with the options of :func:`resolve_options`. The caller owns the figure (close it with
    ``matplotlib.pyplot.close``)."""
    return compose([res], **options)


def compose(runs: Sequence[Any], letters: bool | None = None, **options: Any):
    """Panels of several runs side by side (heat maps: one panel per activation), one shared
    legend; ``letters`` labels the panels (a), (b), ... (default: with more than one run)."""
    plt = _pyplot()
    opts = [resolve_options(r, **options) for r in runs]
    style = opts[0].style
    heat = [r.experiment.plot.get("kind") == "heatmap" for r in runs]
    counts = [len(o.activations) if h else 1 for o, h in zip(opts, heat, strict=True)]
    letters = len(runs) > 1 if letters is None else letters
    with plt.rc_context(PAPER if style == "paper" else REPORT):
        if style == "paper":
            fig = plt.figure(figsize=(PANEL_W * sum(counts), PANEL_H))
            axes = [_paper_axes(fig, i, sum(counts), h) for i, h in
                    enumerate(h for h, c in zip(heat, counts, strict=True) for _ in range(c))]
        else:
            fig = plt.figure(figsize=(4.8 * sum(counts), 3.5))
            axes = [(fig.add_subplot(1, sum(counts), i + 1), None) for i in range(sum(counts))]
        entries: dict[str, Any] = {}
        i = 0
        for n, (res, o, h) in enumerate(zip(runs, opts, heat, strict=True)):
            panel_axes = axes[i:i + counts[n]]
            i += counts[n]
            if h:
                for (ax, cax), act in zip(panel_axes, o.activations, strict=True):
                    _heatmap(fig, ax, cax, res, o, act)
            else:
                ax = panel_axes[0][0]
                for label, handle in _lines(ax, res, o).items():
                    entries.setdefault(label, handle)
            first_ax = panel_axes[0][0]
            if letters:
                first_ax.text(-0.02, 1.02, f"({chr(ord('a') + n)})", transform=first_ax.transAxes,
                              ha="right", va="bottom", fontsize=10, fontweight="bold")
            _source_note(first_ax, res)
            if style == "report":
                _report_notes(fig, first_ax, res, o, h, bool(entries))
        if entries:
            _legend(fig, axes[0][0], entries, style, sum(counts))
        fig._gmstep_paper = style == "paper"
        excluded = sum(excluded_rows(r.rows) for r in runs)
        if excluded:
            total = sum(len(r.rows) for r in runs)
            if style == "paper":  # above the last panel's axes, right-aligned, under the legend
                width = PANEL_W * sum(counts)
                fig.text((width - (PANEL_W - AX_LEFT - AX_W)) / width, (AX_BOTTOM + AX_H + 0.04) / PANEL_H,
                         f"{excluded} of {total} rows left out (numerical problems)", fontsize=6,
                         color="#b00000", ha="right", va="bottom")
            else:
                fig.text(0.01, -0.065, f"{excluded} of {total} rows with numerical problems (status not ok) left "
                         "out of the means", fontsize=7, color="#b00000", ha="left", va="top")
    return fig


def _paper_axes(fig, index: int, total: int, heat: bool):
    """Axes (and a colour-bar axes for a heat map) at fixed offsets in panel ``index``."""
    w, h = PANEL_W * total, PANEL_H
    left = PANEL_W * index + AX_LEFT
    width = HEAT_W if heat else AX_W
    ax = fig.add_axes((left / w, AX_BOTTOM / h, width / w, AX_H / h))
    cax = fig.add_axes(((left + width + BAR_GAP) / w, AX_BOTTOM / h, BAR_W / w, AX_H / h)) if heat else None
    return ax, cax


def _colour(act: str, index: int, style: str) -> str:
    if style == "paper":
        return ACTIVATION_COLOURS.get(act, COLOURS[index % len(COLOURS)])
    return COLOURS[index % len(COLOURS)]


def _lines(ax, res, o: Options) -> dict[str, Any]:
    """Draw a line plot on ``ax``; returns legend entries ``{label: handle}``."""
    from matplotlib.lines import Line2D

    exp = res.experiment
    cols = exp.sweep_columns
    xcol = o.settings.get("x", cols[0] if cols else None)
    paper = o.style == "paper"
    entries: dict[str, Any] = {}
    curves = line_data(res, o)
    for index, curve in enumerate(curves):
        act = curve["activation"]
        ai = exp.params["activations"].index(act)
        colour = _colour(act, index if not paper else ai, o.style)
        marker = MARKERS[ai % len(MARKERS)]
        ls = ACTIVATION_LINESTYLES.get(act, "-") if paper else "-"
        suffix = "".join(f", {LABELS.get(c, c)} $= {v:g}$" for c, v in curve["others"].items())
        models = curve["models"]
        for model, (x, mean, half, _count) in models.items():
            bars = half if o.errorbars != "none" and model != "gap" else None
            if model in ("nn", "gap"):
                if bars is not None:
                    ax.errorbar(x, mean, yerr=bars, fmt="none", ecolor=colour, elinewidth=0.8, capsize=2, zorder=3)
                ax.plot(x, mean, marker, ls="-" if model == "gap" else "none", color=colour, ms=4.5 if paper else 4.2,
                        mfc=colour, mec=colour if paper else "white", mew=0.5, lw=1.0, zorder=3)
            elif model == "hermite":
                ax.plot(x, mean, ls=ls, color=colour, lw=1.4, zorder=2)
                if bars is not None:
                    ax.fill_between(x, mean - bars, mean + bars, color=colour, alpha=0.15, lw=0, zorder=1)
            else:  # theory (or another model): a thin line over the markers
                ax.plot(x, mean, "-", color=colour, lw=0.8, alpha=0.9, zorder=4)
        has_marker = any(m in models for m in ("nn", "gap"))
        has_line = "hermite" in models or "gap" in models
        theory_only = not has_marker and not has_line  # e.g. a theory-only run: the thin line stands for it
        entries[f"{activation_label(act)}{suffix}"] = Line2D(
            [], [], color=colour, marker=marker if has_marker else None,
            ls=ls if has_line else ("-" if theory_only else "none"),
            ms=4.5, mfc=colour, mec=colour if paper else "white", mew=0.5, lw=0.8 if theory_only else 1.4)
    drawn = {m for c in curves for m in c["models"]}
    grey = "#333333"
    if paper and "nn" in drawn:
        entries[MODEL_LABELS["nn"]] = Line2D([], [], color=grey, marker="o", ls="none", ms=4.5)
    if paper and "hermite" in drawn:
        entries[MODEL_LABELS["hermite"]] = Line2D([], [], color=grey, ls="-", lw=1.4)
    if "theory" in drawn:
        entries[MODEL_LABELS["theory"]] = Line2D([], [], color=grey, ls="-", lw=0.8)
    _axes_decor(ax, exp, o, xcol)
    return entries


def _axes_decor(ax, exp, o: Options, xcol: str | None) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel(o.settings.get("xlabel", LABELS.get(xcol or "", xcol or "")))
    ylabel = gap_label(_degree(exp)) if o.metric == "gap" else LABELS.get(o.metric, o.metric)
    if o.metric == o.settings.get("metric", "test_error"):  # a label written for another metric is not used
        ylabel = o.settings.get("ylabel", ylabel)
    ax.set_ylabel(ylabel, fontsize=9 if o.metric == "gap" else None)
    if o.logx:
        ax.set_xscale("log")
        _plain_log_ticks(ax)
    elif xcol and all(float(v).is_integer() for v in exp.sweep.get(xcol, [0.5])):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if o.logy:
        ax.set_yscale("log")
    # A limit at or below 0 does not apply to a logarithmic axis (the preset's limits are linear ones).
    xlim = o.xlim if o.xlim and not (o.logx and o.xlim[0] <= 0) else None
    ylim = o.ylim if o.ylim and not (o.logy and o.ylim[0] <= 0) else None
    if xlim:
        ax.set_xlim(*xlim)
    elif o.style == "paper" and xcol == "k_over_m" and not o.logx and max(exp.sweep[xcol]) <= 5:
        ax.set_xlim(0, 5)
    if ylim:
        ax.set_ylim(*ylim)
    elif o.style == "paper" and not o.logy:
        ax.set_ylim(bottom=0)


def _legend(fig, ax, entries: dict[str, Any], style: str, panels: int) -> None:
    labels = list(entries)
    handles = [entries[k] for k in labels]
    if style == "paper":
        # One panel: activations in the first column, the models beside them; several: one row.
        acts = sum(1 for k in labels if k not in MODEL_LABELS.values())
        ncol = len(handles) if panels > 1 else max(1, -(-len(handles) // max(acts, 2)))
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.995), ncol=ncol, frameon=False,
                   handlelength=2.4, columnspacing=1.4, handletextpad=0.5, borderaxespad=0.2, fontsize=8,
                   labelspacing=0.3)
    else:
        from matplotlib.transforms import ScaledTranslation

        ncol = min(len(handles), 4) or 1
        offset = ScaledTranslation(0, 2 / 72, fig.dpi_scale_trans)
        ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.0),
                  bbox_transform=ax.transAxes + offset, ncol=ncol, frameon=False,
                  borderaxespad=0.0, borderpad=0.0, handlelength=2.4, columnspacing=1.6, handletextpad=0.5)


def source_text(res) -> str | None:
    """The image source of a Fashion-MNIST run, as its meta.json names it (``source``: what the
    numbers were computed with, e.g. the generator's checkpoint), else from its parameters."""
    exp = res.experiment
    if exp.params.get("dataset") != "fashion-mnist":
        return None
    from .fashion import figure_source

    return figure_source(res)


def _source_note(ax, res) -> None:
    text = source_text(res)
    if text:
        ax.text(0.99, 0.02, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=6.5, color=NOTE_COLOUR)


def overlay(runs: Sequence[Any], labels: Sequence[str], **options: Any):
    """Line plots of several runs of one sweep on one axes: one colour per run, one marker (network)
    and line style (Hermite model) per activation, theory as thin lines; a legend of the runs,
    the activations and the models. No title unless ``title`` is a string (the runs' own titles
    describe one run each)."""
    from matplotlib.lines import Line2D

    plt = _pyplot()
    opts = [resolve_options(r, **options) for r in runs]
    style = opts[0].style
    paper = style == "paper"
    with plt.rc_context(PAPER if paper else REPORT):
        fig = plt.figure(figsize=(PANEL_W, PANEL_H) if paper else (4.8, 3.5))
        ax = _paper_axes(fig, 0, 1, False)[0] if paper else fig.add_subplot(1, 1, 1)
        entries: dict[str, Any] = {}
        acts: dict[str, str] = {}  # activation -> its marker
        drawn: set[str] = set()
        for i, (res, o, label) in enumerate(zip(runs, opts, labels, strict=True)):
            colour = COLOURS[i % len(COLOURS)]
            entries[label] = Line2D([], [], color=colour, lw=2.5)
            all_acts = res.experiment.params["activations"]
            for curve in line_data(res, o):
                act = curve["activation"]
                marker = acts.setdefault(act, MARKERS[all_acts.index(act) % len(MARKERS)])
                ls = ACTIVATION_LINESTYLES.get(act, "-")
                for model, (x, mean, half, _count) in curve["models"].items():
                    drawn.add(model)
                    bars = half if o.errorbars != "none" and model != "gap" else None
                    if model in ("nn", "gap"):
                        if bars is not None:
                            ax.errorbar(x, mean, yerr=bars, fmt="none", ecolor=colour, elinewidth=0.8, capsize=2)
                        ax.plot(x, mean, marker, ls="-" if model == "gap" else "none", color=colour, ms=4.5,
                                mfc=colour, mec=colour, zorder=3)
                    elif model == "hermite":
                        ax.plot(x, mean, ls=ls, color=colour, lw=1.4, zorder=2)
                    else:
                        ax.plot(x, mean, "-", color=colour, lw=0.8, zorder=4)
        grey = "#333333"
        if len({source_text(r) for r in runs}) == 1:  # one source for all: say which
            _source_note(ax, runs[0])
        for act, marker in acts.items():
            entries[activation_label(act)] = Line2D([], [], color=grey, marker=marker,
                                                    ls=ACTIVATION_LINESTYLES.get(act, "-"), lw=1.2, ms=4)
        for model in ("nn", "hermite", "theory"):
            if model in drawn:
                entries[MODEL_LABELS[model]] = Line2D([], [], color=grey, marker="o" if model == "nn" else None,
                                                      ls="none" if model == "nn" else "-",
                                                      lw=1.4 if model == "hermite" else 0.8)
        exp = runs[0].experiment
        _axes_decor(ax, exp, opts[0], exp.sweep_columns[0])
        title = options.get("title")
        if isinstance(title, str):  # only a title given for the overlay: a run's own would mislabel the others
            ax.set_title(title, loc="left", fontsize=10, pad=4 + 15 * 2)
        _legend(fig, ax, entries, style, 1)
        fig._gmstep_paper = paper
    return fig


# ----------------------------------------------------------------------------- report decorations


def describe_setting(exp) -> str:
    """A one-line summary of the fixed parameters, e.g. ``n = 1000, m = 1000, k = m, 20 trials``."""
    p = exp.params
    swept = set(exp.sweep_columns)
    parts = []
    for key in ("n", "m"):
        if key not in swept:
            parts.append(f"${key} = {p[key]}$")
    if "k_over_m" not in swept and "k" not in swept:
        if p.get("k") is not None:
            parts.append(f"$k = {p['k']}$")
        elif p["k_over_m"] == 1:
            parts.append("$k = m$")
        else:
            parts.append(f"$k = {p['k_over_m']:g}\\,m$")
    if p.get("dataset", "gmm") == "gmm":
        if p.get("theta") is not None and "theta" not in swept:
            parts.append(rf"$\theta = {p['theta']:g}$")
        for key, sym in (("alpha", r"\alpha"), ("beta", r"\beta")):
            if key not in swept:
                parts.append(f"${sym} = {p[key]:g}$")
    if "eta_exponent" not in swept and p.get("eta_exponent") is not None:
        parts.append(rf"$\eta = n^{{{p['eta_exponent']:g}}}$")
    if "lambda" not in swept:
        parts.append(rf"$\lambda = {_sci(p['lambda'])}$")
    parts.append(f"{p['trials']} trial{'s' if p['trials'] != 1 else ''}")
    return ", ".join(parts)


def _sci(v: float) -> str:
    """``1e-4`` as ``10^{-4}``, other numbers with ``%g``."""
    exponent = np.log10(v) if v > 0 else 0.0
    if v > 0 and float(exponent).is_integer() and abs(exponent) >= 3:
        return f"10^{{{int(exponent)}}}"
    return f"{v:g}"


def _degree_text(exp) -> str:
    deg = exp.params.get("degree")
    if "degree" in exp.sweep_columns:
        return "Hermite model of the swept degree"
    if deg == "auto":
        return r"Hermite model, degree $l = \lceil\beta/(1-\beta)\rceil \in [1, 4]$"
    return f"Hermite model of degree $l = {deg}$"


def _report_notes(fig, ax, res, o: Options, heat: bool, has_legend: bool) -> None:
    """Report style: the title (if on) with the fixed settings in grey, and a note below."""
    exp = res.experiment
    legend_rows = 0
    if has_legend and not heat:
        n = len(line_data(res, o))
        ncol = min(n, 4) or 1
        legend_rows = -(-n // ncol)
    gap = 15 * legend_rows + (4 if legend_rows else 3)
    ax.annotate(describe_setting(exp), xy=(0.0, 1.0), xycoords="axes fraction", xytext=(0, gap),
                textcoords="offset points", fontsize=7.5, color=NOTE_COLOUR, ha="left", va="bottom",
                annotation_clip=False)
    if o.title:
        ax.set_title(o.title, loc="left", fontsize=10, pad=gap + 12)
    if heat:
        sd_ratio = heatmap_spread(res, metric=o.metric, activation=o.activations[0])
        if sd_ratio == sd_ratio:
            fig.text(0.01, -0.01, f"mean over trials; median network sd / mean over trials: {sd_ratio:.1%}",
                     fontsize=7, color=NOTE_COLOUR, ha="left", va="top")
        return
    parts = []
    if o.metric == "gap":
        parts.append("relative gap of the mean test errors of the network and its " + _degree_text(exp))
    else:
        if "nn" in o.models:
            parts.append("markers: network")
        if "hermite" in o.models:
            parts.append("lines: " + _degree_text(exp))
        if "theory" in o.models:
            parts.append("thin lines: theory")
    trials = exp.params["trials"]
    what = {"sd": "$\\pm 1$ sd", "sem": "$\\pm 1$ standard error", "ci95": "95 % confidence intervals"}
    spread = (f"; bars and bands: {what[o.errorbars]} over {trials} trials"
              if o.errorbars != "none" and trials > 1 and o.metric != "gap" else "")
    fig.text(0.01, -0.01, "; ".join(parts) + spread, fontsize=7, color=NOTE_COLOUR, ha="left", va="top")


# ----------------------------------------------------------------------------- heat maps


def _heatmap(fig, ax, cax, res, o: Options, act: str) -> None:
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.ticker import PercentFormatter

    exp = res.experiment
    xcol, ycol = exp.sweep_columns
    metric = o.metric
    xs, ys, z = heatmap_grid(res, metric=metric, activation=act)
    paper = o.style == "paper"
    norm: Normalize | None
    if paper and metric == "gap":
        z = np.clip(z, 0.04, 1.0)
        norm, cmap = LogNorm(vmin=0.04, vmax=1.0), "magma"
    elif paper:
        finite = z[np.isfinite(z)]
        norm = Normalize(vmin=0.0, vmax=float(finite.max()) if finite.size else 1.0)
        cmap = "magma_r"
    else:
        finite = z[np.isfinite(z) & (z > 0)]
        norm = None
        if finite.size and finite.max() / finite.min() > 30:
            # Values over more than 1.5 decades: a log colour scale shows the structure of both ends.
            norm = LogNorm(vmin=max(finite.min(), finite.max() * 1e-3), vmax=finite.max())
        cmap = "magma" if metric == "gap" else "viridis"
    mesh = ax.pcolormesh(_edges(xs), _edges(ys), z, cmap=cmap, shading="flat", norm=norm, rasterized=True)
    bar = fig.colorbar(mesh, cax=cax) if cax is not None else fig.colorbar(mesh, ax=ax, pad=0.03)
    name = activation_label(act)
    if metric == "gap":
        degree = _degree(exp)
        model = f"degree-{degree} Hermite model" if isinstance(degree, int) else "Hermite model"
        label = gap_label(degree) if paper else gap_label(degree) + f"\n({name} network vs. its {model})"
        bar.set_label(label, fontsize=8.5)
        bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))
    else:
        bar.set_label(f"{name} network {LABELS.get(metric, metric)}", fontsize=8.5 if paper else None)
    ax.set_xlabel(o.settings.get("xlabel", LABELS.get(xcol, xcol)))
    ax.set_ylabel(o.settings.get("ylabel", LABELS.get(ycol, ycol)))
    ax.set_xlim(_edges(xs)[0], _edges(xs)[-1])
    ax.set_ylim(_edges(ys)[0], _edges(ys)[-1])
    ax.grid(False)
    if len(o.activations) > 1:
        ax.text(0.02, 0.98, name, transform=ax.transAxes, ha="left", va="top", fontsize=8.5, color="white")


def _edges(v: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres ``v``."""
    v = np.asarray(v, dtype=float)
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def _plain_log_ticks(ax) -> None:
    """Log-scale x ticks written as plain numbers (0.1, 0.5, 1, 2, 5) rather than powers of 10."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo, hi = ax.get_xlim()
    candidates = [v * 10.0**e for e in range(-4, 5) for v in (1, 2, 5)]
    ticks = [t for t in candidates if lo <= t <= hi]
    if len(ticks) >= 2:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())


# ----------------------------------------------------------------------------- saving


def save_figure(fig, path: Path, style: str | None = None) -> Path:
    """Save ``fig`` to ``path`` (format from the suffix); paper figures keep their fixed size."""
    path = Path(path)
    tight = style != "paper" and not getattr(fig, "_gmstep_paper", False)
    try:
        fig.savefig(path, dpi=PNG_DPI if path.suffix.lower() == ".png" else None,
                    bbox_inches="tight" if tight else None, pad_inches=0.04)
    except OSError as exc:
        from .errors import ResultsError

        raise ResultsError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def save(fig, stem: Path, style: str, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """``stem.png`` and ``stem.pdf`` (or ``formats``); returns the paths."""
    return [save_figure(fig, stem.with_name(f"{stem.name}.{fmt}"), style) for fmt in formats]


def plot_results(res, directory: str | Path | None = None, formats: Sequence[str] = ("png", "pdf"),
                 **options: Any) -> list[Path]:
    """Draw ``res`` (a :class:`gmstep.runner.Results`) and save ``<name>.png`` and ``.pdf`` in
    ``directory``; returns the paths written (none without a directory)."""
    plt = _pyplot()
    opts = resolve_options(res, **options)
    fig = make_figure(res, **options)
    try:
        if directory is None:
            return []
        return save(fig, Path(directory) / res.experiment.name, opts.style, formats)
    finally:
        plt.close(fig)
