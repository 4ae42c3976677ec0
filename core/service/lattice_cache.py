"""The process-wide lattice cache: a Workbench's lattices (state, embeddings, texts) in memory, fed by the log.

Why: a reflection used to reload the lattice, every gem's text and every embedding (400 MB at
100k gems) per question, although only the k cited texts are needed and only the last answer's
few gems changed. Now a question costs one consistent read of what changed since the cached
version (core.store.sync), which writes nothing (a wall lattice is kept as stored, see get/read):

* nothing: the cached lattice is used;
* values of a few gems (observations, edits, entanglements): the exact stored values are applied
  to the cached state (an observation's energies too, when reinforcement by use changed them);
  embeddings of gems whose content was edited are re-read;
* an evolution, an import, an archive...: the state is read whole (one bulk read), and only
  embeddings of gems whose content row version moved are fetched;
* texts are fetched for the gems a reflection cites only (:class:`GemTexts`), and kept; display
  titles (what a search shows) for every gem on the first search, then kept;
* the hybrid retriever's index is built on first use and kept with the content key: only a
  change of the gems or their texts rebuilds it, never a question or an observation.

A reader gets a private copy of the state (:meth:`LatticeCache.get`, a reflection) or the cached
state itself (:meth:`LatticeCache.read`, a read-only search): a refresh never writes a state it
handed out (logged values are applied to a copy, which is then swapped in).

Versions live in the database, so each process (node) keeps its own cache and none serves a
stale lattice. Memory: an LRU over lattices with a byte budget (``LATTICE_CACHE_MB``, default 2048:
core.service.cache_budget); a lattice bigger than it is served without being kept.
:meth:`LatticeCache.stats` reports sizes, hits and reloads.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from core.engine.lattice import Lattice
from core.engine.params import LatticeParams
from core.errors import LatticeError
from core.knowledge.hybrid import HybridIndex
from core.service.cache_budget import BUDGET_ENV, DEFAULT_BUDGET_MB, budget_from_env  # noqa: F401  (this face)
from core.service.cached_lattice import CachedLattice, GemTexts, at_present
from core.service.hybrid_index import store_hybrid_index
from core.service.titles import pk_lookup, titles_by_pk, titles_nbytes
from core.store import Store
from core.store.records import LatticeInfo, lattice_info
from core.store.sync import LatticeSync, ValueChange

TEXTS_KEPT = 4096  # texts kept per lattice (the ones reflections cited most recently)
_ATTEMPTS = 3  # a lattice that changes between the state read and the embeddings read is read again
_GENERATIONS = itertools.count(1)  # content keys: new whenever a lattice's gems or their texts change


class _Retry(Exception):
    """The lattice changed between two reads of one refresh: read it again."""


@dataclass
class _Entry:
    """One cached lattice. Mutated only under its lock; its ``lattice`` is never written once
    handed out (a refresh swaps in a changed copy), so shared readers see one version."""

    lattice_id: int
    version: int
    last_tx_id: int
    row: dict
    lattice: Lattice
    pks: np.ndarray  # gem primary keys, lattice order
    content_versions: np.ndarray  # gems' content row versions, lattice order
    embeddings: np.ndarray  # (N, dim) float32, writable here; handed out read-only
    content_key: int = field(default_factory=lambda: next(_GENERATIONS))
    texts: "OrderedDict[int, str]" = field(default_factory=OrderedDict)  # pk -> content (LRU)
    _positions: dict | None = None  # gem id -> position (built on first use)
    hybrid: tuple[int, HybridIndex] | None = None  # (content key it was built at, the index)
    titles: dict[int, str] | None = None  # pk -> display title (None: not read yet)
    title_drops: int = 0  # bumped when titles are dropped: a read racing the drop is not kept
    title_bytes: int = 0  # titles_nbytes(titles), kept up to date (nbytes is asked on every read)

    @property
    def nbytes(self) -> int:
        n = len(self.pks)
        state = 4 * 8 * n + 16 * n + 160 * n  # state arrays, pks + versions, ids and their positions
        hybrid = self.hybrid[1].nbytes if self.hybrid is not None else 0
        return int(self.embeddings.nbytes + state + 120 * self.lattice.n_edges + hybrid
                   + sum(len(t) for t in self.texts.values()) + self.title_bytes)

    def positions(self, gem_ids: Sequence[str]) -> np.ndarray:
        if self._positions is None:
            self._positions = {g: i for i, g in enumerate(self.lattice.ids)}
        pos = self._positions
        return np.fromiter((pos.get(g, -1) for g in gem_ids), dtype=np.int64)


@dataclass
class CacheCounters:
    hits: int = 0  # nothing changed since the cached version
    applied: int = 0  # refreshed by applying logged values
    state_reloads: int = 0  # state read whole (embeddings kept where unchanged)
    builds: int = 0  # lattice read whole (cold, or nothing reusable)
    embeddings_fetched: int = 0  # embedding rows read from the store
    texts_fetched: int = 0
    titles_fetched: int = 0  # display titles read from the store (all of a lattice's on its first search)
    hybrid_builds: int = 0  # hybrid indexes built (once per content key of a hybrid lattice)
    evictions: int = 0
    oversize: int = 0  # served without being kept (bigger than the budget)


class LatticeCache:
    """Lattices of one store kept in memory for reflections; thread-safe."""

    def __init__(self, store: Store, budget_bytes: int | None = None, clock: Callable[[], float] = time.time):
        self.store, self.clock = store, clock  # clock: UTC epoch seconds, the "now" of a private view
        self.budget = budget_from_env() if budget_bytes is None else int(budget_bytes)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()  # the LRU order, the lock table and the counters
        self.counters = CacheCounters()

    # ------------------------------------------------------------ public
    def get(self, name: str) -> CachedLattice:
        """Lattice ``name`` at its current version (one read of what changed), with a private copy of the
        state (a reflection may change it in memory), a wall lattice's evolved to ``clock()`` (not written)."""
        return self._view(name, private=True)

    def read(self, name: str) -> CachedLattice:
        """Lattice ``name`` at its current version, sharing the cached state (no copy; a wall
        lattice's as stored): for readers that never change it (a search evolves a copy to now)."""
        return self._view(name, private=False)

    def _view(self, name: str, private: bool) -> CachedLattice:
        with self._name_lock(name):
            with self._lock:
                entry = self._entries.get(name)
            try:
                for attempt in range(_ATTEMPTS):
                    try:
                        entry = self._refresh(name, entry if attempt == 0 else None)
                        break
                    except _Retry:
                        if attempt == _ATTEMPTS - 1:
                            raise LatticeError(f"lattice {name!r} kept changing while it was read; "
                                               "try again") from None
            except BaseException:
                self.forget(name)  # a refresh may have stopped half-applied: never serve that entry
                raise
            # as stored (no catch-up written); a private copy of a wall lattice evolved to now in memory
            lat, row = (at_present(entry.lattice.copy(), entry.row, self.clock()) if private
                        else (entry.lattice, entry.row))
            view = CachedLattice(name, lat, _readonly(entry.embeddings), GemTexts(self, name, entry, entry.pks),
                                 entry.version, lattice_info(row, len(entry.pks)), entry.content_key)
        self._keep(name, entry)
        return view

    def holds(self, name: str) -> bool:
        """True when lattice ``name`` is kept (a :meth:`get` costs only what changed)."""
        with self._lock:
            return name in self._entries

    def forget(self, name: str | None = None) -> None:
        """Drop one lattice (or all) from the cache."""
        with self._lock:
            if name is None:
                self._entries.clear()
            else:
                self._entries.pop(name, None)

    def stats(self) -> dict:
        """Lattices kept, their bytes, the budget and the refresh counters (for Metrics)."""
        with self._lock:
            sizes = {name: e.nbytes for name, e in self._entries.items()}
            return {"lattices": len(sizes), "bytes": int(sum(sizes.values())), "budget_bytes": self.budget,
                    "per_lattice_bytes": sizes, **vars(self.counters)}

    # ----------------------------------------------------------- refresh
    def _refresh(self, name: str, entry: _Entry | None) -> _Entry:
        if entry is None:
            sync = self.store.sync(name)
        else:
            sync = self.store.sync(name, entry.version, entry.last_tx_id, entry.lattice_id)
        if entry is not None and sync.unchanged:
            self._count("hits")
            return entry
        if sync.state is None:
            assert entry is not None  # a refresh without a state read needs something cached
            self._apply(name, entry, sync)
            self._count("applied")
            return entry
        lattice, pks = sync.state
        reuse = None if sync.fresh or entry is None else entry
        if sync.content is None:  # only the state moved (an evolution): same gems, same content
            if entry is None or not np.array_equal(pks, entry.pks):
                raise _Retry
            versions, embeddings = entry.content_versions, entry.embeddings
        else:
            content_pks, versions = sync.content
            if not np.array_equal(content_pks, pks):
                raise _Retry  # a gem was added or archived between the two reads of the sync
            if reuse is not None and (reuse.row["embedder"], reuse.row["dim"]) != (sync.row["embedder"], sync.row["dim"]):
                reuse = None
            embeddings, versions = self._embeddings(name, pks, versions, reuse, int(sync.row["dim"]))
        self._count("builds" if reuse is None else "state_reloads")
        new = _Entry(int(sync.row["id"]), int(sync.row["version"]), sync.last_tx_id, sync.row, lattice, pks,
                     versions, embeddings)
        if entry is not None and np.array_equal(pks, entry.pks) and np.array_equal(versions, entry.content_versions):
            new.content_key = entry.content_key  # same gems, same texts: only their state moved
            new.hybrid = entry.hybrid  # and the same hybrid index
        if reuse is not None:  # texts of gems whose content did not move stay valid
            old = dict(zip(reuse.pks.tolist(), reuse.content_versions.tolist()))
            now = dict(zip(pks.tolist(), versions.tolist()))
            new.texts = OrderedDict((pk, t) for pk, t in reuse.texts.items() if old.get(pk) == now.get(pk))
            if reuse.titles is not None:
                new.titles = {pk: t for pk, t in reuse.titles.items() if old.get(pk) == now.get(pk)}
                new.title_bytes = titles_nbytes(new.titles)
        return new

    def _embeddings(self, name: str, pks: np.ndarray, versions: np.ndarray, reuse: _Entry | None,
                    dim: int) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings for ``pks`` (lattice order): cached rows whose content version did not
        move, the rest fetched. Returns (embeddings, the versions they are at)."""
        n = len(pks)
        out = np.empty((n, dim), dtype=np.float32)
        need = np.ones(n, dtype=bool)
        if reuse is not None and len(reuse.pks):
            at = pd.Index(reuse.pks).get_indexer(pks)
            same = (at >= 0)
            same[same] = reuse.content_versions[at[same]] == versions[same]
            out[same] = reuse.embeddings[at[same]]
            need = ~same
        wanted = pks[need]
        if wanted.size == 0:
            return out, versions
        # most gems needed (cold): one scan in seq order beats many IN (...) lists
        keys, got_versions, rows = self.store.content_rows(name, None if wanted.size > n // 2 else wanted)
        at = pd.Index(keys).get_indexer(wanted)
        if (at < 0).any():
            raise _Retry  # a gem disappeared between the state read and this one
        out[need] = rows[at]
        versions = versions.copy()
        versions[need] = got_versions[at]
        self._count("embeddings_fetched", int(wanted.size))
        return out, versions

    def _apply(self, name: str, entry: _Entry, sync: LatticeSync) -> None:
        """Apply logged values to a copy of the cached state (exact stored values, in log
        order), then swap it in: readers sharing the old state keep an unchanged version."""
        lat = entry.lattice.copy()
        for change in sync.changes:
            pos = entry.positions(change.gem_ids)
            if (pos < 0).any():
                raise _Retry  # a gem the cache does not have: read the lattice whole
            self._apply_change(lat, entry, change, pos)
        if sync.edited_content:
            pos = entry.positions(sync.edited_content)
            keys, versions, rows = self.store.content_rows(name, entry.pks[pos])
            at = pd.Index(keys).get_indexer(entry.pks[pos])
            if (at < 0).any():
                raise _Retry
            # in place: at 1e6 gems a copy of the matrix would be gigabytes
            entry.embeddings[pos] = rows[at]
            entry.content_versions[pos] = versions[at]
            for pk in entry.pks[pos].tolist():
                entry.texts.pop(int(pk), None)
            self._count("embeddings_fetched", int(pos.size))
        if sync.edited_text:
            entry.content_key = next(_GENERATIONS)
            pos = entry.positions(sync.edited_text)
            with self._lock:
                entry.title_drops += 1
                gone = [(entry.titles or {}).pop(int(pk), None) for pk in entry.pks[pos[pos >= 0]].tolist()]
                entry.title_bytes -= titles_nbytes({i: t for i, t in enumerate(gone) if t is not None})
        lat.params = LatticeParams.from_dict(sync.row["params"])
        lat.t = float(sync.row["t"])
        entry.lattice = lat
        entry.version, entry.last_tx_id, entry.row = int(sync.row["version"]), sync.last_tx_id, sync.row

    @staticmethod
    def _apply_change(lat: Lattice, entry: _Entry, change: ValueChange, pos: np.ndarray) -> None:
        if change.kind == "entangle":
            pairs = change.after.get("pairs", [])
            ends = entry.positions([p[0] for p in pairs] + [p[1] for p in pairs])
            if (ends < 0).any():
                raise _Retry
            for k, (_, _, w) in enumerate(pairs):
                i, j = int(ends[k]), int(ends[k + len(pairs)])
                if float(w) > 0:
                    lat.add_edge(i, j, float(w))
                elif lat.edge_weight(i, j) > 0:
                    lat.remove_edge(i, j)
            return
        values = {k: v for k, v in change.after.items() if k != "pairs"}
        if values:
            lat.set_states(pos, **values)

    # ------------------------------------------------------------- texts
    def _texts(self, name: str, entry: _Entry, pks: list[int]) -> list[str]:
        with self._lock:
            missing = [pk for pk in dict.fromkeys(pks) if pk not in entry.texts]
        fetched = self.store.contents(missing) if missing else {}
        with self._lock:
            for pk, text in fetched.items():
                entry.texts[pk] = text
            out = []
            for pk in pks:
                if pk not in entry.texts:
                    raise LatticeError(f"a gem of lattice {name!r} was deleted while a reflection read it; ask again")
                entry.texts.move_to_end(pk)
                out.append(entry.texts[pk])
            while len(entry.texts) > TEXTS_KEPT:
                entry.texts.popitem(last=False)
            self.counters.texts_fetched += len(fetched)
        return out

    def _titles(self, name: str, entry: _Entry, pks: list[int], positions: list[int]) -> list[str]:
        """Display titles of the gems ``pks`` (at lattice ``positions``): kept ones, else read.
        The first call on an entry without titles reads every gem's (one scan, under the
        lattice's lock: one read for concurrent askers); later misses (gems added since) read
        only those gems. A read racing a title edit is returned but not kept."""
        with self._lock:
            have = entry.titles
            missing = list(pks) if have is None else [pk for pk in dict.fromkeys(pks) if pk not in have]
            drops = entry.title_drops
        if not missing:
            return [have[pk] for pk in pks]  # type: ignore[index]
        fetched: dict[int, str] = {}
        if have is None:
            with self._name_lock(name):
                with self._lock:
                    have = entry.titles
                if have is None:  # nobody read them meanwhile: one scan of the lattice's texts
                    fetched = titles_by_pk(self.store.gem_texts(name), pk_lookup(entry.lattice.ids, entry.pks))
                    missing = [pk for pk in dict.fromkeys(pks) if pk not in fetched]
                else:
                    missing = [pk for pk in dict.fromkeys(pks) if pk not in have]
        if missing:  # gems the scan did not see (added since), or gems new to a kept table
            wanted = [positions[pks.index(pk)] for pk in missing]
            lookup = pk_lookup(entry.lattice.ids, entry.pks, wanted)
            fetched.update(titles_by_pk(self.store.gem_texts(name, list(lookup)), lookup))
        with self._lock:
            if entry.title_drops == drops:
                if entry.titles is None:
                    entry.titles = {}
                entry.title_bytes += titles_nbytes({pk: t for pk, t in fetched.items() if pk not in entry.titles})
                entry.titles.update(fetched)
            self.counters.titles_fetched += len(fetched)
            table = entry.titles if entry.title_drops == drops else {}
            return [fetched[pk] if pk in fetched else table.get(pk, "") for pk in pks]

    def _hybrid(self, name: str, entry: _Entry, content_key: int) -> HybridIndex:
        """The hybrid index of ``entry``'s gems at ``content_key``: kept, else built from the store
        under the lattice's lock (one build for concurrent askers), kept on the entries of that content."""
        if entry.hybrid is not None and entry.hybrid[0] == content_key:
            return entry.hybrid[1]
        with self._name_lock(name):
            with self._lock:
                current = self._entries.get(name)
            for held in (entry, current):
                if held is not None and held.hybrid is not None and held.hybrid[0] == content_key:
                    entry.hybrid = held.hybrid
                    return held.hybrid[1]
            index = store_hybrid_index(self.store, name, entry.lattice.ids)
            self._count("hybrid_builds")
            for held in (entry, current):
                if held is not None and held.content_key == content_key:
                    held.hybrid = (content_key, index)
        if current is not None and current.hybrid is not None and current.hybrid[1] is index:
            self._keep(name, current)  # its size grew: the budget decides whether it stays
        return index

    # ------------------------------------------------------------ budget
    def _keep(self, name: str, entry: _Entry) -> None:
        size = entry.nbytes
        with self._lock:
            if size > self.budget:
                self._entries.pop(name, None)
                self.counters.oversize += 1
                return
            self._entries[name] = entry
            self._entries.move_to_end(name)
            total = sum(e.nbytes for e in self._entries.values())
            while total > self.budget and len(self._entries) > 1:
                _, gone = self._entries.popitem(last=False)
                total -= gone.nbytes
                self.counters.evictions += 1

    def _name_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(name, threading.Lock())

    def _count(self, counter: str, n: int = 1) -> None:
        with self._lock:
            setattr(self.counters, counter, getattr(self.counters, counter) + n)


def _readonly(arr: np.ndarray) -> np.ndarray:
    view = arr.view()
    view.flags.writeable = False
    return view
