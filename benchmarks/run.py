"""Benchmark: gmstep against the straightforward reference, at the paper's scale.

    python benchmarks/run.py                 # fig1a (13 widths, 1 trial) and fig2c (3 trials)
    python benchmarks/run.py --fig2c-trials 5 --json bench.json

For each case it prints the wall time of gmstep (serial, and with ``--jobs`` = the machine's
cores) and of ``tests/reference/naive.py`` run side by side, their ratio, the peak memory of
each (the summed resident memory of the process and all its children, sampled every 50 ms: an
upper bound, shared library pages are counted once per process), the floating point operations
the method needs (counted from the sizes, see :func:`method_flops`), gmstep's achieved rate and
that rate as a fraction of the machine's measured float64 matrix-multiply rate. It then runs
fig1a in float32 and reports the speed-up and the largest relative change of the errors.

Each measurement runs in a fresh child process (``--child``), so memory and thread pools do not
carry over between them. Timings depend on what else the machine is doing: the load average is
printed before and after; the ratios are more robust than the absolute times.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from gmstep import config, presets, results, runner
from gmstep.executors import usable_cores
from gmstep.experiment import point_at

HERE = Path(__file__).resolve().parent
TARGETS = {"fig1a": 4.0, "fig2c": 8.0}
MEMORY_TARGET_GB = 2.0


# ----------------------------------------------------------------------------- the cases


def case(name: str, trials: int, dtype: str = "float64", quick: bool = False):
    """The preset at paper scale (its reduced variant with ``quick``) with ``trials`` trials."""
    return presets.get(name, quick=quick).with_changes(params={"trials": trials, "dtype": dtype})


def method_flops(exp) -> float:
    """Floating point operations of the products the method needs (multiply and add counted).

    Per task: ``2 m~ n k`` for ``X~ F^T``; per activation ``2 k m~ n`` for the gradient
    ``G^T X~``, ``2 m n k`` and ``2 m_test n k`` for the training and test pre-activations; per
    model the ridge in the smaller dimension ``s = min(k, m)`` (the Gram matrix by a symmetric
    rank update, ``s^2 max(k, m)``; Cholesky ``s^3 / 3``; solves, right-hand side, weights and
    residuals ``2 s^2 + 6 m k``) and the test predictions ``2 m_test k``.
    """
    total = 0.0
    for point_index, _trial in exp.tasks():
        p = config.resolved(exp.point_params(point_at(exp, point_index)))
        n, k, m, mg, mt = p["n"], p["k"], p["m"], p["m_grad"], p["m_test"]
        s, big = min(k, m), max(k, m)
        per_model = s * s * big + s**3 / 3 + 2 * s * s + 6 * m * k + 2 * mt * k
        per_act = 2 * k * mg * n + 2 * m * n * k + 2 * mt * n * k + len(p["models"]) * per_model
        total += 2 * mg * n * k + len(p["activations"]) * per_act
    return total


def matmul_rate(size: int = 2000, repeats: int = 5) -> float:
    """The machine's float64 matrix-multiply rate (GFLOP/s): best of ``repeats`` products."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    a @ b  # warm up the thread pool
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2.0 * size**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- child processes


def child(which: str, name: str, trials: int, jobs: int, dtype: str, quick: bool) -> None:
    """Run one measurement and print its result as JSON on the last line of stdout."""
    exp = case(name, trials, dtype, quick)
    start = time.perf_counter()
    if which == "gmstep":
        res = runner.run(exp, None, jobs=jobs, progress=False, plot=False)
        rows = [dict(r) for r in res.rows]
    else:
        sys.path.insert(0, str(HERE.parent / "tests"))
        from reference.naive import naive_run

        rows = naive_run(exp)
    wall = time.perf_counter() - start
    keep = ("activation", "model", "trial", "train_error", "test_error", *exp.sweep_columns)
    print(json.dumps({"wall": wall, "rows": [{k: r[k] for k in keep} for r in rows]}))


def measure(
    which: str, name: str, trials: int, jobs: int = 1, dtype: str = "float64", quick: bool = False,
    one_core: bool = False,
) -> dict[str, Any]:
    """Run :func:`child` in a fresh process; wall time, peak memory of its process tree, rows.

    ``one_core`` limits the child to one thread: BLAS (``OPENBLAS_NUM_THREADS=1`` and the like)
    and gmstep (``GMSTEP_THREADS=1``).
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", which, name, str(trials), str(jobs), dtype,
           str(int(quick))]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if one_core:
        env.update({v: "1" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GMSTEP_THREADS")})
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        peak = _watch_memory(proc)
        proc.wait()
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{which} {name} failed:\n{err.read()}")
        result = json.loads(out.read().strip().splitlines()[-1])
    result["peak_gb"] = peak / 2**30
    return result


def _watch_memory(proc: subprocess.Popen) -> float:
    """Peak summed RSS (bytes) of ``proc`` and its descendants until it exits."""
    try:
        import psutil
    except ImportError:
        proc.wait()
        import resource

        return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024.0
    peak = 0.0
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        total = 0.0
        with contextlib.suppress(psutil.Error):
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
        peak = max(peak, total)
        time.sleep(0.05)
    return peak


# ----------------------------------------------------------------------------- report


def max_relative_difference(rows_a: list[dict], rows_b: list[dict], column: str) -> tuple[float, float]:
    """Largest and median ``|a - b| / |b|`` over rows matched by their identity."""

    def key(r):
        return tuple(sorted((k, str(v)) for k, v in r.items() if k not in ("train_error", "test_error")))

    b = {key(r): r[column] for r in rows_b}
    diffs = [abs(r[column] - b[key(r)]) / abs(b[key(r)]) for r in rows_a if b.get(key(r))]
    return (max(diffs), float(np.median(diffs))) if diffs else (float("nan"), float("nan"))


def machine() -> dict[str, Any]:
    info = results.machine_summary()
    info["load_average"] = os.getloadavg()
    return info


def _fmt(value: float | None, spec: str, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}{spec}}"


def _ratio(value: float | None) -> str:
    return f"{'-':>10}" if value is None else f"{value:9.1f}x"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        which, name, trials, jobs, dtype, quick = args.child
        child(which, name, int(trials), int(jobs), dtype, quick == "1")
        return 0

    jobs = args.jobs or usable_cores()
    report: dict[str, Any] = {"machine": machine(), "jobs": jobs}
    print("machine:", json.dumps({k: report["machine"].get(k) for k in ("processor", "cpus", "memory_gb", "numpy")}))
    print(f"load average at start: {tuple(round(v, 2) for v in report['machine']['load_average'])}")
    rate = matmul_rate()
    report["matmul_gflops"] = rate
    print(f"float64 matrix multiply (2000 x 2000 x 2000, all cores): {rate:.1f} GFLOP/s\n")
    for name, trials in (("fig1a", args.fig1a_trials), ("fig2c", args.fig2c_trials)):
        if trials <= 0:  # --fig2c-trials 0: that case skipped
            continue
        e, serial, parallel = bench_case(name, trials, jobs, rate, args)
        report[name] = e
        print_case(name, e, serial, parallel, jobs, args)
    report["float32"] = bench_float32(jobs, args)
    report["load_average_end"] = os.getloadavg()
    print(f"\nload average at the end: {tuple(round(v, 2) for v in report['load_average_end'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="the presets' reduced variants (a smoke test)")
    ap.add_argument("--fig1a-trials", type=int, default=1, help="0 skips fig1a")
    ap.add_argument("--fig2c-trials", type=int, default=3, help="0 skips fig2c")
    ap.add_argument("--jobs", type=int, default=None, help="gmstep's parallel run (default: the usable cores)")
    ap.add_argument("--skip-naive", action="store_true", help="time gmstep only")
    ap.add_argument("--one-core", action="store_true",
                    help="also compare both on one core (one BLAS thread): robust to other load on the machine")
    ap.add_argument("--json", help="also write every figure to this JSON file")
    return ap


def bench_case(name: str, trials: int, jobs: int, rate: float, args: argparse.Namespace) -> tuple[dict, dict, dict]:
    """Measure one preset: gmstep serial and parallel, the naive reference, optionally one core."""
    exp = case(name, trials, quick=args.quick)
    flops = method_flops(exp)
    q = {"quick": args.quick}
    serial = measure("gmstep", name, trials, 1, **q)
    parallel = measure("gmstep", name, trials, jobs, **q) if jobs > 1 else serial
    naive = None if args.skip_naive else measure("naive", name, trials, **q)
    best = min(serial["wall"], parallel["wall"])
    e: dict[str, Any] = {
        "tasks": len(exp.tasks()), "n": exp.params["n"], "m": exp.params["m"], "gflop": flops / 1e9,
        "gmstep_jobs1_s": serial["wall"], f"gmstep_jobs{jobs}_s": parallel["wall"],
        "gmstep_peak_gb": max(serial["peak_gb"], parallel["peak_gb"]),
        "gmstep_gflops": flops / best / 1e9, "fraction_of_matmul": flops / best / 1e9 / rate,
    }
    if naive is not None:
        e.update({
            "naive_s": naive["wall"], "naive_peak_gb": naive["peak_gb"],
            "ratio_jobs1": naive["wall"] / serial["wall"], f"ratio_jobs{jobs}": naive["wall"] / parallel["wall"],
            "max_rel_diff_test": max_relative_difference(serial["rows"], naive["rows"], "test_error")[0],
            "max_rel_diff_train": max_relative_difference(serial["rows"], naive["rows"], "train_error")[0],
        })
    if args.one_core:
        g1 = measure("gmstep", name, trials, 1, one_core=True, **q)
        e["gmstep_one_core_s"] = g1["wall"]
        if naive is not None:
            n1 = measure("naive", name, trials, one_core=True, **q)
            e["naive_one_core_s"] = n1["wall"]
            e["ratio_one_core"] = n1["wall"] / g1["wall"]
    return e, serial, parallel


def print_case(name: str, e: dict, serial: dict, parallel: dict, jobs: int, args: argparse.Namespace) -> None:
    """Print one preset's measurements as a table, with the targets."""
    print(f"{name}: n = {e['n']}, m = {e['m']}, {e['tasks']} tasks, {e['gflop']:.0f} GFLOP of products")
    print(f"  {'':<28}{'wall (s)':>10}{'vs naive':>10}{'peak GB':>9}")
    print(f"  {'naive reference':<28}{_fmt(e.get('naive_s'), '.1f', 10)}{'':>10}"
          f"{_fmt(e.get('naive_peak_gb'), '.2f', 9)}")
    print(f"  {'gmstep, jobs=1':<28}{serial['wall']:10.1f}{_ratio(e.get('ratio_jobs1'))}"
          f"{serial['peak_gb']:9.2f}")
    if jobs > 1:
        print(f"  {f'gmstep, jobs={jobs}':<28}{parallel['wall']:10.1f}"
              f"{_ratio(e.get(f'ratio_jobs{jobs}'))}{parallel['peak_gb']:9.2f}")
    if args.one_core:
        print(f"  {'naive, one core':<28}{_fmt(e.get('naive_one_core_s'), '.1f', 10)}")
        print(f"  {'gmstep, one core':<28}{e['gmstep_one_core_s']:10.1f}{_ratio(e.get('ratio_one_core'))}")
    print(f"  gmstep: {e['gmstep_gflops']:.1f} GFLOP/s = {e['fraction_of_matmul']:.0%} of the measured "
          f"matrix-multiply rate")
    if "naive_s" in e:
        print(f"  gmstep vs naive, largest relative difference of the errors: test "
              f"{e['max_rel_diff_test']:.1e}, train {e['max_rel_diff_train']:.1e}")
        ratio = max(e["ratio_jobs1"], e[f"ratio_jobs{jobs}"])
        print(f"  target: at least {TARGETS[name]:g}x faster -> {'met' if ratio >= TARGETS[name] else 'NOT met'}"
              f" ({ratio:.1f}x)")
    if name == "fig1a":
        ok = e["gmstep_peak_gb"] < MEMORY_TARGET_GB
        print(f"  target: peak memory under {MEMORY_TARGET_GB:g} GB -> {'met' if ok else 'NOT met'}"
              f" ({e['gmstep_peak_gb']:.2f} GB)")
    print(flush=True)



def bench_float32(jobs: int, args: argparse.Namespace) -> dict[str, Any]:
    """fig1a in float32 against float64: the speed-up and the relative change of the errors."""
    f64 = measure("gmstep", "fig1a", args.fig1a_trials, jobs, quick=args.quick)
    f32 = measure("gmstep", "fig1a", args.fig1a_trials, jobs, "float32", quick=args.quick)
    precision = {
        "float64_s": f64["wall"], "float32_s": f32["wall"], "speedup": f64["wall"] / f32["wall"],
        "peak_gb_float32": f32["peak_gb"],
    }
    for col in ("test_error", "train_error"):
        for model in ("nn", "hermite"):
            a = [r for r in f32["rows"] if r["model"] == model]
            b = [r for r in f64["rows"] if r["model"] == model]
            worst, median = max_relative_difference(a, b, col)
            precision[f"{col}_{model}_max"] = worst
            precision[f"{col}_{model}_median"] = median
    print(f"float32, fig1a (jobs={jobs}): {f32['wall']:.1f} s vs {f64['wall']:.1f} s in float64 "
          f"({precision['speedup']:.2f}x); relative change of the errors (largest / median):")
    for col in ("test_error", "train_error"):
        for model in ("nn", "hermite"):
            worst, median = precision[f"{col}_{model}_max"], precision[f"{col}_{model}_median"]
            print(f"  {col:<12}{model:<8}{worst:.1e} / {median:.1e}")
    return precision


if __name__ == "__main__":
    sys.exit(main())
