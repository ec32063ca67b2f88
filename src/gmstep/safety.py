"""What a run checks before it touches the disk, and the lock that keeps one run per directory.

- :class:`RunLock`: an exclusive ``fcntl.flock`` on ``<out>/<name>/.lock`` for the whole run. The
  file holds ``{"pid", "host", "started"}`` of the holder, so a second run can name it. The kernel
  releases the lock when the holding process dies (even by SIGKILL), so a lock left by a dead
  run is simply taken over by the next one.
- :func:`existing_rows`: what a results directory already holds (rows and the status of the run
  that wrote them), so that no command replaces finished rows without ``--resume``/``--force``.
- :func:`admit_memory`: memory admission for the whole run, ``(per-process estimate) x
  (processes working at once) + rows``, against the memory actually available (``MemAvailable``
  and the cgroup limit), with the margin :data:`MEMORY_FRACTION`.
- :func:`check_data`: the Fashion-MNIST files and, for ``source = "cgan"``, the trained
  generator are present.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config, fashion, gan, results
from .admission import physical_memory, task_memory
from .engine import backend
from .engine.parallel import ROW_BLOCK, get_threads
from .errors import ConfigError, ResultsError
from .executors import usable_cores

LOCK = ".lock"
#: A run is admitted if its memory estimate is at most this fraction of the available memory.
MEMORY_FRACTION = 0.8


# ----------------------------------------------------------------------------- the lock


class RunLock:
    """``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``directory/.lock``; :meth:`acquire` raises a one-line
    :class:`ResultsError` naming the holder (pid, host, start time) when another run holds it."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK
        self._fd = -1

    def acquire(self) -> RunLock:
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise ResultsError(f"cannot create the lock {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ResultsError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
            raise ResultsError(f"{self.path.parent} is in use by another gmstep run ({self.holder()}); "
                               "wait for it to finish, or use another --out") from None
        self._fd = fd
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}
        with contextlib.suppress(OSError):  # the holder's name is informative only
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        return self

    def holder(self) -> str:
        """``pid P on host H since T`` of the process holding the lock (as far as its file says)."""
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
            return f"pid {info['pid']} on host {info['host']} since {info['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "holder unknown: it is starting"

    def release(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# ----------------------------------------------------------------------------- what a directory holds


@dataclass(frozen=True)
class Existing:
    """Rows already in a results directory: complete data lines of ``results.csv`` and the status
    that ``meta.json`` gives (None without a readable meta.json)."""

    rows: int
    status: str | None
    has_meta: bool

    @property
    def kind(self) -> str:
        return "complete" if self.status == "complete" else "interrupted"


def existing_rows(directory: Path) -> Existing:
    directory = Path(directory)
    rows = 0
    path = directory / results.RESULTS
    if path.is_file():
        try:
            with open(path, "rb") as fh:
                rows = max(sum(1 for line in fh if line.endswith(b"\n") and line.strip(b"\x00\n")) - 1, 0)
        except OSError as exc:
            raise ResultsError(f"cannot read {path}: {results.describe_os_error(exc)}") from None
    meta_path = directory / results.META
    status = None
    if meta_path.is_file():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            status = json.loads(meta_path.read_text(encoding="utf-8")).get("status")
    return Existing(rows, status if isinstance(status, str) else None, meta_path.exists())


def refusal(directory: Path, existing: Existing) -> str:
    """The one line that refuses to run into a directory holding rows without --resume or --force."""
    article = "an" if existing.kind == "interrupted" else "a"
    return (f"{directory} holds {existing.rows} rows of {article} {existing.kind} run; --resume to continue, "
            "--force to replace it, or another --out")


# ----------------------------------------------------------------------------- memory


def _meminfo() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """Bytes the cgroup of this process may still allocate (v2, then v1), if it is limited."""
    pairs = [("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
             ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")]
    for limit_file, usage_file in pairs:
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 2**60:
            return None
        return max(int(limit) - usage, 0)
    return None


def available_memory() -> int | None:
    """Bytes of memory available to new allocations: ``MemAvailable`` of ``/proc/meminfo`` (else the
    system's free pages), capped by the room left under the cgroup's limit and under the process's
    ``RLIMIT_AS``; None if unknown."""
    avail = _meminfo()
    if avail is None:
        try:
            avail = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            avail = None
    for room in (_cgroup_room(), _address_space_room()):
        if room is not None:
            avail = room if avail is None else min(avail, room)
    return avail


def _address_space_room() -> int | None:
    """Bytes of address space left under this process's ``RLIMIT_AS`` (``ulimit -v``), if limited."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status", encoding="ascii") as fh:
            size = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
        return max(soft - size, 0)
    except (ImportError, OSError, ValueError, StopIteration):
        return None


def process_memory(p: Mapping[str, Any], threads: int) -> int:
    """Bytes one worker process holds while computing a task of resolved point ``p``:

    the task itself (:func:`gmstep.admission.task_memory`), one more cached data set
    ``n (m~ + m + m_test)`` (the data cache keeps two), and per thread the scratch blocks
    ``3 ROW_BLOCK k``, times the bytes of a float.
    """
    size = 4 if p.get("dtype") == "float32" else 8
    n, m, k, mg, mt = (int(p[key]) for key in ("n", "m", "k", "m_grad", "m_test"))
    return task_memory(p) + size * (n * (mg + m + mt) + max(1, threads) * 3 * ROW_BLOCK * k)


def in_flight(tasks: int, jobs: int, scheduler: str | None) -> tuple[int, int]:
    """``(processes computing at once on this machine, threads of each)`` as the executors run them
    (0 processes for a remote Dask scheduler: its workers' memory is not this machine's)."""
    if scheduler is not None and scheduler.strip() != "local":
        return 0, 1
    if scheduler is not None:
        return max(1, min(jobs if jobs > 1 else usable_cores(), max(tasks, 1))), 1
    if jobs > 1 and tasks > 1:
        workers = min(jobs, tasks)
        return workers, max(1, usable_cores() // workers)
    return 1, get_threads()


def admit_memory(exp: Any, tasks: int, jobs: int = 1, scheduler: str | None = None,
                 memory: int | None = None) -> None:
    """Refuse (one line naming what to change) a run whose memory estimate exceeds
    :data:`MEMORY_FRACTION` of the available memory: ``worst task x processes at once + row table``.

    ``memory_check = false`` skips the estimate of the tasks, never the row table's (preallocated
    whole: a table over half the physical memory, or over 2^40 rows, is always refused).
    """
    rows = len(exp.points()) * exp.params["trials"] * exp.rows_per_task()
    table = rows * results.bytes_per_row()
    physical = physical_memory()
    if rows > 2**40 or (physical and table > physical // 2):
        raise ConfigError("trials", f"{rows} rows to compute: far more than this machine can hold "
                          "(reduce trials or the sweep)")
    if not exp.params.get("memory_check", True) or tasks == 0:
        return
    avail = available_memory() if memory is None else memory
    if not avail:
        return
    procs, threads = in_flight(tasks, jobs, scheduler)
    worst, worst_p = 0, None
    for point in exp.points():
        p = config.resolved(exp.point_params(point))
        need = process_memory(p, threads)
        if need > worst:
            worst, worst_p = need, p
    total = worst * procs + table
    if total <= MEMORY_FRACTION * avail:
        return
    gb = 2**30
    if worst_p is not None and procs > 1 and worst + table <= MEMORY_FRACTION * avail:
        fits = max(1, int((MEMORY_FRACTION * avail - table) // worst))
        key, change = "--jobs", f"use --jobs {fits} or fewer"
    else:
        key = max(("n", "m", "k", "m_test"), key=lambda c: int(worst_p[c])) if worst_p else "trials"
        change = "reduce n, m, k or m_test" if worst_p else "reduce trials or the sweep"
    where = (f"{worst / gb:.3g} GB per task x {procs} at once" if procs > 1 else f"{worst / gb:.3g} GB for one task")
    sizes = f" (n = {worst_p['n']}, m = {worst_p['m']}, k = {worst_p['k']}, m_test = {worst_p['m_test']})" \
        if worst_p else ""
    raise ConfigError(key, f"the run needs about {total / gb:.3g} GB of memory ({where}{sizes}), more than "
                      f"{MEMORY_FRACTION:.0%} of the {avail / gb:.3g} GB available: {change}, "
                      "or --set memory_check=false to run anyway")


# ----------------------------------------------------------------------------- data


def check_data(exp: Any) -> None:
    """The input data every point needs exists: the Fashion-MNIST files of each ``data_dir``, and
    the trained generator for ``source = "cgan"`` (one-line :class:`gmstep.errors.DataError`)."""
    if exp.params["dataset"] != "fashion-mnist":
        return
    seen: set[tuple[Any, Any]] = set()
    for point in exp.points():
        p = exp.point_params(point)
        if (p["data_dir"], p["source"]) in seen:
            continue
        seen.add((p["data_dir"], p["source"]))
        if p["source"] == "cgan":
            gan.load_generator(None)
        else:
            fashion.find_data_dir(p["data_dir"])


def check_backend(exp: Any, scheduler: str | None = None) -> None:
    """The torch backend can run here: PyTorch installed, a CUDA device for ``device = cuda``, a
    torch kernel for every activation off the CPU, and on a CUDA device room for the largest task
    (:func:`gmstep.engine.backend.check_device_memory`; one-line :class:`ConfigError`, exit status
    2). Not checked for a remote Dask scheduler: its workers, not this machine, hold the GPUs."""
    if scheduler is not None and scheduler.strip() != "local":
        return
    backend.check(exp.params)
    if exp.params.get("backend") == "torch" and exp.params.get("memory_check", True):
        backend.check_device_memory([config.resolved(exp.point_params(point)) for point in exp.points()])
