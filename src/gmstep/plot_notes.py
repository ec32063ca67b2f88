"""Notes on a figure: the image source of a Fashion-MNIST run, and the report style's title, line of
fixed parameters and note on what the markers, lines and bars show."""

from __future__ import annotations

import textwrap

import numpy as np

from .config import HERMITE, NN, THEORY
from .fashion import figure_source
from .plot_data import Options, heatmap_spread, line_data
from .plot_style import NOTE_COLOUR


def source_text(res) -> str | None:
    """The image source of a Fashion-MNIST run, as its meta.json names it (``source``: what the
    numbers were computed with, e.g. the generator's checkpoint), else from its parameters."""
    exp = res.experiment
    if exp.params.get("dataset") != "fashion-mnist":
        return None

    return figure_source(res)


#: Font size of the source note (points).
SOURCE_NOTE_SIZE = 6.5


def source_note(ax, res) -> None:
    """The image source in the lower right corner of ``ax``, wrapped at spaces to the axes' width
    (a generator's checkpoint path and digest make it longer than a panel is wide; a word longer
    than a line, such as a deep path, is split)."""
    text = source_text(res)
    if text:
        width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
        chars = max(24, int(width_pt / (0.6 * SOURCE_NOTE_SIZE)))  # 0.6 em: a wide character's advance
        ax.text(0.99, 0.02, "\n".join(textwrap.wrap(text, chars)), transform=ax.transAxes, ha="right",
                va="bottom", multialignment="right", fontsize=SOURCE_NOTE_SIZE, color=NOTE_COLOUR)


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
        parts.append(rf"$\lambda = {sci_text(p['lambda'])}$")
    parts.append(f"{p['trials']} trial{'s' if p['trials'] != 1 else ''}")
    return ", ".join(parts)


def sci_text(v: float) -> str:
    """``1e-4`` as ``10^{-4}``, other numbers with ``%g``."""
    exponent = np.log10(v) if v > 0 else 0.0
    if v > 0 and float(exponent).is_integer() and abs(exponent) >= 3:
        return f"10^{{{int(exponent)}}}"
    return f"{v:g}"


def degree_text(exp) -> str:
    deg = exp.params.get("degree")
    if "degree" in exp.sweep_columns:
        return "Hermite model of the swept degree"
    if deg == "auto":
        return r"Hermite model, degree $l = \lceil\beta/(1-\beta)\rceil \in [1, 4]$"
    return f"Hermite model of degree $l = {deg}$"


def report_notes(fig, ax, res, o: Options, heat: bool, has_legend: bool) -> None:
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
        parts.append("relative gap of the mean test errors of the network and its " + degree_text(exp))
    else:
        if NN in o.models:
            parts.append("markers: network")
        if HERMITE in o.models:
            parts.append("lines: " + degree_text(exp))
        if THEORY in o.models:
            parts.append("thin lines: theory")
    trials = exp.params["trials"]
    what = {"sd": "$\\pm 1$ sd", "sem": "$\\pm 1$ standard error", "ci95": "95 % confidence intervals"}
    spread = (f"; bars and bands: {what[o.errorbars]} over {trials} trials"
              if o.errorbars != "none" and trials > 1 and o.metric != "gap" else "")
    fig.text(0.01, -0.01, "; ".join(parts) + spread, fontsize=7, color=NOTE_COLOUR, ha="left", va="top")
