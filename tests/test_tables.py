"""Tables: the tidy frame and the one summary (closed forms on hand-written numbers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gmstep import Experiment, results, tables
from gmstep.errors import ConfigError
from gmstep.runner import Results


def _exp(trials: int = 3) -> Experiment:
    return Experiment.create("t", {"n": 8, "m": 8, "trials": trials, "activations": ["relu", "tanh"],
                                   "task": "classification"}, {"k_over_m": [0.5, 2.0]})


def _rows(exp: Experiment) -> list[dict]:
    out = []
    for p, point in enumerate(exp.points()):
        for t in range(exp.params["trials"]):
            for a, act in enumerate(exp.params["activations"]):
                for m, model in enumerate(exp.params["models"]):
                    v = 1.0 + p + 10 * a + 100 * m + t**2  # trials 0, 1, 4 above the base
                    out.append({**point, "activation": act, "model": model, "trial": t, "train_error": v / 2,
                                "test_error": v, "train_misclassification": 0.1 * t,
                                "test_misclassification": 0.2 * t, "status": "ok"})
    return out


def test_summary_is_mean_sd_sem_ci95_of_the_trials():
    exp = _exp()
    s = tables.summarize(tables.frame(_rows(exp), exp.sweep_columns), exp.sweep_columns, "test_error")
    assert list(s.columns) == ["k_over_m", "activation", "model", "mean", "sd", "sem", "ci95", "count", "excluded"]
    assert len(s) == 2 * 2 * 2
    row = s[(s.k_over_m == 2.0) & (s.activation == "tanh") & (s.model == "hermite")].iloc[0]
    vals = np.array([0.0, 1.0, 4.0]) + 1 + 1 + 10 + 100
    sd = math.sqrt(((vals - vals.mean()) ** 2).sum() / 2)
    assert row["mean"] == pytest.approx(vals.mean()) and row["sd"] == pytest.approx(sd)
    assert row["sem"] == pytest.approx(sd / math.sqrt(3))
    assert row["ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * sd / math.sqrt(3))
    assert row["count"] == 3 and row["excluded"] == 0


def test_bad_rows_are_excluded_and_counted():
    exp = _exp()
    rows = _rows(exp)
    rows[0] = {**rows[0], "test_error": 1e9, "status": "ill-conditioned"}
    s = tables.summarize(tables.frame(rows, exp.sweep_columns), exp.sweep_columns, "test_error")
    first = s.iloc[0]
    assert first["count"] == 2 and first["excluded"] == 1 and first["mean"] == pytest.approx((2 + 5) / 2)
    one = tables.summarize(tables.frame(rows[:1], exp.sweep_columns), exp.sweep_columns, "test_error").iloc[0]
    assert one["count"] == 0 and math.isnan(one["mean"]) and one["excluded"] == 1


def test_frame_of_a_row_table_equals_frame_of_dicts_and_summary_is_results_summary():
    exp = _exp()
    table = results.RowTable(exp)
    rows = _rows(exp)
    for i in range(0, len(rows), exp.rows_per_task()):
        table.put(rows[i:i + exp.rows_per_task()])
    a = tables.frame(table, exp.sweep_columns)
    b = tables.frame(list(table), exp.sweep_columns)
    assert list(a.columns) == results.columns(exp.sweep_columns)
    assert a.equals(b)
    res = Results(exp, table)
    assert res.to_pandas().equals(a)
    assert res.summary("test_misclassification")["mean"].iloc[0] == pytest.approx((0.0 + 0.2 + 0.4) / 3)


def test_regression_misclassification_is_nan_and_the_metric_is_checked():
    exp = Experiment.create("r", {"n": 8, "m": 8, "trials": 1, "activations": ["relu"]}, {"k_over_m": [1.0]})
    rows = [{"k_over_m": 1.0, "activation": "relu", "model": m, "trial": 0, "train_error": 0.1, "test_error": 0.2,
             "train_misclassification": None, "test_misclassification": None, "status": "ok"}
            for m in ("nn", "hermite")]
    df = tables.frame(rows, exp.sweep_columns)
    assert df["test_misclassification"].dtype == float and df["test_misclassification"].isna().all()
    with pytest.raises(ConfigError, match="metric"):
        tables.summarize(df, exp.sweep_columns, "nonsense")


def test_xarray_has_the_sweep_trial_activation_model_dimensions():
    pytest.importorskip("xarray")
    exp = _exp()
    ds = Results(exp, _rows(exp)).to_xarray()
    assert dict(ds.sizes) == {"k_over_m": 2, "trial": 3, "activation": 2, "model": 2}
    cell = ds["test_error"].sel(k_over_m=2.0, trial=2, activation="tanh", model="hermite")
    assert float(cell) == 1 + 1 + 10 + 100 + 4


def test_xarray_missing_is_one_line(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "xarray":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)
    exp = _exp()
    with pytest.raises(ConfigError, match=r"gmstep\[xarray\]"):
        Results(exp, _rows(exp)).to_xarray()


def test_repr_is_short():
    exp = _exp()
    text = repr(Results(exp, _rows(exp)))
    assert text.startswith("<Results t: 24 rows, sweep k_over_m (2), 3 trials") and "\n" not in text
    assert len(text) < 160
