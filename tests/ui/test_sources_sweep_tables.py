"""core/sources.py (the LatticeSource seam), core/sweep.py and ui/tables.py (pure parts).

(Lives in tests/ui because this stage owns only tests/ui and tests/browser.)
"""
from __future__ import annotations

import numpy as np
import pytest

from core.access import Actor, PermissionDenied
from core.errors import LatticeError, ValidationError
from core.service import DemoFileSource, LatticeSource
from core.engine import METRICS, grid_values, sweep
from ui.tables import read_observations_csv


def test_demo_source_advance_needs_edit_and_keeps_state_on_error():
    src = DemoFileSource()
    assert isinstance(src, LatticeSource)
    first = src.load("demo")
    assert first.version == 0 and not first.persistent and len(first.gems) == len(first.lattice)
    with pytest.raises(PermissionDenied, match="viewer"):
        src.advance("demo", 1.0, Actor("v", "viewer"))
    with pytest.raises(ValidationError):
        src.advance("demo", -1.0, Actor("r", "researcher"))
    assert src.load("demo") is first  # nothing changed
    after = src.advance("demo", 2.0, Actor("r", "researcher"))
    assert after.version == 1 and after.lattice.t == 2.0
    np.testing.assert_allclose(after.lattice.coherence, first.lattice.copy().evolve(2.0).coherence)
    assert first.lattice.t == 0.0  # the old snapshot is untouched
    with pytest.raises(LatticeError, match="unknown lattice"):
        src.load("other")


def test_sweep_grid_and_metrics():
    src = DemoFileSource()
    lat = src.load("demo").lattice
    values = grid_values("lambda_", 0.5, 2.0, 4)
    df = sweep(lat, lat.params, {"lambda_": values}, 5.0, progress=lambda f: None)
    assert list(df.columns) == ["lambda_", *METRICS] and len(df) == 4
    assert df["mean_coherence"].is_monotonic_decreasing  # faster decay, less coherence
    assert lat.t == 0.0
    with pytest.raises(ValidationError, match="lambda_"):
        grid_values("lambda_", -1, 2, 3)
    with pytest.raises(ValidationError, match="cannot sweep"):
        grid_values("time_unit", 0, 1, 3)
    with pytest.raises(ValidationError, match="one or two"):
        sweep(lat, lat.params, {}, 1.0)


@pytest.mark.parametrize("data, field", [
    (b"", "file"), (b"time,value\n1,2\n", "t"), (b"t,coherence\n", "file"),
    (b"t,coherence\n1,abc\n", "coherence"), (b"t,coherence\n1,1.5\n", "coherence"),
    (b"t,coherence\ninf,0.5\n", "t"), (b"\xff\xfe\x00garbage", "file"),
])
def test_bad_observation_csvs_name_the_field(data, field):
    with pytest.raises(ValidationError) as info:
        read_observations_csv(data)
    assert info.value.field == field


def test_good_observation_csv():
    df = read_observations_csv(b" T , Coherence ,gem\n0,0.9,a\n1,0.5,a\n")
    assert list(df.columns) == ["t", "coherence", "gem"] and df["coherence"].tolist() == [0.9, 0.5]
