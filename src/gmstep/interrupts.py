"""Stopping a run cleanly: SIGINT and SIGTERM become :class:`Interrupted`, held back while a
task's rows are being written (see :mod:`gmstep.runner`)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not caught by `except Exception`
    """SIGINT or SIGTERM arrived; the finished rows are on disk and the files are consistent."""

    def __init__(self, signum: int, done: int = 0, total: int = 0, directory: Path | None = None):
        self.signum = signum
        self.done = done
        self.total = total
        self.directory = directory
        super().__init__(signum)

    @property
    def exit_code(self) -> int:
        """``128 + signum``: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    def __str__(self) -> str:
        where = f" and kept in {self.directory}" if self.directory is not None else ""
        return f"interrupted by {self.signal_name}: {self.done} of {self.total} tasks finished{where}"


class SignalGuard:
    """Turns SIGINT and SIGTERM into :class:`Interrupted`, held back inside critical sections.

    The handler raises at once (so a long computation stops promptly) unless a
    :meth:`critical` block is running; then it records the signal and the block raises it when
    it ends. After the first :class:`Interrupted`, later signals are ignored so that clean-up
    (closing files, writing ``meta.json``) cannot be torn either.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.depth = 0
        self.pending: int | None = None
        self.stopping = False

    def _handler(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        if self.depth or self.stopping:
            if self.pending is None:
                self.pending = signum
            return
        self.stopping = True
        raise Interrupted(signum)

    @classmethod
    def active(cls) -> SignalGuard | None:
        """The guard whose handler is installed for both signals (an enclosing one), if any."""
        try:
            handlers = {signal.getsignal(s) for s in cls.SIGNALS}
        except ValueError:
            return None
        if len(handlers) == 1:
            owner = getattr(next(iter(handlers)), "__self__", None)
            if isinstance(owner, cls):
                return owner
        return None

    @contextmanager
    def installed(self) -> Iterator[SignalGuard]:
        """Install the handler for the duration of the block (only in the main thread)."""
        try:
            old = {s: signal.signal(s, self._handler) for s in self.SIGNALS}
        except ValueError:  # not the main thread: signals are not ours to handle
            yield self
            return
        try:
            yield self
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    @contextmanager
    def critical(self) -> Iterator[None]:
        """A block that a signal cannot interrupt; a signal received meanwhile is raised after it."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if self.pending is not None and not self.depth and not self.stopping:
            signum, self.pending = self.pending, None
            self.stopping = True
            raise Interrupted(signum)
