"""gmstep.scratch: named work arrays handed out again, never shared between names, bounded."""

from __future__ import annotations

import numpy as np
import pytest

from gmstep.scratch import Scratch


def test_a_name_gets_its_memory_again_and_names_never_share():
    sc = Scratch()
    a = sc.array("a", (30, 30))
    b = sc.array("b", (30, 30))
    assert not np.shares_memory(a, b)
    a[...] = 1.0
    again = sc.array("a", (20, 20))  # smaller: the same memory
    assert np.shares_memory(a, again) and again.shape == (20, 20) and again.flags.c_contiguous
    assert sc.nbytes == 2 * 30 * 30 * 8


def test_a_larger_request_gets_fresh_memory_of_any_dtype_aligned():
    sc = Scratch()
    small = sc.array("a", (10, 10), np.float32)
    large = sc.array("a", (40, 40), np.float32)
    assert not np.shares_memory(small, large)
    assert sc.array("a", (40, 40)).dtype == np.float64  # the float32 buffer is too small for it
    for dt in (np.float32, np.float64, np.complex128):
        arr = sc.array("c", (7, 3), dt)
        assert arr.dtype == dt and arr.ctypes.data % np.dtype(dt).alignment == 0


def test_requests_over_the_limit_are_fresh_and_not_kept():
    sc = Scratch(limit_bytes=1000)
    kept = sc.array("a", (10, 10))  # 800 bytes
    over = sc.array("b", (10, 10))  # would make 1600: fresh
    assert sc.nbytes == 800 and not np.shares_memory(over, sc.array("b", (10, 10)))
    assert np.shares_memory(kept, sc.array("a", (5, 5)))
    with pytest.raises(ValueError):
        sc.array("a", (-1, 2))
