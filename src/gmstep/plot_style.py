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
