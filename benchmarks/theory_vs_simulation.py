"""Theory against simulation at paper scale, from two finished runs of the same preset.

    gmstep reproduce fig2a --out results                                      # the simulation
    gmstep reproduce fig2a --set models=theory --set trials=3 --out theory    # the theory
    python benchmarks/theory_vs_simulation.py results/fig2a theory/fig2a [--out FILE.png]

For every sweep point and activation it compares the theory's mean test error (over its trials:
trial t of the theory run uses the very ``F^`` and data source of trial t of the simulation, the
streams being keyed by the trial) with the network's Monte Carlo mean ``m_nn`` and prints the
relative gap ``|m_theory - m_nn| / m_nn``, the gap in units of the Monte Carlo standard error
``sem`` and of the standard deviation ``sd`` (the error bars of the report-style figure), then per
activation the median and largest relative gap and how many points lie within one ``sd`` and
within 3 ``sem``. ``--paired`` compares over the theory's trials only (the network's rows of the
same trials: same ``F^``, same structure), with the standard error of the per-trial differences:
the fair test where the structure itself is random per trial (fig2c's random spike strengths).
With ``--out`` it draws both runs on one axes (``gmstep compare``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from gmstep import figures, load  # noqa: E402
from gmstep.config import NN, THEORY  # noqa: E402


def gaps(sim_dir: str, theory_dir: str, metric: str = "test_error", paired: bool = False):
    """Rows ``(point, activation, m_nn, sem, sd, m_theory, relative gap)`` over the common points
    (``paired``: the network's rows of the theory's trials only, ``sem`` and ``sd`` those of the
    per-trial differences theory - network)."""
    sim, th = load(sim_dir), load(theory_dir)
    cols = sim.experiment.sweep_columns
    if th.experiment.sweep_columns != cols:
        raise SystemExit(f"{theory_dir} sweeps {th.experiment.sweep_columns}, {sim_dir} sweeps {cols}")
    keys = [*cols, "activation"]
    if paired:
        return _paired(sim.to_pandas(), th.to_pandas(), keys, metric), cols
    s, t = sim.summary(metric), th.summary(metric)
    nn = s[s["model"] == NN].set_index(keys)
    theory = t[t["model"] == THEORY].set_index(keys)["mean"].rename("theory")
    both = nn.join(theory, how="inner")
    both["gap"] = (both["theory"] - both["mean"]).abs() / both["mean"].abs()
    return both.reset_index(), cols


def _paired(sim, th, keys: list[str], metric: str):
    """Per point and activation: network and theory means over the common ``ok`` trials, and the
    sd and sem of the differences."""
    nn = sim[(sim["model"] == NN) & (sim["status"] == "ok")].set_index([*keys, "trial"])[metric]
    theory = th[(th["model"] == THEORY) & (th["status"] == "ok")].set_index([*keys, "trial"])[metric]
    both = pd.concat({"mean": nn, "theory": theory}, axis=1, join="inner").reset_index()
    both["diff"] = both["theory"] - both["mean"]
    out = both.groupby(keys, sort=False).agg(mean=("mean", "mean"), theory=("theory", "mean"), sd=("diff", "std"),
                                             count=("diff", "size")).reset_index()
    out["sem"] = out["sd"] / np.sqrt(out["count"])
    out["gap"] = (out["theory"] - out["mean"]).abs() / out["mean"].abs()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("simulation")
    ap.add_argument("theory")
    ap.add_argument("--metric", default="test_error", choices=["test_error", "train_error"])
    ap.add_argument("--paired", action="store_true", help="compare over the theory's trials only (same F^)")
    ap.add_argument("--out", help="also draw both runs on one axes into this file (.png: a .pdf beside it)")
    args = ap.parse_args(argv)
    table, cols = gaps(args.simulation, args.theory, args.metric, args.paired)
    print(f"{' '.join(cols):>10} {'activation':>10} {'network':>10} {'sem':>9} {'theory':>10} {'gap':>7} "
          f"{'gap/sem':>8} {'gap/sd':>7}")
    for _, r in table.iterrows():
        diff = abs(r["theory"] - r["mean"])
        point = " ".join(f"{r[c]:g}" for c in cols)
        print(f"{point:>10} {r['activation']:>10} {r['mean']:10.5f} {r['sem']:9.2e} {r['theory']:10.5f} "
              f"{r['gap']:7.2%} {diff / r['sem']:8.1f} {diff / r['sd']:7.2f}")
    print()
    for act, g in table.groupby("activation", sort=False):
        diff = (g["theory"] - g["mean"]).abs()
        print(f"{act:>8}: median gap {np.median(g['gap']):.2%}, largest {g['gap'].max():.2%} "
              f"(at {' '.join(cols)} = {g.loc[g['gap'].idxmax(), cols[0]]:g}); within 1 sd: "
              f"{int((diff <= g['sd']).sum())}/{len(g)}, within 3 sem: {int((diff <= 3 * g['sem']).sum())}/{len(g)}")
    print(f"all: median gap {np.median(table['gap']):.2%}, largest {table['gap'].max():.2%}")
    if args.out:
        print(figures.compare([args.simulation, args.theory], args.out, ["simulation", "theory"],
                              metric=args.metric, style="report"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
