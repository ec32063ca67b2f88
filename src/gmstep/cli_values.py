"""Values written on the command line: ``--set key=value``, ``--values v1,v2`` and their scalars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import ConfigError


def parse_scalar(text: str) -> Any:
    """``true``/``false``, ``null``/``none``, integers, floats, else the text itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_value(text: str) -> Any:
    """A scalar, or a list written ``a,b,c`` or ``[a, b, c]``."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [parse_scalar(t.strip().strip("\"'")) for t in inner.split(",")] if inner else []
    if "," in text:
        return [parse_scalar(t) for t in text.split(",")]
    return parse_scalar(text)


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--set", f"expects key=value, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def parse_values(items: Sequence[str], columns: Sequence[str]) -> dict[str, list[Any]]:
    """``--values v1,v2`` (the first sweep column) or ``--values column=v1,v2``."""
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if sep:
            col, text = key.strip(), value
            if col not in columns:
                raise ConfigError("--values", f"{col!r} is not swept here; sweep columns: {', '.join(columns)}")
        else:
            if not columns:
                raise ConfigError("--values", "this experiment sweeps nothing")
            col, text = columns[0], item
        parts = [t for t in text.replace("[", "").replace("]", "").split(",")]
        if not text.strip() or any(not t.strip() for t in parts):
            raise ConfigError("--values", f"expects comma-separated numbers, got {item!r}")
        vals = [parse_scalar(t) for t in parts]
        if any(isinstance(v, (str, bool)) or v is None for v in vals):
            raise ConfigError("--values", f"expects comma-separated numbers, got {item!r}")
        out[col] = vals
    return out
