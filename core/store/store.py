"""The Store (Gem Manager): the Crystal Lattice DB's one public class, composed of its parts.

Storage: a SQLite file ``data/lattice.db`` (WAL, foreign keys on) by default;
``LATTICE_DATABASE_URL=postgresql+psycopg://...`` for PostgreSQL. Schema by Alembic
(``python -m core db upgrade``); :meth:`Store.open` upgrades an empty/older database and
refuses a newer one.

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
from __future__ import annotations

from core.store.admin import AdminMixin
from core.store.auth_records import AuthRecordsMixin
from core.store.gems import GemsMixin
from core.store.history import HistoryMixin
from core.store.lattices import LatticesMixin
from core.store.repair import RepairMixin
from core.store.runs import RunsMixin
from core.store.snapshots import SnapshotsMixin
from core.store.state import StateMixin
from core.store.sync import SyncMixin
from core.store.transfer import TransferMixin


class Store(LatticesMixin, StateMixin, GemsMixin, TransferMixin, SnapshotsMixin, HistoryMixin, RunsMixin,
            AuthRecordsMixin, AdminMixin, RepairMixin, SyncMixin):  # AuthRecordsMixin extends rotate_keys
    """The Crystal Lattice DB. Open with :meth:`open`; every mutating call takes an Actor.

    Every part is a mixin over one transaction kernel (:class:`core.store.kernel.StoreKernel`:
    connections, transactions, the lattice lock, audit). Public API (every mutating call
    takes an :class:`core.access.Actor` and checks its role; errors are
    :class:`core.errors.LatticeError` subclasses)::

        store = Store.open(url=None)                       # close() / context manager
        # lattices (core.store.lattices)
        store.list_lattices() -> list[LatticeInfo];  store.lattice_names() -> list[str]
        store.info(name) -> LatticeInfo;  store.version(name) -> int
        #   LatticeInfo.epoch (UTC of lattice time 0), .preset, .lattice_time(when), .wall_time(t)
        store.exists(name) -> bool
        store.create_lattice(name, actor, params=None, embedder=None, clock="manual", preset=None)
        #   embedder None: hashing-v2 for the memory preset, hashing-v1 otherwise
        #   preset: seed | memory | archive (default memory for a wall clock, seed for manual)
        store.load_stored(name) -> LoadedLattice   # read only: no wall-clock catch-up written
        store.delete_lattice(name, actor);  store.update_params(name, params, actor, expected_version=None)
        store.set_clock(name, "manual" | "wall", actor)
        # state, dynamics, entanglements (core.store.state)
        store.load(name) -> LoadedLattice   # .lattice (ids = gem ids), .version, .info, .texts(), .embeddings()
        store.save(loaded, actor)           # ConflictError if the lattice changed since load
        store.advance(name, dt, actor, step=None, expected_version=None) -> LatticeInfo
        store.simulate(name, horizon, actor, dt=None, params=None, progress=None) -> (Trajectory, LatticeInfo)
        store.observe(name, gem_ids, actor, strength=None) -> dict
        store.apply_reflection(name, gem_ids_used, actor, strength=None, increment=0.1, reflection=None) -> dict
        store.entangle(name, a, b, weight, actor);  store.disentangle(name, a, b, actor);  store.entanglements(name)
        # gems (core.store.gems)
        store.add_gem(name, actor, content, id=None, title="", tags=None, source="", energy=..., ...) -> gem id
        store.get_gem(name, gem_id) -> dict   # version: content row version; state_version: the state's
        store.update_gem(name, gem_id, actor, expected_version=None, expected_state_version=None, **fields)
        store.archive_gem / restore_gem / delete_gem(name, gem_id, actor)
        store.list_gems(name, tag=, text=, coherence_min=, coherence_max=, archived=False, page=1, page_size=50)
            -> (DataFrame, total)
        store.list_tags(name) -> list[str]
        store.gem_texts(name, ids=None) -> DataFrame;  store.embeddings(name, ids=None) -> float32 (N, dim)
        store.gem_times(name, gem_ids=None) -> DataFrame   # gem_id, created_t, created_at, last_observed_t,
                                                           # observed_at, observations (column-wise)
        # files (core.store.transfer)
        store.import_path(name, path, actor, split_headings=False, skip_bad=False, edges=None, preset=None,
                          clock=None, format="auto", progress=None) -> ImportReport
            # rows may carry created_at (ISO 8601 with a zone, or lattice t): aged to the clock;
            # format "chat": a transcript of time, speaker, text (detected from the first row)
        store.export(name, out, include_archived=False) -> dict
        # log (core.store.history)
        store.transactions(name, since_id=None, kinds=None, limit=None) -> DataFrame
        # snapshots (core.store.snapshots)
        store.backup(name, out, actor) -> dict;  store.restore(path, actor, name=None, overwrite=False) -> dict
        store.verify_snapshot(path) -> (Snapshot, Lattice);  store.snapshots() -> DataFrame
        store.backup_database(out, actor) -> dict                # SQLite: an online copy of the whole file
        store.replay_to(name, snapshot_path, t) -> Lattice      # point-in-time recovery
        # runs and reflections (core.store.runs)
        store.save_run(name, run_name, params, metrics, actor, trajectory=None) -> id;  list_runs(name);  get_run(id)
        store.record_reflection(name, actor, query, answer, provider_trace=, gems_used=, latency_ms=, ...)
        store.list_reflections(name)
        # administration (core.store.admin)
        store.reembed(name, embedder, actor, progress=None) -> LatticeInfo   # all or nothing, audited
        store.audit(actor, action, target="", details=None);  store.audit_log(limit=100, action=None, actor=None)
        store.rotate_keys(actor, batch_size=500, progress=None);  store.encryption_status()
        # API auth (core.store.auth_records; the rules are core.auth's TokenService)
        store.signing_keys();  ensure_signing_key (first use);  add_signing_key(actor, ...) (rotate);  retire_signing_key
        store.add_api_key / api_keys() / api_key(id) / revoke_api_key(actor, id, now)
        store.record_token_issue / record_token_refusal / exchange_refresh_token / prune_refresh_tokens
        store.repair(name, actor, dry_run=False) -> dict   # reset damaged state (core.store.repair), audited
        # incremental reads for in-memory caches (core.store.sync)
        store.sync(name, version=None, last_tx_id=None, lattice_id=None) -> LatticeSync
        store.content_rows(name, pks=None) -> (pks, content versions, float32 embeddings);  store.contents(pks)
    """
