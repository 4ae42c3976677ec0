"""What changed in a lattice since a version a reader holds: the feed of the lattice cache.

A reader that keeps a lattice in memory (core.service.lattice_cache) asks :meth:`SyncMixin.sync`
with the version and last log id it holds. One read transaction answers, consistently:

* the lattice row now (version, clock, parameters);
* if the versions in between are all covered by log entries that only set values of a few
  gems (``observe``, ``edit``, ``entangle``, ``params``, ``clock``), those entries, so the
  reader applies exact stored values to its copy instead of reading N state rows;
* otherwise (an evolution, an import, an archive, a restore, a gap in the log, too many
  entries) the whole state, read in the same transaction;
* when the set or content of the gems may have changed, the content row versions of the
  active gems (seq order), so the reader fetches embeddings for changed gems only
  (:meth:`SyncMixin.content_rows`).

Versions live in the database, so several processes holding their own caches stay correct.
Nothing is written, not even a wall-clock lattice's catch-up (see :meth:`SyncMixin.sync`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from sqlalchemy import func, select

from core.engine.lattice import Lattice
from core.store import txlog
from core.store.kernel import CHUNK, StoreKernel, chunks
from core.store.tables import GEMS, STATE, TRANSACTIONS

# Log entries a cached state can apply as they are: exact values of the gems they name.
VALUE_KINDS = frozenset({"observe", "edit", "entangle", "params", "clock"})
# Entries that change which gems are active: state read whole, unchanged embeddings reused.
# Any other kind (reembed, restore, one this code does not know) may change every embedding.
GEM_SET_KINDS = frozenset({"import", "create", "archive", "unarchive", "delete", "create_lattice"})
CONTENT_FIELDS = frozenset({"content"})  # edited fields that change a gem's embedding
TEXT_FIELDS = frozenset({"title", "content", "tags", "source"})  # edited fields a gem list shows
MAX_ENTRIES = 256  # more entries behind than this: reading the state once is cheaper
MAX_GEMS = 4096  # an entry touching more gems than this (a save of the whole lattice): reload


@dataclass(frozen=True)
class ValueChange:
    """One log entry to apply to a cached state: the gems it names and their values after."""

    kind: str  # observe | edit | entangle | params | clock
    gem_ids: list[str]
    # the state columns the entry logged, as float64 arrays (an observe's ``energy`` too when
    # reinforcement changed it); ``pairs`` for entangle
    after: dict[str, Any]


@dataclass(frozen=True)
class LatticeSync:
    """The answer of :meth:`SyncMixin.sync` (one consistent read)."""

    row: dict[str, Any]  # the lattice row now
    last_tx_id: int  # newest log id of this lattice (0: none)
    changes: tuple[ValueChange, ...] = ()  # to apply, oldest first (when ``state`` is None)
    state: tuple[Lattice, np.ndarray] | None = None  # the whole state and gem pks, when reloaded
    content: tuple[np.ndarray, np.ndarray] | None = None  # pks and content versions, seq order
    edited_content: tuple[str, ...] = ()  # gems whose embedding changed (when ``content`` is None)
    edited_text: tuple[str, ...] = ()  # gems whose title, content, tags or source changed (ditto)
    reloaded_because: str = ""  # why the state was read whole (empty when it was not)
    # no cached embedding may be reused (nothing cached, a gap in the log, a re-embedding:
    # it rewrites every embedding without moving the gems' content versions)
    fresh: bool = False

    @property
    def unchanged(self) -> bool:
        return self.state is None and not self.changes and self.content is None and not self.edited_text


@dataclass
class _Plan:
    changes: list[ValueChange] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    edited_text: list[str] = field(default_factory=list)
    reload: str = ""
    content: bool = False
    fresh: bool = False


class SyncMixin(StoreKernel):
    """Incremental reads for in-memory caches of a lattice."""

    def sync(self, name: str, version: int | None = None, last_tx_id: int | None = None,
             lattice_id: int | None = None) -> LatticeSync:
        """What changed in lattice ``name`` since ``version`` (log id ``last_tx_id``).

        With ``version=None`` (nothing cached) the whole state and the content versions
        are returned. Reads only: a wall-clock lattice comes as stored, its clock (``t``,
        ``wall_anchor`` of the row) where the last write left it; the reader evolves its
        copy to now (core.service.cached_lattice.at_present). Catching up here was a write
        of every gem's state and a version bump per read (120-160 ms a search at 20k gems,
        a stale ``expected_version`` for every writer, a write from a viewer or a replica);
        writes still catch up inside their own transaction (core.store.state).
        """
        with self._read() as conn:
            return self._sync(conn, self._lattice_row(conn, name), version, last_tx_id, lattice_id)

    def _sync(self, conn: Any, row: dict[str, Any], version: int | None, last_tx_id: int | None,
              lattice_id: int | None) -> LatticeSync:
        last = conn.execute(select(func.max(TRANSACTIONS.c.id))
                            .where(TRANSACTIONS.c.lattice_id == row["id"])).scalar() or 0
        if version is not None and row["id"] == lattice_id and int(row["version"]) == int(version):
            return LatticeSync(row, int(last))
        plan = self._plan(conn, row, version, last_tx_id, lattice_id)
        if not plan.reload:
            return LatticeSync(row, int(last), tuple(plan.changes), edited_content=tuple(plan.edited),
                               edited_text=tuple(plan.edited_text))
        state = self._load_state(conn, row)
        content = self._content_versions(conn, row["id"]) if plan.content else None
        return LatticeSync(row, int(last), state=state, content=content, reloaded_because=plan.reload,
                           fresh=plan.fresh)

    def _plan(self, conn: Any, row: dict[str, Any], version: int | None, last_tx_id: int | None,
              lattice_id: int | None) -> _Plan:
        if version is None or last_tx_id is None:
            return _Plan(reload="nothing cached", content=True, fresh=True)
        if row["id"] != lattice_id:
            return _Plan(reload="the lattice was re-created", content=True, fresh=True)
        behind = int(row["version"]) - int(version)
        if not 0 < behind <= MAX_ENTRIES:
            return _Plan(reload=f"{behind} versions behind", content=True, fresh=True)
        entries = conn.execute(
            select(TRANSACTIONS.c.kind, TRANSACTIONS.c.gem_ids, TRANSACTIONS.c.after, TRANSACTIONS.c.lattice_version)
            .where(TRANSACTIONS.c.lattice_id == row["id"], TRANSACTIONS.c.id > int(last_tx_id))
            .order_by(TRANSACTIONS.c.id).limit(MAX_ENTRIES + 1)).all()
        covered = {int(e.lattice_version) for e in entries}
        if covered != set(range(int(version) + 1, int(row["version"]) + 1)):
            return _Plan(reload="the log does not cover every version since the cached one", content=True,
                         fresh=True)
        plan = _Plan()
        for kind, gem_ids, after, _ in entries:
            gem_ids = list(gem_ids or [])
            if kind == "evolve":
                plan.reload = plan.reload or "the lattice evolved"
                continue
            if kind not in VALUE_KINDS:
                return _Plan(reload=f"a {kind} changed the gems", content=True, fresh=kind not in GEM_SET_KINDS)
            if len(gem_ids) > MAX_GEMS:
                plan.reload = plan.reload or f"an {kind} of {len(gem_ids)} gems"
                continue
            values = txlog.unpack(after) or {}
            if kind == "edit" and CONTENT_FIELDS & set(values):
                plan.edited += gem_ids
            if kind == "edit" and TEXT_FIELDS & set(values):
                plan.edited_text += gem_ids
            plan.changes.append(ValueChange(kind, gem_ids, {
                k: (np.asarray(v, dtype=np.float64) if k in STATE else v) for k, v in values.items()
                if k in STATE or k == "pairs"}))
        return plan

    @staticmethod
    def _content_versions(conn: Any, lattice_id: int) -> tuple[np.ndarray, np.ndarray]:
        rows = conn.execute(select(GEMS.c.pk, GEMS.c.version)
                            .where(GEMS.c.lattice_id == lattice_id, GEMS.c.archived.is_(False))
                            .order_by(GEMS.c.seq)).all()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        arr = np.array(rows, dtype=np.int64)
        return arr[:, 0].copy(), arr[:, 1].copy()

    def content_rows(self, name: str, pks: Sequence[int] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """pks, content versions and (n, dim) float32 embeddings of gems ``pks`` (any order
        back; missing ones left out), or of every active gem in seq order when None.

        Rows are decoded into one preallocated matrix as they stream in: no list of blobs
        plus a joined copy (at 1e6 gems x 1024 dimensions that would be 8 GB, not 4).
        """
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            dim = int(row["dim"])
            q = select(GEMS.c.pk, GEMS.c.version, GEMS.c.embedding).where(GEMS.c.lattice_id == row["id"])
            if pks is None:
                n = conn.execute(select(func.count()).select_from(GEMS).where(
                    GEMS.c.lattice_id == row["id"], GEMS.c.archived.is_(False))).scalar() or 0
                batches = [conn.execute(q.where(GEMS.c.archived.is_(False)).order_by(GEMS.c.seq)
                                        .execution_options(yield_per=CHUNK))]
            else:
                wanted = [int(p) for p in pks]
                n = len(wanted)
                batches = (conn.execute(q.where(GEMS.c.pk.in_(part))) for part in chunks(wanted))
            keys, versions = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
            out = np.empty((n, dim), dtype=np.float32)
            k = 0
            for result in batches:
                for pk, ver, blob in result:
                    if k == n:  # a gem added between the count and the read (not in a snapshot)
                        break
                    keys[k], versions[k] = pk, ver
                    out[k] = np.frombuffer(blob, dtype="<f4", count=dim)
                    k += 1
        return keys[:k], versions[:k], out[:k]

    def contents(self, pks: Sequence[int]) -> dict[int, str]:
        """Decrypted content of the gems with primary keys ``pks`` (missing ones left out)."""
        out: dict[int, str] = {}
        with self._read() as conn:
            for part in chunks([int(p) for p in pks]):
                for pk, content in conn.execute(select(GEMS.c.pk, GEMS.c.content).where(GEMS.c.pk.in_(part))):
                    out[int(pk)] = self.cipher.decrypt(content) if content is not None else ""
        return out
