"""The records the store returns: a lattice's description, a loaded lattice, an import's report."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from core.engine.durations import TIME_UNITS
from core.engine.lattice import Lattice
from core.engine.params import LatticeParams
from core.errors import ValidationError
from core.store.errors import ImportIssue


def epoch_seconds(row: Any) -> float:
    """The UTC epoch second of lattice time 0 of a ``lattices`` row (a mapping).

    Wall lattices derive it from their clock, ``wall_anchor - t * unit_seconds`` (the clock's
    catch-up moves ``wall_anchor`` and ``t`` together, so nothing else has to follow it);
    manual lattices store it (``epoch``, migration 0005; their ``created_at`` if missing).
    """
    unit = TIME_UNITS.get(row.get("time_unit"), 3600.0)
    if row.get("clock") == "wall" and row.get("wall_anchor") is not None:
        return float(row["wall_anchor"]) - float(row["t"]) * unit
    if row.get("epoch") is not None:
        return float(row["epoch"])
    created = row.get("created_at")
    return as_utc(created).timestamp() if created is not None else datetime.now(timezone.utc).timestamp()


def as_utc(when: datetime | str) -> datetime:
    """A stored instant as an aware UTC datetime (SQLite hands back naive values: they are UTC)."""
    if isinstance(when, str):
        when = datetime.fromisoformat(when.strip().replace("Z", "+00:00"))
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


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
    epoch: datetime | None = None  # UTC instant of lattice time 0 (None: not known, as for a bare row)

    @property
    def preset(self) -> str:
        """The preset the lattice's parameters started from (seed, memory, archive)."""
        return self.params.preset

    @property
    def unit_seconds(self) -> float:
        """Seconds in one lattice time unit."""
        return TIME_UNITS[self.time_unit]

    def _epoch(self) -> datetime:
        if self.epoch is None:
            raise ValidationError("epoch", f"lattice {self.name!r} has no recorded epoch; run `python -m core db "
                                           "upgrade`")
        return self.epoch

    def lattice_time(self, when: datetime) -> float:
        """The lattice time (time units) of the instant ``when`` (aware; naive is refused):
        ``(when - epoch) / unit_seconds``."""
        if not isinstance(when, datetime) or when.tzinfo is None:
            raise ValidationError("when", f"got {when!r}; give an aware datetime (with a time zone, e.g. UTC)")
        return (when - self._epoch()).total_seconds() / self.unit_seconds

    def wall_time(self, t: float) -> datetime:
        """The UTC instant of lattice time ``t`` (time units): ``epoch + t * unit_seconds``."""
        t = float(t)
        if not math.isfinite(t):
            raise ValidationError("t", f"got {t!r}; a lattice time must be finite")
        try:
            return datetime.fromtimestamp(self._epoch().timestamp() + t * self.unit_seconds, tz=timezone.utc)
        except (OverflowError, ValueError, OSError):
            raise ValidationError("t", f"t={t:.6g} {self.time_unit}s from the epoch is beyond the calendar") from None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params.to_dict(), "embedder": self.embedder, "dim": self.dim,
                "time_unit": self.time_unit, "clock": self.clock, "t": self.t, "version": self.version,
                "gems": self.gems, "archived": self.archived, "created_at": str(self.created_at),
                "updated_at": str(self.updated_at), "preset": self.preset,
                "epoch": self.epoch.isoformat() if self.epoch is not None else None}


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
    epoch = None
    if "epoch" in r or "wall_anchor" in r:  # a row of every column (a narrow one carries neither)
        try:
            epoch = datetime.fromtimestamp(epoch_seconds(r), tz=timezone.utc)
        except (OverflowError, ValueError, OSError):
            epoch = None  # a wall lattice advanced far beyond the calendar: no instant for its time 0
    return LatticeInfo(r["name"], LatticeParams.from_dict(r["params"]), r["embedder"], r["dim"], r["time_unit"],
                       r["clock"], float(r["t"]), int(r["version"]), r["created_at"], r["updated_at"], gems, archived,
                       epoch)
