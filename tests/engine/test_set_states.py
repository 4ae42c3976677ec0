"""Bulk state edits of a Lattice (what the lattice cache applies from the log)."""
import numpy as np
import pytest

from core.engine import Lattice
from core.engine.limits import MAX_PHASE
from core.errors import ValidationError


def test_set_states_sets_many_gems_at_once_or_nothing():
    lat = Lattice([1.0, 2.0, 3.0], [0.0, 0.5, 1.0], [0.2, 0.4, 0.6], [0.1, 0.1, 0.1], ids=["a", "b", "c"])
    lat.set_states([2, 0], coherence=[0.9, 0.8], energy=[5.0, 1.0])
    assert lat.coherence.tolist() == [0.8, 0.4, 0.9] and lat.energy.tolist() == [1.0, 2.0, 5.0]
    before = [a.copy() for a in (lat.energy, lat.phase, lat.coherence, lat.uncertainty)]
    for bad in ({"coherence": [0.5, 1.5]}, {"energy": [1.0, -1.0]}, {"coherence": [0.5]}, {"mass": [1, 2]}):
        with pytest.raises(ValidationError):
            lat.set_states([0, 1], **bad)
    with pytest.raises(ValidationError, match="indices"):
        lat.set_states([0, 3], coherence=[0.1, 0.1])
    for a, b in zip(before, (lat.energy, lat.phase, lat.coherence, lat.uncertainty)):
        np.testing.assert_array_equal(a, b)  # nothing changed
    lat.set_states([1], phase=[MAX_PHASE - 1.0])
    with pytest.raises(ValidationError, match="phase"):  # the phase limit sees the new phase
        lat.evolve(10.0)
