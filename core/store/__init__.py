"""Crystal Lattice DB: persistence of lattices, gems and their history (SQLAlchemy 2).

Storage: a SQLite file ``data/lattice.db`` (WAL, foreign keys on) by default;
``LATTICE_DATABASE_URL=postgresql+psycopg://...`` for PostgreSQL. Schema by Alembic
(``python -m core db upgrade``); :meth:`Store.open` upgrades an empty/older database and
refuses a newer one.

Public API (every mutating call takes an :class:`core.access.Actor` and checks its role;
errors are :class:`core.errors.LatticeError` subclasses)::

    store = Store.open(url=None)                       # close() / context manager
    store.list_lattices() -> list[LatticeInfo];  store.info(name) -> LatticeInfo;  store.version(name) -> int
    store.create_lattice(name, actor, params=None, embedder="hashing-v1", clock="manual")
    store.delete_lattice(name, actor);  store.update_params(name, params, actor, expected_version=None)
    store.set_clock(name, "manual" | "wall", actor)
    store.load(name) -> LoadedLattice   # .lattice (ids = gem ids), .version, .info, .texts(), .embeddings()
    store.save(loaded, actor)           # ConflictError if the lattice changed since load
    store.advance(name, dt, actor, step=None, expected_version=None) -> LatticeInfo
    store.simulate(name, horizon, actor, dt=None, params=None, progress=None) -> (Trajectory, LatticeInfo)
    store.observe(name, gem_ids, actor, strength=None) -> dict
    store.apply_reflection(name, gem_ids_used, actor, strength=None, increment=0.1, reflection=None) -> dict
    store.add_gem(name, actor, content, id=None, title="", tags=None, source="", energy=..., ...) -> gem id
    store.get_gem(name, gem_id) -> dict   # version: content row version; state_version: the state's
    store.update_gem(name, gem_id, actor, expected_version=None, expected_state_version=None, **fields)
    store.archive_gem / restore_gem / delete_gem(name, gem_id, actor)
    store.list_gems(name, tag=, text=, coherence_min=, coherence_max=, archived=False, page=1, page_size=50)
        -> (DataFrame, total)
    store.gem_texts(name, ids=None) -> DataFrame;  store.embeddings(name, ids=None) -> float32 (N, dim)
    store.entangle(name, a, b, weight, actor);  store.disentangle(name, a, b, actor);  store.entanglements(name)
    store.import_path(name, path, actor, split_headings=False, skip_bad=False, edges=None, progress=None)
        -> ImportReport
    store.export(name, out, include_archived=False) -> dict
    store.transactions(name, since_id=None, kinds=None, limit=None) -> DataFrame
    store.backup(name, out, actor) -> dict;  store.restore(path, actor, name=None) -> dict
    store.replay_to(name, snapshot_path, t) -> Lattice      # point-in-time recovery
    store.save_run(name, run_name, params, metrics, actor, trajectory=None) -> id;  list_runs(name);  get_run(id)
    store.record_reflection(name, actor, query, answer, provider_trace=, gems_used=, latency_ms=, ...)
    store.list_reflections(name)
    store.reembed(name, embedder, actor, progress=None) -> LatticeInfo   # all or nothing, audited
    store.audit(actor, action, target="", details=None);  store.audit_log(limit=100, action=None, actor=None)
    store.rotate_keys(actor, batch_size=500, progress=None);  store.encryption_status()

Security: every mutating call checks the actor's role (core.access.require); admin
actions (lattice deletion, backup, restore, key rotation, re-embedding, user changes
recorded through ``audit``) and refused admin attempts go to the ``audit`` table.
Gem content is encrypted at rest when ``LATTICE_ENCRYPTION_KEYS`` is set (see
core.store.crypto); a text filter then matches after decryption, in Python.

Reliability: every operation is one transaction (imports and restores all or nothing,
snapshots written to a temporary file and renamed), so a process killed at any point
leaves nothing partial; a database that cannot be reached raises DatabaseUnavailable
(nothing written; the store reconnects by itself when it returns).

In Streamlit, open one Store per process (``st.cache_resource``); it is thread-safe (no
state besides the engine). State changes are also logged as JSON lines on the
``core.store.txlog`` logger (INFO); configure a handler to collect them.
"""
from core.store.db import SchemaError, database_url
from core.store.errors import (ConflictError, DatabaseUnavailable, EncryptionError, ImportFailed, ImportIssue, NotFoundError,
                     SnapshotError)
from core.store.manager import ImportReport, LatticeInfo, LoadedLattice, Store
from core.store.crypto import generate_key
from core.store.history import History, lattice_history

__all__ = ["Store", "History", "lattice_history", "generate_key", "LoadedLattice", "LatticeInfo", "ImportReport", "ImportIssue", "ConflictError",
           "ImportFailed", "NotFoundError", "SnapshotError", "SchemaError", "DatabaseUnavailable", "EncryptionError",
           "database_url"]
