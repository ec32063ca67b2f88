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

from gmstep import plotting, presets  # noqa: E402
from gmstep.experiments import Experiment  # noqa: E402


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


def test_stats_are_mean_sd_and_count_of_ok_rows():
    rows = _line_rows({(1.0, "relu", "nn"): [1.0, 2.0, 4.0]})
    rows.append({**rows[0], "trial": 3, "test_error": float("nan"), "status": "nonfinite"})
    rows.append({**rows[0], "trial": 4, "test_error": 1e9, "status": "ill-conditioned"})
    stats = plotting._stats(rows, ["k_over_m", "activation", "model"], "test_error")
    mean, sd, count = stats[(1.0, "relu", "nn")]
    assert mean == pytest.approx(7 / 3)
    assert sd == pytest.approx(np.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert count == 3
    assert plotting.excluded_rows(rows) == 2


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


def test_heatmap_grid_is_the_relative_gap_of_the_means():
    exp = Experiment.create("grid", {"n": 10, "m": 10, "activations": ["relu"], "degree": 1},
                            {"alpha": [0.0, 0.5, 1.0], "beta": [0.0, 1.0]}, {"kind": "heatmap", "metric": "gap"})
    rows = _grid_rows(lambda a, b: 0.1 * a - 0.2 * b)
    xs, ys, z = plotting.heatmap_grid(rows, exp, "gap")
    assert list(xs) == [0.0, 0.5, 1.0] and list(ys) == [0.0, 1.0]
    for i, a in enumerate(xs):
        for j, b in enumerate(ys):
            assert z[j, i] == pytest.approx(abs(0.1 * a - 0.2 * b))
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
    np.testing.assert_allclose(plotting._edges(np.array([0.0, 1.0, 3.0])), [-0.5, 0.5, 2.0, 4.0])
    np.testing.assert_allclose(plotting._edges(np.array([2.0])), [1.5, 2.5])


def test_an_experiment_without_sweep_can_be_drawn():
    exp = Experiment.create("single", {"n": 10, "m": 10, "trials": 2, "activations": ["relu"]})
    rows = [{"activation": "relu", "model": m, "trial": t, "train_error": 0.1, "test_error": 0.2 + t,
             "status": "ok"} for m in ("nn", "hermite") for t in range(2)]
    fig = plotting.make_figure(Fake(exp, rows))
    plt.close(fig)


def test_theory_is_a_thin_line_in_the_activation_colour_with_its_own_legend_entry():
    values = {**VALUES, **{(x, act, "theory"): [v + 0.01 for v in VALUES[(x, act, "nn")]]
                           for x in (0.5, 1.0, 2.0) for act in ("relu", "tanh")}}
    exp = Experiment.create("lines", {"n": 10, "m": 10, "trials": 3, "activations": ["relu", "tanh"],
                                      "models": ["nn", "hermite", "theory"]}, {"k_over_m": [0.5, 1.0, 2.0]})
    fig = plotting.make_figure(Fake(exp, _line_rows(values)))
    try:
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ReLU", "tanh", "theory"]
        theory = [ln for ln in ax.get_lines()
                  if ln.get_linestyle() not in ("-", "None", "") and len(ln.get_xdata()) == 3]
        assert len(theory) == 2
        hermite = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) == 3]
        assert sorted(ln.get_color() for ln in theory) == sorted(ln.get_color() for ln in hermite)
        drawn = sorted(tuple(np.round(ln.get_ydata(), 12)) for ln in theory)
        expected = sorted(tuple(round(float(np.mean(values[(x, act, "theory")])), 12) for x in (0.5, 1.0, 2.0))
                          for act in ("relu", "tanh"))
        assert drawn == expected
        assert "theory" in " ".join(t.get_text() for t in fig.texts)
    finally:
        plt.close(fig)
