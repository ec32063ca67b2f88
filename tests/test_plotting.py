"""Figures: what is drawn is the mean and spread over the trials whose status is ok.

The rows here are made up (no computation), so every drawn number has a closed form: means and
sample standard deviations of a few hand-written errors, the relative gap
``|E_nn - E_hermite| / E_nn`` of a heat-map cell, and the count of excluded rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from gmstep import plot_notes, plot_style, plotting, presets  # noqa: E402
from gmstep.experiment import Experiment  # noqa: E402


@dataclass
class Fake:
    """The two attributes the plotting module reads from a run's results."""

    experiment: Experiment
    rows: list[dict[str, Any]]


def _line_rows(values: dict[tuple[float, str, str], list[float]], col: str = "k_over_m"):
    rows = []
    for (x, act, model), errs in values.items():
        for t, e in enumerate(errs):
            rows.append({col: x, "activation": act, "model": model, "trial": t,
                         "train_error": e / 2, "test_error": e, "status": "ok"})
    return rows


def _line_experiment(**plot):
    return Experiment.create("lines", {"n": 10, "m": 10, "trials": 3, "activations": ["relu", "tanh"]},
                             {"k_over_m": [0.5, 1.0, 2.0]}, {"logx": True, **plot})


#: Three trials per (width, activation, model): ``scale * x + offset + (0, 0.1, 0.2)``.
VALUES = {
    (x, act, model): [scale * x + offset + d for d in (0.0, 0.1, 0.2)]
    for x in (0.5, 1.0, 2.0)
    for act, scale in (("relu", 1.0), ("tanh", 2.0))
    for model, offset in (("nn", 0.0), ("hermite", 0.05))
}


def test_line_plot_draws_the_means_with_one_legend_entry_per_activation():
    exp = _line_experiment()
    fig = plotting.make_figure(Fake(exp, _line_rows(VALUES)))
    try:
        ax = fig.axes[0]
        assert ax.get_xscale() == "log"
        legend = ax.get_legend()
        assert [t.get_text() for t in legend.get_texts()] == ["ReLU", "tanh"]
        for handle in legend.legend_handles:  # marker (network) on a line (Hermite model)
            assert handle.get_marker() not in (None, "None", "") and handle.get_linestyle() == "-"
        # The Hermite lines are the plain lines (markers of the network come from errorbar).
        hermite_lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) == 3]
        drawn = sorted(tuple(np.round(ln.get_ydata(), 12)) for ln in hermite_lines)
        expected = sorted(
            tuple(round(float(np.mean(VALUES[(x, act, "hermite")])), 12) for x in (0.5, 1.0, 2.0))
            for act in ("relu", "tanh")
        )
        assert drawn == expected
        notes = " ".join(t.get_text() for t in fig.texts)
        assert "markers: network" in notes and "lines: Hermite model" in notes and "3 trials" in notes
        assert "left out" not in notes
        assert ax.get_title(loc="left") == "lines"
    finally:
        plt.close(fig)


def test_error_bars_are_one_standard_deviation():
    exp = _line_experiment()
    fig = plotting.make_figure(Fake(exp, _line_rows(VALUES)))
    try:
        ax = fig.axes[0]
        sd = np.std([0.0, 0.1, 0.2], ddof=1)
        bars = [c for c in ax.collections if c.__class__.__name__ == "LineCollection"]
        assert bars
        for coll in bars:
            for seg in coll.get_segments():
                assert abs(seg[1, 1] - seg[0, 1]) == pytest.approx(2 * sd)
    finally:
        plt.close(fig)


def test_excluded_rows_are_left_out_and_counted(tmp_path):
    exp = _line_experiment(metric="train_error")
    rows = _line_rows(VALUES)
    rows.append({**rows[0], "trial": 3, "train_error": 1e6, "test_error": 1e6, "status": "ill-conditioned"})
    fig = plotting.make_figure(Fake(exp, rows))
    try:
        notes = " ".join(t.get_text() for t in fig.texts)
        assert f"1 of {len(rows)} rows" in notes
        ys = np.concatenate([ln.get_ydata() for ln in fig.axes[0].get_lines()])
        assert ys.max() < 10  # the 1e6 row is not in any mean
        assert fig.axes[0].get_ylabel() == "training error"
    finally:
        plt.close(fig)
    paths = plotting.plot_results(Fake(exp, rows), tmp_path)
    assert [p.name for p in paths] == ["lines.png", "lines.pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert plotting.plot_results(Fake(exp, rows), None) == []


def _grid_rows(gap_of):
    rows = []
    for a in (0.0, 0.5, 1.0):
        for b in (0.0, 1.0):
            for t, noise in enumerate((-0.01, 0.01)):
                nn = 0.1 + a + b
                rows.append({"alpha": a, "beta": b, "activation": "relu", "model": "nn", "trial": t,
                             "train_error": 0.0, "test_error": nn + noise, "status": "ok"})
                rows.append({"alpha": a, "beta": b, "activation": "relu", "model": "hermite", "trial": t,
                             "train_error": 0.0, "test_error": nn * (1 + gap_of(a, b)), "status": "ok"})
    return rows


def _check_gap_grid(rows, exp):
    """The gap grid of ``rows`` (``_grid_rows`` of ``0.1 a - 0.2 b``) is ``|0.1 a - 0.2 b|``, cells by value."""
    xs, ys, z = plotting.heatmap_grid(rows, exp, "gap")
    assert list(xs) == [0.0, 0.5, 1.0] and list(ys) == [0.0, 1.0]
    for i, a in enumerate(xs):
        for j, b in enumerate(ys):
            assert z[j, i] == pytest.approx(abs(0.1 * a - 0.2 * b))
    return z


def test_heatmap_grid_is_the_relative_gap_of_the_means():
    exp = Experiment.create("grid", {"n": 10, "m": 10, "activations": ["relu"], "degree": 1},
                            {"alpha": [0.0, 0.5, 1.0], "beta": [0.0, 1.0]}, {"kind": "heatmap", "metric": "gap"})
    rows = _grid_rows(lambda a, b: 0.1 * a - 0.2 * b)
    _check_gap_grid(rows, exp)
    _, _, err = plotting.heatmap_grid(rows, exp, "test_error")
    assert err[1, 2] == pytest.approx(0.1 + 1.0 + 1.0)
    fig = plotting.make_figure(Fake(exp, rows))
    try:
        label = fig.axes[1].get_ylabel()
        assert "relative gap" in label and "degree-1 Hermite model" in label
        assert fig.axes[0].get_xlabel() == r"$\alpha$" and fig.axes[0].get_ylabel() == r"$\beta$"
    finally:
        plt.close(fig)


def test_heatmap_of_errors_has_a_labelled_colour_bar():
    exp = Experiment.create("grid", {"n": 10, "m": 10, "activations": ["relu"], "models": ["nn"]},
                            {"alpha": [0.0, 0.5, 1.0], "beta": [0.0, 1.0]}, {"kind": "heatmap"})
    rows = [r for r in _grid_rows(lambda a, b: 0.0) if r["model"] == "nn"]
    fig = plotting.make_figure(Fake(exp, rows))
    try:
        assert fig.axes[1].get_ylabel() == "ReLU network generalization error"
        notes = " ".join(t.get_text() for t in fig.texts)
        assert "mean over trials" in notes
    finally:
        plt.close(fig)


def test_settings_line_names_the_fixed_parameters():
    text = plotting.describe_setting(presets.get("fig1b"))
    assert "$n = 1000$" in text and "$k = m$" in text and r"$\beta = 0.74$" in text
    assert r"\alpha" not in text  # alpha is swept
    assert "20 trials" in text and "10^{-4}" in text


def test_edges_surround_the_centres():
    np.testing.assert_allclose(plotting.cell_edges(np.array([0.0, 1.0, 3.0])), [-0.5, 0.5, 2.0, 4.0])
    np.testing.assert_allclose(plotting.cell_edges(np.array([2.0])), [1.5, 2.5])


def test_an_experiment_without_sweep_can_be_drawn():
    exp = Experiment.create("single", {"n": 10, "m": 10, "trials": 2, "activations": ["relu"]})
    rows = [{"activation": "relu", "model": m, "trial": t, "train_error": 0.1, "test_error": 0.2 + t,
             "status": "ok"} for m in ("nn", "hermite") for t in range(2)]
    fig = plotting.make_figure(Fake(exp, rows))
    plt.close(fig)


# ----------------------------------------------------------------------------- paper style, options, bugs


def _theory_rows():
    rows = _line_rows(VALUES)
    for (x, act, model), errs in VALUES.items():
        if model == "nn":
            rows.append({"k_over_m": x, "activation": act, "model": "theory", "trial": 0,
                         "train_error": 0.0, "test_error": float(np.mean(errs)) + 0.01, "status": "ok"})
    return rows


@pytest.mark.parametrize("style", ["paper", "report"])
def test_theory_rows_are_a_thin_line_over_the_markers_with_their_own_entry(style):
    exp = _line_experiment()
    fig = plotting.make_figure(Fake(exp, _theory_rows()), style=style)
    try:
        ax = fig.axes[0]
        thin = [ln for ln in ax.get_lines() if ln.get_linewidth() < 1.0 and len(ln.get_xdata()) == 3]
        assert len(thin) == 2  # one per activation
        markers = [ln for ln in ax.get_lines() if ln.get_linestyle() == "None" and len(ln.get_xdata()) == 3
                   and ln.get_marker() in plotting.MARKERS]
        assert len(markers) == 2
        for ln in thin:  # the network's means (same colour) plus 0.01, drawn above them
            (same,) = [m for m in markers if m.get_color() == ln.get_color()]
            np.testing.assert_allclose(ln.get_ydata(), np.asarray(same.get_ydata()) + 0.01)
            assert ln.get_zorder() > same.get_zorder()
        nn_means = sorted(round(float(np.mean(VALUES[(2.0, a, "nn")])), 9) for a in ("relu", "tanh"))
        assert sorted(round(float(m.get_ydata()[-1]), 9) for m in markers) == nn_means
        legends = fig.legends or [ax.get_legend()]
        labels = [t.get_text() for lg in legends for t in lg.get_texts()]
        assert "Theory" in labels
    finally:
        plt.close(fig)


def test_paper_style_is_the_published_look():
    exp = Experiment.create("p", {"n": 10, "m": 10, "trials": 3, "activations": ["relu", "tanh", "sigmoid"]},
                            {"k_over_m": [0.5, 1.0, 2.0]}, {"style": "paper", "logx": False})
    rows = _line_rows({(x, a, m): [x + i for i in range(3)] for x in (0.5, 1.0, 2.0)
                       for a in ("relu", "tanh", "sigmoid") for m in ("nn", "hermite")})
    fig = plotting.make_figure(Fake(exp, rows))
    try:
        ax = fig.axes[0]
        assert ax.get_title(loc="left") == "" and not fig.texts  # no title, no notes
        assert not [c for c in ax.collections if c.__class__.__name__ == "LineCollection"]  # no error bars
        assert ax.get_xscale() == "linear" and ax.get_xlim() == (0.0, 5.0) and ax.get_ylim()[0] == 0.0
        styles = {ln.get_color(): ln.get_linestyle() for ln in ax.get_lines() if ln.get_linestyle() != "None"}
        assert sorted(styles.values()) == sorted(["-", "--", ":"])
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert labels == ["ReLU", "tanh", "sigmoid", "Neural Network", "Hermite Model"]
    finally:
        plt.close(fig)


def test_paper_figures_have_one_size_whatever_the_labels(tmp_path):
    from matplotlib.image import imread

    sizes = set()
    for i, (lo, hi) in enumerate(((0.5, 2.0), (0.1, 1e4))):
        exp = Experiment.create(f"s{i}", {"n": 10, "m": 20, "trials": 3, "activations": ["relu", "tanh"]},
                                {"k_over_m": [lo, 1.0, hi]}, {"style": "paper", "ylabel": "x" * (10 + 40 * i)})
        rows = _line_rows({(x, a, m): [x * 1e4, x, x] for x in (lo, 1.0, hi) for a in ("relu", "tanh")
                           for m in ("nn", "hermite")})
        png, pdf = plotting.plot_results(Fake(exp, rows), tmp_path)
        assert pdf.read_bytes().startswith(b"%PDF")
        sizes.add(imread(png).shape[:2])
    assert sizes == {(round(plotting.PANEL_H * plotting.PNG_DPI), round(plotting.PANEL_W * plotting.PNG_DPI))}


@pytest.mark.parametrize(("bars", "width"), [("sd", 1.0), ("sem", 1 / np.sqrt(3)), ("ci95", None), ("none", 0)])
def test_error_bar_options(bars, width):
    from scipy import stats

    sd = np.std([0.0, 0.1, 0.2], ddof=1)
    expected = {"sd": sd, "sem": sd / np.sqrt(3), "ci95": stats.t.ppf(0.975, 2) * sd / np.sqrt(3), "none": 0}[bars]
    fig = plotting.make_figure(Fake(_line_experiment(), _line_rows(VALUES)), errorbars=bars, models=["nn"])
    try:
        segs = [s for c in fig.axes[0].collections if c.__class__.__name__ == "LineCollection"
                for s in c.get_segments()]
        if bars == "none":
            assert not segs
        else:
            assert segs and all(abs(s[1, 1] - s[0, 1]) == pytest.approx(2 * expected) for s in segs)
    finally:
        plt.close(fig)


def test_options_activations_logy_title_and_bad_values():
    res = Fake(_line_experiment(), _line_rows(VALUES))
    fig = plotting.make_figure(res, activations=["tanh"], logy=True, logx=False, title="Mine")
    try:
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["tanh"]
        assert ax.get_yscale() == "log" and ax.get_xscale() == "linear" and ax.get_title(loc="left") == "Mine"
    finally:
        plt.close(fig)
    fig = plotting.make_figure(res, title=False)
    assert fig.axes[0].get_title(loc="left") == ""
    plt.close(fig)
    for kwargs, name in (({"activations": ["gelu"]}, "activations"), ({"errorbars": "2sd"}, "errorbars"),
                         ({"metric": "test_misclassification"}, "metric"), ({"style": "fancy"}, "style")):
        with pytest.raises(plotting.ConfigError, match=name):
            plotting.make_figure(res, **kwargs)


def test_gap_on_a_line_plot_draws_the_relative_gap_not_the_error():
    exp = _line_experiment(metric="gap")
    fig = plotting.make_figure(Fake(exp, _line_rows(VALUES)))
    try:
        ax = fig.axes[0]
        ys = sorted(tuple(np.round(ln.get_ydata(), 12)) for ln in ax.get_lines() if len(ln.get_xdata()) == 3)
        expected = sorted(
            tuple(round(0.05 / float(np.mean(VALUES[(x, act, "nn")])), 12) for x in (0.5, 1.0, 2.0))
            for act in ("relu", "tanh"))
        assert ys == expected
        assert "relative gap" in ax.get_ylabel() and r"E_{\mathrm{herm},3}" in ax.get_ylabel()
    finally:
        plt.close(fig)


def test_gap_label_names_the_linear_model_only_for_degree_one():
    assert r"E_{\mathrm{lin}}" in plotting.gap_label(1)
    assert r"E_{\mathrm{herm},3}" in plotting.gap_label(3) and "lin" not in plotting.gap_label(3)
    assert "lin" not in plotting.gap_label("auto")


def test_heatmap_with_unsorted_values_places_every_cell_by_value():
    exp = Experiment.create("grid", {"n": 10, "m": 10, "activations": ["relu"], "degree": 1},
                            {"alpha": [1.0, 0.0, 0.5], "beta": [1.0, 0.0]}, {"kind": "heatmap", "metric": "gap"})
    rows = _grid_rows(lambda a, b: 0.1 * a - 0.2 * b)
    z = _check_gap_grid(rows, exp)
    fig = plotting.make_figure(Fake(exp, rows))
    try:
        mesh = fig.axes[0].collections[0]
        np.testing.assert_allclose(mesh.get_coordinates()[0, :, 0], [-0.25, 0.25, 0.75, 1.25])
        np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(2, 3), z)
    finally:
        plt.close(fig)


def test_heatmap_shows_every_activation_in_its_own_panel():
    exp = Experiment.create("grid", {"n": 10, "m": 10, "activations": ["relu", "tanh"], "models": ["nn"]},
                            {"alpha": [0.0, 0.5, 1.0], "beta": [0.0, 1.0]}, {"kind": "heatmap", "style": "paper"})
    rows = [r for r in _grid_rows(lambda a, b: 0.0) if r["model"] == "nn"]
    rows += [{**r, "activation": "tanh", "test_error": 10 + r["test_error"]} for r in rows]
    fig = plotting.make_figure(Fake(exp, rows))
    try:
        meshes = [ax.collections[0] for ax in fig.axes if ax.get_xlabel() == r"$\alpha$"]
        assert len(meshes) == 2
        labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel().endswith("generalization error")]
        assert labels == ["ReLU network generalization error", "tanh network generalization error"]
        data = [np.asarray(m.get_array()) for m in meshes[:2]]
        assert np.nanmin(data[1]) > 10 > np.nanmax(data[0])
    finally:
        plt.close(fig)


def test_paper_gap_heatmap_is_clipped_on_a_log_scale_from_4_to_100_percent():
    exp = Experiment.create("grid", {"n": 10, "m": 10, "activations": ["relu"], "degree": 1},
                            {"alpha": [0.0, 0.5, 1.0], "beta": [0.0, 1.0]},
                            {"kind": "heatmap", "metric": "gap", "style": "paper"})
    fig = plotting.make_figure(Fake(exp, _grid_rows(lambda a, b: 3 * a - 0.01 * b)))
    try:
        mesh = fig.axes[0].collections[0]
        assert mesh.norm.vmin == 0.04 and mesh.norm.vmax == 1.0 and type(mesh.norm).__name__ == "LogNorm"
        assert np.nanmax(mesh.get_array()) <= 1.0
        assert r"E_{\mathrm{lin}}" in fig.axes[1].get_ylabel()
    finally:
        plt.close(fig)


def test_fashion_runs_name_their_source():
    exp = presets.get("fig3a", quick=True)
    rows = [{"k_over_m": x, "activation": a, "model": m, "trial": 0, "train_error": 0.1, "test_error": 0.2,
             "train_misclassification": 0.0, "test_misclassification": 0.1, "status": "ok"}
            for x in exp.sweep["k_over_m"] for a in exp.params["activations"] for m in exp.params["models"]]
    for style in ("paper", "report"):
        fig = plotting.make_figure(Fake(exp, rows), style=style)
        try:
            texts = [t.get_text() for ax in fig.axes for t in ax.texts]
            assert any(t.startswith("source: real (real images") for t in texts), texts
        finally:
            plt.close(fig)
    assert plotting.source_text(Fake(presets.get("fig1a"), [])) is None


def test_a_long_source_note_is_wrapped_inside_the_figure(monkeypatch):
    """A generator's checkpoint path and digest: the note wraps at spaces and stays on the page."""
    exp = presets.get("fig3a", quick=True)
    rows = [{"k_over_m": x, "activation": a, "model": m, "trial": 0, "train_error": 0.1, "test_error": 0.2,
             "train_misclassification": 0.0, "test_misclassification": 0.1, "status": "ok"}
            for x in exp.sweep["k_over_m"] for a in exp.params["activations"] for m in exp.params["models"]]
    long = ("source: cgan /home/someone/a/rather/deep/cache/directory/cgan/cgan.pt (trained 50 epochs, "
            "sha256 ff026e9975f8; class statistics from 1,000,000 samples per class)")
    monkeypatch.setattr(plot_notes, "figure_source", lambda res: long)
    for style in ("paper", "report"):
        fig = plotting.make_figure(Fake(exp, rows), style=style)
        try:
            fig.canvas.draw()
            (note,) = [t for ax in fig.axes for t in ax.texts if t.get_text().startswith("source: cgan")]
            assert "".join(note.get_text().split()) == "".join(long.split()) and "\n" in note.get_text()
            box = note.get_window_extent()
            page = fig.bbox
            assert box.x0 >= page.x0 and box.x1 <= page.x1 and box.y0 >= page.y0, (box, page)
        finally:
            plt.close(fig)


@pytest.mark.parametrize(("plot", "key"), [
    ({"style": "fancy"}, "plot.style"), ({"errorbars": "2sd"}, "plot.errorbars"), ({"xlim": [1, 0]}, "plot.xlim"),
    ({"ylim": [0, "a"]}, "plot.ylim"), ({"activations": []}, "plot.activations"), ({"models": "nn"}, "plot.models"),
    ({"metric": "accuracy"}, "plot.metric"),
])
def test_bad_plot_settings_name_the_setting(plot, key):
    with pytest.raises(plotting.ConfigError, match=key.replace(".", r"\.")):
        Experiment.create("bad", {"n": 10, "m": 10}, {"k_over_m": [1.0]}, plot)


def test_overlay_draws_each_run_in_its_colour_with_the_runs_in_the_legend():
    exp = _line_experiment()
    shifted = {k: [v + 1.0 for v in vals] for k, vals in VALUES.items()}
    runs = [Fake(exp, _line_rows(VALUES)), Fake(exp, _theory_rows()), Fake(exp, _line_rows(shifted))]
    fig = plotting.overlay(runs, ["seed 0", "with theory", "shifted"], errorbars="none")
    try:
        ax = fig.axes[0]
        labels = [t.get_text() for t in (fig.legends or [ax.get_legend()])[0].get_texts()]
        assert labels[:3] == ["seed 0", "with theory", "shifted"]
        assert {"ReLU", "tanh", "Neural Network", "Hermite Model", "Theory"} <= set(labels)
        by_colour: dict[str, list[float]] = {}
        for ln in ax.get_lines():
            if ln.get_linestyle() == "None":  # the networks' markers
                by_colour.setdefault(ln.get_color(), []).extend(np.asarray(ln.get_ydata()).tolist())
        first, _, third = (plotting.COLOURS[i] for i in range(3))
        np.testing.assert_allclose(sorted(by_colour[third]), sorted(np.array(by_colour[first]) + 1.0))
        assert ax.get_title(loc="left") == ""  # no run's own title over the overlay of several runs
    finally:
        plt.close(fig)


def test_paper_overlay_with_long_labels_keeps_its_legend_inside_and_off_the_panel():
    """Long run labels: the paper legend takes fewer columns to fit the figure's width, and the figure
    grows at the top (the panel keeps its size) rather than let the legend cover the panel or its title."""
    exp = _line_experiment()
    runs = [Fake(exp, _line_rows(VALUES)), Fake(exp, _theory_rows())]
    labels = ["the network on real images, twenty trials", "the theory on the same first layer, three trials"]
    fig = plotting.overlay(runs, labels, style="paper", errorbars="none", title="a title over the overlay")
    try:
        renderer = fig.canvas.get_renderer()
        legend = fig.legends[0].get_window_extent(renderer)
        assert legend.x0 >= 0 and legend.x1 <= fig.bbox.width and legend.y1 <= fig.bbox.height
        for ax in fig.axes:  # the panel and its title below the legend
            assert max(ax.bbox.y1, ax._left_title.get_window_extent(renderer).y1) < legend.y0
        assert fig.get_size_inches()[1] > plotting.PANEL_H  # grown at the top ...
        assert fig.axes[0].get_position().height * fig.get_size_inches()[1] == pytest.approx(
            plot_style.AX_H)  # ... the panel's size kept
    finally:
        plt.close(fig)


def test_compose_puts_heat_maps_and_line_plots_side_by_side_with_letters():
    grid = Experiment.create("grid", {"n": 10, "m": 10, "activations": ["relu"], "models": ["nn"]},
                             {"alpha": [0.0, 0.5, 1.0], "beta": [0.0, 1.0]}, {"kind": "heatmap"})
    heat = Fake(grid, [r for r in _grid_rows(lambda a, b: 0.0) if r["model"] == "nn"])
    fig = plotting.compose([heat, Fake(_line_experiment(), _line_rows(VALUES))], style="paper")
    try:
        assert tuple(fig.get_size_inches()) == (2 * plotting.PANEL_W, plotting.PANEL_H)
        letters = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_text().startswith("(")]
        assert letters == ["(a)", "(b)"]
        assert [t.get_text() for t in fig.legends[0].get_texts()][:2] == ["ReLU", "tanh"]
    finally:
        plt.close(fig)


def test_a_linear_limit_from_zero_does_not_apply_to_a_log_axis():
    import warnings

    exp = _line_experiment(ylim=[0.0, 1.0], logx=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plotting.make_figure(Fake(exp, _line_rows(VALUES)), logy=True)
    try:
        assert fig.axes[0].get_yscale() == "log" and fig.axes[0].get_ylim()[0] > 0
    finally:
        plt.close(fig)
    fig = plotting.make_figure(Fake(exp, _line_rows(VALUES)))
    try:
        assert fig.axes[0].get_ylim() == (0.0, 1.0)
    finally:
        plt.close(fig)


def test_a_theory_only_run_shows_each_activation_as_its_thin_line_in_the_legend():
    exp = Experiment.create("t", {"n": 10, "m": 10, "trials": 1, "activations": ["relu", "tanh"], "models": ["theory"]},
                            {"k_over_m": [0.5, 1.0, 2.0]}, {"style": "paper"})
    rows = [r for r in _theory_rows() if r["model"] == "theory"]
    fig = plotting.make_figure(Fake(exp, rows))
    try:
        handles = {t.get_text(): h for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles,
                                                  strict=True)}
        for act in ("ReLU", "tanh"):
            assert handles[act].get_linestyle() == "-" and handles[act].get_linewidth() < 1.0
    finally:
        plt.close(fig)
