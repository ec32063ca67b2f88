"""Constraint objects: every allowed value or range is declared once, here or with its parameter.

Each constraint has ``check(key, value)``, which returns the clean value or raises a one-line
:class:`gmstep.errors.ConfigError` naming ``key``, and ``describe()``, the allowed values or
range as ``gmstep params`` prints them. Constraints are callable (``c(key, value)`` is
``c.check(key, value)``). :mod:`gmstep.config` declares the experiment parameters with them; the
Fashion-MNIST, GAN, executor and command-line entry points use the same objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import ConfigError


def is_number(v: Any) -> bool:
    """An int or float (NumPy's too) that is not a bool."""
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)


class Constraint:
    """A rule for one value: ``check`` cleans or refuses it, ``describe`` states what is allowed."""

    def check(self, key: str, value: Any) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def __call__(self, key: str, value: Any) -> Any:
        return self.check(key, value)


class Interval(Constraint):
    """An integer (``kind=int``; whole floats accepted) or finite float in ``[lo, hi]``
    (``(lo, hi]`` with ``open_lo``); ``None`` bounds are unbounded; ``optional`` admits None."""

    def __init__(self, kind: type, lo: float | None = None, hi: float | None = None, *,
                 open_lo: bool = False, optional: bool = False) -> None:
        if kind not in (int, float):
            raise TypeError("Interval kind must be int or float")
        self.kind, self.lo, self.hi, self.open_lo, self.optional = kind, lo, hi, open_lo, optional

    def check(self, key: str, value: Any) -> Any:
        if value is None and self.optional:
            return None
        return self._int(key, value) if self.kind is int else self._float(key, value)

    def _int(self, key: str, v: Any) -> int:
        if isinstance(v, np.integer):
            v = int(v)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool):
            raise ConfigError(key, f"must be an integer{' or null' if self.optional else ''}, got {v!r}")
        if self.lo is not None and v < self.lo:
            raise ConfigError(key, f"must be >= {self.lo}, got {v}")
        if self.hi is not None and v > self.hi:
            raise ConfigError(key, f"must be <= {self.hi}, got {v}")
        return int(v)

    def _float(self, key: str, v: Any) -> float:
        lo, hi = self.lo, self.hi
        if not is_number(v):
            raise ConfigError(key, f"must be a number{' or null' if self.optional else ''}, got {v!r}")
        v = float(v)
        if not math.isfinite(v):
            raise ConfigError(key, f"must be finite, got {v}")
        if lo is not None and (v <= lo if self.open_lo else v < lo):
            rng = f"> {lo}" if self.open_lo else f">= {lo}"
            if hi is not None:
                rng = f"in {'(' if self.open_lo else '['}{lo}, {hi}]"
            raise ConfigError(key, f"must be {rng}, got {v}")
        if hi is not None and v > hi:
            raise ConfigError(key, f"must be in [{lo}, {hi}], got {v}" if lo is not None
                              else f"must be <= {hi}, got {v}")
        return v

    @property
    def range(self) -> str:
        """``[lo, hi]`` (``(lo, hi]`` with an open lower end; ``-inf``/``inf`` for no bound)."""
        if self.kind is int:
            left = "-inf" if self.lo is None else f"{self.lo}"
            right = "inf" if self.hi is None else f"{self.hi}"
        else:
            left = "-inf" if self.lo is None else f"{self.lo:g}"
            right = "inf" if self.hi is None else f"{self.hi:g}"
        return f"{'(' if self.open_lo else '['}{left}, {right}]"

    def describe(self) -> str:
        return f"range {self.range}"


class Options(Constraint):
    """One of a fixed tuple of strings (or of a callable's current list, e.g. the registered
    activations)."""

    def __init__(self, allowed: Sequence[str] | Callable[[], Sequence[str]]) -> None:
        self._allowed = allowed

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(self._allowed() if callable(self._allowed) else self._allowed)

    def check(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or value not in self.allowed:
            raise ConfigError(key, f"must be one of {', '.join(self.allowed)}; got {value!r}")
        return value

    def describe(self) -> str:
        return "allowed: " + ", ".join(self.allowed)


class ListOf(Constraint):
    """A non-empty list of distinct entries of ``Options`` (a single string counts as a list of one)."""

    def __init__(self, options: Options) -> None:
        self.options = options

    def check(self, key: str, value: Any) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not value:
            raise ConfigError(key, f"must be a non-empty list, got {value!r}")
        ok = self.options.allowed
        out: list[str] = []
        for item in value:
            if not isinstance(item, str) or item not in ok:
                raise ConfigError(key, f"unknown entry {item!r}; allowed: {', '.join(ok)}")
            if item in out:
                raise ConfigError(key, f"entry {item!r} given twice")
            out.append(item)
        return out

    def describe(self) -> str:
        return self.options.describe()


class Rule(Constraint):
    """A constraint written as a function ``fn(key, value) -> clean value`` with its description."""

    def __init__(self, fn: Callable[[str, Any], Any], description: str = "") -> None:
        self.fn, self.description = fn, description

    def check(self, key: str, value: Any) -> Any:
        return self.fn(key, value)

    def describe(self) -> str:
        return self.description


def _boolean(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(key, f"must be true or false, got {v!r}")
    return v


def _str_or_none(key: str, v: Any) -> str | None:
    if v is not None and not isinstance(v, str):
        raise ConfigError(key, f"must be a string or null, got {v!r}")
    return v


def check_name(key: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip(".") or not all(ch.isalnum() or ch in "-_." for ch in v):
        raise ConfigError(key, f"must be a non-empty name of letters, digits, '-', '_', '.'; got {v!r}")
    return v


def _class_pair(key: str, v: Any) -> list[int]:
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise ConfigError(key, f"must be two class labels in 0..9, got {v!r}")
    out = [LABEL.check(key, x) for x in v]
    if out[0] == out[1]:
        raise ConfigError(key, f"the two classes must differ, got {v!r}")
    return out


BOOLEAN = Rule(_boolean, "true or false")
STRING_OR_NONE = Rule(_str_or_none, "a string or null")
NAME = Rule(check_name, "letters, digits, '-', '_', '.'")
#: A positive count (epochs, images per class, worker processes, ...).
POSITIVE = Interval(int, 1, None)
#: A count that may be zero (samples to draw).
COUNT = Interval(int, 0, None)
#: A finite number >= 0 (a spike strength).
NONNEGATIVE = Interval(float, 0.0, None)
#: A random seed.
SEED = Interval(int, 0, 2**63 - 1)
#: A Fashion-MNIST class label.
LABEL = Interval(int, 0, 9)
#: Two distinct Fashion-MNIST class labels.
CLASS_PAIR = Rule(_class_pair, "two distinct labels in [0, 9]")
