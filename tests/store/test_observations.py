"""Observations counted and timed, reinforcement saved and logged, the log replayed exactly
(issue 13, items 1 and 5): the store side of ``observe`` and ``apply_reflection``."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import select

from core.access import SYSTEM
from core.store import txlog
from core.store.tables import GEM_STATES, GEMS, LATTICES, STATE, TRANSACTIONS
from tests.store.conftest import RESEARCHER

REINFORCED = {"reinforcement": 1.0, "energy_cap": 16.0}


def gem_rows(store, name: str) -> dict[str, dict]:
    """gem id -> its gem_states row (every column), read straight from the table."""
    with store.engine.connect() as conn:
        lid = conn.execute(select(LATTICES.c.id).where(LATTICES.c.name == name)).scalar_one()
        rows = conn.execute(select(GEMS.c.gem_id, GEM_STATES).join(GEM_STATES, GEM_STATES.c.gem_pk == GEMS.c.pk)
                            .where(GEMS.c.lattice_id == lid)).mappings().all()
    return {r["gem_id"]: dict(r) for r in rows}


def stored_entries(store, name: str, kind: str) -> list:
    """The log entries of ``kind`` as stored (raw JSON payloads, nothing unpacked)."""
    with store.engine.connect() as conn:
        lid = conn.execute(select(LATTICES.c.id).where(LATTICES.c.name == name)).scalar_one()
        return conn.execute(select(TRANSACTIONS.c.gem_ids, TRANSACTIONS.c.before, TRANSACTIONS.c.after)
                            .where(TRANSACTIONS.c.lattice_id == lid, TRANSACTIONS.c.kind == kind)
                            .order_by(TRANSACTIONS.c.id)).all()


def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)  # SQLite drops the zone


def seed_observe_entry(lat, observed: list[str], eta: float) -> tuple[list[str], dict, dict]:
    """Today's ``observe`` entry, from the seed's formulas written out: observed gems get
    strength eta, partners eta*rho*w (strongest path), c <- c + s(1-c), u <- u(1-s)."""
    pos = {g: i for i, g in enumerate(lat.ids)}
    s = np.zeros(len(lat))
    obs = np.zeros(len(lat), dtype=bool)
    obs[[pos[g] for g in observed]] = True
    for i, j, w in zip(*lat.edge_arrays()):
        if obs[i]:
            s[j] = max(s[j], eta * lat.params.rho * w)
        if obs[j]:
            s[i] = max(s[i], eta * lat.params.rho * w)
    s[obs] = np.maximum(s[obs], eta)
    touched = np.flatnonzero(s > 0)
    c, u, st = lat.coherence[touched], lat.uncertainty[touched], s[touched]
    before = {"coherence": c.tolist(), "uncertainty": u.tolist()}
    after = {"coherence": (c + st * (1.0 - c)).tolist(), "uncertainty": (u * (1.0 - st)).tolist(),
             "observed": list(dict.fromkeys(observed)), "strength": st.tolist()}
    return [lat.ids[i] for i in touched], before, after


# ------------------------------------------------------------ observations
def test_observe_counts_and_times_the_directly_observed_gems_not_their_partners(filled):
    filled.advance("lab", 2.0, SYSTEM)
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    filled.observe("lab", ["g000"], RESEARCHER)  # g001 is its partner (weight 0.5)
    rows = gem_rows(filled, "lab")
    assert rows["g000"]["observations"] == 1 and rows["g000"]["last_observed"] == 2.0
    assert start <= as_utc(rows["g000"]["observed_at"]) <= datetime.now(timezone.utc) + timedelta(seconds=1)
    assert rows["g001"]["coherence"] > 0  # lifted by the partner's observation...
    assert not rows["g001"]["observations"] and rows["g001"]["observed_at"] is None  # ...not observed
    filled.advance("lab", 1.0, SYSTEM)
    first_at = as_utc(rows["g000"]["observed_at"])
    filled.apply_reflection("lab", ["g000", "g003", "g000"], RESEARCHER)  # named twice: observed once
    rows = gem_rows(filled, "lab")
    assert rows["g000"]["observations"] == 2 and rows["g003"]["observations"] == 1
    assert rows["g000"]["last_observed"] == 3.0 and as_utc(rows["g000"]["observed_at"]) >= first_at
    assert not rows["g005"]["observations"]  # never used
    times = filled.gem_times("lab", ["g000", "g001", "g003"])  # the store's API over the same columns
    assert times["observations"].tolist() == [2, 0, 1] and times["last_observed_t"].iloc[0] == 3.0


def test_a_refused_observation_counts_nothing(filled):
    from core.store import NotFoundError
    with pytest.raises(NotFoundError, match="nope"):
        filled.observe("lab", ["g000", "nope"], RESEARCHER)
    assert not gem_rows(filled, "lab")["g000"]["observations"]


# ------------------------------------------------------------ seed format
def test_a_seed_preset_observe_entry_is_todays_format_bit_for_bit(filled):
    filled.simulate("lab", 1.5, RESEARCHER, dt=0.1)
    before_load = filled.load("lab").lattice
    assert before_load.params.preset == "seed" and before_load.params.reinforcement == 0
    ids, before, after = seed_observe_entry(before_load, ["g002", "g000"], before_load.params.eta)
    filled.observe("lab", ["g002", "g000"], RESEARCHER)
    gem_ids, raw_before, raw_after = stored_entries(filled, "lab", "observe")[-1]
    assert gem_ids == ids and raw_before == before and raw_after == after
    assert json.dumps(raw_after) == json.dumps(after)  # same keys in the same order, same floats
    assert "energy" not in raw_before and "energy" not in raw_after
    now = filled.load("lab").lattice
    np.testing.assert_array_equal(now.energy, before_load.energy)  # the seed never changes energy


# ------------------------------------------------------------ reinforcement
def test_reinforced_observation_saves_the_energies_and_logs_them(filled):
    filled.update_params("lab", REINFORCED, SYSTEM)
    filled.advance("lab", 3.0, SYSTEM)
    lat0 = filled.load("lab").lattice
    i0 = lat0.ids.index("g000")
    out = filled.observe("lab", ["g000"], RESEARCHER)
    lat1 = filled.load("lab").lattice
    grown = lat0.energy[i0] * (1 + 1.0 * (1 - lat0.coherence[i0]))
    assert lat1.energy[i0] == min(grown, 16.0) > lat0.energy[i0]
    gem_ids, before, after = stored_entries(filled, "lab", "observe")[-1]
    assert gem_ids == ["g000", "g001"]  # the observed gem and its partner
    assert before["energy"] == [lat0.energy[i0], lat0.energy[lat0.ids.index("g001")]]
    assert after["energy"] == [lat1.energy[i0], lat0.energy[lat0.ids.index("g001")]]  # partners not reinforced
    assert out["energy_after"] == after["energy"] and out["energy_before"] == before["energy"]
    shown = filled.transactions("lab", kinds=["observe"]).iloc[-1]
    assert shown.after["energy"] == after["energy"]


def test_replaying_a_reinforced_lattice_reproduces_its_state_exactly(filled, tmp_path):
    filled.update_params("lab", {**REINFORCED, "K": 0.4}, SYSTEM)  # coupled: energies steer the phases
    snap = filled.backup("lab", tmp_path / "before.zip", SYSTEM)["path"]
    initial = filled.load("lab").lattice.energy.copy()
    for k, used in enumerate((["g000", "g004"], ["g004"], ["g007", "g000", "g011"], ["g000"])):
        filled.simulate("lab", 0.7 + k / 3, RESEARCHER, dt=0.1)
        filled.apply_reflection("lab", used, RESEARCHER)
    filled.observe("lab", ["g009"], RESEARCHER, strength=0.4)
    filled.simulate("lab", 1.0, RESEARCHER, dt=0.25)
    stored = filled.load("lab").lattice
    assert np.count_nonzero(stored.energy != initial) >= 4  # the recalls did reinforce
    replayed = filled.replay_to("lab", snap, stored.t)
    assert replayed.ids == stored.ids and replayed.t == stored.t
    for s in STATE:
        np.testing.assert_array_equal(getattr(replayed, s), getattr(stored, s), err_msg=s)
    # and the whole log, from the import on
    rs = txlog.ReplayState(filled.info("lab").params, 0.0)
    for e in filled._log_rows("lab"):
        rs.apply(e.kind, list(e.gem_ids or []), e.before, e.after, float(e.lattice_t))
    for s in STATE:
        np.testing.assert_array_equal(getattr(rs.lattice(), s), getattr(stored, s), err_msg=s)
    # the logged energies are what makes it exact: without them the replay drifts
    rs = txlog.ReplayState(filled.info("lab").params, 0.0)
    for e in filled._log_rows("lab"):
        after = {k: v for k, v in (e.after or {}).items() if k != "energy"} if e.kind == "observe" else e.after
        rs.apply(e.kind, list(e.gem_ids or []), e.before, after, float(e.lattice_t))
    assert not np.array_equal(rs.lattice().energy, stored.energy)


def test_a_reinforced_log_entry_with_a_bad_energy_is_refused_by_replay():
    rs = txlog.ReplayState(filled_params(), 0.0)
    rs.apply("import", [], None, {"gems": {"id": ["a", "b"], "seq": [0, 1], "energy": [1.0, 2.0],
                                           "phase": [0.0, 0.0], "coherence": [0.5, 0.5],
                                           "uncertainty": [0.1, 0.1]}}, 0.0)
    with pytest.raises(Exception, match="energy"):
        rs.apply("observe", ["a"], None, {"coherence": [1.0], "uncertainty": [0.0], "energy": [-1.0]}, 1.0)
    np.testing.assert_array_equal(rs.lattice().energy, [1.0, 2.0])  # nothing changed
    rs.apply("observe", ["a"], None, {"coherence": [1.0], "uncertainty": [0.0], "energy": [1.5]}, 1.0)
    np.testing.assert_array_equal(rs.lattice().energy, [1.5, 2.0])


def filled_params():
    from core.engine import LatticeParams
    return LatticeParams(**REINFORCED)
