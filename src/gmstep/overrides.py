"""Changing an experiment's parameters and sweep, as ``gmstep run/reproduce --set/--values`` do.

The rule (docs/REPRODUCING.md): a fixed value given for a swept column replaces that column's
sweep by the single value (or the list given), unless the same column also gets explicit sweep
values; every other key changes the parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .experiments import Experiment


def with_overrides(exp: Experiment, params: Mapping[str, Any] | None = None,
                   sweep: Mapping[str, Sequence[Any]] | None = None) -> Experiment:
    """``exp`` with ``params`` set and the columns of ``sweep`` swept over their new values.

    A key of ``params`` that ``exp`` sweeps (and ``sweep`` does not name) becomes the sweep
    ``[value]`` (or ``value`` itself when it is a list). Returns ``exp`` itself when nothing changes;
    the result is validated like any experiment (a ``ConfigError`` names a bad key).
    """
    params = dict(params or {})
    new_sweep = {k: list(v) for k, v in (sweep or {}).items()}
    for key in list(params):
        if key in exp.sweep and key not in new_sweep:
            value = params.pop(key)
            new_sweep[key] = value if isinstance(value, list) else [value]
    if not params and not new_sweep:
        return exp
    return exp.with_changes(params=params, sweep=new_sweep)
