"""The paper's figures as experiments (docs/MATH.md §4), each with a reduced ``--quick`` variant.

Common to all unless stated: lambda = 1e-4, delta = 0, m~ = m, m_test = 5 m, activations
ReLU/tanh/sigmoid, models network and Hermite, beta = 3/4 - 0.01, alpha = 1/2, k = m, C = 2,
rho = 1/2, d_1 = d_2 = 1, alignment 0, regression target, degree 3, n = m = 1000, 20 trials.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import HERMITE, NN, THEORY
from .errors import ConfigError
from .experiment import Experiment

COMMON: dict[str, Any] = {
    "lambda": 1e-4, "delta": 0.0, "activations": ["relu", "tanh", "sigmoid"],
    "models": [NN, HERMITE], "beta": 0.74, "alpha": 0.5, "k_over_m": 1.0, "rho": 0.5,
    "rank": 1, "alignment": 0.0, "task": "regression", "degree": 3, "n": 1000, "m": 1000,
    "trials": 20,
}
FASHION: dict[str, Any] = {
    **COMMON, "dataset": "fashion-mnist", "task": "classification", "n": 784, "m": 500,
    "beta": 1.0, "alpha": 0.0, "degree": 4, "classes": [0, 1], "redraw": "once",
}

WIDTHS = [0.1, 0.3, 0.4, 0.5, 0.7, 0.9, 1.0, 1.1, 1.5, 2.0, 3.0, 4.0, 5.0]
FASHION_WIDTHS = [0.01, *WIDTHS]
#: 100 log-spaced widths from 0.1 to 2 (4 significant digits): the theory-only width sweep.
THEORY_WIDTHS = [float(f"{v:.4g}") for v in np.geomspace(0.1, 2.0, 100)]


def _lin(a: float, b: float, num: int) -> list[float]:
    return [float(v) for v in np.linspace(a, b, num)]


def _beta_preset(alpha: float, redraw: str, fig: str, alpha_text: str) -> dict[str, Any]:
    """Generalization error vs beta at a fixed alpha, Hermite degree by the rule (docs/MATH.md §3)."""
    return {
        "description": f"{fig}: generalization error vs beta (alpha = {alpha:g}; degree by the rule)",
        "params": {**COMMON, "alpha": alpha, "degree": "auto", "redraw": redraw},
        "sweep": {"beta": _lin(0, 1, 10)},
        "plot": {"xlabel": r"$\beta$", "title": rf"{fig}: generalization error vs. $\beta$ ($\alpha = {alpha_text}$)"},
        "quick": _QUICK_LINE,
    }


#: Reduced variants (``--quick``): each runs in under a minute on 2 cores shared with other work
#: (measured 12-29 s; see docs/REPRODUCING.md) and still shows its figure's shape.
_QUICK_LINE = {"params": {"n": 500, "m": 500, "trials": 6}}
_QUICK_WIDTH = {"params": {"n": 400, "m": 400, "trials": 6}}
_QUICK_GRID = {"params": {"n": 240, "m": 300, "trials": 3},
               "sweep": {"alpha": _lin(0, 1, 15), "beta": _lin(0, 1, 15)}}
_QUICK_FASHION = {"params": {"m": 200, "trials": 2}}

#: Presets whose runs are those of another preset (same parameters, sweep and seed, so the same
#: rows): fig6 plots the training error of fig1a's runs; fig5b (alpha = 1/2) is fig1c.
SAME_RUNS = {"fig6": "fig1a", "fig5b": "fig1c", "fig7a": "fig3a"}

SPECS: dict[str, dict[str, Any]] = {
    "fig1a": {
        "description": "Fig. 1a: generalization error vs width k/m (structure and data drawn once)",
        "params": {**COMMON, "redraw": "once"},
        "sweep": {"k_over_m": WIDTHS},
        "plot": {"xlabel": "width $k/m$", "title": "Fig. 1a: generalization error vs. width"},
        "quick": _QUICK_WIDTH,
    },
    "fig6": {
        "description": "Fig. 6: training error vs width k/m (the runs of fig1a)",
        "params": {**COMMON, "redraw": "once"},
        "sweep": {"k_over_m": WIDTHS},
        "plot": {"xlabel": "width $k/m$", "metric": "train_error",
                 "title": "Fig. 6: training error vs. width (runs of Fig. 1a)"},
        "quick": _QUICK_WIDTH,
    },
    "fig1b": {
        "description": "Fig. 1b: generalization error vs alpha (learning rate n^(alpha beta))",
        "params": {**COMMON, "redraw": "point"},
        "sweep": {"alpha": _lin(0, 1, 20)},
        "plot": {"xlabel": r"$\alpha$", "title": r"Fig. 1b: generalization error vs. $\alpha$"},
        "quick": {**_QUICK_LINE, "sweep": {"alpha": _lin(0, 1, 11)}},
    },
    "fig1c": _beta_preset(0.5, "point", "Fig. 1c", "1/2"),
    "fig5a": _beta_preset(0.0, "point", "Fig. 5a", "0"),
    "fig5b": _beta_preset(0.5, "point", "Fig. 5b", "1/2"),
    # alpha = 1: theta = n^(beta (1 - alpha)) = 1 for every beta, so one structure and one set
    # of data sets serve the whole sweep (only the learning rate n^beta changes).
    "fig5c": _beta_preset(1.0, "once", "Fig. 5c", "1"),
    "fig2a": {
        "description": "Fig. 2a: classification error vs mixture ratio rho",
        "params": {**COMMON, "task": "classification", "redraw": "point"},
        "sweep": {"rho": _lin(0, 1, 10)},
        "plot": {"xlabel": r"mixture ratio $\rho$", "title": "Fig. 2a: classification error vs. mixture ratio",
                 "ylabel": "generalization error (labels $\\pm 1$)"},
        "quick": _QUICK_LINE,
    },
    "fig2b": {
        "description": "Fig. 2b: regression error vs alignment of the components' spikes",
        "params": {**COMMON, "redraw": "trial"},
        "sweep": {"alignment": _lin(-1, 1, 20)},
        "plot": {"xlabel": "alignment $a$ of the two components' spikes",
                 "title": "Fig. 2b: generalization error vs. alignment"},
        "quick": {"params": {"n": 400, "m": 400, "trials": 10}, "sweep": {"alignment": _lin(-1, 1, 11)}},
    },
    "fig2c": {
        "description": "Fig. 2c: regression error vs covariance rank d (random spike strengths)",
        "params": {**COMMON, "spikes": "random", "trials": 100, "redraw": "trial"},
        "sweep": {"rank": list(range(1, 11))},
        "plot": {"xlabel": "covariance rank $d = d_1 = d_2$",
                 "title": "Fig. 2c: generalization error vs. rank (random spikes)"},
        "quick": {"params": {"n": 300, "m": 300, "trials": 24}},
    },
    "fig4a": {
        "description": "Fig. 4a: ReLU network generalization error over alpha x beta (spike-aligned target)",
        "params": {**COMMON, "n": 400, "m": 500, "activations": ["relu"], "models": [NN],
                   "target": "spike", "redraw": "point"},
        "sweep": {"alpha": _lin(0, 1, 30), "beta": _lin(0, 1, 30)},
        "plot": {"kind": "heatmap", "metric": "test_error",
                 "title": "Fig. 4a: ReLU network error (spike-aligned target)"},
        "quick": _QUICK_GRID,
    },
    "fig4b": {
        "description": "Fig. 4b: relative gap |E_nn - E_lin| / E_nn to the degree-1 Hermite model over alpha x beta",
        "params": {**COMMON, "n": 400, "m": 500, "activations": ["relu"], "models": [NN, HERMITE],
                   "degree": 1, "target": "spike", "redraw": "point"},
        "sweep": {"alpha": _lin(0, 1, 30), "beta": _lin(0, 1, 30)},
        "plot": {"kind": "heatmap", "metric": "gap",
                 "title": "Fig. 4b: ReLU network vs. its degree-1 Hermite model"},
        "quick": _QUICK_GRID,
    },
    "fig3a": {
        "description": "Fig. 3a: Fashion-MNIST T-shirt/top vs Trouser, error vs width k/m",
        "params": {**FASHION},
        "sweep": {"k_over_m": FASHION_WIDTHS},
        "plot": {"xlabel": "width $k/m$", "title": "Fig. 3a: Fashion-MNIST T-shirt/top vs. Trouser"},
        "quick": _QUICK_FASHION,
    },
    "fig7a": {
        "description": "Fig. 7a: Fashion-MNIST T-shirt/top vs Trouser, error vs width k/m",
        "params": {**FASHION},
        "sweep": {"k_over_m": FASHION_WIDTHS},
        "plot": {"xlabel": "width $k/m$", "title": "Fig. 7a: Fashion-MNIST T-shirt/top vs. Trouser"},
        "quick": _QUICK_FASHION,
    },
    "fig3b": {
        "description": "Fig. 3b: Fashion-MNIST Sandal vs Ankle boot, error vs width k/m",
        "params": {**FASHION, "classes": [5, 9]},
        "sweep": {"k_over_m": FASHION_WIDTHS},
        "plot": {"xlabel": "width $k/m$", "title": "Fig. 3b: Fashion-MNIST Sandal vs. Ankle boot"},
        "quick": _QUICK_FASHION,
    },
    "fig7b": {
        "description": "Fig. 7b: Fashion-MNIST 0 vs 1, error vs learning-rate exponent e (eta = n^e)",
        "params": {**FASHION, "degree": 6, "share_init": True},
        "sweep": {"eta_exponent": _lin(0, 1, 10)},
        "plot": {"xlabel": r"$e$ ($\eta = n^e$)", "title": "Fig. 7b: Fashion-MNIST, error vs. learning rate",
                 "models": [NN], "ylim": [0.0, 1.0]},
        "quick": _QUICK_FASHION,
    },
    "fig8a": {
        "description": "Fig. 8a: as fig3a with common centring (non-zero-mean mixture), lambda = 1e-5",
        "params": {**FASHION, "centering": "common", "lambda": 1e-5, "trials": 50},
        "sweep": {"k_over_m": FASHION_WIDTHS},
        "plot": {"xlabel": "width $k/m$", "title": "Fig. 8a: as Fig. 3a, common centring",
                 "xlim": [0.6, 5.1]},
        "quick": _QUICK_FASHION,
    },
    "fig8b": {
        "description": "Fig. 8b: as fig3b with common centring (non-zero-mean mixture), lambda = 1e-5",
        "params": {**FASHION, "classes": [5, 9], "centering": "common", "lambda": 1e-5, "trials": 20},
        "sweep": {"k_over_m": FASHION_WIDTHS},
        "plot": {"xlabel": "width $k/m$", "title": "Fig. 8b: as Fig. 3b, common centring",
                 "xlim": [0.6, 5.1]},
        "quick": _QUICK_FASHION,
    },
    "theory-width": {
        "description": "Theory curves: fig1a's width sweep with 100 widths k/m in [0.1, 2] (log-spaced), "
                       "theory only (docs/THEORY.md)",
        # share_init: the F of a smaller width is the first rows of a larger one's (one draw per
        # trial), so the curve is smooth in k/m rather than redrawn at every width.
        "params": {**COMMON, "models": [THEORY], "redraw": "once", "trials": 2, "share_init": True},
        "sweep": {"k_over_m": THEORY_WIDTHS},
        "plot": {"xlabel": "width $k/m$", "logx": True,
                 "title": "Theory: generalization error vs. width (100 widths)"},
        "quick": {"params": {"n": 300, "m": 300, "trials": 1}, "sweep": {"k_over_m": THEORY_WIDTHS[::4]}},
    },
}

SYNTHETIC = ("fig1a", "fig1b", "fig1c", "fig2a", "fig2b", "fig2c", "fig4a", "fig4b",
             "fig5a", "fig5b", "fig5c", "fig6")
FASHION_PRESETS = ("fig3a", "fig3b", "fig7a", "fig7b", "fig8a", "fig8b")
#: Presets of the theory model alone (what Monte Carlo cannot afford at the same resolution).
THEORY_PRESETS = ("theory-width",)


def names() -> list[str]:
    """Preset names in the paper's order."""
    return list(SPECS)


def describe(name: str) -> str:
    """The preset's one-line description."""
    return SPECS[_check(name)]["description"]


def same_runs(name: str) -> str | None:
    """The preset whose runs ``name`` shares (``"fig1a"`` for ``"fig6"``, ``"fig1c"`` for
    ``"fig5b"``), else None.

    Both presets have the same parameters, sweep and seed, hence the same rows; a caller that has
    the other preset's complete results may re-plot them instead of running again."""
    return SAME_RUNS.get(_check(name))


def _check(name: str) -> str:
    if name not in SPECS:
        raise ConfigError("preset", f"unknown preset {name!r}; allowed: {', '.join(names())}, all")
    return name


def get(name: str, quick: bool = False) -> Experiment:
    """The preset as an :class:`Experiment` (the reduced variant with ``quick``)."""
    spec = SPECS[_check(name)]
    params = dict(spec["params"])
    sweep = dict(spec["sweep"])
    if quick:
        params.update(spec["quick"].get("params", {}))
        sweep.update(spec["quick"].get("sweep", {}))
    # The paper's presets draw in the paper's style (docs/MATH.md §4); the axes are linear as published.
    plot = {"style": "paper", **spec.get("plot", {})}
    return Experiment.create(name, params, sweep, plot, spec["description"])
