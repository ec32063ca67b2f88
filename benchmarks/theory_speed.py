"""Cost of a theory task against the network's Monte Carlo task at the same (n, m, k).

    python benchmarks/theory_speed.py                      # n = m = 500, k/m up to 5, ReLU and tanh
    python benchmarks/theory_speed.py --n 1000 --widths 0.5,1

Each measurement is one task of fig1a's setting (one activation) computed by
:func:`gmstep.engine.task.run_task` with ``models = ["nn"]`` (gradient step, training and test
features, ridge readout, test error) or ``models = ["theory"]`` (gradient step, moments,
deterministic equivalent; no training or test set), on one thread with single-threaded BLAS,
best of ``--repeats`` runs, data drawn beforehand (a warm cache). The two models' runs alternate
(side by side in time) and each is timed by the CPU time of this single-threaded process
(``--clock process``, the default: on a shared machine it moves much less than the wall time)
or by the wall time (``--clock wall``). The theory's k x k algebra grows like k^3 while the
Monte Carlo's readout uses the m x m dual for k > m: the ratio is printed for every width, with
the theory's iterations (single- plus double-precision steps of the fixed point). The last column
is what the theory adds to a task that runs the network anyway (``models = ["nn", "theory"]``
minus ``models = ["nn"]``: the gradient step and ``F^`` are shared), over the network's task.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from gmstep import presets, theory  # noqa: E402
from gmstep.engine import parallel  # noqa: E402
from gmstep.engine.datasets import DataCache  # noqa: E402
from gmstep.engine.task import run_task  # noqa: E402


def best_times(exps: dict, caches: dict, repeats: int, clock) -> dict:
    """Best time of each model's task over ``repeats`` rounds, the models alternating."""
    best = dict.fromkeys(exps, float("inf"))
    for _ in range(repeats):
        for model, exp in exps.items():
            start = clock()
            run_task(exp, 0, 0, caches[model])
            best[model] = min(best[model], clock() - start)
    return best


def theory_iterations(exp, cache) -> int:
    """Steps of the fixed point in a theory task (the solver's ``iterations``)."""
    seen = []
    solve = theory.solve

    def spy(*args, **kwargs):
        res = solve(*args, **kwargs)
        seen.append(res.iterations)
        return res

    theory.solve = spy
    try:
        run_task(exp, 0, 0, cache)
    finally:
        theory.solve = solve
    return seen[0] if seen else -1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="n = m")
    ap.add_argument("--widths", default="0.25,0.5,1,2,3,5", help="k/m values")
    ap.add_argument("--activations", default="relu,tanh")
    ap.add_argument("--repeats", type=int, default=5, help="rounds; each model's best is kept")
    ap.add_argument("--clock", choices=["process", "wall"], default="process")
    args = ap.parse_args(argv)
    clock = time.process_time if args.clock == "process" else time.perf_counter
    parallel.set_threads(1)
    print(f"n = m = {args.n}, one thread; {args.clock} seconds per task (one activation), best of {args.repeats}")
    print(f"{'act':6s} {'k/m':>5s} {'k':>6s} {'network MC':>11s} {'theory':>8s} {'theory/MC':>10s} {'iterations':>10s} "
          f"{'added/MC':>9s}")
    for act in args.activations.split(","):
        for w in (float(v) for v in args.widths.split(",")):
            exps, caches = {}, {}
            for model in ("nn", "theory", "nn+theory"):
                exps[model] = presets.get("fig1a").with_changes(
                    params={"n": args.n, "m": args.n, "trials": 1, "activations": [act], "models": model.split("+")},
                    sweep={"k_over_m": [w]})
                caches[model] = DataCache()
                run_task(exps[model], 0, 0, caches[model])  # draws the data (and warms up)
            its = theory_iterations(exps["theory"], caches["theory"])
            times = best_times(exps, caches, args.repeats, clock)
            k = round(w * args.n)
            added = (times["nn+theory"] - times["nn"]) / times["nn"]
            print(f"{act:6s} {w:5g} {k:6d} {times['nn']:11.3f} {times['theory']:8.3f} "
                  f"{times['theory'] / times['nn']:10.2f} {its:10d} {added:9.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
