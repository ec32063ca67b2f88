"""The progress bar of a run: a tqdm bar of its tasks, or one that shows nothing."""

from __future__ import annotations

from typing import Any


class NoBar:
    """A bar that shows nothing (progress off)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, initial: int, name: str, enabled: bool) -> Any:
    """A bar of ``total`` tasks, ``initial`` of them done already; :class:`NoBar` unless ``enabled``."""
    if not enabled:
        return NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="task", dynamic_ncols=True)
