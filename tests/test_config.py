"""Parameter validation: every bad input raises ConfigError naming the offending key."""

from __future__ import annotations

import math

import pytest

from gmstep import config, presets
from gmstep.errors import ConfigError, GmstepError
from gmstep.experiment import Experiment


def _raises(key, fn, *args, **kwargs):
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    assert info.value.key == key, str(info.value)
    assert str(info.value).startswith(f"{key}: ")
    return info.value


def test_defaults_are_valid_and_complete():
    p = config.validate_params({})
    assert set(p) == set(config.PARAMS)
    assert p == config.defaults()
    r = config.resolved(p)
    assert r["k"] == 1000 and r["m_grad"] == 1000 and r["m_test"] == 5000
    assert r["ratios"] == [0.5, 0.5] and r["rank"] == [1, 1]
    assert r["eta"] == pytest.approx(1000 ** (0.5 * 0.74))
    assert r["theta"] == pytest.approx(1000 ** (0.74 * 0.5))


def test_config_error_is_a_value_error():
    err = ConfigError("n", "must be >= 1")
    assert isinstance(err, ValueError) and isinstance(err, GmstepError)
    assert (err.key, err.message, str(err)) == ("n", "must be >= 1", "n: must be >= 1")


@pytest.mark.parametrize(("key", "value"), [
    # types
    ("n", "100"), ("n", 1.5), ("n", True), ("n", None), ("m", [10]), ("trials", "3"), ("k", "wide"),
    ("alpha", "half"), ("beta", None), ("lambda", "small"), ("alignment", True), ("rho", [0.5]),
    ("activations", 3), ("models", []), ("share_init", "yes"), ("seed", 1.5), ("task", "ranking"),
    ("dataset", "mnist"), ("spikes", "big"), ("redraw", "always"), ("dtype", "float16"),
    ("data_dir", 3), ("classes", [1]), ("classes", [2, 2]), ("classes", [0, 10]),
    # ranges
    ("n", 0), ("m", 0), ("k", 0), ("trials", 0), ("m_test", 0), ("m_grad", -1), ("seed", -1),
    ("alpha", -0.01), ("alpha", 1.01), ("beta", -1.0), ("beta", 2), ("rho", 1.5), ("rho", -0.1),
    ("alignment", 1.0001), ("alignment", -2), ("lambda", 0), ("lambda", -1e-4), ("k_over_m", 0.0),
    ("degree", -1), ("degree", "three"), ("degree", 2.5), ("rank", 0), ("rank", [1, 0]), ("rank", [2]),
    ("theta", -1.0), ("eta", -0.5), ("delta", -0.1), ("mean_norm", -1.0), ("hermite_nodes", 1),
    ("hermite_nodes", 1000), ("hermite_scale", 0.0), ("alpha", math.nan), ("beta", math.inf),
    # lists
    ("ratios", [0.5, 0.6]), ("ratios", [0.2, 0.3, 0.4]), ("ratios", [1.0]), ("ratios", [1.2, -0.2]),
    ("ratios", "0.5,0.5"), ("activations", ["relu", "swish"]), ("activations", ["relu", "relu"]),
    ("models", ["nn", "kernel"]),
])
def test_bad_values_name_the_key(key, value):
    _raises(key, config.validate_params, {key: value})


@pytest.mark.parametrize(("key", "value"), [
    ("n", 5), ("n", 5.0), ("alpha", 0), ("alpha", 1), ("alignment", -1), ("alignment", 1.0), ("rho", 0),
    ("rho", 1), ("degree", 0), ("degree", "auto"), ("lambda", 1e-12), ("ratios", [0.2, 0.3, 0.5]),
    ("activations", "tanh"), ("rank", [1, 2]), ("k", None), ("theta", 0.0),
])
def test_good_edge_values(key, value):
    params = {key: value}
    if key == "rank":
        params["n"] = 10
    if key == "ratios":
        params["rank"] = 1
    p = config.validate_params(params)
    assert key in p


def test_integral_floats_become_ints():
    p = config.validate_params({"n": 50.0, "m": 20.0})
    assert p["n"] == 50 and isinstance(p["n"], int)


def test_unknown_key_is_named():
    err = _raises("widht", config.validate_params, {"widht": 3})
    assert "unknown parameter" in str(err)


@pytest.mark.parametrize(("params", "key"), [
    ({"n": 3, "rank": 2}, "rank"),  # d_1 + d_2 > n
    ({"n": 10, "rank": [3, 8]}, "rank"),
    ({"ratios": [0.2, 0.3, 0.5], "rank": [1, 2]}, "rank"),  # one rank per component
    ({"ratios": [0.2, 0.3, 0.5], "task": "classification"}, "task"),
    ({"eta": 1.0, "eta_exponent": 0.5}, "eta"),
    ({"dataset": "fashion-mnist", "task": "classification", "n": 700}, "n"),
    ({"dataset": "fashion-mnist", "n": 784}, "task"),
])
def test_cross_key_rules(params, key):
    _raises(key, config.validate_params, params)


def test_partial_validation_does_not_fill_or_cross_check():
    assert config.validate_params({"n": 3, "rank": 2}, partial=True) == {"n": 3, "rank": 2}
    _raises("n", config.validate_params, {"n": -3}, partial=True)


def test_resolved_derived_quantities():
    p = config.resolved(config.validate_params({"n": 100, "m": 40, "k_over_m": 0.26, "beta": 0.8, "alpha": 0.25,
                                                "degree": "auto", "rho": 0.3, "rank": 2}))
    assert p["k"] == round(0.26 * 40)
    assert p["m_test"] == 200 and p["m_grad"] == 40
    assert p["eta"] == pytest.approx(100 ** 0.2) and p["theta"] == pytest.approx(100 ** 0.6)
    assert p["degree"] == 4
    assert p["ratios"] == [0.3, pytest.approx(0.7)] and p["rank"] == [2, 2]
    q = config.resolved(config.validate_params({"n": 100, "eta_exponent": 0.5, "k": 7, "theta": 2.0}))
    assert q["eta"] == pytest.approx(10.0) and q["k"] == 7 and q["theta"] == 2.0
    assert config.resolved(config.validate_params({"eta": 0.3}))["eta"] == 0.3
    with pytest.raises(ConfigError, match=r"k_over_m: .*width k below 1"):
        config.validate_params({"k_over_m": 1e-6, "m": 10})
    assert config.resolved(config.validate_params({"k_over_m": 0.051, "m": 10}))["k"] == 1


# ----------------------------------------------------------------------------- experiments and presets


def test_unknown_preset():
    err = _raises("preset", presets.get, "fig99")
    assert "fig1a" in str(err)


@pytest.mark.parametrize("name", presets.names())
def test_every_preset_and_its_quick_variant_validate(name):
    full = presets.get(name)
    quick = presets.get(name, quick=True)
    assert full.name == quick.name == name
    assert len(quick.tasks()) <= len(full.tasks())


@pytest.mark.parametrize(("sweep", "key"), [
    ({"alpha": 0.5}, "alpha"),  # not a list
    ({"alpha": []}, "alpha"),
    ({"alpha": [0.1, 1.5]}, "alpha"),
    ({"alpha": ["a"]}, "alpha"),
    ({"alpha": [0.1, 0.1]}, "alpha"),
    ({"rank": [[1, 2]]}, "rank"),
    ({"trials": [1, 2]}, "trials"),  # not sweepable
    ({"activations": [["relu"]]}, "activations"),
    ({"nonsense": [1]}, "nonsense"),
    ({"rank": [1, 30]}, "rank"),  # a grid point breaks d_1 + d_2 <= n
    ({"lambda": [1e-3, 0.0]}, "lambda"),
])
def test_malformed_sweeps(sweep, key):
    _raises(key, Experiment.create, "x", {"n": 20, "m": 10}, sweep)


def test_k_cannot_be_fixed_while_k_over_m_is_swept():
    _raises("k", Experiment.create, "x", {"k": 5}, {"k_over_m": [0.5, 1.0]})


@pytest.mark.parametrize(("plot", "key"), [
    ({"colour": "red"}, "plot.colour"), ({"kind": "pie"}, "plot.kind"), ({"metric": "accuracy"}, "plot.metric"),
    ({"x": "beta"}, "plot.x"), ({"logx": "yes"}, "plot.logx"), ({"title": 3}, "plot.title"),
    ({"kind": "heatmap"}, "plot.kind"),
])
def test_bad_plot_settings(plot, key):
    _raises(key, Experiment.create, "x", {}, {"alpha": [0.1, 0.2]}, plot)


@pytest.mark.parametrize("name", ["", "has space", "a/b", 3])
def test_bad_names(name):
    _raises("name", Experiment.create, name)


@pytest.mark.parametrize(("spec", "key"), [
    ({"name": "x", "paramz": {}}, "paramz"),
    ({"name": "x", "params": {}, "sweeps": {}}, "sweeps"),
    ({"params": {}}, "name"),
    ({"name": "x", "params": [1, 2]}, "params"),
    ({"name": "x", "sweep": "alpha"}, "sweep"),
    ({"name": "x", "plot": 3}, "plot"),
    ({"name": "x", "description": 3}, "description"),
    ({"name": "x", "params": {"n": 0}}, "n"),
    ({"name": "x", "params": {"bogus": 1}}, "bogus"),
    ({"name": "x", "sweep": {"alpha": [3.0]}}, "alpha"),
])
def test_from_dict_rejects(spec, key):
    _raises(key, Experiment.from_dict, spec)


def test_from_dict_round_trip():
    spec = {"name": "demo", "description": "d", "params": {"n": 30, "m": 20, "trials": 2},
            "sweep": {"alignment": [-0.5, 0.5]}, "plot": {"xlabel": "a"}}
    exp = Experiment.from_dict(spec)
    again = Experiment.from_dict(exp.to_dict())
    assert again == exp
    assert exp.params["n"] == 30 and exp.sweep == {"alignment": [-0.5, 0.5]}
    assert exp.plot["kind"] == "line" and exp.plot["metric"] == "test_error"


# ----------------------------------------------------------------------------- ranges and relabelling


@pytest.mark.parametrize("key", sorted(k for k, p in config.PARAMS.items()
                                        if isinstance(p.default, int | float) and not isinstance(p.default, bool)
                                        or k in ("k", "m_grad", "m_test", "eta", "eta_exponent", "theta",
                                                 "hermite_scale")))
def test_every_numeric_parameter_has_a_declared_range(key):
    """Values far outside any sensible range are refused naming the key (no unbounded number)."""
    for value in (1e305, -1e305):
        with pytest.raises(ConfigError, match=f"^{key}: "):
            config.validate_params({key: value}, partial=True)
    assert config.PARAMS[key].check.describe()  # shown by `gmstep params`


def test_eta_exponent_range_keeps_eta_finite():
    p = config.resolved(config.validate_params({"n": config.MAX_SIZE, "eta_exponent": config.MAX_ETA_EXPONENT}))
    assert math.isfinite(p["eta"])
    with pytest.raises(ConfigError, match="eta_exponent: must be in"):
        config.validate_params({"eta_exponent": 200})


@pytest.mark.parametrize(("params", "sweep", "named"), [
    ({"ratios": [0.3, 0.7]}, {"rho": [0.0, 0.5, 1.0]}, ("ratios", "rho")),
    ({"k": 5}, {"k_over_m": [0.5, 1.0]}, ("k", "k_over_m")),
    ({}, {"k": [2, 4], "k_over_m": [0.5, 1.0]}, ("k", "k_over_m")),
    ({"eta": 1.0}, {"alpha": [0.0, 1.0]}, ("eta", "alpha")),
    ({"eta_exponent": 0.5}, {"alpha": [0.0, 1.0]}, ("eta_exponent", "alpha")),
    ({"theta": 2.0}, {"beta": [0.2, 0.4]}, ("theta", "beta")),
    ({}, {"eta": [1.0, 2.0], "eta_exponent": [0.1, 0.2]}, ("eta", "eta_exponent")),
    ({"models": ["nn"]}, {"degree": [1, 2]}, ("degree", "hermite")),
])
def test_a_fixed_parameter_that_overrides_a_swept_one_is_refused_naming_both(params, sweep, named):
    with pytest.raises(ConfigError) as info:
        Experiment.create("x", {"n": 8, "m": 8, **params}, sweep)
    assert "\n" not in str(info.value)
    for word in named:
        assert word in str(info.value)


def test_sweep_values_giving_the_same_width_are_refused():
    with pytest.raises(ConfigError, match=r"k_over_m: values 0.02 and 0.025 both give the width k = 1"):
        Experiment.create("x", {"n": 8, "m": 50}, {"k_over_m": [0.02, 0.04, 0.025]})
    exp = Experiment.create("x", {"n": 8, "m": 50}, {"k_over_m": [0.02, 0.04]})
    assert [config.resolved(exp.point_params(p))["k"] for p in exp.points()] == [1, 2]


def test_sweep_values_are_canonical_decimals():
    import numpy as np

    exp = Experiment.create("x", {"n": 8, "m": 8}, {"rho": [float(v) for v in np.linspace(0, 1, 6)]})
    assert exp.sweep["rho"] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert repr(float(np.linspace(0, 1, 6)[3])) == "0.6000000000000001"  # linspace's value; canonical: 0.6
    with pytest.raises(ConfigError, match="sweep values repeat"):
        Experiment.create("x", {"n": 8, "m": 8}, {"rho": [0.2, 0.2 + 1e-15]})
