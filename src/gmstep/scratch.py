"""Work arrays kept from one call to the next.

A ``k x k`` float64 array is 2 MB at ``k = 500``. Allocated fresh, its memory comes from the
operating system page by page: 512 page faults, each zeroing 4 KB, about 1 ms in all, more than
the arithmetic many of the theory's steps do on it (docs/PERFORMANCE.md). A :class:`Scratch`
hands out the same memory again to the next call that asks for an array of the same name, so a
worker that computes task after task touches fresh pages only for the first.

Rules (what makes it safe):

- an array is named by its use; the caller owns it until something asks for the same name
  again (two arrays alive at once need two names);
- nothing handed out is a result: whatever leaves the computation that asked (a
  :class:`~gmstep.theory_solver.TheoryResult`, a table row) is a fresh array or a number;
- the contents are not initialised (``np.empty``).

One :class:`Scratch` per thread of computation: the engine keeps one per worker (beside its
data cache); ``None`` where a function accepts one means a fresh :class:`Scratch`, i.e. fresh
arrays, as without it.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

#: Bytes a :class:`Scratch` keeps at most (over all names); larger requests get fresh arrays.
#: 128 MB hold the theory's work arrays up to ``k`` of about 1,200 in float64; above that a
#: task's ``k^3`` arithmetic dwarfs its page faults.
LIMIT_BYTES = 128 * 2**20


class Scratch:
    """Named work arrays reused from call to call (see the module docstring)."""

    def __init__(self, limit_bytes: int = LIMIT_BYTES) -> None:
        self.limit_bytes = limit_bytes
        self._buffers: dict[str, np.ndarray] = {}

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return sum(b.nbytes for b in self._buffers.values())

    def array(self, name: str, shape: tuple[int, ...], dtype: npt.DTypeLike = np.float64) -> np.ndarray:
        """An uninitialised C-ordered array of ``shape`` and ``dtype``: the memory the last
        request of ``name`` got, when it is large enough and the total stays within
        :attr:`limit_bytes` (else a fresh array, kept for the next request if it fits)."""
        if any(d < 0 for d in shape):
            raise ValueError(f"shape: dimensions must be >= 0, got {shape}")
        dt = np.dtype(dtype)
        need = math.prod(shape) * dt.itemsize
        buf = self._buffers.get(name)
        if buf is None or buf.nbytes < need:
            held = self.nbytes - (0 if buf is None else buf.nbytes)
            if held + need > self.limit_bytes:
                return np.empty(shape, dt)
            # The whole buffer is float64 so that any view of it is aligned for any dtype.
            buf = np.empty(-(-need // 8), np.float64)
            self._buffers[name] = buf
        return buf.view(np.uint8)[:need].view(dt).reshape(shape)
