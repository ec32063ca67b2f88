"""The look of the figures: colours, markers and line styles per activation, axis labels, the
paper and report matplotlib styles, the paper style's fixed panel geometry, and the legend."""

from __future__ import annotations

from typing import Any

from .config import HERMITE, NN, THEORY

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
MODEL_LABELS = {NN: "Neural Network", HERMITE: "Hermite Model", THEORY: "Theory"}
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


def pyplot():
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


def paper_axes(fig, index: int, total: int, heat: bool):
    """Axes (and a colour-bar axes for a heat map) at fixed offsets in panel ``index``."""
    w, h = PANEL_W * total, PANEL_H
    left = PANEL_W * index + AX_LEFT
    width = HEAT_W if heat else AX_W
    ax = fig.add_axes((left / w, AX_BOTTOM / h, width / w, AX_H / h))
    cax = fig.add_axes(((left + width + BAR_GAP) / w, AX_BOTTOM / h, BAR_W / w, AX_H / h)) if heat else None
    return ax, cax


def activation_colour(act: str, index: int, style: str) -> str:
    if style == "paper":
        return ACTIVATION_COLOURS.get(act, COLOURS[index % len(COLOURS)])
    return COLOURS[index % len(COLOURS)]


def draw_legend(fig, ax, entries: dict[str, Any], style: str, panels: int) -> None:
    labels = list(entries)
    handles = [entries[k] for k in labels]
    if style == "paper":
        # One panel: activations in the first column, the models beside them; several: one row.
        acts = sum(1 for k in labels if k not in MODEL_LABELS.values())
        ncol = len(handles) if panels > 1 else max(1, -(-len(handles) // max(acts, 2)))
        _fit_paper_legend(fig, handles, labels, ncol, loc="upper center", bbox_to_anchor=(0.5, 0.995), frameon=False,
                          handlelength=2.4, columnspacing=1.4, handletextpad=0.5, borderaxespad=0.2, fontsize=8,
                          labelspacing=0.3)
    else:
        from matplotlib.transforms import ScaledTranslation

        ncol = min(len(handles), 4) or 1
        offset = ScaledTranslation(0, 2 / 72, fig.dpi_scale_trans)
        ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.0),
                  bbox_transform=ax.transAxes + offset, ncol=ncol, frameon=False,
                  borderaxespad=0.0, borderpad=0.0, handlelength=2.4, columnspacing=1.6, handletextpad=0.5)


def _fit_paper_legend(fig, handles: list[Any], labels: list[str], ncol: int, **kwargs: Any) -> None:
    """The paper figure's legend above its panels, made to fit: fewer columns while it is wider
    than the figure (long labels, e.g. the runs of an overlay), then, if it would cover a panel's
    frame or its title, the figure taller at the top by that much (the panels keep their size and
    place from the bottom). A legend that fits changes nothing (the panels' own labels, however
    long, do not count: paper figures keep one size whatever the axis labels)."""
    renderer = fig.canvas.get_renderer()
    legend = fig.legend(handles, labels, ncol=ncol, **kwargs)
    while ncol > 1 and legend.get_window_extent(renderer).width > 0.98 * fig.bbox.width:
        legend.remove()
        ncol -= 1
        legend = fig.legend(handles, labels, ncol=ncol, **kwargs)
    titles = [t for ax in fig.axes for t in (ax.title, ax._left_title, ax._right_title) if t.get_text()]
    top = max([ax.bbox.y1 for ax in fig.axes] + [t.get_window_extent(renderer).y1 for t in titles])
    overlap = top + 3.0 - legend.get_window_extent(renderer).y0  # display pixels
    if overlap > 0:
        width, height = fig.get_size_inches()
        grown = height + overlap / fig.dpi
        for ax in fig.axes:
            x0, y0, w, h = ax.get_position().bounds
            ax.set_position((x0, y0 * height / grown, w, h * height / grown))
        fig.set_size_inches(width, grown)
