"""Benchmark: the torch backend on the device it finds (a CUDA GPU, else the CPU with a warning).

    python benchmarks/gpu_speed.py            # paper scale (on a GPU; about 3-6 minutes on an H200)
    python benchmarks/gpu_speed.py --small    # reduced sizes (a CPU check of the script itself)
    python benchmarks/gpu_speed.py --device cpu --backend numpy --small   # the NumPy engine, same cases

It prints, each part on its own (a part that fails prints FAILED and the error, the others go on):

1. the device and its float64 (and float32) matrix-multiply rate, measured;
2. fig1a at paper scale (13 widths x 3 activations x 2 models, n = m = 1000, m_test = 5000),
   ``--trials`` trials (20), float64 and float32: wall seconds and the achieved TFLOP/s, counting
   the products the method needs (``benchmarks/run.py``'s ``method_flops``: ``2 k n (m~ + m +
   m_test)`` per activation and the ridge systems);
3. the straightforward method on the same device (a port of ``tests/reference/naive.py`` to torch:
   a full pass per width, activation and model -- three data sets sampled through the dense
   ``n x n`` covariance roots, F, the step, features, the ``k x k`` solve, the whole test set --
   with only the dense structure computed once, untimed, as fig1a draws it once), ``--naive-trials``
   trials, and gmstep's speed-up;
4. fig4a's 900-point grid at paper scale (n = 400, m = 500, ReLU, network), every trial of the
   preset, its wall time (stopped after ``--fig4a-limit`` seconds, then extrapolated);
5. the per-task host overhead: fig4a's parameters at n = m = 8 (tasks too small to compute
   anything; 30 points x 20 trials), milliseconds per task for the NumPy engine and the torch
   backend unbatched (``batch_trials = 1``) and batched (``auto``: a point's 20 trials at once).

gmstep runs its engine's tasks in this process, unit after unit, as the serial executor does
(``engine.trial_batch.units`` and ``compute_unit`` with a data cache: on the torch backend the
trials of a point as batches of ``--batch-trials``, default ``auto``; no results are written).
Random numbers: ``--rng`` (default ``auto``: drawn on the device on a GPU, NumPy's streams on the
CPU). Issue targets on one H200:
fig1a float64 20 trials <= 2 s and >= 5x the straightforward method; fig4a < 60 s.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from gmstep import presets  # noqa: E402
from gmstep.engine.datasets import DataCache  # noqa: E402
from gmstep.engine.task import compute_task  # noqa: E402
from gmstep.engine.trial_batch import compute_unit, units  # noqa: E402

TARGETS = {"fig1a float64 (s)": 2.0, "fig4a (s)": 60.0, "speed-up over straightforward": 5.0}


def part(title: str, fn: Callable[[], Any]) -> Any:
    """Run one part; on any error print FAILED with the error and go on."""
    print(f"\n== {title}", flush=True)
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 (a benchmark prints every part it can)
        print(f"FAILED: {type(exc).__name__}: {exc}", flush=True)
        traceback.print_exc(limit=3)
        return None


def sync(torch: Any, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_rate(torch: Any, device: str, dtype: Any, size: int) -> float:
    """Best-of-5 rate of one ``size x size`` product (TFLOP/s)."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    a @ b
    sync(torch, device)
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        sync(torch, device)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e12


def experiment(name: str, args: argparse.Namespace, dtype: str, trials: int) -> Any:
    exp = presets.get(name)
    params: dict[str, Any] = {"trials": trials, "dtype": dtype, "backend": args.backend}
    if args.backend == "torch":
        params.update(device=args.device, rng=args.rng, batch_trials=args.batch_trials)
    sweep = None
    if args.size:
        params.update(n=args.size, m=args.size)
    elif args.small:
        params.update(n=200, m=200) if name == "fig1a" else params.update(n=100, m=120)
    if (args.small or args.size) and name == "fig4a":
        sweep = {"alpha": exp.sweep["alpha"][::3], "beta": exp.sweep["beta"][::3]}
    return exp.with_changes(params=params, sweep=sweep)


#: Mean test error of the last fig1a run of gmstep (a sanity check of the straightforward port).
MEAN_TEST_ERROR: dict[str, float] = {}


def run_tasks(exp: Any, limit: float = math.inf) -> tuple[float, int, int]:
    """Every task of ``exp`` in order, unit by unit (stopping after ``limit`` seconds): (wall, done, total)."""
    tasks = list(exp.tasks())
    cache = DataCache()
    start = time.perf_counter()
    done, test = 0, []
    for point_index, trials in units(exp, tasks):
        for result in compute_unit(exp, point_index, trials, cache):  # on the host at the batch's end
            test.append(result.errors[:, 1])
            done += 1
        if time.perf_counter() - start > limit:
            break
    wall = time.perf_counter() - start
    MEAN_TEST_ERROR[exp.name] = float(np.nanmean(np.concatenate(test)))
    return wall, done, len(tasks)


def fig1a(args: argparse.Namespace, dtype: str) -> float:
    from run import method_flops  # benchmarks/run.py

    exp = experiment("fig1a", args, dtype, args.trials)
    run_tasks(experiment("fig1a", args, dtype, 1).with_changes(sweep={"k_over_m": [0.5, 2.0]}))  # warm up
    wall, done, total = run_tasks(exp)
    flops = method_flops(exp)
    statuses = {r["status"] for r in compute_task(exp, 0, 0).rows({})}
    print(f"fig1a {dtype}: {args.trials} trials ({done}/{total} tasks, n = {exp.params['n']}) in {wall:.3f} s "
          f"= {wall / args.trials:.4f} s per trial; {flops / 1e12:.3g} TFLOP -> {flops / wall / 1e12:.3g} TFLOP/s; "
          f"statuses {sorted(statuses)}", flush=True)
    return wall / args.trials


def naive_features(torch: Any, x: Any, f_hat: Any, sigma: Any, herm: tuple | None, gen: Any) -> Any:
    """``k x m`` features of the paper's orientation: ``sigma(F^ X^T) / sqrt(k)``, or with ``herm =
    (h, tail, b)`` the Hermite series ``sum_j h_j He_j(F^ X^T / b)`` (recurrence) plus ``tail Z``."""
    k = f_hat.shape[0]
    if herm is None:
        return sigma(f_hat @ x.T) / math.sqrt(k)
    h, tail, b = herm
    z = f_hat @ x.T / b
    prev, cur, out = torch.ones_like(z), z, h[0] + h[1] * z
    for j in range(2, len(h)):
        prev, cur = cur, z * cur - (j - 1) * prev
        out = out + h[j] * cur
    noise = torch.randn(x.shape[0], k, generator=gen, device=x.device, dtype=x.dtype).T
    return (out + tail * noise) / math.sqrt(k)


def naive_trial(torch: Any, exp: Any, s: dict[str, Any], trial: int, device: str, dtype: Any) -> list[float]:
    """One trial of the straightforward method on the device (see the module docstring), given
    the structure ``s`` (:func:`reference.naive.structure`: dense covariance roots, teacher)."""
    from reference import naive

    gen = torch.Generator(device=device)
    gen.manual_seed(1000 + trial)
    roots = [torch.from_numpy(r).to(device, dtype) for r in s["roots"]]
    test: list[float] = []
    xi = torch.from_numpy(s["xi"]).to(device, dtype)

    def sample(p: dict[str, Any], m: int) -> tuple[Any, Any]:
        counts = [int(p["ratios"][0] * m + 1e-9)]
        counts.append(m - counts[0])
        z = torch.randn(m, p["n"], generator=gen, device=device, dtype=dtype)
        x = torch.cat([z[:counts[0]] @ roots[0], z[counts[0]:] @ roots[1]])
        return x, torch.clamp_min(x @ xi, 0.0)

    for point in exp.points():
        p = naive.derived({**exp.params, **point})
        n, k, m, mt = p["n"], p["k"], p["m"], p["m_test"]
        for act in p["activations"]:
            sigma_np, _ = naive.ACTIVATIONS[act]
            sigma, dsigma = {"relu": (torch.relu, lambda u: (u > 0).to(u.dtype)),
                             "tanh": (torch.tanh, lambda u: 1 - torch.tanh(u) ** 2),
                             "sigmoid": (torch.sigmoid, lambda u: torch.sigmoid(u) * torch.sigmoid(-u))}[act]
            for model in p["models"]:
                xg, yg = sample(p, p["m_grad"])
                x, y = sample(p, m)
                xt, yt = sample(p, mt)
                f = torch.randn(k, n, generator=gen, device=device, dtype=dtype) / math.sqrt(s["tr"])
                a = torch.randn(k, generator=gen, device=device, dtype=dtype) / math.sqrt(k)
                u = f @ xg.T
                r = yg - a @ sigma(u) / math.sqrt(k)
                f_hat = f + p["eta"] * ((torch.outer(a, r) * dsigma(u)) @ xg) / (p["m_grad"] * math.sqrt(k))
                herm = None
                if model != "nn":
                    b = math.sqrt(n / s["tr"])
                    herm = (*naive.hermite_coefficients(sigma_np, b, p["degree"], p["hermite_nodes"]), b)
                phi = naive_features(torch, x, f_hat, sigma, herm, gen)
                eye = torch.eye(k, device=device, dtype=dtype)
                a_hat = torch.linalg.solve(phi @ phi.T + p["lambda"] * m * eye, phi @ y)
                float(((y - phi.T @ a_hat) ** 2).sum())  # the errors reach the host pass by pass
                test.append(float(((yt - naive_features(torch, xt, f_hat, sigma, herm, gen).T @ a_hat) ** 2).sum())
                            / (2 * mt))
    return test


def naive(torch: Any, args: argparse.Namespace, device: str, per_trial: float | None) -> None:
    from reference.naive import derived, structure

    exp = experiment("fig1a", args, "float64", 1)
    # The dense structure (n x n eigendecompositions) once, outside the timing: fig1a draws it once.
    s = structure(derived({**exp.params, **exp.points()[0]}), np.random.default_rng(0))
    naive_trial(torch, exp.with_changes(sweep={"k_over_m": [0.5]}), s, 0, device, torch.float64)  # warm up
    sync(torch, device)
    start = time.perf_counter()
    test = [e for trial in range(args.naive_trials) for e in naive_trial(torch, exp, s, trial, device, torch.float64)]
    sync(torch, device)
    each = (time.perf_counter() - start) / args.naive_trials
    print(f"straightforward fig1a float64: {each:.3f} s per trial ({args.naive_trials} trials) "
          f"-> {each * args.trials:.2f} s for {args.trials} trials", flush=True)
    if "fig1a" in MEAN_TEST_ERROR:  # other random draws: equal in distribution, not digit by digit
        print(f"mean test error (sanity check): straightforward {np.mean(test):.4g}, "
              f"gmstep {MEAN_TEST_ERROR['fig1a']:.4g}", flush=True)
    if per_trial:
        print(f"gmstep speed-up over the straightforward method on {device}: {each / per_trial:.2f}x "
              f"(target >= {TARGETS['speed-up over straightforward']:g}x)", flush=True)


def fig4a(args: argparse.Namespace) -> None:
    exp = experiment("fig4a", args, "float64", presets.get("fig4a").params["trials"])
    wall, done, total = run_tasks(exp, args.fig4a_limit)
    est = wall * total / max(done, 1)
    note = "" if done == total else f" (stopped at {done}/{total} tasks; {est:.1f} s extrapolated)"
    print(f"fig4a float64: {len(exp.points())} points x {exp.params['trials']} trials, n = {exp.params['n']}, "
          f"m = {exp.params['m']}: {wall:.2f} s{note} (target < {TARGETS['fig4a (s)']:g} s)", flush=True)


def overhead(args: argparse.Namespace) -> None:
    """Milliseconds per task of tasks too small to compute anything (fig4a at n = m = 8)."""
    base = presets.get("fig4a")
    exp = base.with_changes(params={"n": 8, "m": 8}, sweep={"alpha": base.sweep["alpha"][:6],
                                                            "beta": base.sweep["beta"][:5]})
    torch_params = {"backend": "torch", "device": args.device, "rng": args.rng}
    cases = {"NumPy engine": {}, "torch unbatched (batch_trials = 1)": {**torch_params, "batch_trials": 1},
             "torch batched (batch_trials = auto)": {**torch_params, "batch_trials": "auto"}}
    per_task = {}
    for label, params in cases.items():
        case = exp.with_changes(params=params)
        run_tasks(case.with_changes(sweep={"alpha": [0.5], "beta": [0.5]}))  # warm up
        best = math.inf
        for _ in range(3):
            wall, done, _total = run_tasks(case)
            best = min(best, wall / done)
        per_task[label] = best
        print(f"per-task host overhead, {label}: {1e3 * best:.3f} ms per task ({done} tasks, best of 3)", flush=True)
    batched, single = per_task["torch batched (batch_trials = auto)"], per_task["torch unbatched (batch_trials = 1)"]
    print(f"per-task host overhead batched vs not: {1e3 * batched:.3f} vs {1e3 * single:.3f} ms per task "
          f"({single / batched:.1f}x less); at fig4a's 18000 tasks: {18000 * batched:.1f} s vs {18000 * single:.1f} s",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="reduced sizes (for a CPU)")
    ap.add_argument("--size", type=int, default=0, help="n = m = SIZE for every case (with the --small grid)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--backend", default="torch", choices=("torch", "numpy"))
    ap.add_argument("--rng", default="auto", choices=("auto", "numpy", "device"))
    ap.add_argument("--batch-trials", default="auto", type=lambda v: v if v == "auto" else int(v),
                    help="the torch backend's batch_trials (auto, or trials per batch)")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--naive-trials", type=int, default=2)
    ap.add_argument("--fig4a-limit", type=float, default=180.0, help="seconds before fig4a stops and extrapolates")
    ap.add_argument("--skip", nargs="*", default=[], choices=("fig1a", "float32", "naive", "fig4a", "overhead"))
    args = ap.parse_args(argv)
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    args.device = device
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({torch.get_num_threads()} torch threads)"
    print(f"device: {device}: {name}; torch {torch.__version__}; backend {args.backend}", flush=True)
    if device == "cpu" and not (args.small or args.size):
        print("WARNING: no CUDA device: paper scale on the CPU takes long; use --small", flush=True)
    size = 8192 if device == "cuda" else 1024
    part("matrix-multiply rate", lambda: print(
        f"float64 {matmul_rate(torch, device, torch.float64, size):.3g} TFLOP/s, "
        f"float32 {matmul_rate(torch, device, torch.float32, size):.3g} TFLOP/s ({size}^2 products)", flush=True))
    per_trial = None
    if "fig1a" not in args.skip:
        per_trial = part("fig1a float64", lambda: fig1a(args, "float64"))
    if "float32" not in args.skip:
        part("fig1a float32", lambda: fig1a(args, "float32"))
    if "naive" not in args.skip:
        part("straightforward method", lambda: naive(torch, args, device, per_trial))
    if "fig4a" not in args.skip:
        part("fig4a grid", lambda: fig4a(args))
    if "overhead" not in args.skip and args.backend == "torch":
        part("per-task host overhead", lambda: overhead(args))
    print(f"\ntargets on one H200: {TARGETS}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
