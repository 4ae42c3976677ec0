"""The seed preset, bit for bit (issue 13, item 5): over random lattices, edges, clocks and
used gems, a seed-preset reflection (``Store.apply_reflection``) writes exactly the state
changes and log entries it wrote before reinforcement existed: the seed's formulas,
written out here, and no energy anywhere."""
from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.access import SYSTEM
from core.store import Store
from core.store.tables import STATE
from tests.store.conftest import RESEARCHER
from tests.store.test_observations import gem_rows, seed_observe_entry, stored_entries

_STORE: dict[str, Store] = {}
_NAMES = itertools.count()


def shared_store() -> Store:
    """One SQLite store for every example (each example gets its own lattice)."""
    if "s" not in _STORE:
        _STORE["s"] = Store.open(f"sqlite:///{Path(tempfile.mkdtemp(prefix='seed-prop-')) / 'p.db'}")
    return _STORE["s"]


unit = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def cases(draw):
    n = draw(st.integers(2, 9))
    gems = [{"id": f"g{i}", "content": f"gem {i}", "energy": draw(st.floats(0.05, 20.0)),
             "phase": draw(st.floats(-10.0, 10.0)), "coherence": draw(unit), "uncertainty": draw(unit)}
            for i in range(n)]
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] < p[1]),
                          unique=True, max_size=2 * n))
    edges = [(i, j, draw(st.floats(0.01, 1.0))) for i, j in pairs]
    used = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n))
    advance = draw(st.sampled_from([0.0, 0.25, 1.5, 6.0]))
    increment = draw(st.sampled_from([0.05, 0.1, 0.5, 1.0]))
    return gems, edges, used, advance, increment


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_a_seed_preset_reflection_writes_exactly_todays_state_changes(case):
    gems, edges, used_pos, advance, increment = case
    store, name = shared_store(), f"p{next(_NAMES)}"
    folder = Path(tempfile.mkdtemp(prefix="seed-prop-"))
    (folder / "g.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gems), encoding="utf-8")
    (folder / "g.entanglements.csv").write_text(
        "source,target,weight\n" + "".join(f"g{i},g{j},{w!r}\n" for i, j, w in edges), encoding="utf-8")
    store.import_path(name, folder / "g.jsonl", SYSTEM)
    if advance:
        store.advance(name, advance, SYSTEM)
    before = store.load(name).lattice
    assert before.params.preset == "seed" and before.params.reinforcement == 0
    used = list(dict.fromkeys(f"g{i}" for i in used_pos))
    ids, obs_before, obs_after = seed_observe_entry(before, used, before.params.eta)

    out = store.apply_reflection(name, used, RESEARCHER, increment=increment)

    after = store.load(name).lattice
    pos = {g: i for i, g in enumerate(before.ids)}
    touched = [pos[g] for g in ids]
    # state: energy and phase untouched, coherence and uncertainty by the seed's formulas
    np.testing.assert_array_equal(after.energy, before.energy)
    np.testing.assert_array_equal(after.phase, before.phase)
    c, u = before.coherence.copy(), before.uncertainty.copy()
    c[touched], u[touched] = obs_after["coherence"], obs_after["uncertainty"]
    np.testing.assert_array_equal(after.coherence, c)
    np.testing.assert_array_equal(after.uncertainty, u)
    # edges: every co-used pair grows by the increment (new ones start at it), capped at 1
    expected_edges = {(int(i), int(j)): float(w) for i, j, w in zip(*before.edge_arrays())}
    upos = sorted(pos[g] for g in used)
    for a, i in enumerate(upos):
        for j in upos[a + 1:]:
            expected_edges[(i, j)] = min(1.0, expected_edges.get((i, j), 0.0) + increment)
    assert {(int(i), int(j)): float(w) for i, j, w in zip(*after.edge_arrays())} == expected_edges
    # the log: the observe entry in today's format, exactly, and nothing about energy
    gem_ids, raw_before, raw_after = stored_entries(store, name, "observe")[-1]
    assert (gem_ids, raw_before, raw_after) == (ids, obs_before, obs_after)
    assert json.dumps(raw_after) == json.dumps(obs_after)
    assert "energy_before" not in out and "energy_after" not in out
    rows = gem_rows(store, name)
    assert all(rows[g]["observations"] == 1 for g in used)
    assert all(not rows[g]["observations"] for g in before.ids if g not in used)
    for s in STATE:  # the stored rows are the loaded arrays (no second write moved them)
        np.testing.assert_array_equal([rows[g][s] for g in after.ids], getattr(after, s))
