"""Figures in the paper's style: the network as markers, the Hermite model as lines.

Line plots show, per activation (one colour and one marker each), the mean over trials of the
chosen metric: the network as markers with error bars of one standard deviation over trials,
the Hermite model as a line with a band of one standard deviation. The legend has one entry
per activation (its marker on its line) and a note says which is which.

Heat maps show a metric over two swept columns (first column on the x axis) for the first
activation: the network's mean error, or the relative gap ``|E_nn - E_hermite| / E_nn``
between the two models' mean errors. A colour bar is labelled with what is shown.

Rows whose status is not ``ok`` are left out of every mean, and the figure says how many.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LABELS = {
    "test_error": "generalization error",
    "train_error": "training error",
    "gap": r"relative gap $|E_{\mathrm{nn}} - E_{\mathrm{lin}}|\,/\,E_{\mathrm{nn}}$",
    "k_over_m": "width $k/m$",
    "alpha": r"$\alpha$",
    "beta": r"$\beta$",
    "rho": r"mixture ratio $\rho$",
    "alignment": "alignment $a$",
    "rank": "covariance rank $d$",
    "eta_exponent": r"$e$ ($\eta = n^e$)",
}
ACTIVATION_LABELS = {"relu": "ReLU", "tanh": "tanh", "sigmoid": "sigmoid", "erf": "erf", "gelu": "GELU",
                     "sin": "sin"}
#: Line style of the ``theory`` model (thin, in the activation's colour).
THEORY_LS = (0, (5, 1.5, 1, 1.5))
STYLE = {
    "font.family": "serif",
    "mathtext.fontset": "cm",
    "font.size": 9,
    "axes.labelsize": 10,
    "axes.titlesize": 10,
    "legend.fontsize": 8.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 100,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.04,
}
NOTE_COLOUR = "#555555"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _stats(rows: Iterable[Mapping[str, Any]], keys: Sequence[str], metric: str):
    """``{key tuple: (mean, std, count)}`` over rows with status ok (``std`` with ddof 1)."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        if r.get("status", "ok") == "ok":
            groups.setdefault(tuple(r[k] for k in keys), []).append(float(r[metric]))
    return {
        k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v))
        for k, v in groups.items()
    }


def activation_label(name: str) -> str:
    return ACTIVATION_LABELS.get(name, name)


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


def make_figure(res):
    """The figure of ``res`` (anything with ``experiment`` and ``rows``) as a matplotlib Figure.

    The caller owns the figure (close it with ``matplotlib.pyplot.close``)."""
    plt = _pyplot()
    exp = res.experiment
    rows = list(res.rows)
    settings = exp.plot
    with plt.rc_context(STYLE):
        draw = _heatmap if settings["kind"] == "heatmap" else _lines
        fig = draw(plt, rows, exp, settings)
        excluded = excluded_rows(rows)
        if excluded:
            fig.text(0.01, -0.065, f"{excluded} of {len(rows)} rows with numerical problems "
                     "(status not ok) left out of the means", fontsize=7, color="#b00000", ha="left", va="top")
    return fig


def excluded_rows(rows: Iterable[Mapping[str, Any]]) -> int:
    """How many rows have a status other than ``ok`` (they are left out of every mean)."""
    return sum(1 for r in rows if r.get("status", "ok") != "ok")


def plot_results(res, directory: str | Path | None = None, formats: Sequence[str] = ("png", "pdf")):
    """Draw ``res`` (a :class:`gmstep.runner.Results`) and save ``<name>.png`` and ``.pdf`` in
    ``directory``; returns the paths written (none without a directory)."""
    plt = _pyplot()
    fig = make_figure(res)
    paths = []
    try:
        if directory is not None:
            directory = Path(directory)
            for fmt in formats:
                path = directory / f"{res.experiment.name}.{fmt}"
                fig.savefig(path, dpi=200 if fmt == "png" else None, bbox_inches="tight", pad_inches=0.04)
                paths.append(path)
    finally:
        plt.close(fig)
    return paths


def _title(fig, ax, exp, settings, legend_rows: int = 0) -> None:
    """Title (the preset's, else the experiment name) with the fixed settings in grey below it;
    ``legend_rows`` rows of legend sit between them and the axes."""
    gap = 15 * legend_rows + (4 if legend_rows else 3)
    ax.annotate(describe_setting(exp), xy=(0.0, 1.0), xycoords="axes fraction", xytext=(0, gap),
                textcoords="offset points", fontsize=7.5, color=NOTE_COLOUR, ha="left", va="bottom",
                annotation_clip=False)
    ax.set_title(settings.get("title", exp.name), loc="left", fontsize=10, pad=gap + 12)


def _lines(plt, rows, exp, settings):
    from matplotlib.lines import Line2D

    cols = exp.sweep_columns
    xcol = settings.get("x", cols[0] if cols else None)
    metric = settings["metric"] if settings["metric"] != "gap" else "test_error"
    others = [c for c in cols if c != xcol]
    stats = _stats(rows, [*cols, "activation", "model"], metric)
    fig, ax = plt.subplots(figsize=(4.8, 3.5))
    acts = exp.params["activations"]
    models = exp.params["models"]
    other_values = sorted({tuple(k[cols.index(c)] for c in others) for k in stats}) or [()]
    handles, labels = [], []
    style_index = 0
    trials_used = 0
    for ai, act in enumerate(acts):
        for ov in other_values:
            colour = COLOURS[style_index % len(COLOURS)]
            marker = MARKERS[ai % len(MARKERS)]
            style_index += 1
            suffix = "".join(f", {LABELS.get(c, c)} $= {v:g}$" for c, v in zip(others, ov, strict=True))
            drawn = False
            for model in models:
                pts = sorted(
                    (k[cols.index(xcol)] if xcol else 0.0, *v) for k, v in stats.items()
                    if k[-2] == act and k[-1] == model
                    and tuple(k[cols.index(c)] for c in others) == ov
                )
                if not pts:
                    continue
                drawn = True
                x, mean, std, count = (np.array(a, dtype=float) for a in zip(*pts, strict=True))
                trials_used = max(trials_used, int(count.max()))
                if model == "theory":  # a thin line in the activation's colour, no band
                    ax.plot(x, mean, ls=THEORY_LS, color=colour, lw=0.8, zorder=4)
                elif model == "nn":
                    ax.errorbar(x, mean, yerr=std, fmt=marker, color=colour, ms=4.2, mfc=colour,
                                mec="white", mew=0.5, capsize=2, elinewidth=0.8, lw=0.8, zorder=3)
                else:
                    ax.plot(x, mean, "-", color=colour, lw=1.3, zorder=2)
                    ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.15, lw=0, zorder=1)
            if drawn:
                only_theory = "theory" in models and "nn" not in models and "hermite" not in models
                handles.append(Line2D([], [], color=colour, marker=marker if "nn" in models else None,
                                      ls="-" if "hermite" in models else (THEORY_LS if only_theory else "none"),
                                      ms=4.5, mec="white", mew=0.5, lw=0.8 if only_theory else 1.3))
                labels.append(f"{activation_label(act)}{suffix}")
    if "theory" in models and handles and not all(m == "theory" for m in models):
        handles.append(Line2D([], [], color=NOTE_COLOUR, ls=THEORY_LS, lw=0.8))
        labels.append("theory")
    ax.set_xlabel(settings.get("xlabel", LABELS.get(xcol, xcol or "")))
    ax.set_ylabel(settings.get("ylabel", LABELS.get(metric, metric)))
    if settings.get("logx"):
        ax.set_xscale("log")
        _plain_log_ticks(ax)
    elif all(float(v).is_integer() for v in exp.sweep.get(xcol, [0.5])):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if settings.get("logy"):
        ax.set_yscale("log")
    ncol = min(len(handles), 4) or 1
    legend_rows = -(-len(handles) // ncol) if handles else 0
    _title(fig, ax, exp, settings, legend_rows)
    if handles:
        from matplotlib.transforms import ScaledTranslation

        offset = ScaledTranslation(0, 2 / 72, fig.dpi_scale_trans)
        ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.0),
                  bbox_transform=ax.transAxes + offset, ncol=ncol, frameon=False,
                  borderaxespad=0.0, borderpad=0.0, handlelength=2.4, columnspacing=1.6, handletextpad=0.5)
    parts = []
    if "nn" in models:
        parts.append("markers: network")
    if "hermite" in models:
        parts.append("lines: " + _degree_text(exp))
    if "theory" in models:
        parts.append("thin dash-dotted lines: theory (docs/THEORY.md)")
    spread = f"; bars and bands: $\\pm 1$ sd over {trials_used} trials" if trials_used > 1 else ""
    fig.text(0.01, -0.01, "; ".join(parts) + spread, fontsize=7, color=NOTE_COLOUR, ha="left", va="top")
    return fig


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


def heatmap_spread(rows, exp, metric: str) -> float:
    """Median over grid cells of the network's coefficient of variation ``sd / mean`` over trials
    (of ``metric``, or of the test error for ``gap``); NaN if no cell has two trials."""
    xcol, ycol = exp.sweep_columns
    act = exp.params["activations"][0]
    base = "test_error" if metric == "gap" else metric
    stats = _stats([r for r in rows if r["activation"] == act and r["model"] == "nn"], [xcol, ycol], base)
    cv = [s / abs(m) for m, s, c in stats.values() if c > 1 and m != 0]
    return float(np.median(cv)) if cv else float("nan")


def _heatmap(plt, rows, exp, settings):
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import PercentFormatter

    xcol, ycol = exp.sweep_columns
    metric = settings["metric"]
    xs, ys, z = heatmap_grid(rows, exp, metric)
    fig, ax = plt.subplots(figsize=(4.6, 3.7))
    finite = z[np.isfinite(z) & (z > 0)]
    norm = None
    if finite.size and finite.max() / finite.min() > 30:
        # Values over more than 1.5 decades: a log colour scale shows the structure of both ends.
        norm = LogNorm(vmin=max(finite.min(), finite.max() * 1e-3), vmax=finite.max())
    mesh = ax.pcolormesh(_edges(xs), _edges(ys), z, cmap="magma" if metric == "gap" else "viridis",
                         shading="flat", norm=norm, rasterized=True)
    bar = fig.colorbar(mesh, ax=ax, pad=0.03)
    act = activation_label(exp.params["activations"][0])
    if metric == "gap":
        degree = exp.params.get("degree")
        model = f"degree-{degree} Hermite model" if isinstance(degree, int) else "Hermite model"
        bar.set_label(LABELS["gap"] + f"\n({act} network vs. its {model})", fontsize=8.5)
        bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))
    else:
        bar.set_label(f"{act} network {LABELS.get(metric, metric)}")
    ax.set_xlabel(settings.get("xlabel", LABELS.get(xcol, xcol)))
    ax.set_ylabel(settings.get("ylabel", LABELS.get(ycol, ycol)))
    ax.set_xlim(_edges(xs)[0], _edges(xs)[-1])
    ax.set_ylim(_edges(ys)[0], _edges(ys)[-1])
    ax.grid(False)
    _title(fig, ax, exp, settings)
    spread = heatmap_spread(rows, exp, metric)
    if spread == spread:
        fig.text(0.01, -0.01, f"mean over trials; median network sd / mean over trials: {spread:.1%}",
                 fontsize=7, color=NOTE_COLOUR, ha="left", va="top")
    return fig


def _edges(v: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres ``v``."""
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])
