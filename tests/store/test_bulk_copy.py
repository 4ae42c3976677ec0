"""Bulk reads of a lattice's state (issue 12, 5b): ``bulk.select_columns`` and ``Store.load``.

The load reads keys, state and ids in one statement and turns the rows into columns in
one numpy call. What users rely on: the values are bit for bit what is stored (signed
zeros, subnormals, the last digit), in ``seq`` order, archived gems left out, and a
NULL is read as before (nan in a float column, the same error in an integer column).
Run on SQLite and PostgreSQL.
"""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, update

from core.access import SYSTEM
from core.store import bulk
from core.store.tables import GEM_STATES, GEMS, STATE
from tests.store.conftest import write_jsonl

# values whose bits a lossy path (text, float32, a rounding) would change
ENERGIES = [5e-324, 1e-300, 0.1, 1 / 3, 2.0 ** 19 + 2.0 ** -33, 999999.9999999999, float(np.nextafter(1.0, 2.0))]
PHASES = [-0.0, 0.0, -1e-310, np.pi, -123456.789012345678, 6.283185307179586, 1e11 + 0.5]


def _per_column(rows, dtypes):
    """The reference conversion: one ``np.array`` per column (what select_columns always returned)."""
    cols = list(zip(*rows)) if rows else [()] * len(dtypes)
    return [np.array(c, dtype=t) for c, t in zip(cols, dtypes)]


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("rows, dtypes", [
    ([(1, 0.5, -0.0, 5e-324), (2, float("nan"), float("inf"), -1e308)], ["i8", "f8", "f8", "f8"]),
    ([(1, None), (2, 2.5)], ["i8", "f8"]),  # a NULL in a float column reads as nan
    ([(7, "g1", 0.25), (8, "g2", 0.75)], ["i8", object, "f8"]),
    ([(3, True), (4, False)], ["i4", "?"]),
    ([], ["i8", "f8"]),
    ([("a",), ("b",)], [object]),
])
def test_rows_to_columns_is_the_per_column_conversion(rows, dtypes):
    got = bulk.rows_to_columns(rows, dtypes)
    want = _per_column(rows, dtypes)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if w.dtype == object:
            assert g.dtype == object and g.tolist() == w.tolist()
        else:
            assert _same_bits(g, w) and g.flags.c_contiguous


def test_rows_to_columns_null_in_integer_column_fails_as_before():
    with pytest.raises(TypeError):
        _per_column([(None, 1.0)], ["i8", "f8"])
    with pytest.raises(TypeError):
        bulk.rows_to_columns([(None, 1.0)], ["i8", "f8"])


def _gem_rows(n: int) -> list[dict]:
    return [{"id": f"b{i:03d}", "content": f"gem {i}", "energy": ENERGIES[i % len(ENERGIES)],
             "phase": PHASES[i % len(PHASES)], "coherence": (i % 11) / 10,
             "uncertainty": [0.0, 5e-324, 0.125, 1.0][i % 4]} for i in range(n)]


def _stored(store, name: str):
    """Keys, state and ids of the active gems read with plain SQLAlchemy rows (seq order)."""
    with store.engine.connect() as conn:
        lid = conn.execute(select(GEMS.c.lattice_id).where(GEMS.c.gem_id == "b000")).scalar_one()
        rows = conn.execute(select(GEMS.c.pk, GEMS.c.gem_id, *(GEM_STATES.c[s] for s in STATE))
                            .join(GEM_STATES, GEM_STATES.c.gem_pk == GEMS.c.pk)
                            .where(GEMS.c.lattice_id == lid, GEMS.c.archived.is_(False))
                            .order_by(GEMS.c.seq)).all()
    return rows


def test_load_reads_stored_state_bit_for_bit(store, tmp_path):
    n = 40
    store.import_path("bits", write_jsonl(tmp_path / "g.jsonl", _gem_rows(n)), SYSTEM)
    for gid in ("b003", "b010"):
        store.archive_gem("bits", gid, SYSTEM)
    rows = _stored(store, "bits")
    assert len(rows) == n - 2
    loaded = store.load("bits")
    lat = loaded.lattice
    assert lat.ids == [r.gem_id for r in rows]
    assert _same_bits(loaded._pks, np.array([r.pk for r in rows], dtype=np.int64))
    for k, s in enumerate(STATE):
        assert _same_bits(getattr(lat, s), np.array([r[2 + k] for r in rows], dtype=np.float64)), s
    # and the values are the imported ones to the last bit (SQLite stores -0.0 as 0: the sign of a
    # zero is the database's, and the load keeps whatever is stored, as checked above)
    src = {r["id"]: r for r in _gem_rows(n)}
    for i, gid in enumerate(lat.ids):
        for s in STATE:
            got, want = np.float64(getattr(lat, s)[i]), np.float64(src[gid][s])
            assert got == want and (want == 0 or got.tobytes() == want.tobytes()), (gid, s)


def test_load_leaves_archived_gems_out_in_seq_order(store, tmp_path):
    store.import_path("arch", write_jsonl(tmp_path / "g.jsonl", _gem_rows(12)), SYSTEM)
    with store.engine.begin() as conn:
        conn.execute(update(GEMS).where(GEMS.c.gem_id.in_(["b002", "b007"])).values(archived=True))
    lat = store.load("arch").lattice
    assert lat.ids == [f"b{i:03d}" for i in range(12) if i not in (2, 7)]
    assert len(lat.energy) == len(lat.ids) == 10


def test_select_columns_reads_a_null_float_as_nan(store, tmp_path):
    """``last_observed`` is nullable: NULL in a float column is nan, on both databases."""
    store.import_path("nulls", write_jsonl(tmp_path / "g.jsonl", _gem_rows(6)), SYSTEM)
    store.observe("nulls", ["b001", "b004"], SYSTEM)
    with store.engine.connect() as conn:
        with conn.begin():
            seq, observed, energy = bulk.select_columns(
                conn, f"SELECT g.seq, s.last_observed, s.energy FROM {GEMS.name} g JOIN {GEM_STATES.name} s "
                      "ON s.gem_pk = g.pk ORDER BY g.seq", ["i8", "f8", "f8"])
    assert seq.tolist() == [1, 2, 3, 4, 5, 6]
    assert np.isnan(observed[[0, 2, 3, 5]]).all() and np.isfinite(observed[[1, 4]]).all()
    assert _same_bits(energy, np.array([ENERGIES[i] for i in range(6)], dtype=np.float64))


def test_load_of_an_empty_lattice(store):
    store.create_lattice("empty", SYSTEM)
    loaded = store.load("empty")
    assert len(loaded.lattice) == 0 and loaded.lattice.ids == [] and loaded._pks.dtype == np.int64


@pytest.mark.postgres
def test_pg_load_vs_copy_benchmark_runs_and_reads_the_same_values(pg_url):
    """The benchmark's floor (binary COPY decoded by numpy) and the load agree (it asserts so);
    figures are positive. Timings are not asserted."""
    from benchmarks import store as bench

    res = bench.pg_load_vs_copy(300, url=pg_url)
    assert res["n"] == 300 - 300 // 50  # every 50th synthetic gem is archived
    for key in ("copy_s", "load_s", "ratio", "fetch_s", "sqlite_load_s"):
        assert res[key] > 0, key
