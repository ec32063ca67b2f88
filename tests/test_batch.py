"""``reproduce``: one preset, or all of them with skip (complete) and reuse (shared runs)."""

from __future__ import annotations

import pytest

from gmstep import batch, presets, runner
from gmstep.errors import ConfigError

SMALL = {"params": {"n": 20, "m": 20, "trials": 1}, "sweep": {"k_over_m": [0.5, 2.0]}}


@pytest.fixture
def two_presets(monkeypatch):
    """``all`` = fig1a and fig6 (which shares fig1a's runs), both small."""
    real_get = presets.get
    monkeypatch.setattr(presets, "names", lambda: ["fig1a", "fig6"])
    monkeypatch.setattr(presets, "get", lambda name, quick=False: real_get(name, quick).with_changes(**SMALL))


def test_all_runs_then_reuses_then_skips(tmp_path, two_presets):
    seen = []
    first = batch.reproduce("all", tmp_path, progress=False, plot=False, report=seen.append)
    assert [o.note for o in first] == ["ran", "rows of fig1a"]
    assert seen == first
    assert (tmp_path / "fig6" / "results.csv").read_text() == (tmp_path / "fig1a" / "results.csv").read_text()
    again = batch.reproduce("all", tmp_path, progress=False, plot=False)
    assert [o.note for o in again] == ["skipped (complete)", "skipped (complete)"]
    assert [o.rows for o in again] == [o.rows for o in first] == [len(first[0].results.rows)] * 2
    assert again[0].gap == first[0].gap


def test_all_with_other_parameters_runs_again_and_records_failures(tmp_path, two_presets):
    batch.reproduce("all", tmp_path, progress=False, plot=False)
    # Another seed: fig1a's complete results are not its results; without --force the run refuses.
    out = batch.reproduce("all", tmp_path, params={"seed": 5}, progress=False, plot=False)
    assert all(o.note.startswith("failed: ") and o.error is not None and o.results is None for o in out)
    out = batch.reproduce("all", tmp_path, params={"seed": 5}, force=True, progress=False, plot=False)
    assert [o.note for o in out] == ["ran", "rows of fig1a"]
    assert runner.load(tmp_path / "fig6").experiment.params["seed"] == 5


def test_one_preset_and_find_complete(tmp_path, two_presets):
    (one,) = batch.reproduce("fig1a", tmp_path, sweep={"k_over_m": [1.0]}, progress=False, plot=False)
    assert one.note == "ran" and one.results.experiment.sweep["k_over_m"] == [1.0]
    exp = one.results.experiment
    assert batch.find_complete(tmp_path / "fig1a", exp) is not None
    assert batch.find_complete(tmp_path / "fig1a", exp.with_changes(params={"trials": 2})) is None
    assert batch.find_complete(tmp_path / "missing", exp) is None
    with pytest.raises(ConfigError, match="--values"):
        batch.reproduce("all", tmp_path, sweep={"k_over_m": [1.0]})
