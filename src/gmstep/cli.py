"""The ``gmstep`` command line.

Every error the user can cause ends in one line on stderr and exit status 2; an interrupted run
ends with exit status 130 (SIGINT) or 143 (SIGTERM) after saying how to resume.
"""

from __future__ import annotations

import argparse
import re
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__, activations, cli_gan, config, experiment, figures, hermite, plotting, presets, runner
from .batch import reproduce
from .cli_values import parse_sets, parse_values
from .constraints import POSITIVE
from .errors import ConfigError, GmstepError, ResultsError
from .experiment import Experiment
from .plot_options import ERRORBARS, METRICS, STYLES
from .runner import Interrupted, SignalGuard, run

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


# ----------------------------------------------------------------------------- commands


def _run_experiment(exp, args) -> int:
    res = run(
        exp, args.out, resume=args.resume, progress=not args.no_progress,
        jobs=args.jobs, scheduler=args.scheduler, plot=not args.no_plot, force=args.force,
    )
    _report(res)
    return 0


def _resume_hint(exc, argv: Sequence[str]) -> str:
    """One line: what was kept and the command that continues the run."""
    if exc.directory is None:
        return f"gmstep: {exc}"
    words = [a for a in argv if a != "--resume"]
    return f"gmstep: {exc}; resume with: gmstep {shlex.join(words)} --resume"


def _report(res) -> None:
    """Rows, wall time and the network-vs-Hermite gap on stdout; numerical problems on stderr."""
    d = res.directory
    print(f"{res.experiment.name}: {len(res.rows)} rows in {res.elapsed:.1f} s"
          + (f" -> {d / 'results.csv'}" if d else ""))
    gap = res.max_gap()
    if gap == gap:  # not NaN
        print(f"largest relative network-vs-Hermite gap of mean test errors: {gap:.3%}")
    figures = getattr(res, "figures", None)
    if figures:
        print("figure: " + ", ".join(str(f) for f in figures))
    problems = res.problems()
    if problems:
        total = sum(problems.values())
        print(f"gmstep: warning: {total} of {len(res.rows)} rows have numerical problems ("
              + ", ".join(f"{k}: {v}" for k, v in problems.items())
              + "); they are left out of means and plots (see the status column of results.csv)",
              file=sys.stderr)


def _overrides(args) -> dict[str, Any]:
    """The parameters given by ``--set``, ``--trials`` and ``--seed``."""
    params = parse_sets(args.set or [])
    if args.trials is not None:
        params["trials"] = args.trials
    if args.seed is not None:
        params["seed"] = args.seed
    return params


def _apply_overrides(exp, args):
    return exp.with_overrides(_overrides(args), parse_values(args.values or [], exp.sweep_columns))


def cmd_list(args) -> int:
    width = max(map(len, presets.names()))
    for name in presets.names():
        print(f"{name:<{width}}  {presets.describe(name)}")
    return 0


def cmd_params(args) -> int:
    sweepable = set(experiment.sweepable())
    for key, p in config.PARAMS.items():
        mark = " (sweepable)" if key in sweepable else ""
        allowed = p.check.describe()
        if allowed:
            mark += f"; {allowed}"
        print(f"{key:<14} default {p.default!r:<28} {p.doc}{mark}")
    return 0


def cmd_reproduce(args) -> int:
    options = dict(out=args.out, quick=args.quick, resume=args.resume, force=args.force, jobs=args.jobs,
                   scheduler=args.scheduler, plot=not args.no_plot, progress=not args.no_progress)
    if args.name != "all":
        exp = presets.get(args.name, quick=args.quick)
        params, sweep = _overrides(args), parse_values(args.values or [], exp.sweep_columns)
        _report(reproduce(args.name, params=params, sweep=sweep, **options)[0].results)
        return 0
    if args.values:
        raise ConfigError("--values", "cannot be used with 'all'")
    outcomes = reproduce("all", params=_overrides(args), report=_print_failure, **options)
    print(f"\n{'preset':<7} {'rows':>7} {'wall time':>11} {'max gap':>9}  note")
    for o in outcomes:
        gap_text = f"{o.gap:.2%}" if o.gap == o.gap else "-"
        print(f"{o.name:<7} {o.rows:>7} {o.wall:>10.1f}s {gap_text:>9}  {o.note}")
    if not args.no_plot:
        print(f"figures: {Path(args.out) / '<preset>' / '<preset>.png'} (and .pdf); the paper's composite "
              f"figures: gmstep figure N --out {args.out} (N = 1..8)")
    return 1 if any(o.error is not None for o in outcomes) else 0


def _print_failure(outcome) -> None:
    if outcome.error is not None:
        print(f"gmstep: {outcome.name}: error: {outcome.error}", file=sys.stderr)


def cmd_run(args) -> int:
    exp = Experiment.from_toml(Path(args.file))
    if args.quick:
        raise ConfigError("--quick", "only presets have a quick variant")
    exp = _apply_overrides(exp, args)
    return _run_experiment(exp, args)


def cmd_plot(args) -> int:
    res = runner.load(args.dir)
    if not res.rows:
        raise ResultsError(f"{Path(args.dir) / 'results.csv'} holds no complete task: nothing to plot")
    for path in plotting.plot_results(res, res.directory, **_plot_options(args)):
        print(path)
    if not res.complete:
        print(f"gmstep: warning: {res.directory} holds an unfinished run; plotted the "
              f"{len(res.rows)} rows of its finished tasks", file=sys.stderr)
    problems = res.problems()
    if problems:
        print("gmstep: warning: rows with numerical problems left out of the plot: "
              + ", ".join(f"{k}: {v}" for k, v in problems.items()), file=sys.stderr)
    return 0


def _plot_options(args) -> dict[str, Any]:
    """The plot options given on the command line (the others come from the run's settings)."""
    opts: dict[str, Any] = {}
    for key in ("style", "metric", "errorbars", "logx", "logy"):
        if getattr(args, key, None) is not None:
            opts[key] = getattr(args, key)
    for key in ("activations", "models"):
        if getattr(args, key, None):
            opts[key] = [v.strip() for v in getattr(args, key).split(",") if v.strip()]
    if getattr(args, "title", None) is not None:
        opts["title"] = args.title
    return opts


def cmd_figure(args) -> int:
    for path in figures.figure(args.number, args.out, **_plot_options(args)):
        print(path)
    partial = figures.unfinished(args.number, args.out)
    if partial:
        print(f"gmstep: warning: {', '.join(partial)} in {args.out} unfinished: drawn from their finished tasks "
              f"(continue with: gmstep reproduce NAME --out {args.out} --resume)", file=sys.stderr)
    return 0


def cmd_compare(args) -> int:
    print(figures.compare(args.dirs, args.out, args.label, **_plot_options(args)))
    return 0


def cmd_summary(args) -> int:
    import pandas as pd

    res = runner.load(args.dir)
    if "misclassification" in args.metric and res.experiment.params.get("task") != "classification":
        raise ConfigError("--metric", f"{args.metric} exists for classification only; {args.dir} is a regression")
    table = res.summary(args.metric)
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
        print(table.to_string(index=False))
    return 0


def cmd_hermite(args) -> int:
    act = activations.get(args.activation)
    config.PARAMS["hermite_scale"].check.check("--scale", args.scale)
    config.PARAMS["hermite_nodes"].check.check("--nodes", args.nodes)
    if not 0 <= args.degree < args.nodes:
        raise ConfigError("--degree", f"must be in [0, nodes - 1 = {args.nodes - 1}] (quadrature with "
                          f"{args.nodes} nodes), got {args.degree}")
    model = hermite.HermiteModel.build(act, args.scale, args.degree, args.nodes, args.quadrature)
    print(f"{act.name} at scale b = {args.scale:g}, degree l = {args.degree}, "
          f"{args.nodes} nodes, {args.quadrature} quadrature")
    print(f"{'i':>3}  {'h_i':>22}")
    for i, h in enumerate(model.coefs):
        print(f"{i:>3}  {h:>22.15g}")
    print(f"E[sigma(bz)^2] = {hermite.second_moment(act, args.scale, args.nodes, args.quadrature):.15g}")
    print(f"h_>l (residual) = {model.tail:.15g}")
    return 0


# ----------------------------------------------------------------------------- parser


def _run_options(p: argparse.ArgumentParser, preset: bool) -> None:
    p.add_argument("--trials", type=int, help="Monte Carlo repetitions")
    p.add_argument("--values", action="append", metavar="V1,V2,...",
                   help="replace the swept values (first column, or COLUMN=V1,V2); repeatable")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="set any parameter (see 'gmstep params'); repeatable")
    p.add_argument("--out", default="results", help="output directory (default: results)")
    p.add_argument("--seed", type=int, help="root random seed")
    p.add_argument("--quick", action="store_true",
                   help="reduced variant that runs in about a minute on 2 cores" if preset
                   else argparse.SUPPRESS)
    p.add_argument("--resume", action="store_true",
                   help="keep finished tasks of an earlier run and run only the rest (more trials or sweep "
                   "values may be added)")
    p.add_argument("--force", action="store_true",
                   help="replace the results in the output directory (once the new run has done its first task)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--scheduler", help="Dask scheduler address, or 'local' for a local cluster")
    p.add_argument("--no-plot", action="store_true", help="do not draw the figure")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _plot_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--style", choices=STYLES, help="paper (the published look) or report (annotated)")
    p.add_argument("--metric", choices=METRICS, help="what to draw (default: the run's [plot] metric)")
    p.add_argument("--errorbars", choices=ERRORBARS, help="error bars (paper default none, report default sd)")
    p.add_argument("--logx", action=argparse.BooleanOptionalAction, default=None, help="logarithmic x axis")
    p.add_argument("--logy", action=argparse.BooleanOptionalAction, default=None, help="logarithmic y axis")
    p.add_argument("--activations", metavar="A1,A2", help="only these activations")
    p.add_argument("--models", metavar="M1,M2", help=f"only these models ({', '.join(config.MODELS)})")
    p.add_argument("--title", help="a title (paper style has none by default)")
    p.add_argument("--no-title", dest="title", action="store_false", help="no title")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gmstep",
        description="Two-layer networks after one gradient step on structured Gaussian mixtures "
        "(and Fashion-MNIST), compared with their Hermite polynomial equivalents.",
    )
    parser.add_argument("--version", action="version", version=f"gmstep {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("list", help="the paper's presets, one line each")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("params", help="every parameter with its default")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("reproduce", help="run a preset (a figure of the paper), or 'all'")
    p.add_argument("name", metavar="NAME", help="preset name (see 'gmstep list') or 'all'")
    _run_options(p, preset=True)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("run", help="run a custom experiment described in a TOML file")
    p.add_argument("file", metavar="FILE.toml")
    _run_options(p, preset=False)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("plot", help="draw the figure again from a results directory")
    p.add_argument("dir", metavar="DIR", help="a directory holding results.csv and meta.json")
    _plot_arguments(p)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("figure", help="compose a figure of the paper (panels side by side) from DIR/fig<N>a, ...")
    p.add_argument("number", metavar="N", type=int, help="the figure: 1 to 8")
    p.add_argument("--out", default="results", help="the directory holding the panels' runs (default: results)")
    _plot_arguments(p)
    p.set_defaults(func=cmd_figure)

    p = sub.add_parser("compare", help="draw runs of the same sweep on one axes")
    p.add_argument("dirs", metavar="DIR", nargs="+", help="results directories (two or more)")
    p.add_argument("--label", action="append", help="a legend label per directory, in order; repeatable")
    p.add_argument("--out", required=True, metavar="FILE.png", help="the image to write (a PDF beside a PNG)")
    _plot_arguments(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("summary", help="print the mean, sd, sem and count per sweep point, activation and model")
    p.add_argument("dir", metavar="DIR", help="a directory holding results.csv and meta.json")
    p.add_argument("--metric", default="test_error", choices=("test_error", "train_error", "test_misclassification",
                                                             "train_misclassification"))
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("hermite", help="Hermite coefficients and residual of an activation")
    p.add_argument("activation", metavar="ACTIVATION")
    p.add_argument("--scale", type=float, default=1.0, help="the scale b (default 1)")
    p.add_argument("--degree", type=int, default=3, help="the degree l (default 3)")
    p.add_argument("--nodes", type=int, default=100, help="quadrature nodes (default 100)")
    p.add_argument("--quadrature", choices=config.QUADRATURES, default="gauss-hermite",
                   help="gauss-hermite (the paper's rule, default) or split (Gauss-Legendre on each half-line: "
                   "exact for ReLU)")
    p.set_defaults(func=cmd_hermite)

    cli_gan.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 fine, 2 bad input, 128 + signal interrupted)."""

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    parsed_argv = _attach_negative_values(argv)
    try:
        args = parser.parse_args(parsed_argv)
    except SystemExit as exc:  # --help, --version, or a one-line usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        if getattr(args, "jobs", None) is not None:
            POSITIVE.check("--jobs", args.jobs)
    except ConfigError as exc:
        print(f"gmstep: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    # SIGINT and SIGTERM raise Interrupted (once: later ones are ignored while stopping), here and
    # in runner.run, which shares this guard.
    with SignalGuard().installed():
        try:
            return int(args.func(args) or 0)
        except GmstepError as exc:
            print(f"gmstep: error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        except Interrupted as exc:
            print(_resume_hint(exc, argv), file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print("gmstep: interrupted", file=sys.stderr)
            return 128 + signal.SIGINT
        except MemoryError:
            print("gmstep: error: out of memory: the configuration is too large for this machine "
                  "(reduce n, m, k or m_test)", file=sys.stderr)
            return EXIT_USAGE
        except BrokenPipeError:
            return 0


#: Options whose value may start with a minus sign (``--values -1,0,1``, ``--seed -1``).
_VALUE_OPTIONS = frozenset({"--values", "--trials", "--seed", "--jobs", "--scale", "--degree", "--nodes"})
_NEGATIVE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def _attach_negative_values(argv: Sequence[str]) -> list[str]:
    """``--values -1,0,1`` -> ``--values=-1,0,1`` (argparse would take ``-1,0,1`` for an option)."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in _VALUE_OPTIONS and i + 1 < len(argv) and _NEGATIVE.match(argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
