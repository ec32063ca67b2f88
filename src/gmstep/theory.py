"""The ``theory`` model: the network's training and test errors predicted without readout data.

Conditional on the learned first layer ``F^`` of a task, every data component ``q`` gives
Gaussian pre-activations ``h = F^ x ~ N(F^ mu_q, F^ Sigma_q F^T)``; :mod:`gmstep.theory_moments`
turns them into the exact moments ``S_q, t_q, e_q`` and :mod:`gmstep.theory_solver` into the
deterministic equivalent of the ridge readout (docs/THEORY.md). This module only assembles the
per-component Gaussians of a data source, from its low-rank structure (never an ``n x n``
matrix for a Gaussian mixture):

- Gaussian mixture: ``K_q = F^ F^T + (F^ Gamma_q) diag(theta_q) (F^ Gamma_q)^T``, means
  ``F^ mu_q``; regression target ``nu = xi^T x`` with ``Cov(h, nu) = F^ xi + (F^ Gamma_q)
  diag(theta_q) Gamma_q^T xi``, ``Var(nu) = ||xi||^2 + sum theta_q (Gamma_q^T xi)^2``,
  ``E[nu] = xi^T mu_q``; classification labels ``2q - 3``.
- Fashion-MNIST, ``x = s v + z`` (``s = sqrt(theta / trS)``) with ``v | class i`` of mean
  ``v_i`` and covariance ``C_i``: ``K_i = F^ F^T + s^2 (F^ R_i)(F^ R_i)^T`` (``R_i R_i^T = C_i``),
  means ``s F^ v_i``, labels ``-1, +1``. Exact for the ``gaussian`` source; for ``real`` images
  (the same class means and covariances) and ``cgan`` images (means and covariances of
  :data:`CGAN_SAMPLES` generated images per class, fixed seed) it is the Gaussian-equivalent
  prediction.

The mixture weights are the exact fractions of the fixed counts a data set holds (training set
of ``m``, test set of ``m_test``), so the prediction refers to the same data design as the
network's Monte Carlo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg

from . import data
from .activations import Activation
from .scratch import Scratch
from .theory_moments import IndexTarget, LabelTarget, Moments, component_moments
from .theory_solver import TheoryResult, solve

#: Generated images per class whose mean and covariance stand for a CGAN class.
CGAN_SAMPLES = 20_000


@dataclass(frozen=True)
class Component:
    """One data component seen through ``F^``: pre-activation covariance and mean, and target."""

    cov: np.ndarray
    mean: np.ndarray
    target: IndexTarget | LabelTarget


def mixture_components(problem: data.MixtureProblem, f_hat: np.ndarray, scratch: Scratch | None = None
                       ) -> list[Component]:
    """The Gaussian components of a Gaussian-mixture problem through ``F^`` (``k x n``); their
    covariances are work arrays of ``scratch`` (:mod:`gmstep.scratch`; fresh if ``None``)."""
    mix = problem.mixture
    f = np.asarray(f_hat, float)
    scratch = Scratch() if scratch is None else scratch
    ff = _gram(f, scratch)
    ger = linalg.get_blas_funcs("ger", (ff,))
    xi = None if problem.xi is None else np.asarray(problem.xi, float)
    fxi = None if xi is None else f @ xi
    out = []
    for c in range(mix.num_components):
        g, th = mix.spikes[c], mix.strengths[c]
        fg = f @ g
        cov = _work(scratch, f"cov{c}", len(f))
        np.copyto(cov, ff)  # K_q = F^ F^T + (F^ Gamma_q) diag(theta_q) (F^ Gamma_q)^T, rank one at a time
        for j in range(fg.shape[1]):
            ger(float(th[j]), fg[:, j], fg[:, j], a=cov.T, overwrite_a=1)  # in place (cov.T is Fortran)
        mu = mix.means[c] if mix.means is not None else None
        mean = f @ mu if mu is not None else np.zeros(len(f))
        if problem.task == "classification":
            target: IndexTarget | LabelTarget = LabelTarget(2.0 * (c + 1) - 3.0)
        else:
            assert xi is not None and fxi is not None  # a regression problem always has its teacher xi
            gx = g.T @ xi
            target = IndexTarget(
                cross=fxi + fg @ (th * gx),
                var=float(xi @ xi + np.sum(th * gx * gx)),
                mean=float(xi @ mu) if mu is not None else 0.0,
                delta=float(problem.delta),
            )
        out.append(Component(cov, mean, target))
    return out


def _work(scratch: Scratch, name: str, k: int) -> np.ndarray:
    return scratch.array(f"theory.{name}", (k, k))


def _gram(f: np.ndarray, scratch: Scratch) -> np.ndarray:
    """``F^ F^T`` (BLAS ``syrk``), in a work array."""
    return np.matmul(f, f.T, out=_work(scratch, "ff", len(f)))


def _class_statistics(problem: Any, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and a covariance root ``R`` (``R R^T = C``) of the prepared images of class index ``i``."""
    if problem.pair is not None:
        return problem.pair.class_mean(i), problem.pair.covariance_root(i)
    cache = problem.__dict__.setdefault("_theory_stats", {})
    if i not in cache:
        rng = np.random.default_rng([problem.classes[i], CGAN_SAMPLES, 7310])
        v = problem.images(i, CGAN_SAMPLES, rng)
        mean = v.mean(axis=0)
        v = v - mean
        w, vec = np.linalg.eigh(v.T @ v / len(v))
        cache[i] = (mean, vec * np.sqrt(np.clip(w, 0.0, None)))
    return cache[i]


def fashion_components(problem: Any, f_hat: np.ndarray, scratch: Scratch | None = None) -> list[Component]:
    """The two class Gaussians of a Fashion-MNIST problem through ``F^`` (labels -1, +1); their
    covariances are work arrays of ``scratch`` (fresh if ``None``)."""
    f = np.asarray(f_hat, float)
    scratch = Scratch() if scratch is None else scratch
    ff = _gram(f, scratch)
    s = problem.input_scale
    out = []
    for i, label in enumerate((-1.0, 1.0)):
        mean_v, root = _class_statistics(problem, i)
        fr = f @ root
        cov = np.matmul(fr, fr.T, out=_work(scratch, f"cov{i}", len(f)))  # K_i = F^ F^T + s^2 (F^ R_i)(F^ R_i)^T
        cov *= s * s
        cov += ff
        out.append(Component(cov, s * (f @ mean_v), LabelTarget(label)))
    return out


def components(problem: Any, f_hat: np.ndarray, scratch: Scratch | None = None) -> list[Component]:
    """The Gaussian components of ``problem`` through ``F^`` (covariances in ``scratch`` if given)."""
    if isinstance(problem, data.MixtureProblem):
        return mixture_components(problem, f_hat, scratch)
    return fashion_components(problem, f_hat, scratch)


def weights(problem: Any, m: int) -> np.ndarray:
    """Fractions of the ``m`` rows of a data set that belong to each component (fixed counts)."""
    if isinstance(problem, data.MixtureProblem):
        return data.component_counts(problem.mixture.ratios, m) / m
    return np.array([m // 2, m - m // 2], float) / m


def moments(problem: Any, f_hat: np.ndarray, act: str | Activation, scratch: Scratch | None = None
            ) -> list[Moments]:
    """``(S_q, t_q, e_q)`` of every component, ``S_q`` in work arrays of ``scratch``, valid until
    its next use (without one, of a fresh :class:`~gmstep.scratch.Scratch`: arrays of their own)."""
    scratch = Scratch() if scratch is None else scratch
    return [component_moments(act, c.cov, c.mean, c.target, out=_work(scratch, f"S{q}", len(c.cov)))
            for q, c in enumerate(components(problem, f_hat, scratch))]


def predict(
    problem: Any, f_hat: np.ndarray, act: str | Activation, m: int, lam: float, m_test: int | None = None,
    scratch: Scratch | None = None,
) -> TheoryResult:
    """The predicted training error (penalty included, factor 1/2) and test error of the ridge
    readout on ``m`` samples with penalty ``lambda``, for features ``sigma(F^ x) / sqrt(k)``.
    ``scratch`` (:mod:`gmstep.scratch`) keeps the ``k x k`` work arrays for the next call; the
    result holds none of them."""
    scratch = Scratch() if scratch is None else scratch
    mom = moments(problem, f_hat, act, scratch)
    m_test = 5 * m if m_test is None else m_test
    return solve(mom, weights(problem, m), m, lam, test_weights=weights(problem, m_test), scratch=scratch)
