"""What crosses process boundaries: user errors as picklable descriptions (the error classes'
own pickling loses ``key``) and the activations a worker process must register."""

from __future__ import annotations

from typing import Any

from . import activations
from .errors import ConfigError, DataError, GmstepError, ResultsError
from .experiment import Experiment


def portable_error(exc: GmstepError) -> tuple[str, ...]:
    """A picklable description of a user error (the classes' own pickling loses ``key``)."""
    if isinstance(exc, ConfigError):
        return ("config", exc.key, exc.message)
    if isinstance(exc, DataError):
        return ("data", str(exc))
    if isinstance(exc, ResultsError):
        return ("results", str(exc))
    return ("gmstep", str(exc))


def raise_portable(desc: tuple[str, ...]) -> None:
    kind = desc[0]
    if kind == "config":
        raise ConfigError(desc[1], desc[2])
    if kind == "data":
        raise DataError(desc[1])
    if kind == "results":
        raise ResultsError(desc[1])
    raise GmstepError(desc[1])


def unpack(result: Any) -> Any:
    """A worker's answer: its task result, or the user error it raised (raised here)."""
    if isinstance(result, tuple) and result and result[0] == "gmstep-error":
        raise_portable(result[1])
    return result


def used_activations(exp: Experiment) -> dict[str, activations.Activation]:
    """The activation objects ``exp`` uses (a worker registers those its registry lacks)."""
    return {name: activations.get(name) for name in exp.params["activations"]}


def register_used(used: dict[str, activations.Activation]) -> None:
    """Register in this (worker) process the activations that differ from its registry's.

    Built-in activations unpickle to the very same functions, so they are left alone (and keep
    their fast in-place kernels); a user's own activations are added.
    """
    for name, act in used.items():
        try:
            current = activations.get(name)
        except ConfigError:
            current = None
        if current is None or current.fn is not act.fn or current.deriv is not act.deriv:
            activations.register(act)


def check_picklable(used: dict[str, activations.Activation]) -> None:
    import pickle

    for name, act in used.items():
        try:
            pickle.dumps(act)
        except Exception:  # noqa: BLE001 - lambdas, closures, local functions
            raise ConfigError(
                "activations",
                f"activation {name!r} cannot be sent to worker processes (define its functions at module "
                "level, or run with --jobs 1 or on Dask)",
            ) from None
