"""The torch backend: the operations of :mod:`gmstep.engine.backend` on PyTorch tensors.

The same formulas as :mod:`gmstep.engine.steps` and :func:`gmstep.readout.ridge` (docs/MATH.md),
whole-array (no row blocks: a GPU wants large products) on one device:

    U~ = X~ F^T,  G = eta / (m~ sqrt(k)) (r a^T) * sigma'(U~),  r = y~ - sigma(U~) a / sqrt(k)
    F^ = F + G^T X~,  S = sigma(X F^T)  or  p(X F^T) + h_{>l} Z
    a^ = (S^T S + lambda k m I)^-1 S^T y  (k <= m)  or  S^T (S S^T + lambda k m I)^-1 y  (k > m)

Random numbers (``rng``): ``numpy`` draws F, a and Z from the NumPy engine's streams (Z as one
sequential draw, train rows then test rows, which is what :class:`~.parallel.OrderedNoise`
hands out), so on the CPU every row equals the NumPy engine's to rounding; ``device`` draws them
with a ``torch.Generator`` on the device seeded from the same stream's ``SeedSequence`` (64 bits),
so a run is reproducible on that device and agrees with NumPy in distribution. The data sets are
always NumPy's (drawn once per data key) and stay on the device while the data cache holds them.

Every array carries a leading batch dimension, one entry per trial of a batch (the tasks of
one sweep point computed together, :func:`gmstep.engine.task.compute_tasks`): ``F``, ``a`` and
``Z`` are stacked (each trial's from its own stream), the data sets are shared (broadcast) or
stacked, the products are batched (``matmul`` broadcasting), the ridge systems of all trials and
models are one batched Cholesky. Values stay on the device until the batch's end
(:meth:`TorchOps.host`: one copy per batch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import activations, network
from ..activations import Activation
from ..config import NN
from ..errors import ConfigError
from ..hermite import HermiteModel
from ..scratch import Scratch
from .datasets import DataSets
from .streams import stream

TensorFn = Callable[[torch.Tensor], torch.Tensor]
DerivFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
DTYPES = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _relu_d(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.clamp_min(u, 0.0), (u > 0).to(u.dtype)  # sigma'(0) = 0


def _tanh_d(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    s = torch.tanh(u)
    return s, 1.0 - s * s


def _sigmoid_d(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    s = torch.sigmoid(u)
    return s, (1.0 - s) * s


def _erf_d(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.special.erf(u), _TWO_OVER_SQRT_PI * torch.exp(-u * u)


def _gelu(u: torch.Tensor) -> torch.Tensor:
    return u * torch.special.ndtr(u)


def _gelu_d(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    cdf = torch.special.ndtr(u)
    return u * cdf, cdf + u * _INV_SQRT_2PI * torch.exp(-0.5 * u * u)


def _softplus(u: torch.Tensor) -> torch.Tensor:
    return torch.logaddexp(torch.zeros_like(u), u)


def _softplus_d(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return _softplus(u), torch.sigmoid(u)


def _sin_d(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.sin(u), torch.cos(u)


def _linear_d(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return u, torch.ones_like(u)


#: Torch kernels of the built-in activations: name -> (the NumPy ``fn`` they reproduce, sigma, (sigma, sigma')).
KERNELS: dict[str, tuple[Any, TensorFn, DerivFn]] = {
    "relu": (activations._relu, lambda u: torch.clamp_min(u, 0.0), _relu_d),
    "tanh": (np.tanh, torch.tanh, _tanh_d),
    "sigmoid": (activations._sigmoid, torch.sigmoid, _sigmoid_d),
    "erf": (activations.special.erf, torch.special.erf, _erf_d),
    "gelu": (activations._gelu, _gelu, _gelu_d),
    "sin": (np.sin, torch.sin, _sin_d),
    "softplus": (activations._softplus, _softplus, _softplus_d),
    "linear": (activations._identity, lambda u: u, _linear_d),
}


@dataclass(frozen=True)
class TorchActivation:
    """``fn(u) = sigma(u)`` and ``fn_deriv(u) = (sigma(u), sigma'(u))`` on tensors."""

    name: str
    fn: TensorFn
    fn_deriv: DerivFn


def kernel(act: Activation, device: str) -> TorchActivation:
    """The torch kernels of ``act``: built-in ones when ``act`` is the registry's own, else (on
    the CPU only) ``act``'s NumPy functions applied to the tensor's memory; on a CUDA device an
    activation without torch kernels is refused (one line)."""
    entry = KERNELS.get(act.name)
    if entry is not None and entry[0] is act.fn:
        return TorchActivation(act.name, entry[1], entry[2])
    if device != "cpu":
        raise ConfigError("activations", f"{act.name!r} has no torch kernel, so it cannot run on {device}; "
                          "use --set device=cpu or --set backend=numpy")

    def fn(u: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(act.fn(u.numpy()), dtype=u.numpy().dtype))

    def fn_deriv(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = u.numpy()
        return fn(u), torch.from_numpy(np.asarray(act.deriv(v), dtype=v.dtype))

    return TorchActivation(act.name, fn, fn_deriv)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a CUDA device, else ``cpu``."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_rng(rng: str, device: str) -> str:
    """``auto`` -> ``device`` on a CUDA device, ``numpy`` on the CPU."""
    if rng == "auto":
        return "numpy" if device == "cpu" else "device"
    return rng


def seed_of(key: Sequence[int]) -> int:
    """The 64-bit seed of stream ``key = (seed, *spawn_key)``: the first word of its SeedSequence."""
    return int(np.random.SeedSequence(key[0], spawn_key=tuple(key[1:])).generate_state(1, np.uint64)[0])


def polynomial(sur: HermiteModel, u: torch.Tensor) -> torch.Tensor:
    """``p(u) = sum_j c_j u^j`` by Horner's rule on :attr:`HermiteModel.monomial` (the same
    operations, in the same order, as :meth:`HermiteModel.polynomial`)."""
    c = sur.monomial
    if len(c) == 1:
        return torch.full_like(u, c[0])
    out = u * c[-1] + c[-2]
    for cj in reversed(c[:-2]):
        out = out * u + cj
    return out


@dataclass(frozen=True)
class TorchFit:
    """A ridge fit on the device: weights, training error, condition estimate, residual (tensors)."""

    weights: torch.Tensor
    train_error: torch.Tensor
    condition: torch.Tensor
    residual: torch.Tensor


def solve_spd(mat: torch.Tensor, rhs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``mat^-1 rhs`` for a batch of symmetric positive definite ``mat`` (``... x n x n``, ``rhs``
    ``... x n``, any batch dimensions) by Cholesky, and the 1-norm condition estimates ``||mat||_1 ||mat^-1||_1``; a
    non-finite ``mat`` gives NaN and an infinite condition, a failed factorisation the
    least-squares solution and an infinite condition (as :func:`gmstep.readout.ridge`).

    ``||mat^-1||_1`` is estimated from below as LAPACK's ``pocon`` does (Hager's method: start
    from ``1/n``, then two steps ``x -> e_j``, ``j = argmax |mat^-1 sign(mat^-1 x)|``, and
    Higham's alternative vector ``(-1)^i (1 + i/(n-1))`` scaled by ``2 / (3 n)``), with fixed
    steps instead of early exits so that the device never waits for the host; the solve and the
    start share one call."""
    batch, n = tuple(mat.shape[:-2]), mat.shape[-1]
    anorm = mat.abs().sum(dim=-2).amax(dim=-1)
    factor, info = torch.linalg.cholesky_ex(mat)
    idx = torch.arange(n, device=mat.device, dtype=mat.dtype)
    alt = (1.0 + idx / max(n - 1, 1)) * torch.where(idx % 2 == 0, 1.0, -1.0).to(mat.dtype)
    start = torch.stack([torch.full_like(idx, 1.0 / n), alt], dim=1).expand(*batch, n, 2)
    y = torch.cholesky_solve(torch.cat([rhs[..., None], start], dim=-1), factor)
    est = torch.maximum(y[..., 1].abs().sum(-1), 2.0 * y[..., 2].abs().sum(-1) / (3.0 * n))
    v = y[..., 1:2]
    for _ in range(2):
        z = torch.cholesky_solve(torch.where(v >= 0, 1.0, -1.0).to(mat.dtype), factor)
        e = torch.zeros_like(z).scatter_(-2, z.abs().argmax(dim=-2, keepdim=True), 1.0)  # no host sync
        v = torch.cholesky_solve(e, factor)
        est = torch.maximum(est, v.abs().sum(dim=(-2, -1)))
    finite = torch.isfinite(anorm)
    ok = (info == 0) & finite
    solution = y[..., 0]
    failed = (info != 0) & finite
    if bool(failed.any()):  # one host check per call; as readout.ridge: least squares, condition infinite
        fallback = torch.linalg.lstsq(mat, rhs[..., None]).solution[..., 0]
        solution = torch.where(failed[..., None], fallback, solution)
    return torch.where(finite[..., None], solution, math.nan), torch.where(ok, anorm * est, math.inf)


class DeviceStream:
    """A random stream on the device for :mod:`gmstep.data`'s sampling (``rng = device``): a
    ``torch.Generator`` seeded with :func:`seed_of` the stream's key; ``standard_normal`` in
    float64 on the device, ``on`` brings a host array there, ``cast`` and ``relu`` as NumPy's."""

    def __init__(self, ops: TorchOps, key: Sequence[int]) -> None:
        self.ops, self.gen = ops, ops.generator(key)

    def standard_normal(self, shape: int | tuple[int, ...]) -> torch.Tensor:
        size = (shape,) if isinstance(shape, int) else tuple(shape)
        return torch.randn(size, generator=self.gen, dtype=torch.float64, device=self.ops.device)

    def on(self, a: Any) -> torch.Tensor:
        return self.ops.tensor(np.asarray(a, dtype=np.float64))

    @staticmethod
    def cast(a: torch.Tensor, dtype: Any) -> torch.Tensor:
        return a.to(DTYPES[np.dtype(dtype)])

    @staticmethod
    def relu(a: torch.Tensor) -> torch.Tensor:
        return torch.clamp_min(a, 0.0)


class TorchOps:
    """The backend operations on one device (see :mod:`gmstep.engine.backend`)."""

    name = "torch"
    #: A batch that fails with these is computed again task by task.
    batch_errors: tuple[type[Exception], ...] = (torch.cuda.OutOfMemoryError,)

    def __init__(self, device: str, rng: str) -> None:
        self.device_name = resolve_device(device)
        self.device = torch.device(self.device_name)
        self.rng = resolve_rng(rng, self.device_name)

    def tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def device_sets(self, ds: DataSets) -> tuple[Any, Any, Any]:
        """The sets of ``ds`` as device tensors, copied once per drawn data (kept with ``ds``)."""
        cache = ds.__dict__.setdefault("_torch_sets", {})
        if self.device_name not in cache:  # (sets drawn on the device are tensors already)
            cache[self.device_name] = tuple(None if s is None else tuple(
                a.to(self.device) if isinstance(a, torch.Tensor) else self.tensor(a) for a in s)
                for s in (ds.grad, ds.train, ds.test))
        return cache[self.device_name]

    def data_sets(self, dss: Sequence[DataSets]) -> tuple[Any, Any, Any]:
        """The batch's sets: one drawn data shared by every trial as it is (broadcast by the
        products), distinct ones stacked (``B x m x n`` and ``B x m``)."""
        sets = [self.device_sets(ds) for ds in dss]
        if all(ds is dss[0] for ds in dss):
            return sets[0]
        return tuple(None if kind[0] is None else (torch.stack([s[0] for s in kind]), torch.stack([s[1] for s in kind]))
                     for kind in zip(*sets, strict=True))  # type: ignore[return-value]

    def stream(self, key: Sequence[int]) -> DeviceStream:
        """The data stream ``key`` drawn on the device (``rng = device``)."""
        return DeviceStream(self, key)

    def generator(self, key: Sequence[int]) -> torch.Generator:
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed_of(key))
        return gen

    def normal(self, key: Sequence[int], shape: tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
        """Standard normals of stream ``key`` in float64, rounded to ``dtype`` (as NumPy's engine)."""
        if self.rng == "numpy":
            z = self.tensor(stream(*key).standard_normal(shape))
        else:
            z = torch.randn(shape, generator=self.generator(key), dtype=torch.float64, device=self.device)
        return z.to(DTYPES[dtype])

    def init_params(self, n: int, k: int, tr: float, keys: Sequence[Sequence[int]],
                    dtype: np.dtype) -> tuple[Any, Any]:
        """``F_ij ~ N(0, 1 / tr)``, ``a_i ~ N(0, 1 / k)`` (:func:`gmstep.network.init_params`) of
        every stream in ``keys``, stacked (``B x k x n`` and ``B x k``)."""
        if self.rng == "numpy":
            pairs = [network.init_params(n, k, tr, stream(*key), dtype.type) for key in keys]
            return self.tensor(np.stack([f for f, _ in pairs])), self.tensor(np.stack([a for _, a in pairs]))
        fs, as_ = [], []
        for key in keys:
            gen = self.generator(key)
            fs.append(torch.randn((k, n), generator=gen, dtype=torch.float64, device=self.device) / math.sqrt(tr))
            as_.append(torch.randn(k, generator=gen, dtype=torch.float64, device=self.device) / math.sqrt(k))
        return torch.stack(fs).to(DTYPES[dtype]), torch.stack(as_).to(DTYPES[dtype])

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
        return torch.empty(shape, dtype=DTYPES[dtype], device=self.device)

    def work(self, scratch: Scratch, name: str, shape: tuple[int, ...], dtype: np.dtype) -> torch.Tensor:
        """:meth:`empty` (PyTorch's caching allocator already reuses memory from task to task)."""
        return self.empty(shape, dtype)

    def activation(self, name: str) -> TorchActivation:
        return kernel(activations.get(name), self.device_name)

    def noise(self, keys: Sequence[Sequence[int]], rows: int, k: int, dtype: np.dtype) -> torch.Tensor:
        """``Z`` of every stream in ``keys`` (``B x rows x k``, the training rows then the test
        rows), each in one sequential draw."""
        return torch.stack([self.normal(key, (rows, k), dtype) for key in keys])

    @staticmethod
    def product(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, add: torch.Tensor | None = None) -> None:
        """``out = a @ b (+ add)``."""
        torch.matmul(a, b, out=out)
        if add is not None:
            out += add

    @staticmethod
    def gradient_matrix(pre: torch.Tensor, yg: torch.Tensor, a0: torch.Tensor, act: TorchActivation, step: float,
                        out: torch.Tensor) -> None:
        """``G = step * (r a^T) * sigma'(U~)`` with ``r = y~ - sigma(U~) a / sqrt(k)``."""
        s, d = act.fn_deriv(pre)
        r = yg - (s @ a0[..., None])[..., 0] / math.sqrt(pre.shape[-1])
        torch.mul(d, a0[..., None, :], out=out)
        out *= (step * r)[..., None]

    @staticmethod
    def features(u: torch.Tensor, model: str, act: TorchActivation, sur: HermiteModel | None,
                 z: torch.Tensor | None) -> torch.Tensor:
        """``sigma(U)`` (``nn``) or ``p(U) + h_{>l} Z`` (``hermite``)."""
        if model == NN:
            return act.fn(u)
        assert sur is not None  # built whenever the Hermite model is asked for
        h = polynomial(sur, u)
        return h if z is None else h + z * sur.tail

    def train_features(self, x: torch.Tensor, f_hat: torch.Tensor, act: TorchActivation, sur: HermiteModel | None,
                       noise: torch.Tensor | None, feats: dict[str, torch.Tensor]) -> None:
        u = x @ f_hat.mT
        z = noise[..., : x.shape[-2], :] if noise is not None else None  # the training rows come first
        for model, out in feats.items():
            out.copy_(self.features(u, model, act, sur, z))

    def test_sums(self, xt: torch.Tensor, yt: torch.Tensor, f_hat: torch.Tensor, act: TorchActivation,
                  sur: HermiteModel | None, noise: torch.Tensor | None, models: list[str], weights: list[torch.Tensor],
                  noise_offset: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``sum_i (y_i - s(x_i)^T w)^2`` and ``#{i: sign(y_i - r_i) != sign(y_i)}`` per model."""
        u = xt @ f_hat.mT
        z = noise[..., noise.shape[-2] - xt.shape[-2]:, :] if noise is not None else None  # then the test rows
        sums, wrong = [], []
        for model, w in zip(models, weights, strict=True):
            r = yt - (self.features(u, model, act, sur, z) @ w[..., None])[..., 0]
            sums.append((r * r).sum(-1).double())
            wrong.append(self.sign_errors(yt - r, yt))
        return sums, wrong

    @staticmethod
    def sign_errors(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``#{i: sign(pred_i) != sign(y_i)}`` (a prediction of exactly 0 counts as an error), as a
        float64 tensor (an integer tensor divided by a count would give torch's default float32)."""
        return torch.count_nonzero(torch.sign(pred) != torch.sign(y), dim=-1).to(torch.float64)

    @staticmethod
    def ridges(phis: Sequence[torch.Tensor], y: torch.Tensor, lam: float) -> list[TorchFit]:
        """:func:`gmstep.readout.ridge` of every feature matrix in ``phis`` (same shape, with or
        without a batch dimension; ``y`` shared or batched), as one batch on the device: the smaller
        of the primal (``k <= m``) and dual systems, the training error with its penalty, the
        condition estimate, the residual."""
        phi = torch.stack(list(phis))
        m, k = phi.shape[-2:]
        reg = lam * m
        if k <= m:
            gram = phi.mT @ phi
            gram.diagonal(dim1=-2, dim2=-1).add_(reg)
            weights, cond = solve_spd(gram, (phi.mT @ y[..., None])[..., 0])
            resid = y - (phi @ weights[..., None])[..., 0]
        else:
            gram = phi @ phi.mT
            gram.diagonal(dim1=-2, dim2=-1).add_(reg)
            coef, cond = solve_spd(gram, y.expand(*phi.shape[:-1]))
            weights = (phi.mT @ coef[..., None])[..., 0]
            resid = reg * coef  # (K + reg I) c = y  =>  y - K c = reg c
        # The two sums in float64, as readout.ridge adds them (Python floats).
        err = (resid * resid).sum(-1).double() / (2 * m) + 0.5 * lam * (weights * weights).sum(-1).double()
        return [TorchFit(weights[i], err[i], cond[i], resid[i]) for i in range(len(phis))]

    def ridge(self, phi: torch.Tensor, y: torch.Tensor, lam: float) -> TorchFit:
        """One fit of :meth:`ridges`."""
        return self.ridges([phi], y, lam)[0]

    @staticmethod
    def per_task(a: torch.Tensor) -> list[np.ndarray]:
        """The batch's arrays on the host, one per task."""
        return list(a.detach().cpu().numpy())

    @staticmethod
    def host(values: Sequence[Any], batch: int) -> list[list[float | None]]:
        """Every value as a float per task (``batch`` lists; a tensor holds one value per task,
        None stays None): the device's values in one copy."""
        dev = [i for i, v in enumerate(values) if isinstance(v, torch.Tensor)]
        out: list[list[float | None]] = [[None if v is None or isinstance(v, torch.Tensor) else float(v)
                                          for v in values] for _ in range(batch)]
        if dev:
            copied = torch.stack([values[i].to(torch.float64).expand(batch) for i in dev]).cpu().tolist()
            for i, column in zip(dev, copied, strict=True):
                for b in range(batch):
                    out[b][i] = float(column[b])
        return out


_OPS: dict[tuple[str, str], TorchOps] = {}


def ops(device: str, rng: str) -> TorchOps:
    """The operations on ``device`` (``auto``, ``cpu`` or ``cuda``) with random numbers ``rng``."""
    key = (device, rng)
    if key not in _OPS:
        _OPS[key] = TorchOps(device, rng)
    if _OPS[key].device_name == "cpu" and torch.get_num_threads() != 1:
        # One thread per process: MKL's multi-threaded triangular solves round differently with
        # the thread count, so rows would depend on --jobs; the processes (--jobs) parallelise.
        torch.set_num_threads(1)
    return _OPS[key]
