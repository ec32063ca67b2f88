"""The class statistics of the conditional GAN (docs/MATH.md §5): the mean and covariance trace of
generated images per class, estimated once per checkpoint content and cached next to it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import gan
from .fashion_files import N_PIXELS

#: Generated images per class used to estimate the CGAN class means and traces, as the paper did
#: (10^6). Computed once per checkpoint and class, then cached (see :func:`gan_statistics`).
DEFAULT_GAN_STATS_SAMPLES = 1_000_000


def gan_statistics(bundle: Any, cls: int, count: int) -> tuple[np.ndarray, float]:
    """Mean and covariance trace of ``count`` generated images of class ``cls``.

    Streaming: ``mean = (1/N) sum u``, ``tr(S) = (1/N) sum ||u||^2 - ||mean||^2`` (float64 sums).
    The noise comes from a fixed seed (derived from the class and the count), so the statistics
    are a property of the generator: they are computed once and cached next to the checkpoint
    in ``stats-<sha256 of the checkpoint's content>-c<cls>-n<count>.npz``; a changed checkpoint
    has another hash and gets new statistics. On a machine with CUDA the images are generated
    there.
    """
    digest = gan.checkpoint_hash(bundle.path)
    cache_file = Path(bundle.path).parent / f"stats-{digest[:32]}-c{cls}-n{count}.npz"
    if cache_file.is_file():
        try:
            with np.load(cache_file) as z:
                if str(z["sha256"]) == digest:
                    return z["mean"].copy(), float(z["trace"])
        except (OSError, ValueError, KeyError):
            pass  # unreadable: recompute and overwrite
    device = gan.check_device("auto")
    worker = bundle if device == bundle.device else gan.load_generator(bundle.path.parent, device)
    rng = np.random.default_rng([cls, count, 20250])
    total = np.zeros(N_PIXELS)
    squares = 0.0
    batch = 8192
    for start in range(0, count, batch):
        u = gan.generate(worker, cls, min(batch, count - start), rng)
        total += u.sum(axis=0)
        squares += float(np.sum(u * u))
    mean = total / count
    trace = squares / count - float(mean @ mean)
    try:
        fd, tmp = tempfile.mkstemp(dir=cache_file.parent, prefix=".stats-", suffix=".npz")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, mean=mean, trace=np.array(trace), sha256=np.array(digest))
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a read-only cache only costs the recomputation
    return mean, trace

