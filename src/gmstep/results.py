"""The results directory: ``results.csv`` written task by task, ``meta.json`` beside it.

``results.csv`` is tidy: one row per sweep value x activation x model x trial, columns = the
sweep columns, then ``activation, model, trial, k, train_error, test_error,
train_misclassification, test_misclassification, status`` (``k``, the width the row was
computed with, is left out of these when it is itself a sweep column; the two 0-1 errors are
empty for regression and for the theory model).

Crash safety. A run first replaces ``results.csv`` by its header (atomically), then writes
``meta.json`` (atomically), then appends each finished task's rows with one ``write`` on an
``O_APPEND`` descriptor (and an ``fsync`` at least every :data:`SYNC_INTERVAL` seconds). A
crash or a kill of the process at any moment therefore leaves a file whose finished tasks are
all readable; at worst the task in flight is incomplete or its last line is torn (no final
newline), and :meth:`RowTable.read` drops it. (A power loss can cost the last second of tasks.)
Floats are written with ``repr`` and so read back exactly (``nan`` and ``inf`` included). When a
run completes, the file is rewritten atomically in canonical task order, so its bytes do not
depend on the execution order, on parallelism or on interruptions.

Memory. :class:`RowTable` keeps the rows of an experiment in preallocated columns (one float64
per numeric column and one byte of status per row, 33 bytes a row), each row at its
canonical position ``((point * trials + trial) * A + activation) * M + model``. Storing a task
is O(1), nothing grows while a sweep runs, and canonical order needs no sort; rows are turned
into dicts only when iterated.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ResultsError
from .experiment import ROW_COLUMNS

RESULTS = "results.csv"
META = "meta.json"
FLOAT_COLUMNS = ("train_error", "test_error")
#: Numeric columns that may be empty: the 0-1 errors exist for classification only.
OPTIONAL_COLUMNS = ("train_misclassification", "test_misclassification")
#: Columns that identify a row within its task (besides the sweep columns).
KEY_COLUMNS = ("activation", "model", "trial")
#: The width column: every row carries the k it was computed with (a sweep column when k is swept).
WIDTH = "k"
#: Statuses a row can carry; "ok" means every number of the row can be trusted.
STATUSES = ("ok", "nonfinite", "ill-conditioned", "not-converged")
#: Seconds between fsyncs of results.csv while a sweep runs (see :class:`ResultsWriter`).
SYNC_INTERVAL = 1.0
#: Rows formatted per chunk when a whole table is written.
WRITE_CHUNK = 4096


def columns(sweep_columns: Sequence[str]) -> list[str]:
    """The header of a results file: the sweep columns, then the row columns."""
    return [*sweep_columns, *(c for c in ROW_COLUMNS if not (c == WIDTH and WIDTH in sweep_columns))]


def value_columns() -> list[str]:
    """The numeric per-row columns (every row column that is neither a key nor the status)."""
    return [c for c in ROW_COLUMNS if c not in KEY_COLUMNS and c not in ("status", WIDTH)]


def bytes_per_row() -> int:
    """Memory of one row in a :class:`RowTable`: a float64 per numeric column and a status byte."""
    return 8 * len(value_columns()) + 1


def format_value(v: Any) -> str:
    """Text of one cell: ``repr`` for floats (exact round trip), empty for ``None``, ``str`` otherwise."""
    if v is None:
        return ""
    if isinstance(v, float | np.floating):
        return repr(float(v))
    return str(v)


def format_rows(rows: Iterable[Mapping[str, Any]], cols: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    optional = [c in OPTIONAL_COLUMNS for c in cols]
    for row in rows:
        writer.writerow([format_value(row.get(c) if o else row[c]) for c, o in zip(cols, optional, strict=True)])
    return buf.getvalue()


def parse_value(text: str) -> Any:
    """Numbers back to int/float, everything else kept as text."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def describe_os_error(exc: OSError) -> str:
    """A short reason for an OSError, with a hint for the common cases."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += " (disk full: free some space, then resume with --resume)"
    elif exc.errno == errno.EFBIG:
        reason += " (file size limit reached: raise the limit, then resume with --resume)"
    return reason


# ----------------------------------------------------------------------------- writing


class ResultsWriter:
    """Appends each task's rows to an existing ``results.csv`` with one ``write``.

    The rows are in the operating system's hands when :meth:`write` returns, so a crash or kill
    of the process loses nothing written. They also reach the disk itself (``fsync``) at least
    every ``sync_interval`` seconds and on :meth:`close`, so even a power loss costs at most
    that much work; 0 syncs after every task (slow for tiny tasks: a few ms each).
    The file must exist (with its header): see :func:`write_table`.
    """

    def __init__(self, path: Path, cols: Sequence[str], sync_interval: float = SYNC_INTERVAL) -> None:
        self.path = Path(path)
        self.cols = list(cols)
        self.sync_interval = sync_interval
        self._last_sync = time.monotonic()
        self._dirty = False
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise ResultsError(f"cannot write {self.path}: {describe_os_error(exc)}") from None

    def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append ``rows`` (one task) in a single write."""
        data = memoryview(format_rows(rows, self.cols).encode("utf-8"))
        try:
            while data:
                data = data[os.write(self._fd, data):]
            self._dirty = True
            if time.monotonic() - self._last_sync >= self.sync_interval:
                self.sync()
        except OSError as exc:
            raise ResultsError(f"cannot write {self.path}: {describe_os_error(exc)}") from None

    def sync(self) -> None:
        """Push everything written so far to the disk."""
        if self._dirty and self._fd >= 0:
            os.fsync(self._fd)
            self._dirty = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                self.sync()
            fd, self._fd = self._fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_atomic(path: Path, chunks: str | Iterable[str]) -> None:
    """Replace ``path`` by the concatenated ``chunks`` so that a reader (or a process killed at
    any moment) sees the old file or the new one, never a mix; the new file is on disk first."""
    path = Path(path)
    if isinstance(chunks, str):
        chunks = (chunks,)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ResultsError(f"cannot write {path}: {describe_os_error(exc)}") from None
    finally:
        if tmp is not None:  # failed or interrupted: leave no temporary file behind
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def remove_stale_temporaries(directory: Path) -> None:
    """Delete the temporary files an atomic write killed half-way left in ``directory``."""
    for name in (RESULTS, META):
        for tmp in Path(directory).glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_table(path: Path, cols: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Atomically replace ``path`` by a results file holding ``rows``."""

    def chunks() -> Iterator[str]:
        yield ",".join(cols) + "\n"
        batch: list[Mapping[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= WRITE_CHUNK:
                yield format_rows(batch, cols)
                batch.clear()
        yield format_rows(batch, cols)

    write_atomic(path, chunks())


def write_meta(directory: Path, meta: Mapping[str, Any]) -> None:
    write_atomic(Path(directory) / META, json.dumps(_json_safe(meta), indent=2, default=str) + "\n")


def _json_safe(obj: Any) -> Any:
    """NaN and infinities become null (JSON has no such numbers)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------- reading


def read_meta(directory: Path) -> dict[str, Any]:
    """``meta.json`` of a results directory; one-line :class:`ResultsError` if it is not ours."""
    path = Path(directory) / META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path} not found: not a gmstep results directory") from None
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {describe_os_error(exc)}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ResultsError(f"{path} is not a gmstep meta.json ({reason})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("experiment"), dict):
        raise ResultsError(f"{path} is not a gmstep meta.json (no 'experiment' table)")
    return meta


def complete_lines(fh: Iterable[str]) -> Iterator[str]:
    """The lines of a text file that end with a newline: a torn last line is left out, and so is
    a tail of NUL bytes (what a power loss can leave after the last ``fsync``)."""
    lines = iter(fh)
    for line in lines:
        if "\x00" in line:
            tail = line[line.index("\x00"):] + "".join(lines)
            if tail.strip("\x00\n"):
                raise csv.Error(f"NUL bytes in the middle of the file (line {line[:40]!r})")
            return
        if line.endswith("\n"):
            yield line


def read_header(path: Path) -> list[str] | None:
    """The header of ``path`` if it looks like a gmstep results file, else ``None``."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            first = fh.readline(65536)
    except (OSError, UnicodeDecodeError):
        return None
    if not first.endswith("\n"):
        return None
    try:
        header = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        return None
    for tail in (ROW_COLUMNS, tuple(c for c in ROW_COLUMNS if c != WIDTH), legacy_row_columns()):
        n = len(tail)  # ours; with k swept (no second k column); or of a gmstep before the k column
        if len(header) >= n and tuple(header[-n:]) == tail:
            return header
    return None


def legacy_row_columns() -> tuple[str, ...]:
    """The row columns of files written before the k and 0-1 error columns existed (recognised, then refused)."""
    return tuple(c for c in ROW_COLUMNS if c not in OPTIONAL_COLUMNS and c != WIDTH)


def records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of every complete, non-empty line, streamed."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(complete_lines(fh), strict=True)
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                if fields:
                    yield reader.line_num, fields
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {describe_os_error(exc)}") from None
    except UnicodeDecodeError:
        raise ResultsError(f"{path} is not a gmstep results file (not UTF-8 text)") from None
    except csv.Error as exc:
        if read_header(path) is None:
            raise ResultsError(f"{path} is not a gmstep results file (no gmstep header)") from None
        raise ResultsError(f"{path} is corrupted ({exc})") from None


# ----------------------------------------------------------------------------- machine


def machine_summary() -> dict[str, Any]:
    """Processor, cores, memory, Python and NumPy/BLAS versions."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gb"] = round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: d.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for d in threadpool_info()
            if d.get("user_api") == "blas"
        ]
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info


# The row table builds on the layout above (imported last: it uses this module).
from .rowtable import RowTable as RowTable  # noqa: E402
