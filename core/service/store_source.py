"""``StoreSource``: the store behind the UI's :class:`core.service.sources.LatticeSource` seam.

``ui/context.py`` can serve lattices from the database with
``StoreSource(Store.open())`` (one per process, ``st.cache_resource``). Loads are
cached per (lattice, version): a cheap version check, then the arrays only when the
lattice changed, so a write by another process is never served stale.
"""
from __future__ import annotations

import threading

from core.access import Actor
from core.service.sources import LoadedLattice
from core.store.manager import Store


class StoreSource:
    """core.service.sources.LatticeSource over a :class:`Store` (changes are persistent)."""

    def __init__(self, store: Store):
        self.store = store
        self._cache: dict[str, LoadedLattice] = {}
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        return f"database {self.store.url} (changes are saved)"

    def names(self) -> list[str]:
        return [info.name for info in self.store.list_lattices()]

    def load(self, name: str) -> LoadedLattice:
        version = self.store.version(name)  # evolves a wall-clock lattice to now first
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and hit.version == version:
                return hit
        stored = self.store.load(name)
        loaded = LoadedLattice(name, stored.lattice, stored.texts(), stored.version, persistent=True)
        with self._lock:
            self._cache[name] = loaded
        return loaded

    def advance(self, name: str, dt: float, actor: Actor) -> LoadedLattice:
        """Evolve by ``dt`` in the database (role checked by the store), then reload."""
        self.store.advance(name, dt, actor)
        return self.load(name)
