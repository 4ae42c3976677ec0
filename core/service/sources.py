"""Where the workbench gets its lattices from: the ``LatticeSource`` seam.

The UI never loads or writes a lattice itself; it asks a source. Two things a source
does:

* ``load(name)`` -> :class:`LatticeView` (the lattice, its gem records and a
  version that changes whenever the state changes, so caches keyed by it are never
  stale);
* ``advance(name, dt, actor)`` -> move the lattice clock "for real" (a write: the
  role check happens here, in core, with :func:`core.access.require`).

:class:`DemoFileSource` serves the shipped demo lattice from ``data/demo`` and keeps
advances in memory only (shared by every session of the process, gone on restart).
:class:`StoreSource` serves them from the database (``core.store.Store``): loads are
cached per (lattice, version), a cheap version check first, so a write by another
process is never served stale; reads write nothing (a wall-clock lattice is evolved to now
in memory at every load, its stored version unchanged). The UI picks the source in ``ui/context.py:lattice_source()``.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd

from core.access import Actor, Permission, require
from core.service.demo import DEMO_DIR, DEMO_NAME, load_demo_lattice
from core.errors import LatticeError
from core.engine.lattice import Lattice
from core.service.lattice_cache import LatticeCache
from core.store import LoadedLattice, Store


@dataclass(frozen=True)
class LatticeView:
    """A lattice as the UI sees it.

    lattice : the state (treat as read-only: copy before evolving it for a preview).
    gems : one row per gem, in lattice order, with at least ``id`` and ``title``.
    version : changes with every write (cache key together with ``name``).
    name : the lattice's name in its source.
    persistent : False when changes live only in this process's memory.
    """

    name: str
    lattice: Lattice
    gems: pd.DataFrame
    version: int
    persistent: bool


def stored_at_now(loaded: LoadedLattice, now: float | None = None) -> Lattice:
    """The state of ``loaded`` (``Store.load_stored``: as stored) as of ``now`` (UTC epoch
    seconds, default the current time), written nowhere.

    A wall-clock lattice is evolved, on a copy, by the wall time since its last write (its
    lattice time at ``now`` minus its stored ``t``: ``(now - epoch) / unit - t``), one step as
    the store's own catch-up takes; any other lattice is returned as loaded.
    """
    info = loaded.info
    if info.clock != "wall" or info.epoch is None:
        return loaded.lattice
    now = time.time() if now is None else float(now)
    elapsed = (now - info.epoch.timestamp()) / info.unit_seconds - float(loaded.lattice.t)
    return loaded.lattice.copy().evolve(elapsed) if elapsed > 0 else loaded.lattice


@runtime_checkable
class LatticeSource(Protocol):
    """The seam between the UI and lattice storage."""

    label: str  # one line for the sidebar, e.g. "demo data (in memory)"

    def names(self) -> list[str]: ...

    def load(self, name: str) -> LatticeView: ...

    def advance(self, name: str, dt: float, actor: Actor) -> LatticeView: ...


def gem_titles(gems: pd.DataFrame, ids: list) -> list[str]:
    """Display titles for ``ids`` (falls back to the id when a gem has no title)."""
    if "title" in gems.columns and "id" in gems.columns:
        # plain lists first: zipping pandas (Arrow) string columns walks them value by value
        lookup = dict(zip(gems["id"].tolist(), gems["title"].fillna("").astype(str).tolist()))
        return [lookup.get(i) or str(i) for i in ids]
    return [str(i) for i in ids]


class DemoFileSource:
    """The shipped demo lattice, loaded once; ``advance`` evolves it in memory only."""

    label = "demo data (changes stay in memory)"

    def __init__(self, demo_dir: Path = DEMO_DIR, name: str = DEMO_NAME):
        self._dir = Path(demo_dir)
        self._name = name
        self._lock = threading.Lock()
        self._loaded: LatticeView | None = None

    def names(self) -> list[str]:
        return [self._name]

    def _check(self, name: str) -> None:
        if name != self._name:
            raise LatticeError(f"unknown lattice {name!r}; available: {', '.join(self.names())}")

    def load(self, name: str) -> LatticeView:
        self._check(name)
        with self._lock:
            if self._loaded is None:
                lattice, gems = load_demo_lattice(demo_dir=self._dir)
                self._loaded = LatticeView(name, lattice, gems.reset_index(drop=True), 0, persistent=False)
            return self._loaded

    def advance(self, name: str, dt: float, actor: Actor) -> LatticeView:
        """Evolve the in-memory demo lattice by ``dt`` (needs the ``edit`` permission)."""
        require(actor, Permission.EDIT, "advance the lattice clock")
        current = self.load(name)
        with self._lock:
            evolved = current.lattice.copy().evolve(dt)  # validates dt; nothing changes on error
            self._loaded = LatticeView(name, evolved, current.gems, current.version + 1, persistent=False)
            return self._loaded


class StoreSource:
    """core.service.sources.LatticeSource over a :class:`Store` (changes are persistent).

    With ``lattices`` (the Workbench's :class:`LatticeCache`, so one process keeps one copy
    of each lattice), a new version costs what changed: the state from the lattice cache
    and the gem list only when the gems or their texts changed (a reflection changes
    neither). Without it, every new version is read whole.
    """

    def __init__(self, store: Store, lattices: LatticeCache | None = None):
        self.store = store
        self.lattices = lattices
        self._cache: dict[str, LatticeView] = {}
        self._gems: dict[str, tuple[int, pd.DataFrame]] = {}  # name -> (content key, gem list)
        self._wall: set[str] = set()  # wall-clock lattices: their view is as of its load, never reused
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        return f"database {self.store.url} (changes are saved)"

    def names(self) -> list[str]:
        return self.store.lattice_names()  # list_lattices counts every gem: 1-2 s at 1e6 gems

    def load(self, name: str) -> LatticeView:
        """The lattice now. Read only: a wall-clock lattice is evolved to now in memory (its
        stored version does not move with its clock, so its view is rebuilt at every load,
        from the lattice cache when there is one; its gem list is still reused)."""
        version = self.store.version(name)  # the stored version: reads write nothing
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and hit.version == version and name not in self._wall:
                return hit
        if self.lattices is None:
            stored = self.store.load_stored(name)
            wall = stored.info.clock == "wall"
            loaded = LatticeView(name, stored_at_now(stored), stored.texts(), stored.version, persistent=True)
        else:
            cached = self.lattices.get(name)  # a private view: a wall lattice's evolved to now
            wall = cached.info.clock == "wall"
            with self._lock:
                key, gems = self._gems.get(name, (None, None))
            if key != cached.content_key or gems is None:
                gems = self.store.gem_texts(name)  # one scan in seq order: the lattice's order...
                if gems["id"].tolist() != list(cached.lattice.ids):  # ...unless a gem came or went since
                    gems = self.store.gem_texts(name, cached.lattice.ids)
                with self._lock:
                    self._gems[name] = (cached.content_key, gems)
            loaded = LatticeView(name, cached.lattice, gems, cached.version, persistent=True)
        with self._lock:
            self._cache[name] = loaded
            (self._wall.add if wall else self._wall.discard)(name)
        return loaded

    def advance(self, name: str, dt: float, actor: Actor) -> LatticeView:
        """Evolve by ``dt`` in the database (role checked by the store), then reload."""
        self.store.advance(name, dt, actor)
        return self.load(name)
