"""A long sweep of small tasks runs in bounded memory.

2000 tiny tasks written to disk; the memory Python has allocated (tracemalloc, which also sees
NumPy's buffers) is measured after 10%, 55% and 100% of the tasks. NumPy and SciPy keep bounded
caches of small buffers that fill during the first thousand-odd tasks of a process (by up to
about 90 kB in a fresh environment, with or without gmstep's runner), so the test bounds the
total growth loosely and the growth over the last 900 tasks tightly: a leak of even 40 bytes a
task would show there, a cache that has filled does not. The rows themselves live in a table
allocated before the first task (kept as dicts, 1800 rows would already take about 0.5 MB).
"""

from __future__ import annotations

import gc
import time
import tracemalloc

import pytest

from gmstep import Experiment, executors, results, runner

TASKS = 2000


def long_sweep() -> Experiment:
    return Experiment.create(
        "long",
        {"n": 8, "m": 8, "k": 2, "trials": TASKS // 20, "activations": ["relu"], "models": ["nn"], "redraw": "trial"},
        {"lambda": [10 ** (-i / 4) for i in range(20)]},
    )


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_of_tasks(tmp_path, monkeypatch):
    exp = long_sweep()
    assert len(exp.tasks()) == TASKS
    half = TASKS // 10 + (TASKS - TASKS // 10) // 2
    marks = {TASKS // 10: None, half: None, TASKS: None}
    clock: dict[int, float] = {}
    real = executors.execute

    def measured(exp_, tasks, **kw):
        for i, rows in enumerate(real(exp_, tasks, **kw), start=1):
            yield rows  # the runner stores and writes these rows before asking for the next task
            if i in marks:
                # Live memory: cyclic garbage (a finished thread pool wait's lock objects, say) waits
                # for Python's collector, which runs at its own pace; a leak survives the collection.
                gc.collect()
                marks[i] = tracemalloc.get_traced_memory()[0]
            if i in (1, TASKS // 10, TASKS - TASKS // 10, TASKS):
                clock[i] = time.perf_counter()

    # Warm up first, untraced: NumPy and SciPy keep bounded caches of small buffers that fill up
    # over the first thousand-odd tasks of a process (the same with or without gmstep's runner).
    runner.run(exp, None, progress=False, plot=False)
    monkeypatch.setattr(executors, "execute", measured)
    tracemalloc.start()
    try:
        res = runner.run(exp, tmp_path, progress=False, plot=False)
    finally:
        tracemalloc.stop()
    start, middle, end = marks[TASKS // 10], marks[half], marks[TASKS]
    growth, late_growth = end - start, end - middle
    first = (clock[TASKS // 10] - clock[1]) / (TASKS // 10 - 1)
    last = (clock[TASKS] - clock[TASKS - TASKS // 10]) / (TASKS // 10)
    print(f"\ntraced memory after {TASKS // 10} tasks: {start / 1024:.0f} kB, after {half}: {middle / 1024:.0f} kB, "
          f"after {TASKS}: {end / 1024:.0f} kB; time per task first 10%: {first * 1e3:.2f} ms, last 10%: "
          f"{last * 1e3:.2f} ms")
    # 1800 more tasks (1800 rows, about 120 kB of CSV; as dicts, about 0.5 MB): nothing is kept per task
    assert growth < 256 * 1024, growth
    assert late_growth < 36 * (TASKS - half), late_growth
    assert res.complete and len(res.rows) == TASKS
    assert (tmp_path / "long" / "results.csv").read_bytes().count(b"\n") == TASKS + 1


def test_rows_are_stored_compactly_and_in_place():
    exp = long_sweep()
    table = results.RowTable(exp)
    nbytes = sum(v.nbytes for v in table.values.values()) + table.status.nbytes
    # 4 float64 errors (squared and 0-1, training and test) and a status byte, allocated once, before any task
    assert nbytes == TASKS * results.bytes_per_row() == TASKS * 33
    assert len(table) == 0
