"""Transaction log: append entries in the writer's own DB transaction, and replay them.

Entry kinds and their payloads (``after``/``before`` are JSON; state values as columns):

- ``evolve``: ``after = {t0, horizon, step, params}``; deterministic, so replay recomputes
  it with the same time grid (one entry for N gems, not N rows).
- ``observe``, ``edit``: gem ids and the changed values before/after.
- ``create``/``import``/``unarchive``: the new gems' ``seq`` and state (after).
- ``archive``/``delete``: the gem state before; ``entangle``: pairs with weights
  before/after (0 = no edge); ``params``/``clock``: before/after; ``restore``: snapshot;
  ``reembed``: embedder and dimension before/after (no state change).
- Numeric arrays passed as numpy arrays of at least :data:`PACK_MIN` values are stored
  packed, ``{"f8": base64}`` (``"i8"`` for integers), little-endian: a save of 100k
  gems logs 800k exact floats as 8.5 MB of base64 instead of 20 MB of JSON numbers (the
  JSON made the log entry the slowest part of the save). :func:`unpack` restores lists;
  ``Store.transactions`` and replay unpack, so readers always see plain lists.
- With encryption at rest on, the content values an ``edit``/``delete`` keeps are the
  encrypted tokens (rotated with the rows); the JSON log lines never carry content.

Every entry is also written as one structured JSON line to the ``core.store.txlog``
logger (per-gem lines with gem id, coherence delta and energy for observations and
edits, as the seed's QuantumLogger), so logs can be shipped without DB access.
"""
from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from sqlalchemy import Connection, insert

from core.access import Actor
from core.errors import LatticeError
from core.engine.lattice import Lattice
from core.engine.params import LatticeParams
from core.engine.trajectory import time_grid
from core.store.snapshot_file import Snapshot
from core.store.models import utcnow
from core.store.tables import STATE, TRANSACTIONS

logger = logging.getLogger("core.store.txlog")
_MAX_GEM_LINES = 50  # per entry: keeps the log compact for big observations/imports
PACK_MIN = 256
_PACKED = {"f8": "<f8", "i8": "<i8"}


def pack(payload: dict | None) -> dict | None:
    """The payload as stored: numpy arrays packed (long ones) or listed (short ones), one
    nested level deep (the ``gems`` columns of an import)."""
    if payload is None:
        return None
    out: dict = {}
    for k, v in payload.items():
        if isinstance(v, dict):
            out[k] = pack(v)
        elif isinstance(v, np.ndarray):
            if v.size < PACK_MIN:
                out[k] = v.tolist()
            else:
                code = "i8" if v.dtype.kind in "iu" else "f8"
                out[k] = {code: base64.b64encode(np.ascontiguousarray(v, dtype=_PACKED[code]).tobytes()).decode()}
        else:
            out[k] = v
    return out


def unpack(payload: dict | None) -> dict | None:
    """A stored payload with its packed arrays as plain lists again (exact values)."""
    if not isinstance(payload, dict):
        return payload
    out: dict = {}
    for k, v in payload.items():
        if isinstance(v, dict) and len(v) == 1 and next(iter(v)) in _PACKED:
            code, data = next(iter(v.items()))
            out[k] = np.frombuffer(base64.b64decode(data), dtype=_PACKED[code]).tolist()
        elif isinstance(v, dict):
            out[k] = unpack(v)
        else:
            out[k] = v
    return out


def append(conn: Connection, lattice_id: int, lattice_name: str, kind: str, actor: Actor, t: float,
           version: int, gem_ids: Sequence[str] = (), before: dict | None = None,
           after: dict | None = None, energy: Sequence[float] | None = None) -> None:
    """Insert one log entry (inside the caller's transaction) and emit its JSON log lines.

    ``energy``: the gems' energies, for the log lines only (not stored when unchanged).
    """
    now = utcnow()
    conn.execute(insert(TRANSACTIONS).values(
        lattice_id=lattice_id, kind=kind, gem_ids=list(gem_ids), before=pack(before), after=pack(after),
        actor=actor.name, lattice_t=float(t), lattice_version=int(version), wall_time=now))
    if not logger.isEnabledFor(logging.INFO):
        return
    base = {"event": kind, "lattice": lattice_name, "actor": actor.name, "t": t, "version": version,
            "timestamp": now.isoformat()}
    b, a = before or {}, after or {}
    per_gem = "coherence" in b and "coherence" in a and isinstance(a["coherence"], (list, np.ndarray))
    if per_gem and gem_ids:
        for k, gid in enumerate(gem_ids[:_MAX_GEM_LINES]):
            line = {**base, "gem_id": gid, "coherence_delta": float(a["coherence"][k] - b["coherence"][k])}
            if "energy" in a:
                line["energy"] = float(a["energy"][k])
            elif energy is not None:
                line["energy"] = float(energy[k])
            logger.info(json.dumps(line))
        if len(gem_ids) > _MAX_GEM_LINES:
            logger.info(json.dumps({**base, "more_gems": len(gem_ids) - _MAX_GEM_LINES}))
    else:
        extra = {k: v for k, v in a.items() if k in ("t0", "horizon", "step", "mean_coherence_delta")}
        logger.info(json.dumps({**base, "gems": len(gem_ids), **extra}))


# ------------------------------------------------------------------ replay
@dataclass
class ReplayState:
    """A lattice rebuilt from a snapshot and log entries (gem id -> seq, state, active)."""

    params: LatticeParams
    t: float
    seq: dict[str, int] = field(default_factory=dict)
    state: dict[str, list[float]] = field(default_factory=dict)  # E, phi, c, u
    active: dict[str, bool] = field(default_factory=dict)
    edges: dict[tuple[str, str], float] = field(default_factory=dict)

    def lattice(self) -> Lattice:
        """The active gems as a Lattice in seq order, with their edges (like Store.load)."""
        ids = sorted((g for g, on in self.active.items() if on), key=self.seq.__getitem__)
        arr = np.array([self.state[g] for g in ids], dtype=np.float64).reshape(len(ids), 4)
        lat = Lattice(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], params=self.params, ids=ids, t=self.t)
        pos = {g: i for i, g in enumerate(ids)}
        pairs = [(pos[a], pos[b], w) for (a, b), w in self.edges.items() if a in pos and b in pos]
        if pairs:
            i, j, w = zip(*pairs)
            lat.set_edges(i, j, w)
        return lat

    def _add(self, cols: dict[str, list]) -> None:
        for k, gid in enumerate(cols["id"]):
            self.seq[gid] = cols["seq"][k]
            self.state[gid] = [float(cols[s][k]) for s in STATE]
            self.active[gid] = True

    def _set(self, gem_ids: Sequence[str], values: dict[str, list]) -> None:
        for s_idx, name in enumerate(STATE):
            if name in values:
                for k, gid in enumerate(gem_ids):
                    self.state[gid][s_idx] = float(values[name][k])

    def apply(self, kind: str, gem_ids: list[str], before: dict | None, after: dict | None, t: float,
              until: float | None = None) -> None:
        """Apply one log entry. ``until``: for an evolution, stop after its last step at or
        before that lattice time (the state the lattice went through at that time)."""
        a = unpack(after) or {}
        if kind == "evolve":
            lat = self.lattice()
            lat.params = LatticeParams.from_dict(a["params"])
            times = time_grid(float(a["t0"]), float(a["horizon"]), float(a["step"]))
            if until is not None:
                times = times[times <= until]
            for k in range(1, len(times)):
                lat.evolve(times[k] - times[k - 1])  # same steps as trajectory.simulate
            for i, gid in enumerate(lat.ids):
                self.state[gid] = [float(lat.energy[i]), float(lat.phase[i]), float(lat.coherence[i]),
                                   float(lat.uncertainty[i])]
            self.t = lat.t
            return
        if kind in ("import", "create"):
            self._add(a["gems"])
            for src, dst, w in a.get("edges", []):
                self.edges[tuple(sorted((src, dst)))] = float(w)
        elif kind in ("observe", "edit"):
            self._set(gem_ids, a)
        elif kind == "archive":
            for gid in gem_ids:
                self.active[gid] = False
        elif kind == "unarchive":
            self._set(gem_ids, a)
            for gid in gem_ids:
                self.active[gid] = True
        elif kind == "delete":
            for gid in gem_ids:
                for d in (self.seq, self.state, self.active):
                    d.pop(gid, None)
                self.edges = {p: w for p, w in self.edges.items() if gid not in p}
        elif kind == "entangle":
            for src, dst, w in a.get("pairs", []):
                key = tuple(sorted((src, dst)))
                if w > 0:
                    self.edges[key] = float(w)
                else:
                    self.edges.pop(key, None)
        elif kind == "params":
            self.params = LatticeParams.from_dict(a["params"])
        elif kind in ("clock", "create_lattice", "reembed"):
            pass
        elif kind == "restore":
            raise LatticeError("the log after this snapshot contains a restore; replay from a snapshot taken after it")
        else:
            raise LatticeError(f"unknown transaction kind {kind!r} in the log; is this code older than the database?")
        self.t = t if kind != "evolve" else self.t


def replay_state(snapshot: Snapshot) -> ReplayState:
    """The state a snapshot holds, as the start of a replay (restore verification,
    point-in-time recovery and the history series all start from it)."""
    rs = ReplayState(LatticeParams.from_dict(snapshot.lattice["params"]), float(snapshot.lattice["t"]))
    for g in snapshot.gems:
        rs.seq[g["id"]] = int(g["seq"])
        rs.state[g["id"]] = [float(g[k]) for k in STATE]
        rs.active[g["id"]] = not g["archived"]
    for e in snapshot.edges:
        rs.edges[tuple(sorted((e["source"], e["target"])))] = float(e["weight"])
    return rs
