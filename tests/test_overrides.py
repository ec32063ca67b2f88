"""``with_overrides``: --set/--trials/--seed and --values applied to an experiment."""

from __future__ import annotations

import pytest

from gmstep.errors import ConfigError
from gmstep.overrides import with_overrides


def test_fixed_value_for_a_swept_column_replaces_its_sweep(tiny_experiment):
    exp = tiny_experiment(sweep={"k_over_m": [0.5, 1.0, 2.0]})
    assert with_overrides(exp) is exp
    out = with_overrides(exp, {"k_over_m": 0.25, "trials": 3})
    assert out.sweep["k_over_m"] == [0.25] and out.params["trials"] == 3
    assert with_overrides(exp, {"k_over_m": [0.25, 4.0]}).sweep["k_over_m"] == [0.25, 4.0]
    # Explicit sweep values replace the column; the experiment given is left unchanged.
    both = with_overrides(exp, sweep={"k_over_m": [3.0]})
    assert both.sweep["k_over_m"] == [3.0] and exp.sweep["k_over_m"] == [0.5, 1.0, 2.0]


def test_bad_values_are_config_errors(tiny_experiment):
    with pytest.raises(ConfigError, match="trials"):
        with_overrides(tiny_experiment(), {"trials": 0})
