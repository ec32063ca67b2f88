"""The synthetic presets (docs/MATH.md §4): their parameters, their quick variants, and end-to-end runs.

The parameter table below is written from docs/MATH.md §4 independently of :mod:`gmstep.presets`; every
preset must match it key by key. Each preset then runs end to end at a reduced size (n = 24,
m = 30, two values per swept column, two trials) into a temporary directory, which must hold
``results.csv`` with the docs/MATH.md §4 sweep columns, ``meta.json`` and the figure as PNG and PDF.
The Fashion-MNIST presets are tested with the Fashion-MNIST code.
"""

from __future__ import annotations

import csv
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from gmstep import config, presets, runner
from gmstep.errors import ConfigError
from gmstep.experiment import ROW_COLUMNS

SYNTHETIC = ["fig1a", "fig1b", "fig1c", "fig2a", "fig2b", "fig2c", "fig4a", "fig4b",
             "fig5a", "fig5b", "fig5c", "fig6"]
WIDTHS = [0.1, 0.3, 0.4, 0.5, 0.7, 0.9, 1, 1.1, 1.5, 2, 3, 4, 5]

#: docs/MATH.md §4, common to all unless said.
COMMON = {
    "dataset": "gmm", "lambda": 1e-4, "delta": 0.0, "m_grad": None, "m_test": None,
    "activations": ["relu", "tanh", "sigmoid"], "models": ["nn", "hermite"], "beta": 0.74,
    "alpha": 0.5, "k": None, "k_over_m": 1.0, "rho": 0.5, "ratios": None, "rank": 1,
    "alignment": 0.0, "task": "regression", "degree": 3, "target": "random", "spikes": "equal",
    "mean_norm": 0.0, "theta": None, "eta": None, "eta_exponent": None, "share_init": False,
    "hermite_nodes": 100, "n": 1000, "m": 1000, "trials": 20,
}


def _lin(a: float, b: float, num: int) -> list[float]:
    return [a + (b - a) * i / (num - 1) for i in range(num)]


#: preset -> (parameters differing from COMMON, sweep, plot kind and metric).
TABLE = {
    "fig1a": ({"redraw": "once"}, {"k_over_m": WIDTHS}, ("line", "test_error")),
    "fig6": ({"redraw": "once"}, {"k_over_m": WIDTHS}, ("line", "train_error")),
    "fig1b": ({"redraw": "point"}, {"alpha": _lin(0, 1, 20)}, ("line", "test_error")),
    "fig1c": ({"redraw": "point", "degree": "auto"}, {"beta": _lin(0, 1, 10)}, ("line", "test_error")),
    "fig5a": ({"redraw": "point", "degree": "auto", "alpha": 0.0}, {"beta": _lin(0, 1, 10)},
              ("line", "test_error")),
    "fig5b": ({"redraw": "point", "degree": "auto", "alpha": 0.5}, {"beta": _lin(0, 1, 10)},
              ("line", "test_error")),
    "fig5c": ({"redraw": "once", "degree": "auto", "alpha": 1.0}, {"beta": _lin(0, 1, 10)},
              ("line", "test_error")),
    "fig2a": ({"redraw": "point", "task": "classification"}, {"rho": _lin(0, 1, 10)}, ("line", "test_error")),
    "fig2b": ({"redraw": "trial"}, {"alignment": _lin(-1, 1, 20)}, ("line", "test_error")),
    "fig2c": ({"redraw": "trial", "spikes": "random", "trials": 100}, {"rank": list(range(1, 11))},
              ("line", "test_error")),
    "fig4a": ({"redraw": "point", "n": 400, "m": 500, "activations": ["relu"], "models": ["nn"],
               "target": "spike"}, {"alpha": _lin(0, 1, 30), "beta": _lin(0, 1, 30)}, ("heatmap", "test_error")),
    "fig4b": ({"redraw": "point", "n": 400, "m": 500, "activations": ["relu"], "models": ["nn", "hermite"],
               "target": "spike", "degree": 1}, {"alpha": _lin(0, 1, 30), "beta": _lin(0, 1, 30)},
              ("heatmap", "gap")),
}


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small linear algebra is fastest, and least disturbed by other processes, on one thread."""
    with threadpool_limits(1):
        yield


def test_the_synthetic_presets_are_the_papers_figures():
    assert sorted(presets.SYNTHETIC) == sorted(SYNTHETIC) == sorted(TABLE)
    assert set(SYNTHETIC) <= set(presets.names())


@pytest.mark.parametrize("name", SYNTHETIC)
def test_parameters_match_spec_section_4(name):
    changes, sweep, (kind, metric) = TABLE[name]
    exp = presets.get(name)
    expected = {**COMMON, **changes}
    for key, value in expected.items():
        assert exp.params[key] == value, (name, key, exp.params[key], value)
    assert exp.params["seed"] == 0
    assert exp.sweep_columns == list(sweep)
    for col, values in sweep.items():
        np.testing.assert_allclose(exp.sweep[col], values, rtol=0, atol=1e-12, err_msg=f"{name}.{col}")
    assert (exp.plot["kind"], exp.plot["metric"]) == (kind, metric)
    # docs/MATH.md §4: the published panels have linear axes; the presets draw in the paper's style.
    assert not exp.plot.get("logx") and not exp.plot.get("logy") and exp.plot["style"] == "paper"
    assert presets.describe(name)


def test_paper_constants():
    """beta = 3/4 - 0.01, m~ = m, m_test = 5 m, k = m at every point of a non-width preset."""
    p = config.resolved(presets.get("fig1b").point_params({"alpha": 0.5}))
    assert p["beta"] == pytest.approx(0.75 - 0.01, abs=1e-15)
    assert (p["m_grad"], p["m_test"], p["k"]) == (1000, 5000, 1000)
    assert p["eta"] == pytest.approx(1000 ** (0.5 * 0.74))
    assert p["theta"] == pytest.approx(1000 ** (0.74 * 0.5))


@pytest.mark.parametrize("name", ["fig1c", "fig5a", "fig5b", "fig5c"])
def test_beta_sweeps_use_the_degree_rule(name):
    """l = ceil(beta / (1 - beta)) clipped to [1, 4], in exact arithmetic for beta = i / 9."""
    exp = presets.get(name)
    for i, point in enumerate(exp.points()):
        beta = Fraction(i, 9)
        rule = 4 if beta == 1 else min(max(math.ceil(beta / (1 - beta)), 1), 4)
        assert config.resolved(exp.point_params(point))["degree"] == rule
    degrees = [config.resolved(exp.point_params(p))["degree"] for p in exp.points()]
    assert degrees == [1, 1, 1, 1, 1, 2, 2, 4, 4, 4]


def test_fig5c_has_unit_spikes_for_every_beta():
    """alpha = 1: theta = n^(beta (1 - alpha)) = 1, so drawing structure and data once is exact."""
    exp = presets.get("fig5c")
    thetas = {config.resolved(exp.point_params(p))["theta"] for p in exp.points()}
    assert thetas == {1.0}
    etas = [config.resolved(exp.point_params(p))["eta"] for p in exp.points()]
    np.testing.assert_allclose(etas, [1000 ** b for b in _lin(0, 1, 10)])


def test_fig4_grids_are_alpha_by_beta_with_a_spike_aligned_target():
    for name in ("fig4a", "fig4b"):
        exp = presets.get(name)
        assert len(exp.points()) == 900
        assert exp.points()[1] == {"alpha": 0.0, "beta": pytest.approx(1 / 29)}
        assert exp.params["target"] == "spike"
    assert presets.get("fig4b").params["degree"] == 1


@pytest.mark.parametrize(("name", "other"), [("fig6", "fig1a"), ("fig5b", "fig1c")])
def test_presets_sharing_runs_give_the_same_rows(name, other):
    """fig6 is the training error of fig1a's runs; fig5b (alpha = 1/2) is fig1c. Same parameters,
    sweep and seed, hence the same rows, whatever the preset is called."""
    assert presets.same_runs(name) == other
    assert presets.same_runs(other) is None
    a, b = presets.get(other), presets.get(name)
    assert a.params == b.params and a.sweep == b.sweep
    col = a.sweep_columns[0]
    small = {"params": {"n": 20, "m": 16, "trials": 2}, "sweep": {col: a.sweep[col][-2:]}}
    rows_a = runner.run(a.with_changes(**small), None, progress=False).rows
    rows_b = runner.run(b.with_changes(**small), None, progress=False).rows
    assert [dict(r) for r in rows_a] == [dict(r) for r in rows_b]
    assert [n for n in SYNTHETIC if presets.same_runs(n)] == ["fig5b", "fig6"]


@pytest.mark.parametrize("name", SYNTHETIC)
def test_quick_variants_only_shrink_the_sizes(name):
    """Same sweep columns, redraw policy, activations, models, target and degree; smaller n, m,
    trials; sweep values inside the paper's range."""
    full, quick = presets.get(name), presets.get(name, quick=True)
    assert quick.sweep_columns == full.sweep_columns
    for key, value in full.params.items():
        if key in ("n", "m", "trials"):
            assert quick.params[key] <= value
        else:
            assert quick.params[key] == value, key
    for col in full.sweep_columns:
        assert min(full.sweep[col]) <= min(quick.sweep[col]) and max(quick.sweep[col]) <= max(full.sweep[col])
        assert len(quick.sweep[col]) >= min(len(full.sweep[col]), 6)
    assert quick.plot == full.plot
    assert len(quick.tasks()) < len(full.tasks())


def test_unknown_preset_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown preset"):
        presets.get("fig9")
    with pytest.raises(ConfigError):
        presets.same_runs("nope")


def _reduced(name):
    exp = presets.get(name)
    sweep = {}
    for col, values in exp.sweep.items():
        sweep[col] = [values[0], values[len(values) // 2]] if col != "rank" else [1, 3]
    return exp.with_changes(params={"n": 24, "m": 30, "trials": 2}, sweep=sweep)


@pytest.mark.parametrize("name", SYNTHETIC)
def test_every_preset_runs_end_to_end(name, tmp_path):
    exp = _reduced(name)
    res = runner.run(exp, tmp_path, progress=False)
    directory = tmp_path / name
    sweep_columns = list(TABLE[name][1])
    with open(directory / "results.csv", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == [*sweep_columns, *ROW_COLUMNS]
    body = table[1:]
    assert len(body) == len(exp.tasks()) * exp.rows_per_task() == len(list(res.rows))
    for row in body:
        record = dict(zip(table[0], row, strict=True))
        assert record["activation"] in exp.params["activations"]
        assert record["model"] in exp.params["models"]
        if record["status"] == "ok":
            assert float(record["test_error"]) >= 0 and float(record["train_error"]) >= 0
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["status"] == "complete"
    assert meta["name"] == name and meta["sweep"] == sweep_columns
    assert meta["experiment"]["params"]["n"] == 24
    for fmt in ("png", "pdf"):
        path = directory / f"{name}.{fmt}"
        assert path.stat().st_size > 1000, path
    with open(directory / f"{name}.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(directory / f"{name}.pdf", "rb") as fh:
        assert fh.read(5) == b"%PDF-"


# ----------------------------------------------------------------------------- theory presets


def test_theory_width_preset():
    exp = presets.get("theory-width")
    assert presets.THEORY_PRESETS == ("theory-width",)
    assert exp.params["models"] == ["theory"]
    widths = exp.sweep["k_over_m"]
    assert len(widths) == 100 == len(set(widths))
    assert widths[0] == 0.1 and widths[-1] == 2.0 and widths == sorted(widths)
    assert np.allclose(np.diff(np.log(widths)), math.log(20) / 99, rtol=0.03)
    expected = {**COMMON, "models": ["theory"], "redraw": "once", "trials": 2, "share_init": True}
    for key, value in expected.items():
        assert exp.params[key] == value, key
    quick = presets.get("theory-width", quick=True)
    assert set(quick.sweep["k_over_m"]) <= set(widths) and len(quick.sweep["k_over_m"]) == 25
    assert quick.params["n"] <= exp.params["n"] and quick.plot == exp.plot


def test_theory_width_runs_end_to_end(tmp_path):
    exp = presets.get("theory-width").with_changes(
        params={"n": 24, "m": 30, "trials": 2}, sweep={"k_over_m": [0.1, 1.0, 2.0]})
    res = runner.run(exp, tmp_path, progress=False)
    rows = list(res.rows)
    assert len(rows) == 3 * 2 * 3
    assert {r["model"] for r in rows} == {"theory"} and all(r["status"] == "ok" for r in rows)
    assert (tmp_path / "theory-width" / "theory-width.png").is_file()
