"""Threads, single-threaded BLAS, row blocks, tiles, scratch buffers and ordered noise.

Every large product is computed block by block (:data:`ROW_BLOCK` rows) with single-threaded
BLAS, the blocks spread over :func:`get_threads` threads; entrywise work runs in place in
cache-sized tiles (:data:`TILE` elements); the Hermite noise is drawn in row order whatever the
thread count (:class:`OrderedNoise`). So the numbers depend neither on the thread count nor on
the number of processes (docs/PERFORMANCE.md has the measurements).

The mutable state of a process (the thread setting, the thread pool, the per-thread scratch
buffers and the BLAS controller) lives in one object, :data:`STATE`.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from ..errors import ConfigError

#: Rows in every block of a large product: blocks of the gradient batch, the training set, the
#: test set and the rows of ``F^``. Every product is computed block by block with
#: single-threaded BLAS, so the numbers depend on this constant but never on the number of
#: threads, processes or machines-of-one-kind a sweep runs on.
ROW_BLOCK = 512
#: Test samples featurised at once (one block; bounds memory to a few ``ROW_BLOCK x k`` arrays).
TEST_CHUNK = ROW_BLOCK
#: Elements per tile of the entrywise work (activation, Hermite polynomial, noise, prediction),
#: small enough to stay in a core's L2 cache while all of it is applied.
TILE = 1 << 16


class ParallelState:
    """The execution state of one process: threads per task, the pool, scratch, BLAS control."""

    def __init__(self) -> None:
        self.threads: int | None = None  # None: default_threads()
        self.pool: ThreadPoolExecutor | None = None
        self.pool_size = 0
        self.local = threading.local()  # per-thread scratch buffers
        self.blas: ThreadpoolController | None = None

    def get_pool(self, size: int) -> ThreadPoolExecutor:
        """The process's thread pool of ``size`` workers (replaced when the size changes)."""
        if self.pool is None or self.pool_size != size:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
            self.pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="gmstep")
            self.pool_size = size
        return self.pool

    def controller(self) -> ThreadpoolController:
        if self.blas is None:
            self.blas = ThreadpoolController()
        return self.blas


#: The one instance of :class:`ParallelState` of this process.
STATE = ParallelState()


def default_threads() -> int:
    """Threads one process uses for a task: ``$GMSTEP_THREADS``, else the usable cores."""
    env = os.environ.get("GMSTEP_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ConfigError("GMSTEP_THREADS", f"must be a positive integer, got {env!r}") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def set_threads(threads: int | None) -> None:
    """Threads used inside one task (``None``: :func:`default_threads`). Never changes results."""
    if threads is not None and threads < 1:
        raise ConfigError("threads", f"must be >= 1, got {threads}")
    STATE.threads = threads


def get_threads() -> int:
    threads = STATE.threads
    return int(threads) if threads is not None else default_threads()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Every BLAS library of the process limited to one thread while the block runs.

    Multi-threaded BLAS changes the last bits of a product with the thread count (and threaded
    OpenBLAS factorisations slow down badly on a busy machine); gmstep parallelises over fixed
    blocks instead, see :data:`ROW_BLOCK`.
    """
    with STATE.controller().limit(limits=1, user_api="blas"):
        yield


def run_parallel(fn: Callable[[int], Any], count: int, abort: Callable[[], None] | None = None) -> list[Any]:
    """``[fn(0), ..., fn(count - 1)]``, on the task's threads when there are several.

    The results are the same whatever the number of threads: ``fn(i)`` must only write what item
    ``i`` owns. On an error (or an interrupt in the main thread) the pending items are cancelled,
    ``abort`` releases any item waiting for another, and the first error is raised once every
    running item has stopped.
    """
    threads = get_threads()
    if threads <= 1 or count <= 1:
        return [fn(i) for i in range(count)]
    err = np.geterr()  # NumPy's error state is per thread: carry the caller's over

    def call(i: int) -> Any:
        with np.errstate(**err):
            return fn(i)

    futures = [STATE.get_pool(threads).submit(call, i) for i in range(count)]
    try:
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((e for f in futures if f.done() and not f.cancelled() and (e := f.exception()) is not None), None)
        if failed is not None:
            raise failed
    except BaseException:
        for f in futures:
            f.cancel()
        if abort is not None:
            abort()
        wait(futures)
        raise
    return [f.result() for f in futures]


def scratch(name: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A per-thread reusable work array (contents undefined)."""
    size = math.prod(shape)
    bufs = STATE.local.__dict__.setdefault("bufs", {})
    buf = bufs.get(name)
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = bufs[name] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


def blocks(rows: int, size: int = ROW_BLOCK) -> list[slice]:
    """``[0, size), [size, 2 size), ...`` up to ``rows``."""
    return [slice(s, min(s + size, rows)) for s in range(0, rows, size)]


def tiles(rows: int, cols: int) -> list[slice]:
    """Row slices of about :data:`TILE` elements of a ``rows x cols`` block."""
    return blocks(rows, max(1, TILE // max(cols, 1)))


class OrderedNoise:
    """One generator's standard normals handed out in a fixed order of blocks.

    Block ``i`` waits until blocks ``0 .. i-1`` have drawn, so the draws are those of one
    sequential pass (train features row by row, then test features) whichever thread asks first.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.next = 0
        self.failed = False
        self.cond = threading.Condition()

    def fill(self, index: int, out: np.ndarray) -> None:
        """Block ``index``'s normals into ``out``: always drawn in float64 (and rounded for a
        float32 ``out``), so float32 runs see the same noise as float64 runs."""
        with self.cond:
            self.cond.wait_for(lambda: self.next == index or self.failed)
            if self.failed:
                raise RuntimeError("an earlier block of this task failed")
            try:
                if out.dtype == np.float64:
                    self.rng.standard_normal(out=out)
                else:
                    wide = scratch("noise64", out.shape, np.float64)
                    self.rng.standard_normal(out=wide)
                    np.copyto(out, wide, casting="same_kind")
            except BaseException:
                self.failed = True
                raise
            finally:
                self.next += 1
                self.cond.notify_all()

    def abort(self) -> None:
        with self.cond:
            self.failed = True
            self.cond.notify_all()


