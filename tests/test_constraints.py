"""Constraint objects: clean values, one-line errors naming the key, and their descriptions."""

from __future__ import annotations

import pytest

from gmstep import config
from gmstep.constraints import BOOLEAN, CLASS_PAIR, POSITIVE, Interval, ListOf, Options
from gmstep.errors import ConfigError


@pytest.mark.parametrize(("constraint", "good", "clean"), [
    (Interval(int, 1, 5), 3.0, 3),
    (Interval(float, 0.0, 1.0, open_lo=True), 1, 1.0),
    (Interval(int, 1, None, optional=True), None, None),
    (Options(("a", "b")), "b", "b"),
    (ListOf(Options(("a", "b"))), "a", ["a"]),
    (CLASS_PAIR, (3, 1), [3, 1]),
    (BOOLEAN, False, False),
])
def test_clean_values(constraint, good, clean):
    assert constraint.check("key", good) == clean
    assert constraint("key", good) == clean
    assert type(constraint.check("key", good)) is type(clean)


@pytest.mark.parametrize(("constraint", "bad", "message"), [
    (Interval(int, 1, 5), 0, "key: must be >= 1, got 0"),
    (Interval(int, 1, 5), 6, "key: must be <= 5, got 6"),
    (Interval(int, 1, 5), True, "key: must be an integer, got True"),
    (Interval(int, 1, 5), 1.5, "key: must be an integer, got 1.5"),
    (Interval(float, 0.0, 1.0, open_lo=True), 0.0, "key: must be in (0.0, 1.0], got 0.0"),
    (Interval(float, 0.0, None, open_lo=True), 0, "key: must be > 0.0, got 0.0"),
    (Interval(float, None, 2.0), 3, "key: must be <= 2.0, got 3.0"),
    (Interval(float, 0.0, 1.0), float("nan"), "key: must be finite, got nan"),
    (Interval(float, 0.0, 1.0, optional=True), "x", "key: must be a number or null, got 'x'"),
    (Options(("a", "b")), "c", "key: must be one of a, b; got 'c'"),
    (ListOf(Options(("a", "b"))), ["a", "a"], "key: entry 'a' given twice"),
    (ListOf(Options(("a", "b"))), [], "key: must be a non-empty list, got []"),
    (ListOf(Options(("a", "b"))), ["z"], "key: unknown entry 'z'; allowed: a, b"),
    (CLASS_PAIR, [2, 2], "key: the two classes must differ, got [2, 2]"),
    (CLASS_PAIR, [2, 10], "key: must be <= 9, got 10"),
    (POSITIVE, 0, "key: must be >= 1, got 0"),
    (BOOLEAN, 1, "key: must be true or false, got 1"),
])
def test_one_line_errors_name_the_key(constraint, bad, message):
    with pytest.raises(ConfigError) as info:
        constraint.check("key", bad)
    assert str(info.value) == message and "\n" not in str(info.value)


def test_descriptions():
    assert Interval(int, 1, None).describe() == "range [1, inf]"
    assert Interval(float, 0.0, 1.0, open_lo=True).describe() == "range (0, 1]"
    assert Options(("a", "b")).describe() == "allowed: a, b"
    assert ListOf(Options(lambda: ["x", "y"])).describe() == "allowed: x, y"
    assert config.PARAMS["models"].check.describe() == "allowed: " + ", ".join(config.MODELS)
    with pytest.raises(TypeError):
        Interval(str, 0, 1)
