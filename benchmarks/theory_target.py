"""The accuracy target of the theory model: theory against the network's Monte Carlo mean.

    python benchmarks/theory_target.py                 # n = m = 500, 10 trials
    python benchmarks/theory_target.py --n 1000 --trials 20
    python benchmarks/theory_target.py --redraw trial      # fresh data every trial

Runs fig1a at widths k/m = 0.3, 1, 3 and fig2a at ratios rho = 0.3, 0.5 (their paper settings,
n = m scaled down) with ``models = nn, theory`` for all three activations. For every point it
prints the mean test error over trials of the network and of the theory (each trial: its own
``F^``, shared by both), the standard error of the network's mean, and the relative gap
``|mean_theory - mean_nn| / mean_nn``; then the median and the largest gap (the target: 3 % and
8 % at n = m = 500).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from gmstep import presets  # noqa: E402
from gmstep.engine.datasets import DataCache  # noqa: E402
from gmstep.engine.task import run_task  # noqa: E402


def measure(name: str, column: str, values: list[float], n: int, trials: int, seed: int, redraw: str | None):
    extra = {"redraw": redraw} if redraw else {}
    exp = presets.get(name).with_changes(
        params={"n": n, "m": n, "trials": trials, "models": ["nn", "theory"], "seed": seed, **extra},
        sweep={column: values},
    )
    cache = DataCache()
    rows = [r for task in exp.tasks() for r in run_task(exp, *task, cache)]
    out = []
    for v in values:
        for act in exp.params["activations"]:
            sel = {model: np.array([r["test_error"] for r in rows if r[column] == v and r["activation"] == act
                                    and r["model"] == model]) for model in ("nn", "theory")}
            status = {r["status"] for r in rows if r[column] == v and r["activation"] == act}
            nn, th = sel["nn"], sel["theory"]
            se = nn.std(ddof=1) / math.sqrt(len(nn)) if len(nn) > 1 else float("nan")
            out.append((name, column, v, act, nn.mean(), se, th.mean(), abs(th.mean() - nn.mean()) / nn.mean(),
                        ",".join(sorted(status))))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="n = m")
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--redraw", choices=["once", "point", "trial"], default=None,
                    help="override the presets' redraw policy (trial: fresh data every trial)")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    table = measure("fig1a", "k_over_m", [0.3, 1.0, 3.0], args.n, args.trials, args.seed, args.redraw)
    table += measure("fig2a", "rho", [0.3, 0.5], args.n, args.trials, args.seed, args.redraw)
    print(f"n = m = {args.n}, {args.trials} trials, redraw {args.redraw or 'as in the presets'}")
    print(f"{'preset':6s} {'point':14s} {'act':8s} {'nn mean':>10s} {'+- se':>9s} {'theory':>10s} {'gap':>7s} status")
    for name, col, v, act, nn, se, th, gap, status in table:
        print(f"{name:6s} {col + ' = ' + format(v, 'g'):14s} {act:8s} {nn:10.5f} {se:9.5f} {th:10.5f} "
              f"{100 * gap:6.2f}% {status}")
    gaps = np.array([row[7] for row in table])
    print(f"median gap {100 * np.median(gaps):.2f} %, largest {100 * gaps.max():.2f} % "
          f"(target 3 % / 8 %); {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
