"""The results directory: ``results.csv`` written task by task, ``meta.json`` beside it.

``results.csv`` is tidy: one row per sweep value x activation x model x trial, columns = the
sweep columns, then ``activation, model, trial, train_error, test_error, status``. Each task's
rows are appended in one write and flushed to disk, so a crash leaves at worst the task in
flight incomplete; :func:`load_rows` drops such a task. Floats are written with ``repr`` and so
read back exactly. When a run completes, the file is rewritten (atomically) in canonical task
order, so it is the same whatever the execution order was.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ResultsError

RESULTS = "results.csv"
META = "meta.json"
FLOAT_COLUMNS = ("train_error", "test_error")


def columns(sweep_columns: Sequence[str]) -> list[str]:
    from .experiments import ROW_COLUMNS

    return [*sweep_columns, *ROW_COLUMNS]


def format_value(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    return str(v)


def format_rows(rows: Iterable[Mapping[str, Any]], cols: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow([format_value(row[c]) for c in cols])
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


class ResultsWriter:
    """Appends rows to ``results.csv``; every :meth:`write` reaches the disk before it returns."""

    def __init__(self, path: Path, cols: Sequence[str], fresh: bool) -> None:
        self.path = path
        self.cols = list(cols)
        mode = "w" if fresh else "a"
        try:
            self._fh = open(path, mode, encoding="utf-8", newline="")  # noqa: SIM115
            if fresh:
                self._fh.write(",".join(self.cols) + "\n")
                self._sync()
        except OSError as exc:
            raise ResultsError(f"cannot write {path}: {exc.strerror or exc}") from None

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        try:
            self._fh.write(format_rows(rows, self.cols))
            self._sync()
        except OSError as exc:
            raise ResultsError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        self._fh.close()


def read_table(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Header and rows of a results file; a torn last line (no newline) is ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ResultsError(f"{path} is not a gmstep results file (not text)") from None
    if not text:
        raise ResultsError(f"{path} is empty: not a gmstep results file")
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]  # the line in flight when the process died
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise ResultsError(f"{path} has no header: not a gmstep results file") from None
    rows = []
    for lineno, fields in enumerate(reader, start=2):
        if not fields:
            continue
        if len(fields) != len(header):
            raise ResultsError(f"{path} line {lineno}: {len(fields)} fields, expected {len(header)}")
        rows.append({h: parse_value(f) for h, f in zip(header, fields, strict=True)})
    return header, rows


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` so that a reader sees the old or the new file, never a mix."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise ResultsError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_table(path: Path, cols: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    write_atomic(path, ",".join(cols) + "\n" + format_rows(rows, cols))


def write_meta(directory: Path, meta: Mapping[str, Any]) -> None:
    write_atomic(directory / META, json.dumps(meta, indent=2, sort_keys=False, default=str) + "\n")


def read_meta(directory: Path) -> dict[str, Any]:
    path = directory / META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path} not found: not a gmstep results directory") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path} is not a valid gmstep meta.json ({exc})") from None
    if not isinstance(meta, dict) or "experiment" not in meta:
        raise ResultsError(f"{path} is not a gmstep meta.json (no 'experiment')")
    return meta


def machine_summary() -> dict[str, Any]:
    """Processor, cores, memory, Python and NumPy/BLAS versions."""
    import numpy as np

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
