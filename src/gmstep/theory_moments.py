"""Exact second moments of the features and the target, one Gaussian component at a time.

For one component ``x | q ~ N(mu_q, Sigma_q)`` and a fixed first layer ``F^`` the
pre-activations ``h = F^ x`` are Gaussian with covariance ``K = F^ Sigma_q F^T`` and mean
``m = F^ mu_q``. With ``phi = sigma(h) / sqrt(k)`` this module computes (docs/THEORY.md)

    S = E[phi phi^T | q]  (k x k, not centred),   t = E[phi y | q]  (k),   e = E[y^2 | q],

for a single-index target ``y = ReLU(nu) + delta eps`` with ``nu = xi^T x`` (``nu`` is jointly
Gaussian with ``h``: ``Cov(h_i, nu) = (F^ Sigma_q xi)_i``), or a label ``y = y_q`` constant on
the component. Every pair needs ``E[sigma(u) sigma(v)]`` for a bivariate normal ``(u, v)`` with
means ``(m_u, m_v)``, standard deviations ``(s_u, s_v)`` and correlation ``r``:

- ReLU, centred: the arc-cosine kernel ``s_u s_v J(r)``,
  ``J(r) = (sqrt(1 - r^2) + (pi - arccos r) r) / (2 pi)``;
- ReLU with means: ``E[ReLU(u) g(v)]`` with ``g(v) = E[ReLU(v) | u]`` in closed form
  (``a Phi(a / b) + b phi(a / b)``, ``a, b`` the conditional mean and standard deviation),
  integrated over ``u > 0`` by Gauss-Legendre on the half line (split at the kink of ``g`` and
  around it);
- erf, centred: ``(2 / pi) arcsin(2 C_uv / sqrt((1 + 2 C_uu)(1 + 2 C_vv)))``;
- linear: ``E[u g(v)] = m_u E[g(v)] + C_uv E[g'(v)]`` (Stein's lemma);
- anything else (tanh, sigmoid, GELU, erf with means, custom activations): Mehler's series
  ``sum_l c_l(u) c_l(v) r^l / l!`` with ``c_l = E[sigma(m + s z) He_l(z)]`` (1-D Gauss-Hermite),
  the diagonal exactly, and every pair whose truncation bound
  ``tail(u) tail(v) |r|^(L+1)`` (``tail^2 = E[sigma^2] - sum_{l<=L} c_l^2 / l!``) exceeds
  :data:`SERIES_TOL` recomputed by 2-D Gauss-Hermite quadrature. Against the ReLU target the
  same series with the exact ReLU coefficients, and conditioning on the target for the neurons
  whose bound exceeds the tolerance.

No ``n x n`` matrix is ever formed: the callers pass ``K``, ``m`` and the target's
cross-covariances, computed from the low-rank structure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special

from .activations import Activation, get
from .hermite import hermite_e
from .theory_quadrature import (
    WIDE_SCALE,
    composite_rule,
    gauss_hermite,
    gauss_legendre,
    norm_pdf,
    normal_expectation,
    zero_crossing,
)
from .theory_quadrature import neuron_expansion as expansion_of
from .theory_series import SERIES_TOL, MehlerSeries, block_diagonal, symmetric_by_rows

#: Terms of Mehler's series (degrees 0..SERIES_DEGREE).
SERIES_DEGREE = 30
#: Gauss-Hermite nodes per dimension of the 2-D fallback.
GH2_NODES = 96
#: Gauss-Legendre nodes on each piece of the half-line integrals (ReLU with means).
GL_NODES = 32
#: The half-line integrals stop this many standard deviations above their lower end (or 0).
_Z_MAX = 12.0


@dataclass(frozen=True)
class Moments:
    """``S = E[phi phi^T]`` (k x k), ``t = E[phi y]`` (k) and ``e = E[y^2]`` of one component."""

    S: np.ndarray  # noqa: N815 (the equations' name)
    t: np.ndarray
    e: float


@dataclass(frozen=True)
class IndexTarget:
    """``y = ReLU(nu) + delta eps``: ``cross = Cov(h, nu)`` (k), ``var = Var(nu)``, ``mean = E[nu]``."""

    cross: np.ndarray
    var: float
    mean: float
    delta: float = 0.0


@dataclass(frozen=True)
class LabelTarget:
    """``y = label`` on the whole component (classification)."""

    label: float


# ----------------------------------------------------------------------------- 1-D expectations


def relu_mean(m: npt.ArrayLike, s: npt.ArrayLike) -> np.ndarray:
    """``E[ReLU(m + s z)] = m Phi(m / s) + s phi(m / s)`` (``s >= 0``; ``s = 0`` gives ``ReLU(m)``)."""
    m, s = np.asarray(m, float), np.asarray(s, float)
    safe = np.where(s > 0, s, 1.0)
    x = m / safe
    out = m * special.ndtr(x) + s * norm_pdf(x)
    return np.where(s > 0, out, np.maximum(m, 0.0))


def relu_square(m: npt.ArrayLike, s: npt.ArrayLike) -> np.ndarray:
    """``E[ReLU(m + s z)^2] = (m^2 + s^2) Phi(m / s) + m s phi(m / s)``."""
    m, s = np.asarray(m, float), np.asarray(s, float)
    safe = np.where(s > 0, s, 1.0)
    x = m / safe
    out = (m * m + s * s) * special.ndtr(x) + m * s * norm_pdf(x)
    return np.where(s > 0, out, np.maximum(m, 0.0) ** 2)


def expect(act: Activation, m: np.ndarray, s: np.ndarray, power: int = 1) -> np.ndarray:
    """``E[sigma(m + s z)^power]`` per entry (closed forms for ReLU, linear, centred erf)."""
    m, s = np.asarray(m, float), np.asarray(s, float)
    name = _kind(act)
    if name == "relu":
        return relu_mean(m, s) if power == 1 else relu_square(m, s)
    if name == "linear":
        return m if power == 1 else m * m + s * s
    if name == "erf" and power == 1:
        return special.erf(m / np.sqrt(1.0 + 2.0 * s * s))
    return normal_expectation(act.fn, m, s, power)


def neuron_expansion(act: Activation, m: np.ndarray, s: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron, from one evaluation of ``sigma`` at the quadrature nodes: the Hermite
    coefficients ``c_l(i) = E[sigma(m_i + s_i z) He_l(z)]`` (``l <= degree``) and the second
    moment ``E[sigma(m_i + s_i z)^2]`` (:func:`gmstep.theory_quadrature.neuron_expansion`)."""
    return expansion_of(act.fn, m, s, degree)


def _kind(act: Activation) -> str:
    """Which closed form applies: the registered built-ins by identity, anything else generic."""
    for name in ("relu", "erf", "linear"):
        try:
            if get(name) is act:
                return name
        except Exception:  # noqa: BLE001 (a registry without the name)
            pass
    return "generic"


# ----------------------------------------------------------------------------- pair expectations


def arccos_j(r: np.ndarray) -> np.ndarray:
    """``J(r) = (sqrt(1 - r^2) + (pi - arccos r) r) / (2 pi)``: ``E[ReLU(u) ReLU(v)]`` for unit
    centred normals with correlation ``r``."""
    r = np.clip(r, -1.0, 1.0)
    return (np.sqrt(1.0 - r * r) + (np.pi - np.arccos(r)) * r) / (2.0 * np.pi)


def relu_pair(
    mu: np.ndarray | float, su: np.ndarray | float, mv: np.ndarray | float, sv: np.ndarray | float,
    r: np.ndarray | float,
) -> np.ndarray:
    """``E[ReLU(u) ReLU(v)]`` for bivariate normals with means, by the conditional closed form.

    ``u = mu + su z``, ``v | z ~ N(a(z), b^2)`` with ``a = mv + sv r z``, ``b = sv sqrt(1 - r^2)``:
    ``E = int_{z > -mu/su} (mu + su z) [a Phi(a/b) + b phi(a/b)] phi(z) dz``, by Gauss-Legendre on
    ``[z0, z_max]`` split at ``z*`` (where ``a = 0``, the kink when ``b -> 0``) and at
    ``z* +- 8 b / (sv |r|)`` (the band where ``g`` bends).
    All arguments broadcast together; ``su > 0`` is required.
    """
    mu, su, mv, sv, r = np.broadcast_arrays(*(np.asarray(v, float) for v in (mu, su, mv, sv, r)))
    r = np.clip(r, -1.0, 1.0)
    z0 = -mu / su
    z_hi = np.maximum(z0, 0.0) + _Z_MAX
    with np.errstate(divide="ignore", invalid="ignore"):
        kink = np.where(r * sv != 0, -mv / (r * sv), z0)
    b = sv * np.sqrt(np.maximum(1.0 - r * r, 0.0))
    # g bends within a few b / (sv |r|) of the kink: that band gets pieces of its own.
    with np.errstate(divide="ignore", invalid="ignore"):
        band = np.where(r * sv != 0, 8.0 * b / np.abs(r * sv), 0.0)
    cuts = [z0, np.clip(kink - band, z0, z_hi), np.clip(kink, z0, z_hi), np.clip(kink + band, z0, z_hi), z_hi]
    x, wl = gauss_legendre(GL_NODES)
    total = np.zeros(mu.shape)
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        half = 0.5 * (hi - lo)
        mid = 0.5 * (hi + lo)
        for xj, wj in zip(x, wl, strict=True):
            z = mid + half * xj
            a = mv + sv * r * z
            total += (wj * half) * (mu + su * z) * relu_mean(a, b) * norm_pdf(z)
    return total


def _relu_centred(cov: np.ndarray, s: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``s_i s_j J(r_ij)`` (``r = cov / (s s^T)``), diagonal ``s^2 / 2``: :func:`arccos_j` in
    place on the lower triangle, block by block (:func:`symmetric_by_rows`)."""

    def fill(i0: int, i1: int) -> np.ndarray:
        ss = s[i0:i1, None] * s[None, :i1]
        r = np.divide(cov[i0:i1, :i1], ss)
        np.clip(r, -1.0, 1.0, out=r)
        out = np.arccos(r)
        np.subtract(np.pi, out, out=out)
        out *= r
        np.multiply(r, r, out=r)
        np.subtract(1.0, r, out=r)
        np.maximum(r, 0.0, out=r)
        np.sqrt(r, out=r)
        out += r
        out *= ss
        out *= 1.0 / (2.0 * np.pi)
        out[block_diagonal(i0, i1)] = 0.5 * s[i0:i1] ** 2
        return out

    return symmetric_by_rows(len(s), fill, out)


def erf_pair_centred(cuu: np.ndarray, cvv: np.ndarray, cuv: np.ndarray) -> np.ndarray:
    """``E[erf(u) erf(v)] = (2 / pi) arcsin(2 C_uv / sqrt((1 + 2 C_uu)(1 + 2 C_vv)))`` (zero means)."""
    arg = 2.0 * cuv / np.sqrt((1.0 + 2.0 * cuu) * (1.0 + 2.0 * cvv))
    return (2.0 / np.pi) * np.arcsin(np.clip(arg, -1.0, 1.0))


def quad2(
    act_u: Activation, act_v: Activation, mu: np.ndarray, su: np.ndarray, mv: np.ndarray, sv: np.ndarray,
    r: np.ndarray, nodes: int = GH2_NODES,
) -> np.ndarray:
    """``E[sigma_u(u) sigma_v(v)]``, ``u = mu + su z1``, ``v = mv + sv (r z1 + sqrt(1 - r^2) z2)``:
    by 2-D Gauss-Hermite (``nodes^2`` points per pair) where both ``su`` and ``sv`` are at most
    :data:`~gmstep.theory_quadrature.WIDE_SCALE`; else by conditioning on ``z1``,
    ``E[sigma_u(u) E[sigma_v(v) | z1]]``, the inner expectation by
    :func:`~gmstep.theory_quadrature.normal_expectation` and the outer by the composite rule
    around both zero crossings (``-mu / su`` and ``-mv / (sv r)``)."""
    mu, su, mv, sv, r = (np.atleast_1d(np.asarray(v, float)) for v in (mu, su, mv, sv, r))
    z, w = gauss_hermite(nodes)
    out = np.empty(len(mu))
    c = np.sqrt(np.maximum(1.0 - r * r, 0.0))
    wide = np.maximum(su, sv) > WIDE_SCALE
    narrow = np.nonzero(~wide)[0]
    for start in range(0, len(narrow), 512):
        sl = narrow[start:start + 512]
        fu = act_u.fn(mu[sl, None] + su[sl, None] * z)  # pairs x nodes (z1)
        # v at (z1, z2): pairs x nodes x nodes
        v = mv[sl, None, None] + sv[sl, None, None] * (r[sl, None, None] * z[:, None] + c[sl, None, None] * z)
        inner = act_v.fn(v) @ w  # E over z2: pairs x nodes(z1)
        out[sl] = (fu * inner) @ w
    wide_pairs = np.nonzero(wide)[0]
    for start in range(0, len(wide_pairs), 8):
        i = wide_pairs[start:start + 8]
        rv = sv[i] * r[i]
        centres = np.stack([zero_crossing(mu[i], su[i]), zero_crossing(mv[i], rv)], axis=1)
        z1, w1 = composite_rule(centres, np.stack([su[i], np.abs(rv)], axis=1))
        inner = normal_expectation(act_v.fn, mv[i, None] + rv[:, None] * z1, (sv[i] * c[i])[:, None])
        out[i] = np.sum(act_u.fn(mu[i, None] + su[i, None] * z1) * inner * w1, axis=1)
    return out


def relu_index_cross(
    act: Activation, m: np.ndarray, s: np.ndarray, mean_nu: float, s_nu: float, r: np.ndarray,
    expansion: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``E[sigma(u_i) ReLU(nu)]`` for every neuron (``u_i = m_i + s_i z``, ``Corr(u_i, nu) = r_i``;
    ``expansion``: :func:`neuron_expansion` to degree :data:`SERIES_DEGREE`, if at hand)."""
    kind = _kind(act)
    m, s, r = np.asarray(m, float), np.asarray(s, float), np.asarray(r, float)
    if kind == "relu":
        if not np.any(m) and mean_nu == 0.0:
            return s * s_nu * arccos_j(r)
        return relu_pair(mean_nu, s_nu, m, s, r)
    if kind == "linear":  # E[u ReLU(nu)] = m E[ReLU(nu)] + Cov(u, nu) P(nu > 0)
        return m * relu_mean(mean_nu, s_nu) + r * s * s_nu * special.ndtr(mean_nu / s_nu)
    # Mehler's series with the exact ReLU coefficients d_l = E[ReLU(mean + s_nu z) He_l(z)]:
    # d_0 = E[ReLU], d_1 = s_nu Phi(mean / s_nu), d_l = s_nu phi(z0) He_{l-2}(z0) (z0 = -mean / s_nu).
    deg = SERIES_DEGREE
    z0 = -mean_nu / s_nu
    d = np.empty(deg + 1)
    d[0] = float(relu_mean(mean_nu, s_nu))
    d[1] = s_nu * float(special.ndtr(-z0))
    d[2:] = s_nu * float(norm_pdf(np.array(z0))) * hermite_e(np.array([z0]), deg - 2)[:, 0]
    fact = np.array([math.factorial(j) for j in range(deg + 1)], dtype=float)
    coef, second = expansion if expansion is not None else neuron_expansion(act, m, s, deg)
    powers = r[:, None] ** np.arange(deg + 1)
    out = (coef * powers) @ (d / fact)
    tail_d = math.sqrt(max(float(relu_square(mean_nu, s_nu)) - float(np.sum(d * d / fact)), 0.0))
    tail_c = np.sqrt(np.maximum(second - (coef * coef / fact).sum(axis=1), 0.0))
    bad = tail_c * tail_d * np.abs(r) ** (deg + 1) > SERIES_TOL
    if np.any(bad):
        out[bad] = _cross_by_conditioning(act, m[bad], s[bad], mean_nu, s_nu, r[bad])
    return out


def _cross_by_conditioning(
    act: Activation, m: np.ndarray, s: np.ndarray, mean_nu: float, s_nu: float, r: np.ndarray
) -> np.ndarray:
    """``E[sigma(u) ReLU(nu)]`` by conditioning on ``nu = mean_nu + s_nu z``:
    ``E[ReLU(nu) E[sigma(u) | z]]`` with ``u | z ~ N(m + s r z, s^2 (1 - r^2))``, the outer
    expectation by the composite rule around the kink ``-mean_nu / s_nu`` and the zero crossing
    ``-m / (s r)``, the inner by :func:`~gmstep.theory_quadrature.normal_expectation`."""
    m, s, r = (np.atleast_1d(np.asarray(v, float)) for v in (m, s, r))
    b = s * np.sqrt(np.maximum(1.0 - r * r, 0.0))
    out = np.empty(len(m))
    for start in range(0, len(m), 8):
        i = slice(start, start + 8)
        sr = s[i] * r[i]
        kink = np.full(len(sr), -mean_nu / s_nu)
        centres = np.stack([kink, zero_crossing(m[i], sr)], axis=1)
        z, w = composite_rule(centres, np.stack([np.ones(len(sr)), np.abs(sr)], axis=1))
        target = np.maximum(mean_nu + s_nu * z, 0.0)
        out[i] = np.sum(target * expect(act, m[i, None] + sr[:, None] * z, b[i, None]) * w, axis=1)
    return out


def pair_matrix(act: Activation, cov: np.ndarray, mean: np.ndarray,
                expansion: tuple[np.ndarray, np.ndarray] | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """``E[sigma(h) sigma(h)^T]`` (k x k) for ``h ~ N(mean, cov)`` (see the module docstring);
    ``expansion``: :func:`neuron_expansion` of the neurons to degree :data:`SERIES_DEGREE`, if at
    hand; written in ``out`` (``k x k`` float64, not ``cov``) if given."""
    kind = _kind(act)
    s = np.sqrt(np.maximum(np.diag(cov), 0.0))
    if np.any(s == 0):
        s = np.where(s == 0, 1e-300, s)
    centred = not np.any(mean)
    k = len(s)
    if kind == "linear":
        return np.add(cov, np.outer(mean, mean), out=out)
    if kind == "relu" and centred:
        return _relu_centred(cov, s, out)
    if kind == "erf" and centred:
        d = np.diag(cov)
        return symmetric_by_rows(
            k, lambda i0, i1: erf_pair_centred(d[i0:i1, None], d[None, :i1], cov[i0:i1, :i1]), out)
    if kind == "relu":
        r = cov / np.outer(s, s)
        np.fill_diagonal(r, 1.0)
        iu = np.triu_indices(k, 1)
        vals = relu_pair(mean[iu[0]], s[iu[0]], mean[iu[1]], s[iu[1]], r[iu])
        full = np.empty((k, k)) if out is None else out
        full[iu] = vals
        full[iu[1], iu[0]] = vals
        np.fill_diagonal(full, relu_square(mean, s))
        return full
    # Mehler's series with the exact diagonal and the 2-D rule where the series is too slow.
    coef, second = expansion if expansion is not None else neuron_expansion(act, mean, s, SERIES_DEGREE)
    series = MehlerSeries(coef, second)
    bad: list[tuple[np.ndarray, np.ndarray]] = []

    def fill(i0: int, i1: int) -> np.ndarray:
        r = cov[i0:i1, :i1] / (s[i0:i1, None] * s[None, :i1])
        r[block_diagonal(i0, i1)] = 1.0
        values, pairs = series.block(i0, i1, r, quadrature=True)
        bad.append(pairs)
        return values

    out = symmetric_by_rows(k, fill, out)
    ib, jb = (np.concatenate(v) for v in zip(*bad, strict=True))
    if len(ib):
        vals = quad2(act, act, mean[ib], s[ib], mean[jb], s[jb], cov[ib, jb] / (s[ib] * s[jb]))
        out[ib, jb] = vals
        out[jb, ib] = vals
    np.fill_diagonal(out, second)
    return out


# ----------------------------------------------------------------------------- one component


def component_moments(
    act: str | Activation, cov: np.ndarray, mean: np.ndarray, target: IndexTarget | LabelTarget,
    out: np.ndarray | None = None,
) -> Moments:
    """``S``, ``t``, ``e`` of one component whose pre-activations are ``N(mean, cov)`` (k of them);
    ``S`` written in ``out`` (``k x k`` float64, not ``cov``) if given."""
    act = get(act)
    k = cov.shape[0]
    mean = np.asarray(mean, float)
    s = np.sqrt(np.maximum(np.diag(cov), 0.0))
    s = np.where(s == 0, 1e-300, s)
    kind = _kind(act)
    # Mehler's series (pairs, and the target's cross moment) from one evaluation of sigma.
    expansion = neuron_expansion(act, mean, s, SERIES_DEGREE) if kind not in ("relu", "linear") else None
    pairs = pair_matrix(act, cov, mean, expansion, out)
    if isinstance(target, LabelTarget):
        t = target.label * expect(act, mean, s)
        e = float(target.label) ** 2
    else:
        s_nu = math.sqrt(max(target.var, 0.0))
        if s_nu == 0.0:
            raise ValueError("the target direction has zero variance")
        r = np.clip(np.asarray(target.cross, float) / (s * s_nu), -1.0, 1.0)
        t = relu_index_cross(act, mean, s, float(target.mean), s_nu, r, expansion)
        e = float(relu_square(target.mean, s_nu)) + target.delta**2
    return Moments(np.divide(pairs, k, out=pairs), t / math.sqrt(k), e)  # in place: pairs is ours
