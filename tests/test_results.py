"""The results file and the row table: exact round trips, torn and incomplete tasks, corruption."""

from __future__ import annotations

import errno
import math
import os
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from gmstep import Experiment, ResultsError, config, results
from gmstep.engine import task as engine_task
from helpers import make_experiment

tiny_experiment = partial(make_experiment, {"n": 8, "m": 8, "trials": 2, "activations": ["relu", "tanh"],
                                       "models": ["nn", "hermite"]}, {"k_over_m": [0.5, 1.0, 2.0]}, name="tiny")


def fake_rows(exp: Experiment, point: int, trial: int, value: float = 0.25, status: str = "ok") -> list[dict]:
    """The rows of one task with made-up numbers (distinct per task, activation and model)."""
    out = []
    for a, act in enumerate(exp.params["activations"]):
        for m, model in enumerate(exp.params["models"]):
            out.append({**exp.points()[point], "activation": act, "model": model, "trial": trial,
                        "k": config.resolved(exp.point_params(exp.points()[point]))["k"],
                        "train_error": value / 3 + point + 10 * trial + 100 * a + 1000 * m,
                        "test_error": value + point, "status": status})
    return out


def header(exp: Experiment) -> str:
    return ",".join(results.columns(exp.sweep_columns)) + "\n"


def test_canonical_positions_and_exact_round_trip(tmp_path):
    exp = tiny_experiment()
    table = results.RowTable(exp)
    tasks = exp.tasks()
    values = [0.1, 1 / 3, float("nan"), float("inf"), -float("inf"), 5e-324]
    for idx, (p, t) in enumerate(reversed(tasks)):  # any order in, canonical order out
        table.put(fake_rows(exp, p, t, values[idx % len(values)]))
    assert table.complete and table.tasks_done() == len(tasks) == table.num_tasks
    rows = list(table)
    assert len(rows) == len(table) == len(tasks) * exp.rows_per_task()
    keys = [(r["k_over_m"], r["trial"], r["activation"], r["model"]) for r in rows]
    expected = [(p["k_over_m"], t, a, m) for p in exp.points() for t in range(2)
                for a in ("relu", "tanh") for m in ("nn", "hermite")]
    assert keys == expected
    path = tmp_path / "results.csv"
    table.write(path)
    again = results.RowTable(exp)
    assert again.read(path) == 0
    for a, b in zip(again, rows, strict=True):
        for key in a:
            if isinstance(a[key], float) and math.isnan(a[key]):
                assert math.isnan(b[key])
            else:
                assert a[key] == b[key] and type(a[key]) is type(b[key])
    assert path.read_text().startswith(header(exp))
    # floats are written with repr: reading back is exact, writing again gives the same bytes
    again.write(tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == path.read_bytes()


def test_torn_last_line_and_incomplete_task_are_dropped(tmp_path):
    exp = tiny_experiment()
    path = tmp_path / "results.csv"
    full = results.format_rows(fake_rows(exp, 0, 0), results.columns(exp.sweep_columns))
    partial = results.format_rows(fake_rows(exp, 1, 1)[:2], results.columns(exp.sweep_columns))
    torn = results.format_rows(fake_rows(exp, 2, 0)[:1], results.columns(exp.sweep_columns))[:-7]
    path.write_text(header(exp) + full + partial + torn)
    table = results.RowTable(exp)
    dropped = table.read(path)
    assert dropped == 2  # the two complete lines of the incomplete task; the torn line never counted
    assert table.tasks_done() == 1
    assert list(table.done_tasks()) == [True] + [False] * 5
    assert [r["trial"] for r in table] == [0, 0, 0, 0]


def test_nul_tail_after_power_loss_is_a_torn_tail(tmp_path):
    exp = tiny_experiment()
    path = tmp_path / "results.csv"
    cols = results.columns(exp.sweep_columns)
    path.write_bytes((header(exp) + results.format_rows(fake_rows(exp, 0, 0), cols)).encode()
                     + b"0.5,relu,n" + b"\x00" * 300)
    table = results.RowTable(exp)
    table.read(path)
    assert table.tasks_done() == 1
    path.write_bytes((header(exp)).encode() + b"\x00" * 10 + results.format_rows(fake_rows(exp, 0, 0), cols).encode())
    with pytest.raises(ResultsError, match="corrupted"):
        results.RowTable(exp).read(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\xff\xfe\x00garbage\n", "not a gmstep results file"),
        (b"name,age\nbob,3\n", "not a gmstep results file"),
        (b"alpha,activation,model,trial,train_error,test_error,status\n", "not a results file of this experiment"),
        (b"k_over_m,activation,model,trial,train_error,test_error,status\n", "before the k column"),
        (b"HEADER0.5,relu,nn,0,4,0.1\n", "fields"),
        (b"HEADER0.5,relu,nn,zero,4,0.1,0.2,,,ok\n", "trial"),
        (b"HEADER0.5,relu,nn,0,4,abc,0.2,,,ok\n", "train_error 'abc' is not a number"),
        (b"HEADER0.7,relu,nn,0,4,0.1,0.2,,,ok\n", "no task of this experiment"),
        (b"HEADER0.5,swish,nn,0,4,0.1,0.2,,,ok\n", "no task of this experiment"),
        (b"HEADER0.5,relu,nn,7,4,0.1,0.2,,,ok\n", "no task of this experiment"),
        (b"HEADER0.5,relu,nn,0,5,0.1,0.2,,,ok\n", "k = '5', but this experiment computes that row with k = 4"),
        (b"HEADER0.5,relu,nn,0,4,0.1,0.2,,,ok\n0.5,relu,nn,0,4,0.1,0.2,,,ok\n", "second row"),
        (b'HEADER0.5,relu,nn,0,4,0.1,0.2,,,"o\nk"\n', "status"),
    ],
)
def test_foreign_or_corrupted_files_give_one_line(tmp_path, content, message):
    exp = tiny_experiment()
    path = tmp_path / "results.csv"
    path.write_bytes(content.replace(b"HEADER", header(exp).encode()))
    with pytest.raises(ResultsError, match=message) as info:
        results.RowTable(exp).read(path)
    assert "\n" not in str(info.value)


def test_put_rejects_rows_of_another_experiment():
    exp = tiny_experiment()
    table = results.RowTable(exp)
    rows = fake_rows(exp, 0, 0)
    rows[0]["activation"] = "sin"
    with pytest.raises(ValueError, match="not of this experiment"):
        table.put(rows)


def test_problems_and_unknown_statuses():
    exp = tiny_experiment()
    table = results.RowTable(exp)
    table.put(fake_rows(exp, 0, 0, status="nonfinite"))
    table.put(fake_rows(exp, 0, 1, status="ill-conditioned"))
    table.put(fake_rows(exp, 1, 0, status="solver-failed"))
    table.put(fake_rows(exp, 1, 1))
    assert table.problems() == {"nonfinite": 4, "ill-conditioned": 4, "solver-failed": 4}
    assert not table.complete


def test_drop_incomplete_counts_and_clears():
    exp = tiny_experiment()
    table = results.RowTable(exp)
    table.put(fake_rows(exp, 0, 0)[:3])
    table.put(fake_rows(exp, 0, 1))
    assert len(table) == 7
    assert table.drop_incomplete() == 3
    assert len(table) == 4 and table.tasks_done() == 1
    assert np.isnan(table.values["test_error"][:4]).all()


def test_sequence_interface():
    exp = tiny_experiment()
    table = results.RowTable(exp)
    for p, t in exp.tasks():
        table.put(fake_rows(exp, p, t))
    rows = list(table)
    assert table == rows and rows == list(table)
    assert table[0] == rows[0] and table[-1] == rows[-1] and table[2:5] == rows[2:5]
    assert table != rows[:-1]


def test_write_atomic_leaves_old_file_and_no_temporary_on_failure(tmp_path):
    path = tmp_path / "meta.json"
    path.write_text("old\n")

    def chunks():
        yield "new part\n"
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(ResultsError, match="No space left on device.*disk full"):
        results.write_atomic(path, chunks())
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]
    results.write_atomic(path, "new\n")
    assert path.read_text() == "new\n"
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_writer_appends_and_reports_a_full_disk(tmp_path, monkeypatch):
    exp = tiny_experiment()
    cols = results.columns(exp.sweep_columns)
    path = tmp_path / "results.csv"
    results.write_table(path, cols, [])
    with results.ResultsWriter(path, cols, sync_interval=0.0) as writer:
        writer.write(fake_rows(exp, 0, 0))
        writer.write(fake_rows(exp, 0, 1))
    table = results.RowTable(exp)
    table.read(path)
    assert table.tasks_done() == 2

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    writer = results.ResultsWriter(path, cols)
    monkeypatch.setattr(results.os, "write", full)
    with pytest.raises(ResultsError, match=r"cannot write .*results.csv: No space left on device") as info:
        writer.write(fake_rows(exp, 1, 0))
    writer.close()
    assert "\n" not in str(info.value)


def test_read_meta_errors_are_one_line(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        results.read_meta(tmp_path)
    (tmp_path / "meta.json").write_text('{"experiment": ')
    with pytest.raises(ResultsError, match="not a gmstep meta.json") as info:
        results.read_meta(tmp_path)
    assert "\n" not in str(info.value)
    (tmp_path / "meta.json").write_text('{"experiment": [1, 2]}')
    with pytest.raises(ResultsError, match="no 'experiment' table"):
        results.read_meta(tmp_path)
    (tmp_path / "meta.json").write_bytes(b"\x80\x81")
    with pytest.raises(ResultsError, match="not a gmstep meta.json"):
        results.read_meta(tmp_path)


def test_meta_has_no_nan(tmp_path):
    results.write_meta(tmp_path, {"experiment": {}, "gap": float("nan"), "x": [float("inf"), 1.0]})
    text = (tmp_path / "meta.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert results.read_meta(tmp_path)["x"] == [None, 1.0]


def test_read_header_recognises_ours(tmp_path):
    exp = tiny_experiment()
    path = tmp_path / "results.csv"
    path.write_text(header(exp))
    assert results.read_header(path) == results.columns(exp.sweep_columns)
    path.write_text("a,b,c\n")
    assert results.read_header(path) is None
    assert results.read_header(Path(tmp_path / "missing.csv")) is None


def test_every_row_carries_the_width_it_was_computed_with(tmp_path):
    from gmstep import runner

    exp = Experiment.create("w", {"n": 8, "m": 10, "trials": 1, "activations": ["relu"], "models": ["nn"]},
                            {"k_over_m": [0.3, 1.0, 2.5]})
    res = runner.run(exp, tmp_path, progress=False, plot=False)
    head, *lines = (tmp_path / "w" / "results.csv").read_text().splitlines()
    assert head == ("k_over_m,activation,model,trial,k,train_error,test_error,train_misclassification,"
                    "test_misclassification,status")
    assert [line.split(",")[4] for line in lines] == ["3", "10", "25"]
    assert [r["k"] for r in res.rows] == [3, 10, 25]
    swept = Experiment.create("s", {"n": 8, "m": 10, "trials": 1, "activations": ["relu"], "models": ["nn"]},
                              {"k": [2, 5]})
    runner.run(swept, tmp_path, progress=False, plot=False)
    head = (tmp_path / "s" / "results.csv").read_text().splitlines()[0]
    assert head == ("k,activation,model,trial,train_error,test_error,"  # no second k column
                    "train_misclassification,test_misclassification,status")
    assert [r["k"] for r in runner.load(tmp_path / "s").rows] == [2, 5]


def test_misclassification_cells_are_empty_for_regression_and_exact_otherwise(tmp_path):
    exp = tiny_experiment()
    table = results.RowTable(exp)
    for p, t in exp.tasks():
        rows = fake_rows(exp, p, t)
        for i, r in enumerate(rows):  # task (0, 0): regression rows (None); the others: fractions
            filled = (p, t) != (0, 0)
            r["train_misclassification"] = (i + 1) / 7 if filled else None
            r["test_misclassification"] = (p + t) / 3 if filled else None
        table.put(rows)
    path = tmp_path / "results.csv"
    table.write(path)
    lines = path.read_text().splitlines()
    cols = lines[0].split(",")
    assert cols[cols.index("test_error") + 1: cols.index("status")] == list(results.OPTIONAL_COLUMNS)
    first = lines[1].split(",")
    assert first[cols.index("train_misclassification")] == "" == first[cols.index("test_misclassification")]
    back = results.RowTable(exp)
    back.read(path)
    assert list(back) == list(table)
    assert back[0]["test_misclassification"] is None and back[-1]["train_misclassification"] == 4 / 7


def test_files_written_before_the_k_and_misclassification_columns_are_refused(tmp_path):
    exp = Experiment.create("old", {"n": 8, "m": 8, "trials": 1, "activations": ["relu"], "models": ["nn"]},
                            {"k_over_m": [0.5]})
    path = tmp_path / "results.csv"
    path.write_text("k_over_m,activation,model,trial,train_error,test_error,status\n0.5,relu,nn,0,0.125,0.25,ok\n")
    assert results.read_header(path) is not None  # recognised as gmstep's ...
    with pytest.raises(ResultsError, match="before the k column"):  # ... but its widths are unknown
        results.RowTable(exp).read(path)


def test_put_result_fills_the_same_table_as_put(tiny_experiment):
    exp = tiny_experiment(sweep={"alpha": [0.5, 1.0]})
    by_rows, by_index = results.RowTable(exp), results.RowTable(exp)
    for point_index, trial in exp.tasks():
        res = engine_task.compute_task(exp, point_index, trial)
        by_rows.put(res.rows(exp.points()[point_index]))
        by_index.put_result(res)
    assert list(by_index) == list(by_rows)
    assert by_index.done_tasks().all()
    other = engine_task.compute_task(tiny_experiment(params={"activations": ["relu"]}), 0, 0)
    with pytest.raises(ValueError, match="other activations"):
        by_index.put_result(other)
