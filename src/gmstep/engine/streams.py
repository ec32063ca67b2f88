"""Named random streams: every task derives its generators from the root seed and its identity.

    structure and data sets:  SeedSequence(seed, spawn_key=(0, point_id, trial_id, j))
    F and a:                  SeedSequence(seed, spawn_key=(1, point_id', trial))
    Hermite noise zeta:       SeedSequence(seed, spawn_key=(2, point_id, trial, activation_id))

where ``point_id`` is a hash of the point's parameter values (0 for ``redraw = "once"``),
``trial_id`` is the trial for ``redraw = "trial"`` and 0 otherwise, ``point_id'`` is 0 when
``share_init`` is set, and ``j`` = 0, 1, 2, 3 for structure, gradient batch, training set and
test set (4: the draw of disjoint Fashion-MNIST images). So the same seed gives the same numbers
in any execution order, with any parallelism, and a sweep value gives the same numbers whichever
other values are swept with it.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np


def stable_id(value: Any) -> int:
    """A 32-bit identity of a JSON-able value that does not depend on the Python process."""
    return zlib.crc32(json.dumps(value, sort_keys=True, default=repr).encode())


def stream(seed: int, *key: int) -> np.random.Generator:
    """The generator of one named random stream."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def data_identity(point: Mapping[str, Any], trial: int, redraw: str) -> tuple[int, int]:
    """``(point_id, trial_id)`` of the structure and data draw under a redraw policy."""
    if redraw == "once":
        return 0, 0
    return stable_id(point), (trial if redraw == "trial" else 0)
