"""The records the store returns: a lattice's description, a loaded lattice, an import's report."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from core.engine.lattice import Lattice
from core.engine.params import LatticeParams
from core.store.errors import ImportIssue


@dataclass(frozen=True)
class LatticeInfo:
    """What a lattice records about itself (not its gems)."""

    name: str
    params: LatticeParams
    embedder: str
    dim: int
    time_unit: str
    clock: str
    t: float
    version: int
    created_at: datetime
    updated_at: datetime
    gems: int = 0  # active (not archived) gems
    archived: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params.to_dict(), "embedder": self.embedder, "dim": self.dim,
                "time_unit": self.time_unit, "clock": self.clock, "t": self.t, "version": self.version,
                "gems": self.gems, "archived": self.archived, "created_at": str(self.created_at),
                "updated_at": str(self.updated_at)}


@dataclass
class LoadedLattice:
    """A lattice's active gems as a :class:`Lattice` (``ids`` = gem ids, seq order) and its version.

    Modify ``lattice`` in memory and pass this object to :meth:`Store.save` to persist
    it; the save fails with ConflictError if the lattice changed since this load.
    """

    name: str
    lattice: Lattice
    version: int
    info: LatticeInfo
    store: "Store" = field(repr=False)
    # the state as stored at this version, and the gems' row keys: save() diffs against
    # them instead of reading 100k rows again (the version check proves they are current)
    _stored: Lattice | None = field(default=None, repr=False, compare=False)
    _pks: np.ndarray | None = field(default=None, repr=False, compare=False)

    def texts(self) -> pd.DataFrame:
        """id, title, content, tags, source of the loaded gems, in lattice order."""
        return self.store.gem_texts(self.name, self.lattice.ids)

    def embeddings(self) -> np.ndarray:
        """(N, dim) float32 embeddings in lattice order."""
        return self.store.embeddings(self.name, self.lattice.ids)


@dataclass
class ImportReport:
    lattice: str
    source: str
    imported: int
    gem_ids: list[str]
    edges: int
    skipped: list[ImportIssue]
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {"lattice": self.lattice, "source": self.source, "imported": self.imported, "edges": self.edges,
                "skipped": [vars(i) for i in self.skipped], "version": self.version}


def lattice_info(row: Any, gems: int = 0, archived: int = 0) -> LatticeInfo:
    """The :class:`LatticeInfo` of a ``lattices`` row (a mapping or a Row) and its gem counts."""
    r = row._mapping if hasattr(row, "_mapping") else row
    return LatticeInfo(r["name"], LatticeParams.from_dict(r["params"]), r["embedder"], r["dim"], r["time_unit"],
                       r["clock"], float(r["t"]), int(r["version"]), r["created_at"], r["updated_at"], gems, archived)
