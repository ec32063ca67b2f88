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

This module is the public entry (``make_figure``, ``compose``, ``overlay``, ``plot_results``,
``save_figure``, and the names below re-exported); the parts are :mod:`gmstep.plot_style` (the
look), :mod:`gmstep.plot_data` (options and the numbers drawn), :mod:`gmstep.plot_lines`,
:mod:`gmstep.plot_heatmap` and :mod:`gmstep.plot_notes` (source and report notes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import HERMITE, NN, THEORY
from .errors import (
    ConfigError,  # noqa: F401 (public name)
    ResultsError,
)
from .plot_data import (  # noqa: F401 (public names)
    Options,
    _Rows,
    excluded_rows,
    gap_label,
    heatmap_grid,
    heatmap_spread,
    line_data,
    resolve_options,
    shown_degree,
    summary,
)
from .plot_heatmap import cell_edges, draw_heatmap  # noqa: F401 (public names)
from .plot_lines import decorate_axes, draw_lines, plain_log_ticks  # noqa: F401 (public names)
from .plot_notes import degree_text, describe_setting, report_notes, sci_text, source_note, source_text  # noqa: F401
from .plot_options import ERRORBARS, METRICS, SETTINGS, STYLES, validate_settings  # noqa: F401 (public names)
from .plot_style import (  # noqa: F401 (public names)
    ACTIVATION_COLOURS,
    ACTIVATION_LABELS,
    ACTIVATION_LINESTYLES,
    AX_BOTTOM,
    AX_H,
    AX_LEFT,
    AX_W,
    BAR_GAP,
    BAR_W,
    BASE,
    COLOURS,
    HEAT_W,
    LABELS,
    MARKERS,
    MODEL_LABELS,
    NOTE_COLOUR,
    PANEL_H,
    PANEL_W,
    PAPER,
    PNG_DPI,
    REPORT,
    STYLE,
    activation_colour,
    activation_label,
    draw_legend,
    paper_axes,
    pyplot,
)

# ----------------------------------------------------------------------------- figures


def make_figure(res, **options: Any):
    """The figure of ``res`` (anything with ``experiment`` and ``rows``) as a matplotlib Figure,
    with the options of :func:`resolve_options`. The caller owns the figure (close it with
    ``matplotlib.pyplot.close``)."""
    return compose([res], **options)


def compose(runs: Sequence[Any], letters: bool | None = None, **options: Any):
    """Panels of several runs side by side (heat maps: one panel per activation), one shared
    legend; ``letters`` labels the panels (a), (b), ... (default: with more than one run)."""
    plt = pyplot()
    opts = [resolve_options(r, **options) for r in runs]
    style = opts[0].style
    heat = [r.experiment.plot.get("kind") == "heatmap" for r in runs]
    counts = [len(o.activations) if h else 1 for o, h in zip(opts, heat, strict=True)]
    letters = len(runs) > 1 if letters is None else letters
    with plt.rc_context(PAPER if style == "paper" else REPORT):
        if style == "paper":
            fig = plt.figure(figsize=(PANEL_W * sum(counts), PANEL_H))
            axes = [paper_axes(fig, i, sum(counts), h) for i, h in
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
                    draw_heatmap(fig, ax, cax, res, o, act)
            else:
                ax = panel_axes[0][0]
                for label, handle in draw_lines(ax, res, o).items():
                    entries.setdefault(label, handle)
            first_ax = panel_axes[0][0]
            if letters:
                first_ax.text(-0.02, 1.02, f"({chr(ord('a') + n)})", transform=first_ax.transAxes,
                              ha="right", va="bottom", fontsize=10, fontweight="bold")
            source_note(first_ax, res)
            if style == "report":
                report_notes(fig, first_ax, res, o, h, bool(entries))
        if entries:
            draw_legend(fig, axes[0][0], entries, style, sum(counts))
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


def overlay(runs: Sequence[Any], labels: Sequence[str], **options: Any):
    """Line plots of several runs of one sweep on one axes: one colour per run, one marker (network)
    and line style (Hermite model) per activation, theory as thin lines; a legend of the runs,
    the activations and the models. No title unless ``title`` is a string (the runs' own titles
    describe one run each)."""
    from matplotlib.lines import Line2D

    plt = pyplot()
    opts = [resolve_options(r, **options) for r in runs]
    style = opts[0].style
    paper = style == "paper"
    with plt.rc_context(PAPER if paper else REPORT):
        fig = plt.figure(figsize=(PANEL_W, PANEL_H) if paper else (4.8, 3.5))
        ax = paper_axes(fig, 0, 1, False)[0] if paper else fig.add_subplot(1, 1, 1)
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
                    if model in (NN, "gap"):
                        if bars is not None:
                            ax.errorbar(x, mean, yerr=bars, fmt="none", ecolor=colour, elinewidth=0.8, capsize=2)
                        ax.plot(x, mean, marker, ls="-" if model == "gap" else "none", color=colour, ms=4.5,
                                mfc=colour, mec=colour, zorder=3)
                    elif model == HERMITE:
                        ax.plot(x, mean, ls=ls, color=colour, lw=1.4, zorder=2)
                    else:
                        ax.plot(x, mean, "-", color=colour, lw=0.8, zorder=4)
        grey = "#333333"
        if len({source_text(r) for r in runs}) == 1:  # one source for all: say which
            source_note(ax, runs[0])
        for act, marker in acts.items():
            entries[activation_label(act)] = Line2D([], [], color=grey, marker=marker,
                                                    ls=ACTIVATION_LINESTYLES.get(act, "-"), lw=1.2, ms=4)
        for model in (NN, HERMITE, THEORY):
            if model in drawn:
                entries[MODEL_LABELS[model]] = Line2D([], [], color=grey, marker="o" if model == NN else None,
                                                      ls="none" if model == NN else "-",
                                                      lw=1.4 if model == HERMITE else 0.8)
        exp = runs[0].experiment
        decorate_axes(ax, exp, opts[0], exp.sweep_columns[0])
        title = options.get("title")
        if isinstance(title, str):  # only a title given for the overlay: a run's own would mislabel the others
            ax.set_title(title, loc="left", fontsize=10, pad=4 + 15 * 2)
        draw_legend(fig, ax, entries, style, 1)
        fig._gmstep_paper = paper
    return fig
# ----------------------------------------------------------------------------- saving


def save_figure(fig, path: Path, style: str | None = None) -> Path:
    """Save ``fig`` to ``path`` (format from the suffix); paper figures keep their fixed size."""
    path = Path(path)
    tight = style != "paper" and not getattr(fig, "_gmstep_paper", False)
    try:
        fig.savefig(path, dpi=PNG_DPI if path.suffix.lower() == ".png" else None,
                    bbox_inches="tight" if tight else None, pad_inches=0.04)
    except OSError as exc:
        raise ResultsError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def save(fig, stem: Path, style: str, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """``stem.png`` and ``stem.pdf`` (or ``formats``); returns the paths."""
    return [save_figure(fig, stem.with_name(f"{stem.name}.{fmt}"), style) for fmt in formats]


def plot_results(res, directory: str | Path | None = None, formats: Sequence[str] = ("png", "pdf"),
                 **options: Any) -> list[Path]:
    """Draw ``res`` (a :class:`gmstep.runner.Results`) and save ``<name>.png`` and ``.pdf`` in
    ``directory``; returns the paths written (none without a directory)."""
    plt = pyplot()
    opts = resolve_options(res, **options)
    fig = make_figure(res, **options)
    try:
        if directory is None:
            return []
        return save(fig, Path(directory) / res.experiment.name, opts.style, formats)
    finally:
        plt.close(fig)
