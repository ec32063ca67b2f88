"""Figures in the paper's style: the network as markers, the Hermite model as lines.

Line plots show, per activation (one colour each), the mean over trials of the chosen metric
with its standard deviation (error bars for the network, a band for the Hermite model). Heat
maps show a metric over two swept columns: the network's mean error, or the relative gap
``|E_nn - E_hermite| / E_nn`` between the means. Rows whose status is not ``ok`` are left out
of every mean, and the figure says how many.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LABELS = {
    "test_error": "generalization error",
    "train_error": "training error",
    "gap": r"$|E_{nn} - E_{lin}| / E_{nn}$",
    "k_over_m": "$k/m$",
    "alpha": r"$\alpha$",
    "beta": r"$\beta$",
    "rho": r"$\rho$",
    "alignment": "alignment $a$",
    "rank": "rank $d$",
    "eta_exponent": r"$e$ ($\eta = n^e$)",
}
STYLE = {
    "font.family": "serif",
    "mathtext.fontset": "cm",
    "font.size": 10,
    "axes.labelsize": 11,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
    "savefig.bbox": "tight",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _stats(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], metric: str):
    """``{key tuple: (mean, std, count)}`` over rows with status ok."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        if r.get("status", "ok") == "ok":
            groups.setdefault(tuple(r[k] for k in keys), []).append(float(r[metric]))
    return {
        k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v))
        for k, v in groups.items()
    }


def plot_results(res, directory: str | Path | None = None, formats: Sequence[str] = ("png", "pdf")):
    """Draw ``res`` (a :class:`gmstep.runner.Results`) and save ``<name>.png`` and ``.pdf``."""
    plt = _pyplot()
    exp = res.experiment
    settings = exp.plot
    with plt.rc_context(STYLE):
        if settings["kind"] == "heatmap":
            fig = _heatmap(plt, res.rows, exp, settings)
        else:
            fig = _lines(plt, res.rows, exp, settings)
        excluded = sum(1 for r in res.rows if r.get("status", "ok") != "ok")
        if excluded:
            fig.text(0.01, 0.01, f"{excluded} rows with numerical problems left out", fontsize=7,
                     color="#b00")
        paths = []
        if directory is not None:
            directory = Path(directory)
            for fmt in formats:
                path = directory / f"{exp.name}.{fmt}"
                fig.savefig(path, dpi=200 if fmt == "png" else None)
                paths.append(path)
        plt.close(fig)
    return paths


def _lines(plt, rows, exp, settings):
    cols = exp.sweep_columns
    xcol = settings.get("x", cols[0] if cols else None)
    metric = settings["metric"] if settings["metric"] != "gap" else "test_error"
    others = [c for c in cols if c != xcol]
    stats = _stats(rows, [*cols, "activation", "model"], metric)
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    acts = exp.params["activations"]
    other_values = sorted({tuple(k[cols.index(c)] for c in others) for k in stats}) or [()]
    style_index = 0
    for ai, act in enumerate(acts):
        for ov in other_values:
            colour = COLOURS[style_index % len(COLOURS)]
            style_index += 1
            suffix = "".join(f", {c}={v:g}" for c, v in zip(others, ov, strict=True))
            for model in exp.params["models"]:
                pts = sorted(
                    (k[cols.index(xcol)], *v) for k, v in stats.items()
                    if k[-2] == act and k[-1] == model
                    and tuple(k[cols.index(c)] for c in others) == ov
                )
                if not pts:
                    continue
                x, mean, std, _ = (np.array(a, dtype=float) for a in zip(*pts, strict=True))
                label = f"{act}{suffix}"
                if model == "nn":
                    ax.errorbar(x, mean, yerr=std, fmt=MARKERS[ai % len(MARKERS)], color=colour,
                                ms=4, capsize=2, lw=0.8, label=f"{label} (NN)")
                else:
                    ax.plot(x, mean, "-", color=colour, lw=1.3, label=f"{label} (Hermite)")
                    ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.15, lw=0)
    ax.set_xlabel(settings.get("xlabel", LABELS.get(xcol, xcol)))
    ax.set_ylabel(settings.get("ylabel", LABELS.get(metric, metric)))
    if settings.get("logx"):
        ax.set_xscale("log")
    if settings.get("logy"):
        ax.set_yscale("log")
    ax.set_title(settings.get("title", exp.name), fontsize=10)
    ax.legend(frameon=False, ncol=1 if len(acts) <= 3 else 2)
    return fig


def heatmap_grid(rows, exp, metric: str):
    """``(x values, y values, Z)`` with ``Z[j, i]`` the metric at ``(x_i, y_j)`` for the first
    activation; ``metric = "gap"`` gives ``|mean_nn - mean_hermite| / mean_nn``."""
    xcol, ycol = exp.sweep_columns
    act = exp.params["activations"][0]
    xs, ys = exp.sweep[xcol], exp.sweep[ycol]
    base = "test_error" if metric == "gap" else metric
    stats = _stats([r for r in rows if r["activation"] == act], [xcol, ycol, "model"], base)
    z = np.full((len(ys), len(xs)), np.nan)
    for i, xv in enumerate(xs):
        for j, yv in enumerate(ys):
            nn = stats.get((xv, yv, "nn"))
            if metric == "gap":
                hm = stats.get((xv, yv, "hermite"))
                if nn and hm and nn[0] != 0:
                    z[j, i] = abs(nn[0] - hm[0]) / abs(nn[0])
            elif nn:
                z[j, i] = nn[0]
    return np.asarray(xs, float), np.asarray(ys, float), z


def _heatmap(plt, rows, exp, settings):
    xcol, ycol = exp.sweep_columns
    metric = settings["metric"]
    xs, ys, z = heatmap_grid(rows, exp, metric)
    fig, ax = plt.subplots(figsize=(4.4, 3.6))
    mesh = ax.pcolormesh(_edges(xs), _edges(ys), z, cmap="viridis", shading="flat")
    bar = fig.colorbar(mesh, ax=ax)
    bar.set_label(LABELS.get(metric, metric) if metric == "gap"
                  else f"{exp.params['activations'][0]} NN {LABELS.get(metric, metric)}")
    ax.set_xlabel(settings.get("xlabel", LABELS.get(xcol, xcol)))
    ax.set_ylabel(settings.get("ylabel", LABELS.get(ycol, ycol)))
    ax.set_title(settings.get("title", exp.name), fontsize=10)
    ax.grid(False)
    return fig


def _edges(v: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres ``v``."""
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])
