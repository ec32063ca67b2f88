"""Composite figures of the paper and overlays of runs (``gmstep figure``, ``gmstep compare``).

``figure(N, DIR)`` puts the panels of Figure N side by side, each drawn from the results of its
preset in ``DIR/<preset>``, with one shared legend and panel letters, and saves
``DIR/figureN.png`` and ``DIR/figureN.pdf``. ``compare(DIRS)`` draws runs of the same sweep (the
same sweep columns) on one axes: one colour per run, one marker and Hermite line style per
activation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import plotting, results, runner
from .errors import ConfigError, ResultsError

#: Which presets make which figure of the paper (panels in order).
FIGURES: dict[int, tuple[str, ...]] = {
    1: ("fig1a", "fig1b", "fig1c"),
    2: ("fig2a", "fig2b", "fig2c"),
    3: ("fig3a", "fig3b"),
    4: ("fig4a", "fig4b"),
    5: ("fig5a", "fig5b", "fig5c"),
    6: ("fig6",),
    7: ("fig7a", "fig7b"),
    8: ("fig8a", "fig8b"),
}


def panels(number: int) -> tuple[str, ...]:
    """The presets whose results make Figure ``number``."""
    if number not in FIGURES:
        raise ConfigError("N", f"must be a figure of the paper: {', '.join(map(str, FIGURES))}; got {number}")
    return FIGURES[number]


def figure(number: int, out: str | Path, formats: Sequence[str] = ("png", "pdf"), **options: Any) -> list[Path]:
    """Compose Figure ``number`` from ``out/<preset>`` for each of its panels; returns the files.

    A missing panel raises one line naming the command that makes it; :func:`unfinished` names the
    panels drawn from an interrupted run."""
    out = Path(out)
    names = panels(number)
    missing = [n for n in names if not (out / n / "meta.json").is_file()]
    if missing:
        how = "; ".join(f"gmstep reproduce {n} --out {out}" for n in missing)
        raise ResultsError(f"figure {number} needs {', '.join(names)} in {out}; missing {', '.join(missing)}: "
                           f"make {'it' if len(missing) == 1 else 'them'} with: {how}")
    runs = [runner.load(out / n) for n in names]
    for name, res in zip(names, runs, strict=True):
        if not len(res.rows):
            raise ResultsError(f"{out / name} holds no complete task: finish it with: "
                               f"gmstep reproduce {name} --out {out} --resume")
    options.setdefault("style", "paper")
    plt = plotting.pyplot()
    fig = plotting.compose(runs, letters=len(runs) > 1, **options)
    try:
        return plotting.save(fig, out / f"figure{number}", options["style"], formats)
    finally:
        plt.close(fig)


def compare(directories: Sequence[str | Path], out: str | Path, labels: Sequence[str] | None = None,
            **options: Any) -> Path:
    """Draw the runs in ``directories`` on one axes and save the figure to ``out`` (format from the
    suffix; a PDF beside a PNG too). Runs of different sweeps are refused in one line."""
    if len(directories) < 2:
        raise ConfigError("DIR", "compare needs at least two result directories")
    runs = [runner.load(d) for d in directories]
    if labels is None or not labels:
        labels = default_labels([Path(d) for d in directories])
    elif len(labels) != len(runs):
        raise ConfigError("--label", f"give one label per directory ({len(runs)}), got {len(labels)}")
    first = runs[0].experiment
    for d, res in zip(directories, runs, strict=True):
        exp = res.experiment
        if exp.plot.get("kind") == "heatmap" or len(exp.sweep_columns) != 1:
            raise ConfigError("compare", f"{d} is not a line plot over one swept column; compare overlays line plots")
        if exp.sweep_columns != first.sweep_columns:
            raise ConfigError("compare", f"{d} sweeps {', '.join(exp.sweep_columns)} but {directories[0]} sweeps "
                              f"{', '.join(first.sweep_columns)}: only runs of the same sweep can be overlaid")
        if not len(res.rows):
            raise ResultsError(f"{d} holds no complete task: nothing to compare")
    out = Path(out)
    if not out.suffix:
        raise ConfigError("--out", f"must be a file name with a suffix such as .png or .pdf, got {out}")
    plt = plotting.pyplot()
    fig = plotting.overlay(runs, list(labels), **options)
    try:
        if not out.parent.exists():
            raise ResultsError(f"cannot write {out}: no directory {out.parent}")
        style = plotting.resolve_options(runs[0], **options).style
        plotting.save_figure(fig, out, style)
        if out.suffix.lower() == ".png":
            plotting.save_figure(fig, out.with_suffix(".pdf"), style)
    finally:
        plt.close(fig)
    return out


def default_labels(directories: Sequence[Path]) -> list[str]:
    """The directories' names, or ``parent/name`` where names repeat."""
    names = [d.resolve().name for d in directories]
    if len(set(names)) == len(names):
        return names
    return [f"{d.resolve().parent.name}/{d.resolve().name}" for d in directories]


def unfinished(number: int, out: str | Path) -> list[str]:
    """The panels of Figure ``number`` in ``out`` whose runs are not complete."""
    names = []
    for name in panels(number):
        try:
            if results.read_meta(Path(out) / name).get("status") != "complete":
                names.append(name)
        except ResultsError:
            names.append(name)
    return names
