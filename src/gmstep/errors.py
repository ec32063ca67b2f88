"""The exceptions gmstep raises for bad input; the command line turns each into one line."""

from __future__ import annotations


class GmstepError(Exception):
    """Base class: an error whose message is one line meant for the user."""


class ConfigError(GmstepError, ValueError):
    """A configuration value that is missing, of the wrong type or out of range.

    ``key`` names the parameter; the message says what is allowed.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")

    def __reduce__(self):  # picklable, so that it travels back from worker processes
        return (type(self), (self.key, self.message))


class DataError(GmstepError):
    """Input data that cannot be read or is not what it claims to be."""


class ResultsError(GmstepError):
    """A results directory that cannot be written, resumed or read."""
