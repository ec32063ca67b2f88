"""The fused products of a task, block by block and in place (docs/PERFORMANCE.md).

With pre-activations ``U = X F^T`` (docs/MATH.md has the step and the readout):

    G  = eta / (m~ sqrt(k)) (r a^T) * sigma'(U~),  r = y~ - sigma(U~) a / sqrt(k)
    F^ = F + G^T X~
    S  = sigma(X F^T)  or  p(X F^T) + h_{>l} Z   (S = sqrt(k) Phi; p the Hermite polynomial)
    test sums: sum_i (y_i - s(x_i)^T w)^2 and #{i: sign(s(x_i)^T w) != sign(y_i)}

These are the engine's versions of :mod:`gmstep.network`, :mod:`gmstep.readout` and
:class:`gmstep.hermite.HermiteModel`, the reference implementations they are tested against.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .. import hermite
from ..activations import Activation
from ..config import HERMITE, NN
from .parallel import TEST_CHUNK, OrderedNoise, blocks, run_parallel, scratch, tiles


@lru_cache(maxsize=256)
def surrogate(
    act: Activation, scale: float, degree: int, nodes: int, quadrature: str = "gauss-hermite"
) -> hermite.HermiteModel:
    """The Hermite model of ``act`` at scale ``b`` (cached: built once per process and setting)."""
    return hermite.HermiteModel.build(act, scale, degree, nodes, quadrature)


def product(a: np.ndarray, b: np.ndarray, out: np.ndarray, add: np.ndarray | None = None) -> None:
    """``out = a @ b (+ add)`` by blocks of :data:`ROW_BLOCK` rows of ``a``."""
    parts = blocks(a.shape[0])

    def block(i: int) -> None:
        rows = parts[i]
        np.matmul(a[rows], b, out=out[rows])
        if add is not None:
            out[rows] += add[rows]

    run_parallel(block, len(parts))


def gradient_matrix(
    pre: np.ndarray, yg: np.ndarray, a0: np.ndarray, act: Activation, step: float, out: np.ndarray
) -> None:
    """``G = step * (r a^T) * sigma'(U~)`` (``m~ x k``) with ``r = y~ - sigma(U~) a / sqrt(k)``."""
    k = pre.shape[1]
    sqrt_k = math.sqrt(k)
    parts = blocks(pre.shape[0])
    fn_deriv_into = act.fn_deriv_into
    assert fn_deriv_into is not None  # set by Activation.__post_init__

    def block(i: int) -> None:
        rows = parts[i]
        for t in tiles(rows.stop - rows.start, k):
            sl = slice(rows.start + t.start, rows.start + t.stop)
            u = pre[sl]
            s = scratch("s", u.shape, pre.dtype)
            d = out[sl]
            fn_deriv_into(u, s, d)
            r = yg[sl] - s @ a0 / sqrt_k
            d *= a0
            d *= (step * r)[:, None]

    run_parallel(block, len(parts))


def block_inputs(
    x: np.ndarray, rows: slice, f_hat: np.ndarray, noise: OrderedNoise | None, index: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """A row block's pre-activations ``U = X[rows] F^T`` and, with ``noise``, its Hermite noise
    ``Z`` (block ``index`` of the ordered stream), both in per-thread scratch buffers."""
    nb, k = rows.stop - rows.start, f_hat.shape[0]
    z = None
    if noise is not None:
        z = scratch("z", (nb, k), x.dtype)
        noise.fill(index, z)
    u = scratch("u", (nb, k), x.dtype)
    np.matmul(x[rows], f_hat.T, out=u)
    return u, z


def train_features(
    x: np.ndarray, f_hat: np.ndarray, act: Activation, sur: hermite.HermiteModel | None, noise: OrderedNoise | None,
    feats: dict[str, np.ndarray],
) -> None:
    """``S_nn = sigma(X F^T)`` and ``S_h = p(X F^T) + tail Z`` (rows of ``Z`` drawn in order)."""
    k = f_hat.shape[0]
    parts = blocks(x.shape[0])
    fn_into = act.fn_into
    assert fn_into is not None  # set by Activation.__post_init__

    def block(i: int) -> None:
        rows = parts[i]
        nb = rows.stop - rows.start
        try:
            u, z = block_inputs(x, rows, f_hat, noise, i)
            for t in tiles(nb, k):
                ut = u[t]
                if NN in feats:
                    fn_into(ut, feats[NN][rows][t])
                if HERMITE in feats:
                    assert sur is not None  # the caller builds it whenever the Hermite model is asked for
                    h = feats[HERMITE][rows][t]
                    sur.polynomial(ut, h)
                    if z is not None:
                        zt = z[t]
                        zt *= sur.tail
                        h += zt
        except BaseException:
            if noise is not None:
                noise.abort()
            raise

    run_parallel(block, len(parts), abort=noise.abort if noise is not None else None)


def test_sums(
    xt: np.ndarray, yt: np.ndarray, f_hat: np.ndarray, act: Activation, sur: hermite.HermiteModel | None,
    noise: OrderedNoise | None, models: list[str], weights: list[np.ndarray], noise_offset: int,
) -> tuple[list[float], list[int]]:
    """``sum_i (y_i - s(x_i)^T w)^2`` per model, and the number of sign errors
    ``#{i: sign(s(x_i)^T w) != sign(y_i)}`` of the same predictions; test features formed block
    by block, never stored whole."""
    k = f_hat.shape[0]
    parts = blocks(xt.shape[0], TEST_CHUNK)
    fn_into = act.fn_into
    assert fn_into is not None  # set by Activation.__post_init__

    def block(i: int) -> tuple[list[float], list[int]]:
        rows = parts[i]
        nb = rows.stop - rows.start
        try:
            u, z = block_inputs(xt, rows, f_hat, noise, noise_offset + i)
            s = scratch("s", (nb, k), xt.dtype)
            y = yt[rows]
            sums = [0.0] * len(models)
            wrong = [0] * len(models)
            for t in tiles(nb, k):
                ut, st = u[t], s[t]
                for j, model in enumerate(models):
                    if model == NN:
                        fn_into(ut, st)
                    else:
                        assert sur is not None  # the caller builds it whenever the Hermite model is asked for
                        sur.polynomial(ut, st)
                        if z is not None:
                            zt = z[t]
                            zt *= sur.tail
                            st += zt
                    r = y[t] - st @ weights[j]
                    sums[j] += float(r @ r)
                    wrong[j] += sign_errors(y[t] - r, y[t])
            return sums, wrong
        except BaseException:
            if noise is not None:
                noise.abort()
            raise

    per_block = run_parallel(block, len(parts), abort=noise.abort if noise is not None else None)
    return ([sum(b[0][j] for b in per_block) for j in range(len(models))],
            [sum(b[1][j] for b in per_block) for j in range(len(models))])


def sign_errors(pred: np.ndarray, y: np.ndarray) -> int:
    """``#{i: sign(pred_i) != sign(y_i)}`` (a prediction of exactly 0 counts as an error)."""
    return int(np.count_nonzero(np.sign(pred) != np.sign(y)))
