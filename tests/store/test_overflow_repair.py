"""Issue 11, item 1 (store side): overflow can no longer brick a lattice, and one that is
already damaged loads with a clear error and is repaired by ``python -m core repair``."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.access import SYSTEM, Actor, PermissionDenied, Role
from core.engine import LatticeParams
from core.engine.limits import MAX_ENERGY, MAX_PHASE
from core.errors import LatticeError, ValidationError
from core.store import DamagedStateError, ImportFailed
from tests.store.conftest import RESEARCHER, sample_rows, write_jsonl

ADMIN = Actor("ada", Role.ADMIN)


def stored_state(store, name="lab"):
    """The raw stored rows (state, clock, version), read past any validation."""
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT g.gem_id, s.energy, s.phase, s.coherence, s.uncertainty FROM gems g "
            "JOIN gem_states s ON s.gem_pk = g.pk JOIN lattices l ON l.id = g.lattice_id "
            f"WHERE l.name = '{name}' ORDER BY g.seq").all()
        t, version = conn.exec_driver_sql(f"SELECT t, version FROM lattices WHERE name = '{name}'").one()
    return [tuple(r) for r in rows], t, version


def test_the_issue_scenario_is_refused_and_changes_nothing(store, tmp_path):
    rows = sample_rows(4)
    rows[1]["energy"] = 1e305
    with pytest.raises(ImportFailed, match="energy"):
        store.import_path("lab", write_jsonl(tmp_path / "huge.jsonl", rows), SYSTEM)
    rows[1]["energy"] = MAX_ENERGY  # at the new limit: accepted
    store.import_path("lab", write_jsonl(tmp_path / "limit.jsonl", rows), SYSTEM)
    store.update_params("lab", LatticeParams(f=100.0), RESEARCHER)
    with pytest.raises(ValidationError) as info:
        for _ in range(5):  # the page's largest dt, again and again
            before = stored_state(store)
            store.advance("lab", 10_000, RESEARCHER)
    assert "'g001'" in str(info.value) and f"{MAX_PHASE:g}" in str(info.value)
    assert stored_state(store) == before
    loaded = store.load("lab")  # still loads, advances (a little), simulates
    assert np.isfinite(loaded.lattice.phase).all()
    store.advance("lab", 1.0, RESEARCHER)
    store.simulate("lab", 1.0, RESEARCHER)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(energy=st.sampled_from([1e-300, 1e-6, 1.0, 1e3, MAX_ENERGY]), phase=st.sampled_from([0.0, -1e11, 9.9e11]),
       f=st.sampled_from([0.0, 1.0, 100.0]), K=st.sampled_from([0.0, 10.0]),
       dt=st.sampled_from([0.0, 0.1, 1e3, 1e4, 1e9, 1e13]))
def test_stored_state_stays_finite_or_the_step_is_refused(filled, energy, phase, f, K, dt):
    loaded = filled.load("lab")
    loaded.lattice.set_state(0, energy=energy, phase=phase)
    loaded.lattice.params = LatticeParams(f=f, K=K)
    filled.save(loaded, RESEARCHER)
    before = stored_state(filled)
    try:
        filled.advance("lab", dt, RESEARCHER)
    except ValidationError:
        assert stored_state(filled) == before
    lat = filled.load("lab").lattice
    for a in (lat.energy, lat.phase, lat.coherence, lat.uncertainty):
        assert np.isfinite(a).all()
    assert np.abs(lat.phase).max() <= MAX_PHASE


def damage(store, values: dict[str, str], gems=("g002", "g005"), name="lab"):
    sets = ", ".join(f"{k} = {v}" for k, v in values.items())
    with store.engine.begin() as conn:
        for gid in gems:
            conn.exec_driver_sql(f"UPDATE gem_states SET {sets} WHERE gem_pk = (SELECT g.pk FROM gems g "
                                 f"JOIN lattices l ON l.id = g.lattice_id WHERE l.name = '{name}' AND g.gem_id = '{gid}')")


def big(store) -> str:
    return "'Infinity'" if store.engine.dialect.name == "postgresql" else "9e999"


def test_a_damaged_lattice_loads_with_a_clear_error_and_repair_fixes_it(filled, cli, tmp_path):
    damage(filled, {"phase": big(filled)}, ["g002"])
    damage(filled, {"energy": "1e305", "phase": "1e15"}, ["g005"])
    with pytest.raises(DamagedStateError) as info:
        filled.load("lab")
    msg = str(info.value)
    assert "'g002'" in msg and "'g005'" in msg and "python -m core repair --lattice lab" in msg
    for op in (lambda: filled.advance("lab", 1.0, RESEARCHER), lambda: filled.simulate("lab", 1.0, RESEARCHER)):
        with pytest.raises(DamagedStateError):
            op()
    before = stored_state(filled)

    code, out, err = cli("repair", "--lattice", "lab", "--dry-run", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["dry_run"] and [c["gem"] for c in plan["repaired"]] == ["g002", "g005"]
    assert plan["repaired"][0]["fields"]["phase"]["after"] == 0.0  # inf: the default
    assert plan["repaired"][1]["fields"]["phase"]["after"] == pytest.approx(math.fmod(1e15, 2 * math.pi))
    assert plan["repaired"][1]["fields"]["energy"]["after"] == 1.0
    assert stored_state(filled) == before  # a dry run writes nothing

    code, out, err = cli("repair", "--lattice", "lab")
    assert code == 0, err and "repaired 2 gem(s)" in out and "g002" in out
    lat = filled.load("lab").lattice
    assert np.isfinite(lat.phase).all() and lat.energy[lat.ids.index("g005")] == 1.0
    edit = filled.transactions("lab", kinds=["edit"]).iloc[-1]
    assert list(edit["gem_ids"]) == ["g002", "g005"]
    audit = filled.audit_log(action="lattice.repair")
    assert len(audit) == 1 and audit.iloc[0]["outcome"] == "ok"

    filled.advance("lab", 1.0, RESEARCHER)  # and everything works again
    snap = filled.backup("lab", tmp_path / "after.zip", SYSTEM)["path"]
    filled.verify_snapshot(snap)
    code, out, _ = cli("repair", "--lattice", "lab")
    assert code == 0 and "nothing to repair" in out


def test_repair_is_admin_only_and_refusals_are_audited(filled):
    damage(filled, {"energy": "2e6"}, ["g003"])  # coherence and uncertainty have CHECK constraints
    with pytest.raises(PermissionDenied):
        filled.repair("lab", RESEARCHER)
    assert filled.audit_log(action="lattice.repair").iloc[0]["outcome"] == "denied"
    out = filled.repair("lab", ADMIN)
    assert out["repaired"] == [{"gem": "g003", "fields": {"energy": {"before": 2e6, "after": 1.0}}}]
    filled.load("lab")


def test_a_save_of_bad_state_is_refused(filled):
    loaded = filled.load("lab")
    loaded.lattice._phi[0] = math.inf  # past the public API: the store's last line of defence
    before = stored_state(filled)
    with pytest.raises(ValidationError, match="phase: .*'g000'"):
        filled.save(loaded, RESEARCHER)
    assert stored_state(filled)[0] == before[0]


def test_a_damaged_clock_is_named_and_reset(filled):
    with filled.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE lattices SET t = {big(filled)} WHERE name = 'lab'")
    with pytest.raises(LatticeError, match="lattice clock"):
        filled.load("lab")
    assert filled.repair("lab", SYSTEM)["clock"]["after"] == 0.0
    assert filled.load("lab").lattice.t == 0.0
