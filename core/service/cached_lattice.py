"""What a reader of the lattice cache gets (core.service.lattice_cache): one lattice at one
version, with its embeddings, and its gems' texts and titles read from the store on first use.

Two kinds of view of the same cached entry:

* a *private* view (``LatticeCache.get``): its own copy of the state, for a reflection, whose
  engine may change the state in memory;
* a *shared* view (``LatticeCache.read``): the cached state itself, for a read-only ranking
  (``core.service.search``): no copy per query (at 100k gems the copy cost 1-2 ms of a search).
  The cache never writes a state it has handed out (a refresh applies logged values to a copy
  and swaps it in), so the view stays the version it was read at; a reader that needs the
  state at a later time evolves a copy (``lattice.copy().evolve(dt)``), never this one.

A wall-clock lattice is kept as stored (the store's ``sync`` writes no catch-up): a private view
is evolved to now in memory (:func:`at_present`, closed form, one step as the store's own
catch-up takes); a shared view is the stored state, and its reader evolves a copy to the time it
ranks at (core.service.search). Nothing a reader does moves the stored clock or version.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from core.engine.lattice import Lattice
from core.engine.params import LatticeParams
from core.knowledge.hybrid import HybridIndex
from core.store.records import LatticeInfo


def at_present(lattice: Lattice, row: dict[str, Any], now: float) -> tuple[Lattice, dict[str, Any]]:
    """``lattice`` (a stored state, its ``lattices`` ``row``) as of ``now`` (UTC epoch seconds).

    A wall-clock lattice is evolved in place by the wall time since its anchor (time units of
    its parameters, as the store's catch-up measures it), and the row returned carries the new
    ``t`` and ``wall_anchor`` (the derived epoch, ``wall_anchor - t * unit``, stays the same).
    A manual lattice, or a clock not behind ``now``, is returned unchanged. Pass a copy: the
    state is changed in place. Writes nothing.
    """
    if row.get("clock") != "wall" or row.get("wall_anchor") is None:
        return lattice, row
    horizon = (float(now) - float(row["wall_anchor"])) / LatticeParams.from_dict(row["params"]).time_unit_seconds
    if not horizon > 0:
        return lattice, row
    lattice.evolve(horizon)
    return lattice, {**row, "t": float(lattice.t), "wall_anchor": float(now)}


@dataclass(frozen=True)
class CachedLattice:
    """A lattice as one reader sees it: the state (a private copy, or the shared read-only one:
    see the module docstring), texts and titles fetched on first use, and the shared read-only
    embeddings (a content edit rewrites the edited gems' rows in place: a copy of the matrix
    would cost gigabytes at 1e6 gems, and a reader racing the edit may then rank with the new
    text's embedding)."""

    name: str
    lattice: Lattice  # private: the engine may change it; shared: never change it
    embeddings: np.ndarray  # (N, dim) float32, read-only
    texts: "GemTexts"
    version: int
    info: LatticeInfo
    # changes whenever the gems or their title, content, tags or source change (not with
    # their state): what a cache of gem lists is keyed by
    content_key: int

    def hybrid_index(self) -> HybridIndex:  # the hybrid retriever's index (built once per content key)
        return self.texts.hybrid_index()

    def titles(self, indices: Iterable[int]) -> list[str]:
        """Display titles of the gems at lattice positions ``indices`` (see :meth:`GemTexts.titles`)."""
        return self.texts.titles(indices)


class GemTexts(Sequence):
    """The gems' texts in lattice order, read from the store on first use and kept.

    A reflection reads the k texts it cites; :meth:`prefetch` reads them in one query.
    """

    def __init__(self, cache: Any, name: str, entry: Any, pks: np.ndarray):
        # cache: the LatticeCache, entry: its entry for the lattice (not imported: the cache imports this)
        self._cache, self._name, self._entry, self._pks = cache, name, entry, pks
        self._content_key = entry.content_key  # the gems' content as this view saw it

    def __len__(self) -> int:
        return len(self._pks)

    def __getitem__(self, index: Any):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = int(index)
        if not -len(self) <= i < len(self):
            raise IndexError(f"gem index {index} out of range for {len(self)} gems")
        return self.prefetch([i])[0]

    def prefetch(self, indices: Iterable[int]) -> list[str]:
        """The texts at ``indices`` (lattice positions), fetching the missing ones at once."""
        pks = [int(self._pks[int(i)]) for i in indices]
        return self._cache._texts(self._name, self._entry, pks)

    def titles(self, indices: Iterable[int]) -> list[str]:
        """Display titles (core.service.titles.display_title) at ``indices`` (lattice positions):
        kept by the cache for every gem after the first call (one scan of the lattice's texts),
        so a search reads no text from the database."""
        positions = [int(i) for i in indices]
        return self._cache._titles(self._name, self._entry, [int(self._pks[i]) for i in positions], positions)

    def hybrid_index(self) -> HybridIndex:  # what a reflection engine asks for (hybrid lattices)
        return self._cache._hybrid(self._name, self._entry, self._content_key)
