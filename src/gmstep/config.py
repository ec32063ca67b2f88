"""Experiment parameters: their names, defaults, types and allowed ranges.

Every value entering gmstep (from Python, a TOML file or ``--set key=value``) passes through
:func:`validate_params`, which returns a new dict of clean, typed values or raises
:class:`~gmstep.errors.ConfigError` naming the key and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import activations
from .constraints import (
    BOOLEAN,
    CLASS_PAIR,
    NAME,
    SEED,
    STRING_OR_NONE,
    Constraint,
    Interval,
    ListOf,
    Options,
    Rule,
    is_number,
)
from .errors import ConfigError

#: The models: the network, its Hermite polynomial equivalent, and the theory (docs/THEORY.md).
NN, HERMITE, THEORY = "nn", "hermite", "theory"
MODELS = (NN, HERMITE, THEORY)
#: Fashion-MNIST image sources, centrings and the floating point precisions.
SOURCES = ("real", "gaussian", "cgan")
CENTERINGS = ("class", "common")
DTYPES = ("float64", "float32")
#: Quadratures of the Hermite coefficients.
QUADRATURES = ("gauss-hermite", "split")
#: Array backends, their devices and the torch backend's random numbers (docs/PERFORMANCE.md).
BACKENDS = ("numpy", "torch")
DEVICES = ("auto", "cpu", "cuda")
RNGS = ("auto", "numpy", "device")
#: Largest Hermite degree accepted (i! and the quadrature stay accurate far below this).
MAX_DEGREE = 30
#: Largest size (n, m, k, m~, m_test, rank) accepted; memory admission refuses far smaller ones.
MAX_SIZE = 2**31 - 1
#: Largest number of Monte Carlo trials.
MAX_TRIALS = 10**6
#: Largest magnitude of the unbounded float parameters (eta, theta, lambda, delta, ...): finite with room.
MAX_FLOAT = 1e300
#: |eta_exponent| at most this, so that eta = n^eta_exponent stays finite for every n <= MAX_SIZE.
MAX_ETA_EXPONENT = 30.0


@dataclass(frozen=True)
class Param:
    """One parameter: default, a checker that returns the clean value, and a description."""

    default: Any
    check: Constraint
    doc: str
    sweepable: bool = False


_is_number = is_number


def _int(lo: int | None = None, hi: int | None = None, optional: bool = False) -> Interval:
    return Interval(int, lo, hi, optional=optional)


def _float(lo: float | None = None, hi: float | None = None, optional: bool = False,
           strict_lo: bool = False) -> Interval:
    return Interval(float, lo, hi, open_lo=strict_lo, optional=optional)


def choice(*allowed: str) -> Options:
    return Options(allowed)


# The names experiments.py uses (kept until its split).
check_bool, check_name = BOOLEAN, NAME


def _ratios(key: str, v: Any) -> list[float] | None:
    if v is None:
        return None
    if not isinstance(v, list | tuple) or len(v) < 2 or not all(_is_number(x) for x in v):
        raise ConfigError(key, f"must be a list of at least 2 numbers, got {v!r}")
    v = [float(x) for x in v]
    if any(x < 0 or x > 1 for x in v):
        raise ConfigError(key, f"every ratio must be in [0, 1], got {v}")
    if abs(sum(v) - 1.0) > 1e-9:
        raise ConfigError(key, f"ratios must sum to 1, got sum {sum(v)}")
    return v


def _rank(key: str, v: Any) -> int | list[int]:
    if isinstance(v, list | tuple):
        if len(v) < 2:
            raise ConfigError(key, f"a list of ranks needs one entry per component, got {v!r}")
        return [_int(1, MAX_SIZE).check(key, x) for x in v]
    return _int(1, MAX_SIZE).check(key, v)


def _int_or_auto(lo: int, hi: int, note: str = "") -> Callable[[str, Any], int | str]:
    """A check: ``"auto"``, or an integer in ``[lo, hi]`` (one-line error naming the parameter)."""

    def check(key: str, v: Any) -> int | str:
        if v == "auto":
            return v
        try:
            return _int(lo, hi).check(key, v)
        except ConfigError:
            raise ConfigError(key, f"must be an integer in [{lo}, {hi}] or \"auto\"{note}, got {v!r}") from None

    return check


_degree = _int_or_auto(0, MAX_DEGREE, " (the degree rule)")
_batch_trials = _int_or_auto(1, MAX_TRIALS)


_ratios_rule = Rule(_ratios, "C >= 2 ratios in [0, 1] summing to 1, or null")
_rank_rule = Rule(_rank, f"range [1, {MAX_SIZE}] (each)")
_degree_rule = Rule(_degree, f"range [0, {MAX_DEGREE}] or \"auto\"")

PARAMS: dict[str, Param] = {
    "dataset": Param("gmm", choice("gmm", "fashion-mnist"), "data: Gaussian mixture or Fashion-MNIST"),
    "task": Param("regression", choice("regression", "classification"), "regression or classification target"),
    "n": Param(1000, _int(1, MAX_SIZE), "input dimension", sweepable=True),
    "m": Param(1000, _int(1, MAX_SIZE), "samples in the training set (and the gradient batch)", sweepable=True),
    "k": Param(None, _int(1, MAX_SIZE, optional=True), "hidden width (null: round(k_over_m * m))", sweepable=True),
    "k_over_m": Param(1.0, _float(0.0, 1e4, strict_lo=True), "hidden width over samples, k / m", sweepable=True),
    "m_grad": Param(None, _int(1, MAX_SIZE, optional=True), "gradient batch size m~ (null: m)"),
    "m_test": Param(None, _int(1, MAX_SIZE, optional=True), "test samples (null: 5 m)"),
    "trials": Param(20, _int(1, MAX_TRIALS), "Monte Carlo repetitions"),
    "lambda": Param(1e-4, _float(0.0, MAX_FLOAT, strict_lo=True), "ridge penalty lambda > 0", sweepable=True),
    "alpha": Param(0.5, _float(0.0, 1.0), "exponent moving spread from data to learning rate", sweepable=True),
    "beta": Param(0.74, _float(0.0, 1.0), "spread exponent: theta = n^(beta (1 - alpha))", sweepable=True),
    "eta_exponent": Param(None, _float(-MAX_ETA_EXPONENT, MAX_ETA_EXPONENT, optional=True),
                          "if set, eta = n^eta_exponent", sweepable=True),
    "eta": Param(None, _float(0.0, MAX_FLOAT, optional=True), "if set, the learning rate itself", sweepable=True),
    "theta": Param(None, _float(0.0, MAX_FLOAT, optional=True), "if set, every spike strength (else n^(beta(1-alpha)))",
                   sweepable=True),
    "degree": Param(3, _degree_rule, "Hermite degree l, or \"auto\" for ceil(beta / (1 - beta)) in [1, 4]",
                    sweepable=True),
    "activations": Param(["relu", "tanh", "sigmoid"], ListOf(Options(activations.names)), "activations"),
    "models": Param([NN, HERMITE], ListOf(Options(MODELS)), "models: nn, hermite and/or theory"),
    "rho": Param(0.5, _float(0.0, 1.0), "mixture ratio of component 1 (2 components)", sweepable=True),
    "ratios": Param(None, _ratios_rule, "mixture ratios of C >= 2 components (overrides rho)"),
    "rank": Param(1, _rank_rule, "spike rank d_c (one number, or one per component)", sweepable=True),
    "alignment": Param(0.0, _float(-1.0, 1.0), "alignment a in [-1, 1] of the components' spikes", sweepable=True),
    "spikes": Param("equal", choice("equal", "random"), "equal strengths, or theta U(0,1) per spike"),
    "mean_norm": Param(0.0, _float(0.0, MAX_FLOAT), "norm of the component means (0: zero means)", sweepable=True),
    "target": Param("random", choice("random", "spike"), "regression teacher: random or spike-aligned"),
    "delta": Param(0.0, _float(0.0, MAX_FLOAT), "label noise level delta", sweepable=True),
    "redraw": Param("once", choice("once", "point", "trial"), "when structure and data are redrawn"),
    "share_init": Param(False, BOOLEAN, "draw F, a once per trial and share them across sweep points"),
    "hermite_nodes": Param(100, _int(2, 400), "Gauss-Hermite quadrature nodes"),
    "hermite_quadrature": Param(
        "gauss-hermite", choice(*QUADRATURES),
        "Hermite coefficients by Gauss-Hermite (the paper's) or split Gauss-Legendre quadrature (exact for ReLU)",
    ),
    "hermite_scale": Param(None, _float(0.0, MAX_FLOAT, strict_lo=True, optional=True),
                           "Hermite scale b (null: the data's)"),
    "dtype": Param("float64", choice(*DTYPES), "floating point precision"),
    "seed": Param(0, SEED, "root random seed"),
    "classes": Param([0, 1], CLASS_PAIR, "Fashion-MNIST class pair"),
    "centering": Param("class", choice(*CENTERINGS), "Fashion-MNIST centring: per class or common mean"),
    "source": Param("real", choice(*SOURCES), "Fashion-MNIST image source"),
    "data_dir": Param(None, STRING_OR_NONE, "Fashion-MNIST directory (null: GMSTEP_FASHION_MNIST, then Debian's)"),
    "backend": Param("numpy", choice(*BACKENDS), "array backend: numpy, or torch (PyTorch, CPU or CUDA)"),
    "device": Param("auto", choice(*DEVICES),
                    "torch backend's device: cpu, cuda, or auto (cuda when torch sees one, else cpu)"),
    "rng": Param("auto", choice(*RNGS),
                 "torch backend's random numbers: numpy (the NumPy engine's streams, same rows), device "
                 "(drawn on the device, keyed by the task), auto (device on cuda, numpy on cpu)"),
    "batch_trials": Param("auto", Rule(_batch_trials, f"range [1, {MAX_TRIALS}] or \"auto\""),
                          "torch backend: trials of a point computed as one batch (auto: as many as fit in memory)"),
    "memory_check": Param(True, BOOLEAN, "refuse a run that does not fit in the available memory (false: run anyway)"),
    "gan_stats_samples": Param(1_000_000, _int(2, 10**8),
                               "generated images per class for the cgan source's class statistics"),
}

#: Parameters that change how a run is admitted, never its rows (a resume may change them).
RUN_ONLY = frozenset({"memory_check"})

#: Parameters that change neither the structure nor the data sets.
MODEL_ONLY = frozenset(
    {"k", "k_over_m", "lambda", "eta", "eta_exponent", "degree", "activations", "models",
     "hermite_nodes", "hermite_quadrature", "hermite_scale", "share_init", "trials", "seed", "redraw",
     "memory_check", "backend", "device", "rng", "batch_trials"}
)


def defaults() -> dict[str, Any]:
    """A fresh dict of every parameter's default."""
    return {key: (list(p.default) if isinstance(p.default, list) else p.default) for key, p in PARAMS.items()}


def validate_params(values: Mapping[str, Any], partial: bool = False) -> dict[str, Any]:
    """Check every key and value; fill defaults unless ``partial``; check the cross-key rules."""
    out = {} if partial else defaults()
    for key, value in values.items():
        if key not in PARAMS:
            raise ConfigError(key, f"unknown parameter; allowed: {', '.join(sorted(PARAMS))}")
        out[key] = PARAMS[key].check(key, value)
    if not partial:
        check_consistency(out)
    return out


def num_components(p: Mapping[str, Any]) -> int:
    return len(p["ratios"]) if p.get("ratios") else 2


def check_consistency(p: Mapping[str, Any]) -> None:
    """Rules that involve several keys."""
    c = num_components(p)
    ranks = p["rank"] if isinstance(p["rank"], list) else [p["rank"]] * c
    if len(ranks) != c:
        raise ConfigError("rank", f"needs {c} entries (one per component), got {len(ranks)}")
    if p["dataset"] == "gmm":
        # Component c >= 2 lives partly in the complement of span(Gamma_1).
        if ranks[0] + max(ranks[1:]) > p["n"]:
            raise ConfigError("rank", f"d_1 + d_c must be <= n = {p['n']}, got ranks {ranks}")
        if p["task"] == "classification" and c != 2:
            raise ConfigError("task", "classification (labels 2c - 3) needs exactly 2 components")
    else:
        if p["n"] != 784:
            raise ConfigError("n", f"Fashion-MNIST inputs have n = 784, got {p['n']}")
        if p["task"] != "classification":
            raise ConfigError("task", "Fashion-MNIST experiments are classification")
    if isinstance(p["degree"], int) and p["degree"] >= p["hermite_nodes"]:
        raise ConfigError("degree", f"must be below hermite_nodes = {p['hermite_nodes']}, got {p['degree']}")
    if (p["dataset"] == "gmm" and p["task"] == "regression" and p["target"] == "spike"
            and p["alignment"] == -1.0 and p["spikes"] == "equal"):
        raise ConfigError("alignment", "-1 cancels the spike-aligned target (the two spikes sum to 0); use > -1")
    if p["backend"] == "numpy":
        # The NumPy engine runs on the CPU with NumPy's streams: refuse what would silently not happen.
        torch_only = {"device": p["device"] == "cuda", "rng": p["rng"] == "device",
                      "batch_trials": p["batch_trials"] != "auto"}
        for key, asked in torch_only.items():
            if asked:
                raise ConfigError(key, f"= {p[key]} needs the torch backend; add --set backend=torch")
    if p["eta"] is not None and p["eta_exponent"] is not None:
        raise ConfigError("eta", "set at most one of eta and eta_exponent")
    if p["k"] is None and round(p["k_over_m"] * p["m"]) < 1:
        raise ConfigError("k_over_m", f"k_over_m * m = {p['k_over_m'] * p['m']:.3g} rounds to a width k below 1 "
                          f"(m = {p['m']}); use k_over_m > {0.5 / p['m']:.3g} or set k")


#: The largest degree the paper's degree rule gives (beta = 1).
MAX_DEGREE_RULE = 4


def degree_rule(beta: float) -> int:
    """``l = ceil(beta / (1 - beta))`` clipped to ``[1, 4]``; ``beta = 1`` gives 4."""
    if not 0.0 <= beta <= 1.0:
        raise ConfigError("beta", f"must be in [0, 1], got {beta}")
    if beta >= 1.0:
        return MAX_DEGREE_RULE
    # A tiny tolerance keeps e.g. beta = 3/4 (ratio 3 up to rounding) at 3.
    raw = math.ceil(beta / (1.0 - beta) - 1e-9)
    return int(min(max(raw, 1), MAX_DEGREE_RULE))


def resolved(p: Mapping[str, Any]) -> dict[str, Any]:
    """Derived quantities of a validated point: k, m_grad, m_test, eta, theta, degree, ratios, ranks."""
    r = dict(p)
    r["k"] = p["k"] if p["k"] is not None else max(1, round(p["k_over_m"] * p["m"]))
    r["m_grad"] = p["m_grad"] if p["m_grad"] is not None else p["m"]
    r["m_test"] = p["m_test"] if p["m_test"] is not None else 5 * p["m"]
    if p["eta"] is not None:
        r["eta"] = p["eta"]
    elif p["eta_exponent"] is not None:
        r["eta"] = float(p["n"] ** p["eta_exponent"])
    else:
        r["eta"] = float(p["n"] ** (p["alpha"] * p["beta"]))
    if p["theta"] is None:
        r["theta"] = float(p["n"] ** (p["beta"] * (1.0 - p["alpha"])))
    r["degree"] = degree_rule(p["beta"]) if p["degree"] == "auto" else p["degree"]
    r["ratios"] = p["ratios"] if p["ratios"] else [p["rho"], 1.0 - p["rho"]]
    c = len(r["ratios"])
    r["rank"] = p["rank"] if isinstance(p["rank"], list) else [p["rank"]] * c
    return r


#: Swept column -> fixed parameters that override what it determines (a sweep of the column
#: would label rows with values they were not computed with).
OVERRIDDEN_BY: dict[str, tuple[str, ...]] = {
    "rho": ("ratios",),
    "k_over_m": ("k",),
    "alpha": ("eta", "eta_exponent"),
    "beta": ("theta",),
    "eta_exponent": ("eta",),
    "eta": ("eta_exponent",),
}
#: Parameters that only the Gaussian mixture uses (a Fashion-MNIST sweep of them changes nothing).
GMM_ONLY = ("rho", "ratios", "rank", "alignment", "mean_norm", "delta", "spikes", "target")


def check_sweep(columns: list[str] | tuple[str, ...], p: Mapping[str, Any]) -> None:
    """Refuse sweeps whose column would not determine the rows it labels, naming both keys:

    a fixed parameter that overrides the column (:data:`OVERRIDDEN_BY`), two columns of which one
    overrides the other (``k`` with ``k_over_m``), the Hermite degree without the Hermite model,
    and mixture parameters of a Fashion-MNIST experiment.
    """
    for col in columns:
        for other in OVERRIDDEN_BY.get(col, ()):
            if other in columns:
                raise ConfigError(other, f"cannot be swept together with {col} (it overrides {col})")
            if p.get(other) is not None:
                raise ConfigError(other, f"is fixed to {p[other]!r}, which overrides the swept {col}: the rows "
                                  f"would be labelled with {col} values they were not computed with; unset "
                                  f"{other} or do not sweep {col}")
        if col == "k" and "k_over_m" in columns:
            raise ConfigError("k_over_m", "cannot be swept together with k (k overrides k_over_m)")
        if col == "degree" and HERMITE not in p.get("models", ()):
            raise ConfigError("degree", "is swept but models has no hermite: the degree changes no row")
        if col in GMM_ONLY and p.get("dataset") == "fashion-mnist":
            raise ConfigError(col, "is swept but only the Gaussian mixture uses it (dataset = fashion-mnist)")


#: Significant digits of a canonical sweep value (see :func:`canonical`).
CANONICAL_DIGITS = 12


def canonical(value: Any) -> Any:
    """A float rounded to :data:`CANONICAL_DIGITS` significant decimal digits (``-0.0`` -> ``0.0``),
    anything else unchanged: ``canonical(np.linspace(0, 1, 6)[1]) == 0.2``, so a value typed by hand
    and the same value computed by ``linspace`` name (and seed) the same sweep point."""
    if isinstance(value, float):
        return float(f"{value:.{CANONICAL_DIGITS}g}") + 0.0
    return value


def check_distinct_widths(columns: list[str] | tuple[str, ...], points: list[Mapping[str, Any]]) -> None:
    """Refuse a ``k_over_m`` sweep in which two values give the same width ``k = round(k_over_m m)``
    at the same values of the other columns (the rows would repeat one computation under two labels)."""
    if "k_over_m" not in columns:
        return
    others = [c for c in columns if c != "k_over_m"]
    seen: dict[tuple, Any] = {}
    for p in points:
        if p.get("k") is not None:
            return
        k = max(1, round(p["k_over_m"] * p["m"]))
        key = (*(repr(p[c]) for c in others), k)
        if key in seen and seen[key] != p["k_over_m"]:
            raise ConfigError("k_over_m", f"values {seen[key]} and {p['k_over_m']} both give the width k = {k} "
                              f"(m = {p['m']}): one computation would be labelled twice")
        seen.setdefault(key, p["k_over_m"])
