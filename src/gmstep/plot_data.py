"""What the figures draw: the resolved options of a figure and the numbers of its line plots and
heat maps, all from :func:`gmstep.tables.summarize` (means over the trials whose status is ``ok``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import tables
from .config import HERMITE, NN, THEORY
from .errors import ConfigError
from .plot_options import ERRORBARS, METRICS, STYLES

# ----------------------------------------------------------------------------- options


@dataclass
class Options:
    """What to draw and how (see the module docstring)."""

    style: str
    metric: str
    errorbars: str
    logx: bool
    logy: bool
    activations: list[str]
    models: list[str]
    title: str | None
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def resolve_options(res, style: str | None = None, metric: str | None = None, errorbars: str | None = None,
                    logx: bool | None = None, logy: bool | None = None, activations: Sequence[str] | None = None,
                    models: Sequence[str] | None = None, title: bool | str | None = None) -> Options:
    """The options of a figure of ``res``: keyword arguments over the run's ``[plot]`` settings
    over the style's defaults. Bad values raise a one-line :class:`ConfigError` naming the option."""
    exp = res.experiment
    s = dict(exp.plot)
    style = style or s.get("style", "report")
    if style not in STYLES:
        raise ConfigError("style", f"must be one of {', '.join(STYLES)}, got {style!r}")
    metric = metric or s.get("metric", "test_error")
    if metric not in METRICS:
        raise ConfigError("metric", f"must be one of {', '.join(METRICS)}, got {metric!r}")
    if "misclassification" in metric and exp.params.get("task") != "classification":
        raise ConfigError("metric", f"{metric} exists for classification only; this run is a regression")
    errorbars = errorbars or s.get("errorbars", "none" if style == "paper" else "sd")
    if errorbars not in ERRORBARS:
        raise ConfigError("errorbars", f"must be one of {', '.join(ERRORBARS)}, got {errorbars!r}")
    run_acts = list(exp.params["activations"])
    acts = list(activations) if activations is not None else list(s.get("activations", run_acts))
    unknown = [a for a in acts if a not in run_acts]
    if unknown or not acts:
        raise ConfigError("activations", f"must be among this run's activations ({', '.join(run_acts)}), "
                          f"got {', '.join(unknown) or 'none'}")
    run_models = _models_in(res)
    chosen = list(models) if models is not None else [m for m in s.get("models", run_models) if m in run_models]
    if not set(chosen) <= set(run_models) or not chosen:
        raise ConfigError("models", f"must be among this run's models ({', '.join(run_models)}), got {chosen!r}")
    if title is None:
        title = style == "report"
    text = (title if isinstance(title, str) else s.get("title", exp.name)) if title else None
    return Options(style=style, metric=metric, errorbars=errorbars,
                   logx=bool(s.get("logx", False)) if logx is None else bool(logx),
                   logy=bool(s.get("logy", False)) if logy is None else bool(logy),
                   activations=acts, models=chosen, title=text,
                   xlim=tuple(s["xlim"]) if "xlim" in s else None, ylim=tuple(s["ylim"]) if "ylim" in s else None,
                   settings=s)


def _models_in(res) -> list[str]:
    """The run's models, and ``theory`` if rows of it are present."""
    models = list(res.experiment.params["models"])
    if THEORY not in models and any(r.get("model") == THEORY for r in res.rows):
        models.append(THEORY)
    return models


# ----------------------------------------------------------------------------- statistics


def summary(res, metric: str):
    """:func:`gmstep.tables.summarize` of ``res`` (Results, or anything with experiment and rows)."""
    summarize = getattr(res, "summary", None)
    if callable(summarize):
        return summarize(metric)
    return tables.summarize(tables.frame(res.rows, res.experiment.sweep_columns), res.experiment.sweep_columns,
                            metric)


def excluded_rows(rows: Iterable[Mapping[str, Any]]) -> int:
    """How many rows have a status other than ``ok`` (they are left out of every mean)."""
    return sum(1 for r in rows if r.get("status", "ok") != "ok")


def gap_label(degree: Any) -> str:
    """``|E_nn - E_lin| / E_nn`` for the degree-1 (linear) model, ``E_herm,l`` otherwise."""
    if degree == 1:
        model = r"E_{\mathrm{lin}}"
    elif isinstance(degree, int):
        model = rf"E_{{\mathrm{{herm}},{degree}}}"
    else:
        model = r"E_{\mathrm{herm}}"
    return rf"relative gap $|E_{{\mathrm{{nn}}}} - {model}|\,/\,E_{{\mathrm{{nn}}}}$"


def shown_degree(exp) -> Any:
    return exp.params.get("degree")


def line_data(res, opts: Options) -> list[dict[str, Any]]:
    """What a line plot draws: per activation, value of the other sweep columns and model, the
    sorted x values, means and error half-widths (``gap``: per activation, the relative gap of
    the network's and the Hermite model's mean test errors, model ``gap``)."""
    exp = res.experiment
    cols = exp.sweep_columns
    xcol = opts.settings.get("x", cols[0] if cols else None)
    others = [c for c in cols if c != xcol]
    base = "test_error" if opts.metric == "gap" else opts.metric
    s = summary(res, base)
    half = tables.error_half_width(s, opts.errorbars)
    s = s.assign(half=half if half is not None else np.zeros(len(s)))
    out = []
    for act in opts.activations:
        sa = s[s["activation"] == act]
        groups = [((), sa)] if not others else list(sa.groupby(others, sort=True))
        for ov, g in groups:
            ov = ov if isinstance(ov, tuple) else (ov,)
            per_model = {}
            for model in opts.models if opts.metric != "gap" else (NN, HERMITE):
                gm = g[g["model"] == model]
                if len(gm):
                    xm = gm[xcol].to_numpy(dtype=float) if xcol else np.zeros(len(gm))
                    order = np.argsort(xm, kind="stable")
                    per_model[model] = (xm[order], gm["mean"].to_numpy(float)[order],
                                        gm["half"].to_numpy(float)[order], gm["count"].to_numpy(int)[order])
            if opts.metric == "gap":
                if NN not in per_model or HERMITE not in per_model:
                    continue
                xn, mn, _, cn = per_model[NN]
                xh, mh, _, _ = per_model[HERMITE]
                common, i, j = np.intersect1d(xn, xh, return_indices=True)
                with np.errstate(all="ignore"):
                    gap = np.abs(mn[i] - mh[j]) / np.abs(mn[i])
                per_model = {"gap": (common, gap, np.zeros_like(gap), cn[i])}
            if per_model:
                out.append({"activation": act, "others": dict(zip(others, ov, strict=True)), "models": per_model})
    return out


def heatmap_grid(rows_or_res, exp=None, metric: str = "test_error", activation: str | None = None):
    """``(x values, y values, Z)`` with the values sorted and ``Z[j, i]`` the metric at
    ``(x_i, y_j)`` for ``activation`` (default: the first); ``metric = "gap"`` gives
    ``|mean_nn - mean_hermite| / mean_nn`` of the test errors. Accepts a Results, or rows and the
    experiment."""
    res = rows_or_res if exp is None else _Rows(exp, rows_or_res)
    exp = res.experiment
    xcol, ycol = exp.sweep_columns
    act = activation or exp.params["activations"][0]
    xs = np.array(sorted(float(v) for v in exp.sweep[xcol]))
    ys = np.array(sorted(float(v) for v in exp.sweep[ycol]))
    s = summary(res, "test_error" if metric == "gap" else metric)
    s = s[s["activation"] == act]
    means = {(float(a), float(b), m): v for a, b, m, v in
             zip(s[xcol], s[ycol], s["model"], s["mean"], strict=True)}
    z = np.full((len(ys), len(xs)), np.nan)
    for i, xv in enumerate(xs):
        for j, yv in enumerate(ys):
            nn = means.get((xv, yv, NN))
            if metric == "gap":
                hm = means.get((xv, yv, HERMITE))
                if nn is not None and hm is not None and nn != 0:
                    z[j, i] = abs(nn - hm) / abs(nn)
            elif nn is not None:
                z[j, i] = nn
    return xs, ys, z


def heatmap_spread(rows_or_res, exp=None, metric: str = "test_error", activation: str | None = None) -> float:
    """Median over grid cells of the network's coefficient of variation ``sd / mean`` over trials
    (of ``metric``, or of the test error for ``gap``); NaN if no cell has two trials."""
    res = rows_or_res if exp is None else _Rows(exp, rows_or_res)
    act = activation or res.experiment.params["activations"][0]
    s = summary(res, "test_error" if metric == "gap" else metric)
    s = s[(s["activation"] == act) & (s["model"] == NN) & (s["count"] > 1) & (s["mean"] != 0)]
    cv = (s["sd"] / s["mean"].abs()).to_numpy(float)
    return float(np.median(cv)) if cv.size else float("nan")


@dataclass
class _Rows:
    experiment: Any
    rows: Any
