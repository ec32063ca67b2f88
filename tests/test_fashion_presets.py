"""The Fashion-MNIST presets (docs/MATH.md §4, issue 4): parameters, end-to-end runs, agreement."""

from __future__ import annotations

import numpy as np
import pytest

from gmstep import presets, runner
from gmstep.errors import DataError


def _data_present() -> bool:
    from gmstep import fashion

    try:
        fashion.find_data_dir(None)
    except DataError:
        return False
    return True


needs_data = pytest.mark.skipif(not _data_present(), reason="Fashion-MNIST not installed (make install)")

WIDTHS = [0.01, 0.1, 0.3, 0.4, 0.5, 0.7, 0.9, 1.0, 1.1, 1.5, 2.0, 3.0, 4.0, 5.0]

# preset: (classes, centering, lambda, trials, sweep column, degree)
MATH4 = {
    "fig3a": ([0, 1], "class", 1e-4, 20, "k_over_m", 4),
    "fig7a": ([0, 1], "class", 1e-4, 20, "k_over_m", 4),
    "fig3b": ([5, 9], "class", 1e-4, 20, "k_over_m", 4),
    "fig7b": ([0, 1], "class", 1e-4, 20, "eta_exponent", 6),
    "fig8a": ([0, 1], "common", 1e-5, 50, "k_over_m", 4),
    "fig8b": ([5, 9], "common", 1e-5, 20, "k_over_m", 4),
}


@pytest.mark.parametrize("name", sorted(MATH4))
def test_parameters_match_spec(name):
    classes, centering, lam, trials, column, degree = MATH4[name]
    exp = presets.get(name)
    p = exp.params
    assert p["dataset"] == "fashion-mnist" and p["task"] == "classification"
    assert (p["n"], p["m"], p["trials"]) == (784, 500, trials)
    assert (p["alpha"], p["beta"], p["degree"], p["lambda"]) == (0.0, 1.0, degree, lam)
    assert p["classes"] == classes and p["centering"] == centering and p["source"] == "real"
    assert p["activations"] == ["relu", "tanh", "sigmoid"] and p["models"] == ["nn", "hermite"]
    assert p["redraw"] == "once"
    assert exp.sweep_columns == [column]
    if column == "k_over_m":
        assert exp.sweep[column] == WIDTHS
    else:
        assert np.allclose(exp.sweep[column], np.linspace(0, 1, 10))
        assert p["k_over_m"] == 1.0 and p["share_init"] is True
    # theta = n^(beta (1 - alpha)) = 784, eta = n^(alpha beta) = 1 (fig7b: n^e), tr = n + theta.
    from gmstep import config

    r = config.resolved(exp.point_params(exp.points()[0]))
    assert r["theta"] == 784.0
    if column == "k_over_m":
        assert r["eta"] == 1.0


@pytest.mark.slow
@needs_data
@pytest.mark.parametrize("name", sorted(MATH4))
def test_preset_runs_end_to_end(name, tmp_path):
    exp = presets.get(name)
    column = exp.sweep_columns[0]
    values = [0.5, 2.0] if column == "k_over_m" else [0.0, 0.5]
    small = exp.with_changes(params={"m": 40, "trials": 1}, sweep={column: values})
    res = runner.run(small, tmp_path, progress=False)
    d = tmp_path / name
    for f in ("results.csv", "meta.json", f"{name}.png", f"{name}.pdf", "inputs.png"):
        assert (d / f).stat().st_size > 0, f
    header = (d / "results.csv").read_text().splitlines()[0].split(",")
    assert header == [column, "activation", "model", "trial", "k", "train_error", "test_error",
                      "train_misclassification", "test_misclassification", "status"]
    assert len(res.rows) == len(values) * 3 * 2
    assert all(0 <= r["test_misclassification"] <= 1 for r in res.rows)  # classification: 0-1 errors filled
    assert (d / "inputs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the figure and meta.json name the image source the numbers come from
    import json

    from gmstep import plotting

    meta = json.loads((d / "meta.json").read_text())
    assert meta["source"].startswith("source: real (real images, ")
    fig = plotting.make_figure(runner.load(d))
    texts = [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]
    assert meta["source"] in [" ".join(t.split()) for t in texts]  # the note wraps at spaces
    import matplotlib.pyplot as plt

    plt.close(fig)


@needs_data
@pytest.mark.parametrize(
    ("name", "sweep", "tolerance"),
    [
        ("fig3a", {"k_over_m": [2.0, 4.0]}, 0.08),
        ("fig3b", {"k_over_m": [2.0, 4.0]}, 0.08),
        # Common centring (non-zero class means) with lambda = 1e-5: the gap is larger at this
        # reduced size (measured 6-8 % over seeds 0-2), so the bound is looser.
        ("fig8a", {"k_over_m": [2.0, 4.0]}, 0.12),
        ("fig8b", {"k_over_m": [2.0, 4.0]}, 0.12),
    ],
)
@pytest.mark.slow
def test_network_and_hermite_agree(name, sweep, tolerance):
    exp = presets.get(name).with_changes(params={"m": 400, "trials": 4}, sweep=sweep)
    res = runner.run(exp, None, progress=False, plot=False)
    assert not res.problems()
    gap = res.max_gap()
    assert 0 <= gap < tolerance, f"{name}: largest relative gap of mean test errors {gap:.3f}"


@needs_data
def test_fig7b_degree6_agrees_for_sigmoid_at_unit_learning_rate():
    """fig7b's degree-6 model at eta = n^0 = 1. Real images make the pre-activation variance a
    scale mixture (||x||^2 / (n + theta) spans 0.63-2.3 between the 1st and 99th percentile), and
    a degree-6 polynomial amplifies those tails: for ReLU and tanh the gap is 10-30 % at this
    size (measured), for the sigmoid it stays small. Larger learning rates widen it for all
    three (docs/REPRODUCING.md)."""
    exp = presets.get("fig7b").with_changes(
        params={"m": 400, "trials": 4, "activations": ["sigmoid"]}, sweep={"eta_exponent": [0.0]}
    )
    res = runner.run(exp, None, progress=False, plot=False)
    assert not res.problems()
    assert 0 <= res.max_gap() < 0.03


@needs_data
def test_relu_error_falls_beyond_interpolation():
    """docs/MATH.md §4: for Fashion-MNIST the ReLU network's error falls once k/m > 1."""
    exp = presets.get("fig3a").with_changes(
        params={"m": 300, "trials": 3, "activations": ["relu"], "models": ["nn"]},
        sweep={"k_over_m": [1.0, 2.0, 5.0]},
    )
    res = runner.run(exp, None, progress=False, plot=False)
    means = {s["k_over_m"]: s["mean"] for s in res.summary().to_dict("records")}
    assert means[1.0] > means[2.0] > means[5.0]
