"""Lattice and gem lifecycle, vectorized load/save, optimistic concurrency, roles (SQLite and PostgreSQL)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from core.access import PermissionDenied
from core.errors import LatticeError, ValidationError
from core.engine import LatticeParams
from core.store import ConflictError, NotFoundError
from tests.store.conftest import RESEARCHER, VIEWER, sample_rows


def test_create_list_and_params(store):
    info = store.create_lattice("alpha", RESEARCHER, params={"lambda_": 2.0}, clock="manual")
    assert (info.name, info.embedder, info.dim, info.clock, info.t, info.version) == \
        ("alpha", "hashing-v1", 1024, "manual", 0.0, 1)
    assert info.params.lambda_ == 2.0
    store.create_lattice("beta", RESEARCHER)
    assert [i.name for i in store.list_lattices()] == ["alpha", "beta"]
    with pytest.raises(LatticeError, match="already exists"):
        store.create_lattice("alpha", RESEARCHER)
    with pytest.raises(ValidationError, match="lambda_"):
        store.update_params("alpha", {"lambda_": -1}, RESEARCHER)
    info2 = store.update_params("alpha", {"K": 0.5}, RESEARCHER)
    assert info2.params.K == 0.5 and info2.params.lambda_ == 2.0 and info2.version == 2
    with pytest.raises(NotFoundError, match="unknown lattice 'nope'; available: alpha, beta"):
        store.load("nope")


def test_gem_crud_archive_restore_delete(filled):
    s = filled
    gid = s.add_gem("lab", RESEARCHER, "A fresh gem about interference.", tags=["waves"], energy=2.0)
    g = s.get_gem("lab", gid)
    assert g["content"].startswith("A fresh") and g["energy"] == 2.0 and g["version"] == 1 and not g["archived"]
    g2 = s.update_gem("lab", gid, RESEARCHER, expected_version=1, title="Renamed", coherence=0.25)
    assert (g2["title"], g2["coherence"], g2["version"]) == ("Renamed", 0.25, 2)
    with pytest.raises(ConflictError, match="changed since you read it"):
        s.update_gem("lab", gid, RESEARCHER, expected_version=1, title="Stale")
    with pytest.raises(ValidationError, match="coherence"):
        s.update_gem("lab", gid, RESEARCHER, coherence=1.5)
    with pytest.raises(ValidationError, match="nonsense"):
        s.update_gem("lab", gid, RESEARCHER, nonsense=1)
    assert s.get_gem("lab", gid)["title"] == "Renamed"
    s.archive_gem("lab", gid, RESEARCHER)
    assert gid not in s.load("lab").lattice.ids
    with pytest.raises(LatticeError, match="already archived"):
        s.archive_gem("lab", gid, RESEARCHER)
    s.restore_gem("lab", gid, RESEARCHER)
    loaded = s.load("lab")
    assert loaded.lattice.ids[-1] == gid and loaded.lattice.coherence[-1] == 0.25
    s.delete_gem("lab", gid, RESEARCHER)
    with pytest.raises(NotFoundError):
        s.get_gem("lab", gid)
    # content edits re-embed
    before = s.embeddings("lab", ["g001"])
    s.update_gem("lab", "g001", RESEARCHER, content="Completely different words now.")
    assert not np.array_equal(before, s.embeddings("lab", ["g001"]))


def test_list_gems_filters_and_pagination(filled):
    df, total = filled.list_gems("lab", tag="waves")
    assert total == 4 and set(df["id"]) == {"g000", "g003", "g006", "g009"}
    df, total = filled.list_gems("lab", text="NUMBER 1")  # case-insensitive, title or content
    assert set(df["id"]) >= {"g001", "g010", "g011"}
    df, total = filled.list_gems("lab", coherence_min=0.5, coherence_max=0.7)
    assert total == len(df) and df["coherence"].between(0.5, 0.7).all() and total > 0
    page2, total = filled.list_gems("lab", page=2, page_size=5)
    assert total == 12 and list(page2["id"]) == [f"g{i:03d}" for i in range(5, 10)]
    filled.archive_gem("lab", "g000", RESEARCHER)
    assert filled.list_gems("lab", archived=True)[1] == 1
    assert filled.list_gems("lab", archived=None)[1] == 12
    df, total = filled.list_gems("lab", tag="%")  # LIKE wildcards are literal
    assert total == 0


def test_load_is_exact_and_advance_matches_engine(filled):
    rows = sample_rows()
    loaded = filled.load("lab")
    lat = loaded.lattice
    assert lat.ids == [r["id"] for r in rows]
    np.testing.assert_array_equal(lat.energy, [r["energy"] for r in rows])
    np.testing.assert_array_equal(lat.phase, [r["phase"] for r in rows])
    assert lat.edge_weight(0, 1) == 0.5 and lat.edge_weight(2, 5) == 1.0 and lat.n_edges == 2
    expected = lat.copy().evolve(0.7)
    info = filled.advance("lab", 0.7, RESEARCHER)
    assert info.t == 0.7 and info.version == loaded.version + 1
    again = filled.load("lab").lattice
    for name in ("energy", "phase", "coherence", "uncertainty"):
        np.testing.assert_array_equal(getattr(again, name), getattr(expected, name))
    emb = loaded.embeddings()
    assert emb.dtype == np.float32 and emb.shape == (12, 1024)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert list(loaded.texts()["id"]) == lat.ids


def test_save_with_stale_version_conflicts_and_writes_nothing(filled):
    a, b = filled.load("lab"), filled.load("lab")
    a.lattice.set_state(0, coherence=0.11)
    saved = filled.save(a, RESEARCHER)
    assert saved.version == a.version + 1
    b.lattice.set_state(0, coherence=0.99)
    b.lattice.set_state(1, coherence=0.98)
    with pytest.raises(ConflictError, match="changed since you loaded it"):
        filled.save(b, RESEARCHER)
    now = filled.load("lab")
    assert now.lattice.coherence[0] == 0.11 and now.lattice.coherence[1] == a.lattice.coherence[1]
    assert now.version == saved.version
    with pytest.raises(ConflictError):
        filled.advance("lab", 1.0, RESEARCHER, expected_version=a.version)


def test_concurrent_writers_lose_no_update(filled):
    """Threads advancing and observing at once: every change lands exactly once."""
    errors = []

    def work(k):
        try:
            for _ in range(3):
                filled.advance("lab", 0.25, RESEARCHER)
                filled.observe("lab", [f"g{k:03d}"], RESEARCHER)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    start = filled.load("lab")
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    end = filled.load("lab")
    assert end.lattice.t == pytest.approx(4 * 3 * 0.25)
    assert end.version == start.version + 24
    log = filled.transactions("lab", since_id=int(filled.transactions("lab")["id"].iloc[1]))
    assert (log["kind"] == "evolve").sum() == 12 and (log["kind"] == "observe").sum() == 12
    assert sorted(log["lattice_version"]) == list(range(start.version + 1, end.version + 1))


def test_viewer_is_refused_everywhere_and_nothing_changes(filled, tmp_path, sample_file):
    v0 = filled.info("lab").version
    calls = [
        lambda: filled.create_lattice("x", VIEWER),
        lambda: filled.add_gem("lab", VIEWER, "text"),
        lambda: filled.update_gem("lab", "g001", VIEWER, title="x"),
        lambda: filled.archive_gem("lab", "g001", VIEWER),
        lambda: filled.delete_gem("lab", "g001", VIEWER),
        lambda: filled.advance("lab", 1.0, VIEWER),
        lambda: filled.observe("lab", ["g001"], VIEWER),
        lambda: filled.apply_reflection("lab", ["g001", "g002"], VIEWER),
        lambda: filled.entangle("lab", "g001", "g002", 0.3, VIEWER),
        lambda: filled.update_params("lab", {"K": 1.0}, VIEWER),
        lambda: filled.import_path("lab", sample_file, VIEWER),
        lambda: filled.save(filled.load("lab"), VIEWER),
        lambda: filled.save_run("lab", "r", {}, {}, VIEWER),
        lambda: filled.backup("lab", tmp_path / "b.zip", RESEARCHER),  # admin only
        lambda: filled.delete_lattice("lab", RESEARCHER),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
    assert filled.info("lab").version == v0
    assert filled.list_gems("lab")[1] == 12 and filled.load("lab") is not None  # reads are allowed


def test_entanglements_and_reflection_hook(filled):
    filled.entangle("lab", "g003", "g004", 0.4, RESEARCHER)
    assert filled.load("lab").lattice.n_edges == 3
    filled.disentangle("lab", "g000", "g001", RESEARCHER)
    edges = filled.entanglements("lab")
    assert set(map(tuple, edges[["source", "target"]].values)) == {("g002", "g005"), ("g003", "g004")}
    with pytest.raises(ValidationError):
        filled.entangle("lab", "g003", "g003", 0.4, RESEARCHER)
    before = filled.load("lab").lattice
    out = filled.apply_reflection("lab", ["g003", "g004", "g007"], RESEARCHER, increment=0.1,
                                  reflection={"query": "what about waves?", "answer": "They interfere.",
                                              "gems_used": [{"gem_id": "g003", "s": np.float32(0.9), "r": 0.5}],
                                              "latency_ms": 12.5, "tokens_in": 10, "tokens_out": 4})
    after = filled.load("lab").lattice
    assert after.edge_weight(3, 4) == pytest.approx(0.5) and after.edge_weight(3, 7) == pytest.approx(0.1)
    assert after.coherence[3] == 1.0 and after.coherence[7] == 1.0  # eta = 1
    assert after.coherence[0] == before.coherence[0]
    assert filled.get_gem("lab", "g003")["last_observed"] == 0.0
    refl = filled.list_reflections("lab")
    assert refl.loc[0, "id"] == out["reflection_id"] and refl.loc[0, "gems_used"][0]["gem_id"] == "g003"
    kinds = filled.transactions("lab")["kind"].tolist()
    assert kinds[-2:] == ["observe", "entangle"]


def test_runs_round_trip(filled):
    import pandas as pd
    traj = pd.DataFrame({"time": [0.0, 0.5, 1.0], "R": [0.1, 0.2, 0.3], "gem": ["a", "b", "c"]})
    rid = filled.save_run("lab", "sweep K", LatticeParams(K=0.5), {"final_R": np.float32(0.3)}, RESEARCHER,
                          trajectory=traj)
    run = filled.get_run(rid)
    assert run["name"] == "sweep K" and run["params"]["K"] == 0.5
    assert run["metrics"]["final_R"] == pytest.approx(0.3)
    with pytest.raises(ValidationError, match="metrics"):
        filled.save_run("lab", "bad", {}, {"x": float("nan")}, RESEARCHER)
    assert run["lattice"] == "lab" and run["trajectory"]["R"].dtype == np.float32
    np.testing.assert_allclose(run["trajectory"]["R"], traj["R"], rtol=1e-6)
    assert list(run["trajectory"]["gem"]) == ["a", "b", "c"]
    assert list(filled.list_runs("lab")["id"]) == [rid]
    with pytest.raises(NotFoundError):
        filled.get_run(9999)


def test_wall_clock_lattice_catches_up_before_reads(filled):
    from sqlalchemy import update
    from core.store.models import LatticeRow
    import time
    filled.set_clock("lab", "wall", RESEARCHER)
    with filled.engine.begin() as conn:  # pretend the lattice was last seen two hours ago
        conn.execute(update(LatticeRow.__table__).where(LatticeRow.__table__.c.name == "lab")
                     .values(wall_anchor=time.time() - 7200))
    lat = filled.load("lab").lattice
    assert lat.t == pytest.approx(2.0, abs=0.01)  # time unit: hour
    assert filled.transactions("lab")["kind"].iloc[-1] == "evolve"
    assert filled.transactions("lab")["actor"].iloc[-1] == "clock"


def test_bad_lattice_names_are_refused(store, sample_file):
    for bad in ["", " lead", "a/b", "x" * 201, "-dash"]:
        with pytest.raises(ValidationError, match="lattice"):
            store.create_lattice(bad, RESEARCHER)
        with pytest.raises(ValidationError, match="lattice"):
            store.import_path(bad, sample_file, RESEARCHER)
    assert store.list_lattices() == []


def test_store_source_serves_the_ui_seam(filled):
    from core.service import LatticeSource
    from core.service import StoreSource
    src = StoreSource(filled)
    assert isinstance(src, LatticeSource) and "database" in src.label
    assert src.names() == ["lab"]
    first = src.load("lab")
    assert first.persistent and list(first.gems["id"]) == first.lattice.ids and "title" in first.gems
    assert src.load("lab") is first  # cached while the version is unchanged
    with pytest.raises(PermissionDenied):
        src.advance("lab", 1.0, VIEWER)
    with pytest.raises(ValidationError):
        src.advance("lab", -1.0, RESEARCHER)
    assert src.load("lab") is first
    after = src.advance("lab", 2.0, RESEARCHER)
    assert after.version > first.version and after.lattice.t == 2.0
    filled.observe("lab", ["g001"], RESEARCHER)  # a write elsewhere is never served stale
    assert src.load("lab").version > after.version


def test_evolutions_move_the_state_version_not_the_content_version(filled):
    """Content and state are versioned apart: editing a title never conflicts with the clock,
    while an edit of state values read before an evolution does."""
    g = filled.get_gem("lab", "g003")
    assert (g["version"], g["state_version"]) == (1, 1)
    filled.advance("lab", 2.0, RESEARCHER)
    moved = filled.get_gem("lab", "g003")
    assert (moved["version"], moved["state_version"]) == (1, 2) and moved["coherence"] < g["coherence"]
    renamed = filled.update_gem("lab", "g003", RESEARCHER, expected_version=g["version"], title="Renamed")
    assert (renamed["title"], renamed["version"], renamed["state_version"]) == ("Renamed", 2, 2)
    with pytest.raises(ConflictError, match="state of gem 'g003' changed"):
        filled.update_gem("lab", "g003", RESEARCHER, expected_state_version=g["state_version"], energy=3.0)
    assert filled.get_gem("lab", "g003")["energy"] == moved["energy"]  # nothing written
    set_ = filled.update_gem("lab", "g003", RESEARCHER, expected_state_version=2, energy=3.0)
    assert (set_["energy"], set_["version"], set_["state_version"]) == (3.0, 2, 3)


def test_list_tags_reads_active_gems_tags(filled):
    assert filled.list_tags("lab") == ["clocks", "memory", "sample", "waves"]
    for gid in ("g001", "g004", "g007", "g010"):  # every "memory" gem
        filled.archive_gem("lab", gid, RESEARCHER)
    assert filled.list_tags("lab") == ["clocks", "sample", "waves"]


def test_a_large_save_is_logged_packed_and_read_back_as_exact_lists(store, tmp_path):
    """Saves of many gems store their before/after arrays packed (base64 float64); the log
    API and replay see the exact values as plain lists."""
    from core.access import SYSTEM
    from tests.store.conftest import write_jsonl
    store.import_path("big", write_jsonl(tmp_path / "big.jsonl", sample_rows(600)), SYSTEM)
    store.backup("big", tmp_path / "snap.zip", SYSTEM)  # replay from here runs the packed edit entry
    loaded = store.load("big")
    before = loaded.lattice.copy()
    loaded.lattice.evolve(0.7)
    store.save(loaded, RESEARCHER)
    entry = store.transactions("big", kinds=["edit"]).iloc[-1]
    assert len(entry["gem_ids"]) == 600
    for s in ("energy", "phase", "coherence", "uncertainty"):
        assert entry["after"][s] == getattr(loaded.lattice, s).tolist()  # exact floats
        assert entry["before"][s] == getattr(before, s).tolist()
    raw = store.engine.connect()
    try:
        from sqlalchemy import text
        stored = raw.execute(text("SELECT after FROM transactions WHERE kind = 'edit'")).scalar_one()
    finally:
        raw.close()
    stored = stored if isinstance(stored, dict) else __import__("json").loads(stored)
    assert set(stored["coherence"]) == {"f8"}  # packed in the database
    batches = [e["gems"] for e in store.transactions("big", kinds=["import"])["after"]]  # one per import batch
    assert [q for b in batches for q in b["seq"]] == list(range(1, 601))
    assert sum(len(b["energy"]) for b in batches) == 600
    live = store.load("big").lattice
    replayed = store.replay_to("big", tmp_path / "snap.zip", live.t)
    for s in ("energy", "phase", "coherence", "uncertainty"):
        np.testing.assert_array_equal(getattr(replayed, s), getattr(live, s))


def test_bulk_writes_refresh_postgresql_planner_statistics(pg_url, sample_file):
    from sqlalchemy import text

    from core.access import SYSTEM
    from core.store import Store
    with Store.open(pg_url) as store:
        store.import_path("lab", sample_file, SYSTEM)
        store._analyze_after_bulk(10_000)  # what an import or restore of >= 10k gems runs after commit
        with store.engine.connect() as conn:
            analyzed = conn.execute(text("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL "
                                         "AND schemaname = current_schema()")).scalars().all()
    assert {"gems", "gem_states"} <= set(analyzed)


@pytest.mark.parametrize("copy_min", [0, 10**9], ids=["copy", "parameters"])
def test_both_bulk_update_paths_store_exact_states(filled, monkeypatch, copy_min):
    """PostgreSQL updates many states through a binary COPY and a few through array
    parameters (SQLite always through executemany): every path stores the exact floats."""
    from core.store import bulk
    monkeypatch.setattr(bulk, "COPY_MIN", copy_min)
    loaded = filled.load("lab")
    loaded.lattice.evolve(0.37)
    loaded.lattice.set_state(3, coherence=0.1 + 1e-15, phase=-123.456789)
    saved = filled.save(loaded, RESEARCHER)
    again = filled.load("lab").lattice
    for s in ("energy", "phase", "coherence", "uncertainty"):
        np.testing.assert_array_equal(getattr(again, s), getattr(saved.lattice, s))
    assert {filled.get_gem("lab", g)["state_version"] for g in again.ids} == {2}
    filled.observe("lab", ["g002"], RESEARCHER)  # a few rows
    assert filled.get_gem("lab", "g002")["state_version"] == 3


def test_a_reflection_write_reads_only_the_used_gems_and_partners_yet_matches_the_whole_lattice(store):
    """apply_reflection / observe load the used gems, their partners and their edges only;
    the stored result and the log equal an observe + strengthen of the whole lattice."""
    from core.access import SYSTEM

    rng = np.random.default_rng(11)
    store.create_lattice("big", SYSTEM, params={"rho": 0.6, "eta": 0.7})
    for i in range(60):
        store.add_gem("big", SYSTEM, f"gem {i} words {rng.integers(1000)}", id=f"g{i:02d}",
                      coherence=float(rng.uniform(0, 1)), uncertainty=float(rng.uniform(0, 1)))
    for _ in range(80):
        a, b = rng.choice(60, 2, replace=False)
        store.entangle("big", f"g{a:02d}", f"g{b:02d}", float(rng.uniform(0.1, 1)), SYSTEM)
    store.archive_gem("big", "g05", SYSTEM)  # an archived partner is not lifted
    for used in (["g01", "g02", "g03"], ["g10"], ["g20", "g01", "g20"]):
        ref = store.load("big").lattice
        pos = [ref.ids.index(g) for g in dict.fromkeys(used)]
        ref.observe(pos)
        if len(pos) > 1:
            ref.strengthen(pos, 0.1)
        store.apply_reflection("big", used, SYSTEM, increment=0.1)
        got = store.load("big").lattice
        np.testing.assert_array_equal(got.coherence, ref.coherence)
        np.testing.assert_array_equal(got.uncertainty, ref.uncertainty)
        for x, y in zip(got.edge_arrays(), ref.edge_arrays()):
            np.testing.assert_array_equal(x, y)
    ref = store.load("big").lattice
    ref.observe([ref.ids.index("g07")], 0.5)
    store.observe("big", ["g07"], SYSTEM, strength=0.5)
    np.testing.assert_array_equal(store.load("big").lattice.coherence, ref.coherence)
    with pytest.raises(NotFoundError, match="not an active gem"):
        store.apply_reflection("big", ["g05"], SYSTEM)


def test_lattice_names_are_the_listed_lattices_in_order(store):
    from core.access import SYSTEM
    for name in ("zeta", "alpha", "Mid"):
        store.create_lattice(name, SYSTEM)
    assert store.lattice_names() == [i.name for i in store.list_lattices()] == sorted(["zeta", "alpha", "Mid"])
