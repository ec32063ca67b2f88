"""Heat maps: a metric over two swept columns, cells placed by value, with their colour bar."""

from __future__ import annotations

import numpy as np

from .plot_data import Options, gap_label, heatmap_grid, shown_degree
from .plot_style import LABELS, activation_label


def draw_heatmap(fig, ax, cax, res, o: Options, act: str) -> None:
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
    mesh = ax.pcolormesh(cell_edges(xs), cell_edges(ys), z, cmap=cmap, shading="flat", norm=norm, rasterized=True)
    bar = fig.colorbar(mesh, cax=cax) if cax is not None else fig.colorbar(mesh, ax=ax, pad=0.03)
    name = activation_label(act)
    if metric == "gap":
        degree = shown_degree(exp)
        model = f"degree-{degree} Hermite model" if isinstance(degree, int) else "Hermite model"
        label = gap_label(degree) if paper else gap_label(degree) + f"\n({name} network vs. its {model})"
        bar.set_label(label, fontsize=8.5)
        bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))
    else:
        bar.set_label(f"{name} network {LABELS.get(metric, metric)}", fontsize=8.5 if paper else None)
    ax.set_xlabel(o.settings.get("xlabel", LABELS.get(xcol, xcol)))
    ax.set_ylabel(o.settings.get("ylabel", LABELS.get(ycol, ycol)))
    ax.set_xlim(cell_edges(xs)[0], cell_edges(xs)[-1])
    ax.set_ylim(cell_edges(ys)[0], cell_edges(ys)[-1])
    ax.grid(False)
    if len(o.activations) > 1:
        ax.text(0.02, 0.98, name, transform=ax.transAxes, ha="left", va="top", fontsize=8.5, color="white")


def cell_edges(v: np.ndarray) -> np.ndarray:
    """Cell edges around sorted centres ``v``."""
    v = np.asarray(v, dtype=float)
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])
