"""Property-based tests over random configurations (hypothesis).

Valid configurations (tiny sizes) always give every row either finite, non-negative errors with
status ``ok`` or a recorded non-ok status; invalid ones always end in one line on stderr and
exit status 2, through the TOML path and through ``--set`` / ``--values``; random text never
produces a traceback.
"""

from __future__ import annotations

import math
import os
import string
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gmstep import ConfigError, Experiment, GmstepError, activations, cli, config, runner
from helpers import one_error_line

#: GMSTEP_EXAMPLES=2000 for a longer hunt (the default keeps this file to a few seconds).
EXAMPLES = int(os.environ.get("GMSTEP_EXAMPLES", "40"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

unit = st.floats(0.0, 1.0)
small_int = st.integers(1, 30)


@st.composite
def valid_configs(draw) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    n = draw(st.integers(4, 30))
    params: dict[str, Any] = {
        "n": n,
        "m": draw(st.integers(2, 30)),
        "trials": 1,
        "alpha": draw(unit),
        "beta": draw(unit),
        "rho": draw(unit),
        "alignment": draw(st.floats(-1.0, 1.0)),
        "lambda": 10 ** draw(st.floats(-9, 1)),
        "degree": draw(st.one_of(st.integers(0, 6), st.just("auto"))),
        "activations": draw(st.lists(st.sampled_from(activations.names()), min_size=1, max_size=2, unique=True)),
        "models": draw(st.sampled_from([["nn"], ["hermite"], ["nn", "hermite"]])),
        "rank": draw(st.integers(1, max(1, min(3, n // 2)))),
        "spikes": draw(st.sampled_from(["equal", "random"])),
        "task": draw(st.sampled_from(["regression", "classification"])),
        "target": draw(st.sampled_from(["random", "spike"])),
        "redraw": draw(st.sampled_from(["once", "point", "trial"])),
        "mean_norm": draw(st.sampled_from([0.0, 0.5, 3.0])),
        "delta": draw(st.sampled_from([0.0, 0.1, 1.0])),
        "dtype": draw(st.sampled_from(["float64", "float32"])),
        "seed": draw(st.integers(0, 2**32)),
        "m_test": draw(st.one_of(st.none(), st.integers(1, 40))),
    }
    if draw(st.booleans()):
        params["k"] = draw(small_int)
    else:
        params["k_over_m"] = draw(st.floats(0.05, 3.0))
    if draw(st.booleans()):
        params["eta"] = draw(st.sampled_from([0.0, 1.0, 50.0, 1e6]))
    if draw(st.booleans()):
        params["theta"] = draw(st.sampled_from([0.0, 1.0, 100.0]))
    if params["task"] == "regression" and draw(st.booleans()):
        r = draw(st.floats(0.1, 0.8))
        params["ratios"] = [r, (1 - r) / 2, 1 - r - (1 - r) / 2]
    column = draw(st.sampled_from(["alpha", "beta", "rho", "alignment", "lambda", "delta", "none"]))
    sweep: dict[str, list[Any]] = {}
    if column != "none":
        lo, hi = (-1.0, 1.0) if column == "alignment" else (1e-6, 1.0) if column == "lambda" else (0.0, 1.0)
        sweep[column] = draw(st.lists(st.floats(lo, hi), min_size=1, max_size=2, unique=True))
        params.pop(column, None)
    return params, sweep


@SETTINGS
@given(valid_configs())
def test_valid_configurations_give_finite_errors_or_a_recorded_status(cfg):
    params, sweep = cfg
    try:
        exp = Experiment.create("prop", params, sweep)
    except ConfigError as exc:  # a cross-key rule (e.g. ratios sum rounding): must be one line
        assert "\n" not in str(exc)
        assume(False)
    try:
        res = runner.run(exp, out=None, progress=False, plot=False)
    except GmstepError as exc:  # a problem only the drawn data reveals: still one line for the user
        assert "\n" not in str(exc)
        return
    assert len(res.rows) == len(exp.tasks()) * exp.rows_per_task()
    for row in res.rows:
        assert row["status"] in ("ok", "nonfinite", "ill-conditioned"), row
        if row["status"] == "ok":
            assert math.isfinite(row["train_error"]) and row["train_error"] >= 0
            assert math.isfinite(row["test_error"]) and row["test_error"] >= 0
    for s in res.summary().to_dict("records"):
        assert s["count"] + s["excluded"] == 1
        assert math.isfinite(s["mean"]) == (s["count"] > 0)


# ----------------------------------------------------------------------------- invalid input

NOT_A_NUMBER = st.one_of(st.text(string.ascii_letters, min_size=1, max_size=5), st.booleans(),
                         st.lists(st.integers(), max_size=2))
OUTSIDE_UNIT = st.one_of(st.floats(1.0, 1e6, exclude_min=True), st.floats(-1e6, 0.0, exclude_max=True))

INVALID: dict[str, st.SearchStrategy] = {
    "n": st.one_of(st.integers(-100, 0), st.floats(1.1, 9.9).filter(lambda v: not v.is_integer()), NOT_A_NUMBER),
    "m": st.one_of(st.integers(-100, 0), NOT_A_NUMBER),
    "k": st.one_of(st.integers(-100, 0), NOT_A_NUMBER),
    "trials": st.one_of(st.integers(-100, 0), NOT_A_NUMBER),
    "alpha": st.one_of(OUTSIDE_UNIT, NOT_A_NUMBER),
    "beta": st.one_of(OUTSIDE_UNIT, NOT_A_NUMBER),
    "rho": st.one_of(OUTSIDE_UNIT, NOT_A_NUMBER),
    "alignment": st.one_of(st.floats(1.0, 1e6, exclude_min=True), st.floats(-1e6, -1.0, exclude_max=True)),
    "ratios": st.lists(st.floats(0.0, 1.0), min_size=2, max_size=4).filter(lambda v: abs(sum(v) - 1) > 1e-6),
    "lambda": st.one_of(st.floats(-1e3, 0.0), st.just(float("nan")), st.just(float("inf")), NOT_A_NUMBER),
    "degree": st.one_of(st.integers(-50, -1), st.text(string.ascii_lowercase, min_size=1, max_size=4)
                        .filter(lambda v: v != "auto")),
    "rank": st.integers(5, 40),  # with n = 8: d_1 + d_2 > n
    "activations": st.lists(st.text(string.ascii_lowercase, min_size=1, max_size=6)
                            .filter(lambda v: v not in activations.names()), min_size=1, max_size=2),
    "models": st.lists(st.sampled_from(["gp", "ntk", "linear"]), min_size=1, max_size=2),
    "unknown": st.just(1),
}


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + ", ".join(toml_value(x) for x in v) + "]"


@pytest.fixture
def no_running(monkeypatch):
    """Configurations that turn out valid are not run (only validation is under test)."""
    monkeypatch.setattr(cli, "_run_experiment", lambda exp, args: 0)


@SETTINGS
@given(key=st.sampled_from(sorted(INVALID)), data=st.data())
def test_invalid_toml_values_give_one_line_naming_the_key(capsys, no_running, key, data):
    value = data.draw(INVALID[key])
    name = data.draw(st.from_regex(r"[a-z]{3,8}", fullmatch=True).filter(lambda s: s not in config.PARAMS)) \
        if key == "unknown" else key
    params = {"n": 8, "m": 8, "trials": 1, name: value}
    text = 'name = "bad"\n[params]\n' + "".join(f"{k} = {toml_value(v)}\n" for k, v in params.items())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bad.toml"
        path.write_text(text)
        code = cli.main(["run", str(path), "--out", tmp, "--no-plot", "--no-progress"])
    err = one_error_line(code, capsys.readouterr().err)
    assert f"{name}:" in err or f"{name} " in err


@SETTINGS
@given(key=st.sampled_from([k for k in sorted(INVALID) if k not in ("ratios", "unknown")]), data=st.data())
def test_invalid_set_values_give_one_line_naming_the_key(capsys, no_running, key, data):
    value = data.draw(INVALID[key])
    assume(not (isinstance(value, list) and len(value) == 1))  # "--set m=1" is the number 1
    text = ",".join(toml_value(v).strip('"') for v in value) if isinstance(value, list) else \
        toml_value(value).strip('"')
    assume(text)
    code = cli.main(["reproduce", "fig1a", "--quick", "--set", "n=8", "--set", "m=8", "--set", f"{key}={text}"])
    err = one_error_line(code, capsys.readouterr().err)
    assert key in err


@SETTINGS
@given(text=st.text(max_size=200))
def test_random_toml_text_never_gives_a_traceback(capsys, no_running, text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.toml"
        path.write_bytes(text.encode("utf-8", errors="replace"))
        code = cli.main(["run", str(path)])
    err = capsys.readouterr().err
    assert code in (0, 2)
    if code == 2:
        one_error_line(code, err)


@SETTINGS
@given(values=st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
       sets=st.lists(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20), max_size=3))
def test_random_command_line_values_never_give_a_traceback(capsys, no_running, values, sets):
    argv = ["reproduce", "fig1a", "--quick", "--values", values]
    for s in sets:
        argv += ["--set", s]
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2)
    if code == 2:
        one_error_line(code, err)


# ----------------------------------------------------------------------------- every parameter at its extremes

#: Values at and beyond the declared ranges (config.MAX_*), of every type, for every parameter.
HOSTILE = [0, -1, 1, 2, 3, 30, 31, 400, 401, 10**4, 10**4 + 1, config.MAX_SIZE, config.MAX_SIZE + 1,
           config.MAX_TRIALS + 1, 2**63 - 1, 2**63, -(2**63), 0.0, -0.0, 0.5, 1.0, 1.5, -1.0, 1e-300, 5e-324,
           config.MAX_ETA_EXPONENT, -config.MAX_ETA_EXPONENT, config.MAX_ETA_EXPONENT + 1e-9, 1e4 + 1e-9,
           1e300, -1e300, 1.7e308, float("inf"), float("-inf"), float("nan"), True, False, "", "x", "auto",
           "relu", "real", "cgan", "fashion-mnist", [], [1], [0, 1], [0.3, 0.7], [1, 1], ["relu", "relu"], None]


def _cheap(key: str, value: Any) -> bool:
    """Valid values whose run is long by design (10^6 trials; m = 10^4 samples, a 10^4 x 10^4 ridge
    system) are not run here; their neighbours beyond the range are."""
    if not isinstance(value, int) or isinstance(value, bool):
        return True
    return not ((key == "trials" and 3 < value <= config.MAX_TRIALS)
                or (key == "m" and 1000 < value <= config.MAX_SIZE))


@SETTINGS
@given(key=st.sampled_from(sorted(config.PARAMS)), value=st.sampled_from(HOSTILE))
def test_every_parameter_at_extreme_and_invalid_values_runs_or_gives_one_line(capsys, key, value):
    """Through the command line, actually running: the only outcomes are a finished run (exit 0)
    or one line on stderr with exit 2, never a traceback."""
    assume(_cheap(key, value))
    base = {"n": 8, "m": 8, "trials": 1, "activations": ["relu"], "models": ["nn", "hermite"]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.toml"
        params = {k: v for k, v in base.items() if k != key}
        extra: list[str] = []
        if value is None:
            extra = ["--set", f"{key}=null"]
        else:
            params[key] = value
        path.write_text('name = "x"\n[params]\n' + "".join(f"{k} = {toml_value(v)}\n" for k, v in params.items()))
        code = cli.main(["run", str(path), "--out", tmp, "--no-plot", "--no-progress", *extra])
    out, err = capsys.readouterr()
    assert code in (0, 2), err
    if code == 2:
        one_error_line(code, err)
    else:
        assert "x: " in out and "Traceback" not in err


@pytest.mark.slow
@SETTINGS
@given(key=st.sampled_from(sorted(config.PARAMS)), value=st.sampled_from(HOSTILE))
def test_every_parameter_at_extreme_and_invalid_values_through_the_api(key, value):
    """Through Python: a finished run or a one-line GmstepError naming something, nothing else."""
    assume(_cheap(key, value))
    params = {"n": 8, "m": 8, "trials": 1, "activations": ["tanh"], "models": ["nn", "hermite"], key: value}
    try:
        exp = Experiment.create("api", params)
        res = runner.run(exp, out=None, progress=False, plot=False)
    except GmstepError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    assert res.complete and all(r["status"] in ("ok", "nonfinite", "ill-conditioned") for r in res.rows)
