"""The torch backend (gmstep.engine.torch_ops through gmstep.engine.backend): its parameters and
pre-flight, its operations against the NumPy engine's, rows equal to the NumPy engine's on the
CPU, and the device random numbers (run on torch's CPU, standing in for a GPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from gmstep import activations, admission, hermite, readout, safety
from gmstep.engine import backend, torch_ops
from gmstep.engine.parallel import OrderedNoise
from gmstep.engine.streams import stream
from gmstep.engine.task import run_task
from gmstep.errors import ConfigError
from gmstep.experiment import Experiment
from helpers import ENV, ROOT, main, make_experiment, one_error_line, one_line, quiet_run

VALUES = ("train_error", "test_error", "train_misclassification", "test_misclassification")
CPU = torch_ops.ops("cpu", "numpy")


def _rows(params, trials=2, **extra):
    exp = make_experiment(params, {}, "t", trials=trials, **extra)
    return [r for t in range(trials) for r in run_task(exp, 0, t)]


def _worst(a_rows, b_rows):
    """The largest relative difference of the values of two row lists (statuses checked equal)."""
    worst = 0.0
    assert len(a_rows) == len(b_rows) > 0
    for a, b in zip(a_rows, b_rows, strict=True):
        assert (a["activation"], a["model"], a["trial"], a["status"]) == (b["activation"], b["model"], b["trial"],
                                                                          b["status"])
        for key in VALUES:
            if a[key] is None:
                assert b[key] is None
            elif a[key] != b[key]:
                worst = max(worst, abs(a[key] - b[key]) / abs(a[key]))
    return worst


# ----------------------------------------------------------------------------- parameters and pre-flight


def test_params_are_listed_and_checked(capsys):
    code, out, _ = main(capsys, "params")
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert code == 0 and {"backend", "device", "rng"} <= listed
    for bad, key in (("backend=jax", "backend"), ("device=tpu", "device"), ("rng=mt", "rng"),
                     ("device=cuda", "device"), ("rng=device", "rng")):  # the last two need backend=torch
        code, _, err = main(capsys, "reproduce", "fig1a", "--quick", "--set", bad, "--out", "/nonexistent/x")
        one_error_line(code, err, key)


def test_cuda_without_a_device_is_refused_before_anything_is_written(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = main(capsys, "reproduce", "fig1a", "--quick", "--set", "backend=torch", "--set", "device=cuda",
                        "--out", str(tmp_path))
    one_error_line(code, err, "device", "CUDA")
    assert list(tmp_path.iterdir()) == []


def test_cuda_is_checked_here_but_not_for_remote_workers(monkeypatch, tiny_experiment):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    exp = tiny_experiment({"backend": "torch", "device": "cuda"})
    for scheduler in (None, "local"):
        with pytest.raises(ConfigError) as exc:
            safety.check_backend(exp, scheduler)
        assert "device" in one_line(exc)
    safety.check_backend(exp, "tcp://gpu-head:8786")  # the workers hold the GPUs
    assert backend.describe(exp.params)["device"] == "cuda"


def test_device_memory_admission(tiny_experiment):
    from gmstep import config

    exp = tiny_experiment({"backend": "torch", "device": "cuda", "n": 100, "m": 50}, {"k": [10, 400]})
    points = [config.resolved(exp.point_params(point)) for point in exp.points()]
    need = backend.device_bytes(points[1])
    # n = 100, m = m~ = 50, m_test = 250, k = 400, two models: counted term by term.
    assert need == 8 * (2 * 100 * 350 + 2 * 400 * 100 + 4 * 50 * 400 + 4 * 50 * 400 + 300 * 400
                        + 3 * 250 * 400 + 2 * 50**2)
    backend.check_device_memory(points, free=int(need / 0.8) + 1)
    with pytest.raises(ConfigError) as exc:
        backend.check_device_memory(points, free=int(need / 0.8) - 1)
    assert one_line(exc).startswith("k: a torch task needs about") and "k = 400" in one_line(exc)
    assert "GPU memory" in one_line(exc) and "memory_check=false" in one_line(exc)
    backend.check_device_memory([config.resolved(tiny_experiment().params)], free=1)  # NumPy: nothing to check


def test_missing_torch_is_one_line(monkeypatch, tiny_experiment):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    exp = tiny_experiment({"backend": "torch"})
    with pytest.raises(ConfigError) as exc:
        backend.check(exp.params)
    assert "backend" in one_line(exc) and "install" in one_line(exc)
    backend.check(tiny_experiment().params)  # the NumPy backend needs no torch


def test_numpy_only_activation_runs_on_cpu_and_is_refused_on_cuda():
    act = activations.Activation("cube", lambda u: u**3, lambda u: 3 * u**2)
    k = torch_ops.kernel(act, "cpu")
    u = torch.linspace(-2, 2, 7, dtype=torch.float64)
    s, d = k.fn_deriv(u)
    assert torch.equal(s, u**3) and torch.allclose(d, 3 * u**2)
    with pytest.raises(ConfigError) as exc:
        torch_ops.kernel(act, "cuda")
    assert "cube" in one_line(exc) and "device=cpu" in one_line(exc)
    # A built-in name re-registered with another function does not get the built-in kernel.
    assert torch.equal(torch_ops.kernel(activations.Activation("relu", np.abs, np.sign), "cpu").fn(u), u.abs())


def test_meta_records_the_execution_and_old_runs_resume(tmp_path, tiny_experiment):
    exp = tiny_experiment({"backend": "torch", "device": "cpu", "trials": 1})
    quiet_run(exp, tmp_path)
    meta = json.loads((tmp_path / exp.name / "meta.json").read_text())
    assert meta["execution"]["backend"] == "torch" and meta["execution"]["device"] == "cpu"
    assert meta["execution"]["rng"] == "numpy"
    assert meta["experiment"]["params"]["backend"] == "torch"
    # A run written before these parameters existed resumes with their defaults, not with others.
    numpy_exp = tiny_experiment({"trials": 1})
    old = json.loads(json.dumps({"experiment": numpy_exp.to_dict()}, default=str))
    for key in ("backend", "device", "rng"):
        del old["experiment"]["params"][key]
    assert admission.differences(old, numpy_exp) == []
    assert admission.differences(old, exp) == ["params.backend (was missing, now 'torch')",
                                               "params.device (was missing, now 'cpu')"]


@pytest.mark.subprocess
def test_import_gmstep_does_not_import_torch():
    code = ("import sys, gmstep, gmstep.engine.task, gmstep.runner, gmstep.cli; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, timeout=120)


@pytest.mark.slow
@pytest.mark.subprocess
def test_gpu_benchmark_runs_and_prints_every_part():
    """benchmarks/gpu_speed.py at a tiny size on the CPU: every part prints its figure."""
    cmd = [sys.executable, "benchmarks/gpu_speed.py", "--device", "cpu", "--size", "24", "--trials", "1",
           "--naive-trials", "1", "--fig4a-limit", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "FAILED" not in proc.stdout, proc.stdout
    for needle in ("TFLOP/s", "fig1a float64: 1 trials", "fig1a float32: 1 trials", "straightforward fig1a",
                   "speed-up over the straightforward method", "mean test error", "fig4a float64",
                   "per-task host overhead batched vs not"):
        assert needle in proc.stdout, proc.stdout


# ----------------------------------------------------------------------------- operations


@pytest.mark.parametrize("name", activations.names())
def test_kernels_match_numpy(name):
    act = activations.get(name)
    u = np.linspace(-6, 6, 1001)
    s, d = torch_ops.kernel(act, "cpu").fn_deriv(torch.from_numpy(u))
    np.testing.assert_allclose(s.numpy(), act.fn(u), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(d.numpy(), act.deriv(u), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(torch_ops.kernel(act, "cpu").fn(torch.from_numpy(u)).numpy(), s.numpy())


@pytest.mark.parametrize("degree", [0, 1, 3, 5])
def test_polynomial_matches_hermite_model(degree):
    sur = hermite.HermiteModel.build(activations.get("tanh"), 1.3, degree, 60)
    u = np.linspace(-4, 4, 301)
    np.testing.assert_allclose(torch_ops.polynomial(sur, torch.from_numpy(u)).numpy(), sur.polynomial(u),
                               rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("m, k", [(50, 20), (20, 50)])  # primal and dual
def test_ridge_matches_readout(rng, m, k):
    phi, y = rng.standard_normal((m, k)), rng.standard_normal(m)
    ref = readout.ridge(phi, y, 1e-3)
    fit = CPU.ridge(torch.from_numpy(phi), torch.from_numpy(y), 1e-3)
    np.testing.assert_allclose(fit.weights.numpy(), ref.weights, rtol=1e-10)
    np.testing.assert_allclose(fit.residual.numpy(), ref.residual, rtol=1e-10, atol=1e-13)
    assert float(fit.train_error) == pytest.approx(ref.train_error, rel=1e-12)
    # Both are lower bounds of the exact 1-norm condition number, and near it.
    gram = phi.T @ phi + 1e-3 * m * np.eye(k) if k <= m else phi @ phi.T + 1e-3 * m * np.eye(m)
    exact = np.linalg.norm(gram, 1) * np.linalg.norm(np.linalg.inv(gram), 1)
    assert exact / 3 <= float(fit.condition) <= exact * (1 + 1e-9)
    assert float(fit.condition) == pytest.approx(ref.condition, rel=0.5)


def test_ridge_statuses_of_hard_systems(rng):
    """An ill-conditioned system is flagged by both; a non-finite one gives NaN and inf."""
    base = rng.standard_normal((40, 3))
    phi = base @ rng.standard_normal((3, 30))  # rank 3, k = 30
    ref = readout.ridge(phi, rng.standard_normal(40), 1e-16)
    fit = CPU.ridge(torch.from_numpy(phi), torch.from_numpy(rng.standard_normal(40)), 1e-16)
    assert ref.condition > 1e12 and float(fit.condition) > 1e12
    bad = phi.copy()
    bad[0, 0] = np.inf
    nan_fit = CPU.ridge(torch.from_numpy(bad), torch.from_numpy(np.ones(40)), 1e-3)
    assert float(nan_fit.condition) == np.inf and not np.isfinite(float(nan_fit.train_error))


def test_one_sequential_draw_is_the_ordered_noise():
    """Torch's host noise (one (m + m_test) x k draw) is what OrderedNoise hands out block by block."""
    key = (3, 2, 11, 1, 5)
    z = CPU.noise([key], 1100, 7, np.dtype(np.float64))[0].numpy()
    noise = OrderedNoise(stream(*key))
    parts = [np.empty((n, 7)) for n in (512, 88, 500)]
    for i, part in enumerate(parts):
        noise.fill(i, part)
    np.testing.assert_array_equal(z, np.concatenate(parts))


def test_device_seeds():
    assert torch_ops.seed_of((0, 1, 2, 3)) == torch_ops.seed_of((0, 1, 2, 3))
    assert len({torch_ops.seed_of((0, 1, p, t)) for p in range(20) for t in range(20)}) == 400
    assert 0 <= torch_ops.seed_of((2**63, 5)) < 2**64


# ----------------------------------------------------------------------------- rows equal NumPy's on the CPU

TORCH_CPU = {"backend": "torch", "device": "cpu"}
CASES = {
    "regression k<m": {"n": 40, "m": 50, "k": 30, "models": ["nn", "hermite", "theory"]},
    "regression k>m": {"n": 40, "m": 30, "k": 60},
    "classification k<m": {"n": 40, "m": 60, "k": 25, "task": "classification"},
    "classification k>m": {"n": 40, "m": 30, "k": 45, "task": "classification"},
    "mixture of 3, erf, linear": {"n": 40, "m": 40, "k": 40, "ratios": [0.2, 0.3, 0.5], "rank": [1, 2, 1],
                                  "activations": ["erf", "linear", "relu"], "mean_norm": 1.0},
    "hermite noise across blocks": {"n": 20, "m": 600, "k": 8, "m_test": 900, "models": ["hermite"]},
    "every activation": {"n": 30, "m": 30, "k": 20, "activations": activations.names()},
}


@pytest.mark.parametrize("case", list(CASES))
def test_rows_equal_numpy_engine(case):
    params = {"activations": ["relu", "tanh", "sigmoid"], "models": ["nn", "hermite"], "degree": 3, "seed": 3,
              **CASES[case]}
    ref, got = _rows(params), _rows(params, **TORCH_CPU)
    assert _worst(ref, got) < 1e-9
    assert all(r["status"] == "ok" for r in ref)


def test_float32_rows_are_close_to_numpy():
    params = {"n": 40, "m": 50, "k": 30, "dtype": "float32", "task": "classification"}
    assert _worst(_rows(params), _rows(params, **TORCH_CPU)) < 1e-3


# ----------------------------------------------------------------------------- device random numbers


def test_device_rng_is_reproducible_and_its_own():
    params = {"n": 30, "m": 30, "k": 20, **TORCH_CPU, "rng": "device"}
    first, again = _rows(params), _rows(params)
    assert first == again
    assert _worst(_rows({**params, "rng": "numpy"}), first) > 1e-6  # other numbers: F, a, Z drawn by torch
    assert backend.describe(Experiment.create("t", params, {}).params)["rng"] == "device"


def test_device_rng_draws_the_mixture_on_the_device():
    """rng = device: the Gaussian mixture's data sets are drawn by the device's generator (other
    numbers than NumPy's, the same on every draw) from the same distribution: the variance along
    the spike is 1 + theta, orthogonal to it 1; labels and targets as NumPy's."""
    from gmstep import config
    from gmstep.engine import datasets

    for task in ("classification", "regression"):
        exp = Experiment.create("t", {"n": 12, "m": 20000, "m_test": 10, "theta": 3.0, "task": task, "rank": 1,
                                      "alignment": 0.0, **TORCH_CPU, "rng": "device"}, {})
        p = config.resolved(exp.params)
        ds = datasets.draw_data(p, 0, (0, 0))
        again = datasets.draw_data(p, 0, (0, 0))
        host = datasets.draw_data({**p, "rng": "numpy"}, 0, (0, 0))
        x, y = ds.train
        assert isinstance(x, torch.Tensor) and x.shape == (20000, 12) and torch.equal(x, again.train[0])
        assert not np.allclose(x.numpy(), host.train[0])  # other numbers than NumPy's for the same key
        np.testing.assert_array_equal(ds.problem.mixture.spikes[0], host.problem.mixture.spikes[0])  # structure
        gamma = ds.problem.mixture.spikes[0][:, 0]
        first = x[: 10000].numpy()  # component 1: variance 1 + theta along its spike, 1 across it
        assert np.var(first @ gamma) == pytest.approx(4.0, rel=0.06)
        other = np.linalg.qr(np.column_stack([gamma, np.eye(12)[:, :1]]))[0][:, 1]
        assert np.var(first @ other) == pytest.approx(1.0, rel=0.06)
        if task == "classification":
            np.testing.assert_array_equal(y.numpy(), host.train[1])  # labels by component: the same
        else:
            np.testing.assert_allclose(y.numpy(), np.maximum(x.numpy() @ ds.problem.xi, 0.0), atol=1e-12)
        assert datasets.data_key(p, 0, (0, 0)) != datasets.data_key({**p, "rng": "numpy"}, 0, (0, 0))


@pytest.mark.slow
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_device_rng_agrees_with_numpy_in_distribution(task):
    """Means of the errors over trials agree within 4 standard errors (F, a, Z and the data sets
    drawn on the device; the data sets redrawn per trial in both)."""
    trials = 60
    params = {"n": 40, "m": 40, "k": 40, "redraw": "trial", "task": task, "degree": 3}
    ref, dev = _rows(params, trials), _rows(params, trials, **TORCH_CPU, rng="device")
    keys = ("test_error", "train_error") + (("test_misclassification",) if task == "classification" else ())
    for act in ("relu", "tanh", "sigmoid"):
        for model in ("nn", "hermite"):
            for key in keys:
                a = np.array([r[key] for r in ref if r["activation"] == act and r["model"] == model])
                b = np.array([r[key] for r in dev if r["activation"] == act and r["model"] == model])
                se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
                assert abs(a.mean() - b.mean()) <= 4 * se, (act, model, key, a.mean(), b.mean(), se)


def test_a_failed_factorisation_falls_back_to_least_squares_as_numpy_does():
    """Not positive definite (an exactly singular or indefinite system): the least-squares solution
    and an infinite condition, like readout's solver; a non-finite system gives NaN."""
    rng = np.random.default_rng(3)
    b = rng.standard_normal((6, 3))
    singular = b @ b.T  # rank 3 of 6: Cholesky fails
    indefinite = np.diag([2.0, 1.0, -1.0, 3.0, 1.0, 1.0])
    good = b.T @ b + np.eye(3)
    rhs = rng.standard_normal(6)
    mats = torch.from_numpy(np.stack([singular, indefinite]))
    x, cond = torch_ops.solve_spd(mats, torch.from_numpy(np.stack([rhs, rhs])))
    for i, mat in enumerate((singular, indefinite)):
        ref, ref_cond = readout._solve_spd(mat, rhs[:, None])
        assert ref_cond == float("inf") and float(cond[i]) == float("inf")
        # both minimise ||mat x - rhs||: equal residuals (the minimiser itself is not unique when singular)
        np.testing.assert_allclose(mat @ x[i].numpy(), mat @ ref[:, 0], atol=1e-10)
    x, cond = torch_ops.solve_spd(torch.from_numpy(good[None]), torch.from_numpy(rhs[None, :3]))
    np.testing.assert_allclose(x[0].numpy(), np.linalg.solve(good, rhs[:3]), rtol=1e-12)
    assert np.isfinite(float(cond[0]))
    bad = good.copy()
    bad[0, 0] = np.nan
    x, cond = torch_ops.solve_spd(torch.from_numpy(bad[None]), torch.from_numpy(rhs[None, :3]))
    assert torch.isnan(x).all() and float(cond[0]) == float("inf")
