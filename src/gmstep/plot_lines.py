"""Line plots: per activation, the network as markers, the Hermite model as a line and the theory as
a thin line, and the axes' labels, scales and limits."""

from __future__ import annotations

from typing import Any

from .config import HERMITE, NN, THEORY
from .plot_data import Options, gap_label, line_data, shown_degree
from .plot_style import ACTIVATION_LINESTYLES, LABELS, MARKERS, MODEL_LABELS, activation_colour, activation_label


def draw_lines(ax, res, o: Options) -> dict[str, Any]:
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
        colour = activation_colour(act, index if not paper else ai, o.style)
        marker = MARKERS[ai % len(MARKERS)]
        ls = ACTIVATION_LINESTYLES.get(act, "-") if paper else "-"
        suffix = "".join(f", {LABELS.get(c, c)} $= {v:g}$" for c, v in curve["others"].items())
        models = curve["models"]
        for model, (x, mean, half, _count) in models.items():
            bars = half if o.errorbars != "none" and model != "gap" else None
            if model in (NN, "gap"):
                if bars is not None:
                    ax.errorbar(x, mean, yerr=bars, fmt="none", ecolor=colour, elinewidth=0.8, capsize=2, zorder=3)
                ax.plot(x, mean, marker, ls="-" if model == "gap" else "none", color=colour, ms=4.5 if paper else 4.2,
                        mfc=colour, mec=colour if paper else "white", mew=0.5, lw=1.0, zorder=3)
            elif model == HERMITE:
                ax.plot(x, mean, ls=ls, color=colour, lw=1.4, zorder=2)
                if bars is not None:
                    ax.fill_between(x, mean - bars, mean + bars, color=colour, alpha=0.15, lw=0, zorder=1)
            else:  # theory (or another model): a thin line over the markers
                ax.plot(x, mean, "-", color=colour, lw=0.8, alpha=0.9, zorder=4)
        has_marker = any(m in models for m in (NN, "gap"))
        has_line = HERMITE in models or "gap" in models
        theory_only = not has_marker and not has_line  # e.g. a theory-only run: the thin line stands for it
        entries[f"{activation_label(act)}{suffix}"] = Line2D(
            [], [], color=colour, marker=marker if has_marker else None,
            ls=ls if has_line else ("-" if theory_only else "none"),
            ms=4.5, mfc=colour, mec=colour if paper else "white", mew=0.5, lw=0.8 if theory_only else 1.4)
    drawn = {m for c in curves for m in c["models"]}
    grey = "#333333"
    if paper and NN in drawn:
        entries[MODEL_LABELS[NN]] = Line2D([], [], color=grey, marker="o", ls="none", ms=4.5)
    if paper and HERMITE in drawn:
        entries[MODEL_LABELS[HERMITE]] = Line2D([], [], color=grey, ls="-", lw=1.4)
    if THEORY in drawn:
        entries[MODEL_LABELS[THEORY]] = Line2D([], [], color=grey, ls="-", lw=0.8)
    decorate_axes(ax, exp, o, xcol)
    return entries


def decorate_axes(ax, exp, o: Options, xcol: str | None) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel(o.settings.get("xlabel", LABELS.get(xcol or "", xcol or "")))
    ylabel = gap_label(shown_degree(exp)) if o.metric == "gap" else LABELS.get(o.metric, o.metric)
    if o.metric == o.settings.get("metric", "test_error"):  # a label written for another metric is not used
        ylabel = o.settings.get("ylabel", ylabel)
    ax.set_ylabel(ylabel, fontsize=9 if o.metric == "gap" else None)
    if o.logx:
        ax.set_xscale("log")
        plain_log_ticks(ax)
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


def plain_log_ticks(ax) -> None:
    """Log-scale x ticks written as plain numbers (0.1, 0.5, 1, 2, 5) rather than powers of 10."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    lo, hi = ax.get_xlim()
    candidates = [v * 10.0**e for e in range(-4, 5) for v in (1, 2, 5)]
    ticks = [t for t in candidates if lo <= t <= hi]
    if len(ticks) >= 2:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
