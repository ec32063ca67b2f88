"""The paper's computation done the straightforward way: an independent cross-check of gmstep's
engine (``tests/test_naive_reference.py``) and the baseline of ``benchmarks/run.py``.

What "straightforward" means here (each point is something the engine avoids):

- for every task, every activation and every model (network or Hermite) a full separate pass:
  structure, the three data sets, ``F`` and ``a``, the gradient step, features, readout, test
  error; nothing is shared between activations, models, sweep points or trials;
- dense ``n x n`` structure: the covariances ``Sigma_c = I + Gamma_c diag(theta_c) Gamma_c^T``
  as dense matrices, their symmetric square roots by a dense eigendecomposition, samples
  ``x = Sigma_c^(1/2) z + mu_c`` by dense products, and ``||Sigma||_op`` by the eigenvalues of the
  dense mixture covariance;
- the paper's orientation (``Phi`` is ``k x m``) and the ridge readout always through the
  ``k x k`` system ``(Phi Phi^T + lambda m I_k) a = Phi y``, even when ``k > m``;
- whole arrays, no blocking: the test features (``k x m_test``) are formed at once; BLAS runs
  with its default threads.

Independence. Only the parameter grid (``Experiment.points()``) and the raw spike directions are
taken from gmstep: the orthonormal ``n x d`` columns come from :func:`gmstep.data.haar_columns`
because matching the engine's random draws exactly needs its QR-and-sign-fix sequence. Everything
else (derived parameters, random streams, covariances, sampling, teacher, network, Hermite
coefficients by quadrature, the polynomial by Clenshaw's rule, ridge, errors) is written here
from the specification (``docs`` and the engine's documented stream keys), so that the test
suite can compare the two implementations: on the same random draws they agree to rounding.

Use: ``naive_task(exp, point_index, trial)`` returns the same rows (``status`` aside) as
``gmstep.engine.task.run_task``; ``naive_run(exp)`` runs every task. Gaussian-mixture data only.
"""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

import numpy as np
from scipy import special

from gmstep.data import haar_columns

# ----------------------------------------------------------------------------- parameters


def derived(params: dict[str, Any]) -> dict[str, Any]:
    """The derived quantities of docs/MATH.md sections 1-3 for one sweep point."""
    p = dict(params)
    n, m = p["n"], p["m"]
    p["k"] = p["k"] if p["k"] is not None else max(1, round(p["k_over_m"] * m))
    p["m_grad"] = p["m_grad"] or m
    p["m_test"] = p["m_test"] or 5 * m
    if p["eta"] is None:
        exponent = p["eta_exponent"] if p["eta_exponent"] is not None else p["alpha"] * p["beta"]
        p["eta"] = float(n**exponent)
    if p["theta"] is None:
        p["theta"] = float(n ** (p["beta"] * (1.0 - p["alpha"])))
    if p["degree"] == "auto":
        beta = p["beta"]
        p["degree"] = 4 if beta >= 1 else int(min(max(math.ceil(beta / (1 - beta) - 1e-9), 1), 4))
    p["ratios"] = p["ratios"] or [p["rho"], 1.0 - p["rho"]]
    c = len(p["ratios"])
    p["rank"] = p["rank"] if isinstance(p["rank"], list) else [p["rank"]] * c
    return p


# ----------------------------------------------------------------------------- random streams


def _stable_id(value: Any) -> int:
    return zlib.crc32(json.dumps(value, sort_keys=True, default=repr).encode())


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


# ----------------------------------------------------------------------------- data, densely


def structure(p: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Spike directions, strengths, means, dense covariances and their square roots, teacher."""
    n, ratios, ranks, a = p["n"], p["ratios"], p["rank"], p["alignment"]
    g1 = haar_columns(n, ranks[0], rng)
    spikes = [g1]
    for c in range(1, len(ratios)):
        other = haar_columns(n, ranks[c], rng, avoid=g1)
        gc = other.copy()
        j = min(ranks[0], ranks[c])
        gc[:, :j] = a * g1[:, :j] + math.sqrt(max(1.0 - a * a, 0.0)) * other[:, :j]
        spikes.append(gc)
    strengths = []
    for c in range(len(ratios)):
        t = np.full(ranks[c], p["theta"])
        if p["spikes"] == "random":
            t = t * rng.uniform(0.0, 1.0, size=ranks[c])
        strengths.append(t)
    if p["spikes"] == "random":
        total = strengths[0].sum()
        for c in range(1, len(ratios)):
            s = strengths[c].sum()
            strengths[c] = strengths[c] * (total / s) if s > 0 else np.full(ranks[c], total / ranks[c])
    means = np.zeros((len(ratios), n))
    if p["mean_norm"] > 0:
        dirs = rng.standard_normal((len(ratios), n))
        means = p["mean_norm"] * dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    covs = [np.eye(n) + g @ np.diag(t) @ g.T for g, t in zip(spikes, strengths, strict=True)]
    roots = []
    for cov in covs:
        w, v = np.linalg.eigh(cov)
        roots.append((v * np.sqrt(np.maximum(w, 0.0))) @ v.T)
    xi = None
    if p["task"] == "regression":
        if p["target"] == "spike":
            xi = sum(g[:, int(np.argmax(t))] for g, t in zip(spikes, strengths, strict=True))
        else:
            xi = rng.standard_normal(n)
        mixture_cov = sum(r * cov for r, cov in zip(ratios, covs, strict=True))
        op_norm = np.linalg.eigvalsh(mixture_cov)[-1]
        xi = xi / (np.linalg.norm(xi) * math.sqrt(op_norm))
    tr = float(np.trace(covs[0]))
    return {"roots": roots, "means": means, "xi": xi, "tr": tr, "ratios": ratios}


def sample(p: dict[str, Any], s: dict[str, Any], m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``m`` samples (rows), exact component counts, ``x = Sigma_c^(1/2) z + mu_c``."""
    ratios = s["ratios"]
    counts = [int(r * m + 1e-9) for r in ratios[:-1]]
    counts.append(m - sum(counts))
    z = rng.standard_normal((m, p["n"]))
    x = np.empty_like(z)
    comp = np.repeat(np.arange(len(ratios)), counts)
    for c in range(len(ratios)):
        rows = comp == c
        x[rows] = z[rows] @ s["roots"][c] + s["means"][c]
    if p["task"] == "classification":
        y = 2.0 * (comp + 1) - 3.0
    else:
        y = np.maximum(x @ s["xi"], 0.0)
        if p["delta"] > 0:
            y = y + p["delta"] * rng.standard_normal(m)
    return x, y


# ----------------------------------------------------------------------------- network, Hermite

ACTIVATIONS = {
    "relu": (lambda u: np.maximum(u, 0.0), lambda u: (u > 0).astype(float)),
    "tanh": (np.tanh, lambda u: 1.0 / np.cosh(u) ** 2),
    "sigmoid": (special.expit, lambda u: special.expit(u) * special.expit(-u)),
    "erf": (special.erf, lambda u: 2.0 / math.sqrt(math.pi) * np.exp(-u * u)),
    "sin": (np.sin, np.cos),
}


def hermite_coefficients(sigma, b: float, degree: int, nodes: int) -> tuple[np.ndarray, float]:
    """``h_i = E[sigma(b z) He_i(z)] / i!`` and ``h_{>l}``, by Gauss-Hermite quadrature."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / math.sqrt(2.0 * math.pi)
    he = np.polynomial.hermite_e.hermevander(z, degree)  # columns He_0 .. He_l
    values = sigma(b * z)
    h = np.array([np.sum(w * values * he[:, i]) / math.factorial(i) for i in range(degree + 1)])
    second = float(np.sum(w * values**2))
    tail = math.sqrt(max(second - sum(math.factorial(i) * h[i] ** 2 for i in range(degree + 1)), 0.0))
    return h, tail


def one_pass(p: dict[str, Any], point: dict[str, Any], trial: int, activation: str,
             model: str) -> tuple[float, float, float, float]:
    """Training and test error of one model of one activation, and the fractions of training and
    test points whose predicted sign is not the label's, computed from scratch."""
    seed = p["seed"]
    # Structure and data: (point_id, trial_id) by the redraw policy.
    ident = (0, 0) if p["redraw"] == "once" else (_stable_id(point), trial if p["redraw"] == "trial" else 0)
    s = structure(p, _stream(seed, 0, *ident, 0))
    xg, yg = sample(p, s, p["m_grad"], _stream(seed, 0, *ident, 1))
    x, y = sample(p, s, p["m"], _stream(seed, 0, *ident, 2))
    xt, yt = sample(p, s, p["m_test"], _stream(seed, 0, *ident, 3))
    n, k, m = p["n"], p["k"], p["m"]
    init = _stream(seed, 1, 0 if p["share_init"] else _stable_id(point), trial)
    f = init.standard_normal((k, n)) / math.sqrt(s["tr"])
    a = init.standard_normal(k) / math.sqrt(k)
    sigma, dsigma = ACTIVATIONS[activation]
    # The gradient step, paper orientation: U = F X~^T is k x m~.
    u = f @ xg.T
    r = yg - a @ sigma(u) / math.sqrt(k)
    grad = -((np.outer(a, r) * dsigma(u)) @ xg) / (p["m_grad"] * math.sqrt(k))
    f_hat = f - p["eta"] * grad
    if model == "nn":
        def features(x_: np.ndarray, noise_rng) -> np.ndarray:  # noqa: ARG001
            return sigma(f_hat @ x_.T) / math.sqrt(k)
    else:
        b = p["hermite_scale"] or math.sqrt(n / s["tr"])
        h, tail = hermite_coefficients(sigma, b, p["degree"], p["hermite_nodes"])

        def features(x_: np.ndarray, noise_rng) -> np.ndarray:
            pre = f_hat @ x_.T
            phi = np.polynomial.hermite_e.hermeval(pre / b, h)
            if tail > 0:
                phi = phi + tail * noise_rng.standard_normal((x_.shape[0], k)).T  # drawn sample-major
            return phi / math.sqrt(k)
    noise = _stream(seed, 2, _stable_id(point), trial, _stable_id(activation))
    phi = features(x, noise)  # k x m
    lam = p["lambda"]
    a_hat = np.linalg.solve(phi @ phi.T + lam * m * np.eye(k), phi @ y)
    pred = phi.T @ a_hat
    train = float(np.sum((y - pred) ** 2) / (2 * m) + lam / 2 * np.sum(a_hat**2))
    phi_t = features(xt, noise)  # k x m_test, all at once
    pred_t = phi_t.T @ a_hat
    test = float(np.sum((yt - pred_t) ** 2) / (2 * p["m_test"]))
    return train, test, float(np.mean((pred > 0) != (y > 0))), float(np.mean((pred_t > 0) != (yt > 0)))


def naive_task(exp, point_index: int, trial: int) -> list[dict[str, Any]]:
    """The rows of one task (as ``run_task`` without ``status``), one full pass per row."""
    point = exp.points()[point_index]
    params = {**exp.params, **point}
    if params["dataset"] != "gmm":
        raise ValueError("the naive reference covers Gaussian-mixture data only")
    p = derived(params)
    rows = []
    for activation in p["activations"]:
        for model in p["models"]:
            train, test, train01, test01 = one_pass(p, point, trial, activation, model)
            classify = p["task"] == "classification"
            rows.append({**point, "activation": activation, "model": model, "trial": trial,
                         "train_error": train, "test_error": test,
                         "train_misclassification": train01 if classify else None,
                         "test_misclassification": test01 if classify else None})
    return rows


def naive_run(exp) -> list[dict[str, Any]]:
    """Every task of ``exp``, in canonical order."""
    return [row for point_index, trial in exp.tasks() for row in naive_task(exp, point_index, trial)]
