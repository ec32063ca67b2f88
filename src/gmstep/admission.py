"""Whether a run may start: its differences from an earlier run of a directory (for resuming),
the size of its rows, the memory of one task, and the clean-up of a task's rows."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from . import config
from .config import THEORY
from .experiment import Experiment

#: Top-level sections of an experiment that decide its rows (a resume must match them).
ROW_DEFINING = ("name", "params", "sweep")


def jsonable(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj, default=str))


def _short(value: Any) -> str:
    text = "missing" if value is _MISSING else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_MISSING = object()


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any],
                       sections: Sequence[str] | None = None) -> list[str]:
    """Dotted keys whose values differ between two experiment dicts (all sections by default)."""
    diffs = []
    keys = sections if sections is not None else sorted(set(old) | set(new))
    for section in keys:
        a, b = old.get(section, _MISSING), new.get(section, _MISSING)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs += [f"{section}.{k}" for k in sorted(set(a) | set(b), key=str)
                      if a.get(k, _MISSING) != b.get(k, _MISSING)]
        elif a != b:
            diffs.append(section)
    return diffs


def differences(meta: Mapping[str, Any], exp: Experiment, extend: bool = False) -> list[str]:
    """``"key (was X, now Y)"`` for every row-defining key in which ``meta.json``'s experiment
    differs from ``exp`` (parameters that only govern admission, ``config.RUN_ONLY``, never count).

    With ``extend``, more trials and sweep columns whose new values include all the old ones are
    not differences: every task of the old run is a task of the new one with the same rows (a
    task's random streams depend only on the seed, its sweep point and its trial).
    """

    old = meta.get("experiment")
    old = old if isinstance(old, Mapping) else {}
    new = jsonable(exp.to_dict())
    out = []
    for key in config_differences(old, new, ROW_DEFINING):
        section, _, sub = key.partition(".")
        a, b = old.get(section, _MISSING), new.get(section, _MISSING)
        if sub:
            a = a.get(sub, _MISSING) if isinstance(a, Mapping) else _MISSING
            b = b.get(sub, _MISSING) if isinstance(b, Mapping) else _MISSING
        if section == "params" and sub in config.RUN_ONLY:
            continue
        if section == "params" and a is _MISSING and sub in config.PARAMS and b == config.PARAMS[sub].default:
            continue  # a parameter added since that run, at its default (which that run computed with)
        if extend and _extends(section, sub, a, b):
            continue
        out.append(f"{key} (was {_short(a)}, now {_short(b)})")
    return out


def _extends(section: str, sub: str, old: Any, new: Any) -> bool:
    """``new`` only adds tasks to ``old``: more trials, or a sweep column with more values."""
    if section == "params" and sub == "trials":
        return isinstance(old, int) and isinstance(new, int) and new >= old
    if section == "sweep" and sub and isinstance(old, list) and isinstance(new, list):
        return all(v in new for v in old)
    return False


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine, if the system says."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def task_memory(p: Mapping[str, Any]) -> int:
    """A rough upper bound of the bytes one task of resolved point ``p`` holds at once:

    data ``n (m~ + m + m_test)``, the weights ``F``, ``F^`` and the gradient ``3 k n``,
    pre-activations and features ``m~ k + 3 m k``, the ridge system ``2 min(m, k)^2`` and the
    test chunks ``4096 k``, times the bytes of a float; with the ``theory`` model also its
    ``k x k`` arrays in float64 whatever ``dtype`` (``F^ F^T``; per component of ``C`` its
    covariance, its moments and, in single precision, their copy; the two precisions' ``Q``,
    full ``Q``, products and casts; about ``(4 C + 6.5) k^2``), counted as ``(4 C + 8) k^2`` of
    8 bytes. The worker keeps them from task to task (:mod:`gmstep.scratch`), so this also
    bounds what it holds between tasks of one run.
    """
    n, m, k, mg, mt = (int(p[key]) for key in ("n", "m", "k", "m_grad", "m_test"))
    floats = n * (mg + m + mt) + 3 * k * n + mg * k + 3 * m * k + 2 * min(m, k) ** 2 + 4096 * k
    theory = 8 * (4 * len(p["ratios"]) + 8) * k * k if THEORY in p["models"] else 0
    return floats * (4 if p.get("dtype") == "float32" else 8) + theory
