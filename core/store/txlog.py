"""Transaction log: append entries in the writer's own DB transaction, and replay them.

Entry kinds and their payloads (``after``/``before`` are JSON; state values as columns):

- ``evolve``: ``after = {t0, horizon, step, params}``; deterministic, so replay recomputes
  it with the same time grid (one entry for N gems, not N rows).
- ``observe``, ``edit``: gem ids and the changed values before/after. An ``observe``
  carries ``coherence`` and ``uncertainty`` of every touched gem, and ``energy`` too when
  reinforcement by use changed an energy (never under the seed preset, whose entries keep
  the old format); replay applies whichever state columns an entry names.
- ``create``/``import``/``unarchive``: the new gems' ``seq`` and state (after).
- ``archive``/``delete``: the gem state before; ``entangle``: pairs with weights
  before/after (0 = no edge); ``params``/``clock``: before/after; ``restore``: snapshot;
  ``reembed``: embedder and dimension before/after (no state change).
- Numeric arrays passed as numpy arrays of at least :data:`PACK_MIN` values are stored
  packed, ``{"f8": base64}`` (``"i8"`` for integers), little-endian: a save of 100k
  gems logs 800k exact floats as 8.5 MB of base64 instead of 20 MB of JSON numbers (the
  JSON made the log entry the slowest part of the save). :func:`unpack` restores lists;
  ``Store.transactions`` unpacks, so readers always see plain lists (replay unpacks to
  numpy arrays internally).
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
from typing import Sequence

import numpy as np
from sqlalchemy import Connection, insert

from core.access import Actor
from core.errors import LatticeError
from core.engine.lattice import Lattice
from core.engine.params import STATE_SPECS, LatticeParams
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


def unpack(payload: dict | None, as_arrays: bool = False) -> dict | None:
    """A stored payload with its packed arrays as plain lists again (exact values).

    ``as_arrays``: packed arrays as read-only numpy arrays instead (replay's internal
    form: no list of 100k Python floats to build and convert back); short arrays, stored
    as JSON lists, stay lists either way.
    """
    if not isinstance(payload, dict):
        return payload
    out: dict = {}
    for k, v in payload.items():
        if isinstance(v, dict) and len(v) == 1 and next(iter(v)) in _PACKED:
            code, data = next(iter(v.items()))
            arr = np.frombuffer(base64.b64decode(data), dtype=_PACKED[code])
            out[k] = arr if as_arrays else arr.tolist()
        elif isinstance(v, dict):
            out[k] = unpack(v, as_arrays)
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
def _floats(values, ids: Sequence[str], what: str) -> np.ndarray:
    """The ``what`` values of a log payload (list or unpacked array) for gems ``ids`` as
    float64: the numbers ``float(v)`` gives, so the replayed state is bit for bit the logged
    one. Checked against the state's range here, once per value (a Lattice built from the
    replay would refuse them anyway; this names the entry that brought them)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (len(ids),):
        raise ValueError(f"{what}: the log entry has {arr.size} values for {len(ids)} gems")
    STATE_SPECS[what].check(arr, ids)
    return arr


def _last_of_each(pos: np.ndarray) -> np.ndarray | None:
    """Indices into ``pos`` that keep the last occurrence of each repeated position (a gem
    named twice in one entry: the later value wins, as it did entry by entry), or None
    when every position is distinct (the usual case: nothing to drop)."""
    if pos.size < 2:
        return None
    _, first_from_end = np.unique(pos[::-1], return_index=True)
    if first_from_end.size == pos.size:
        return None
    return np.sort(pos.size - 1 - first_from_end)


def _grown(arr: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros(arr.shape[:-1] + (size,), dtype=arr.dtype)
    out[..., :arr.shape[-1]] = arr
    return out


class ReplayState:
    """A lattice rebuilt from a snapshot and log entries, as packed arrays.

    Every gem has a fixed position, in the order it first appeared (a gem deleted and added
    again gets a new one): its id, ``seq``, state (rows E, phi, c, u of one (4, capacity)
    float64 array) and an active flag (False when archived or deleted). ``_pos`` maps the
    ids present to their positions; it is built once per import and updated on delete, so an
    entry costs one dict lookup per gem id it names plus numpy work over the arrays, and an
    evolution builds one Lattice of the active gems and writes back by fancy indexing.
    Edges: weight by sorted id pair. :meth:`lattice` orders the active gems by seq, like
    ``Store.load``.
    """

    def __init__(self, params: LatticeParams, t: float):
        self.params = params
        self.t = t
        self.edges: dict[tuple[str, str], float] = {}
        self.version = 0  # bumped by every change of gem state, activity or membership
        self._pos: dict[str, int] = {}
        self._n = 0  # positions in use (deleted gems' included)
        self._ids = np.empty(0, dtype=object)
        self._seq = np.zeros(0, dtype=np.int64)
        self._state = np.zeros((len(STATE), 0))
        self._active = np.zeros(0, dtype=bool)
        self._order: np.ndarray | None = None  # active positions in seq order (cached)
        self._all = False  # with _order: every position is active, in seq order
        self._summary: tuple[int, dict] | None = None  # (version, summary)

    # -------------------------------------------------------------- reading
    @property
    def gems(self) -> int:
        """Number of active gems."""
        return int(self._active_order().size)

    def _active_order(self) -> np.ndarray:
        if self._order is None:
            act = np.flatnonzero(self._active[:self._n])
            seq = self._seq[act]
            if seq.size > 1 and not (seq[1:] > seq[:-1]).all():
                act = act[np.argsort(seq, kind="stable")]  # stable: ties keep first-seen order
                self._all = False
            else:
                self._all = act.size == self._n  # order = 0..n-1: rows can be read as views
            self._order = act
        return self._order

    def _rows(self, rows: slice | int) -> np.ndarray:
        """State rows of the active gems in seq order (a view when that is every position)."""
        order = self._active_order()
        return self._state[rows, :self._n] if self._all else self._state[rows, order]

    def lattice(self) -> Lattice:
        """The active gems as a Lattice in seq order, with their edges (like Store.load)."""
        return self._lattice(self.params, with_edges=True)

    def _lattice(self, params: LatticeParams, with_edges: bool) -> Lattice:
        order = self._active_order()
        st = self._rows(slice(None))  # Lattice copies its arrays: evolving it leaves the replay's alone
        lat = Lattice(st[0], st[1], st[2], st[3], params=params, ids=self._ids[order].tolist(), t=self.t)
        if with_edges and self.edges:
            rank = np.full(self._n + 1, -1, dtype=np.int64)  # position -> index in the lattice; [-1]: unknown
            rank[order] = np.arange(order.size)
            keys = list(self.edges)
            ia = rank[np.fromiter((self._pos.get(a, -1) for a, _ in keys), np.int64, len(keys))]
            ib = rank[np.fromiter((self._pos.get(b, -1) for _, b in keys), np.int64, len(keys))]
            w = np.fromiter(self.edges.values(), np.float64, len(keys))
            keep = (ia >= 0) & (ib >= 0)  # both ends active (edges to archived gems wait in self.edges)
            if keep.any():
                lat.set_edges(ia[keep], ib[keep], w[keep])
        return lat

    def summary(self) -> dict[str, float]:
        """``gems``, ``mean_coherence`` and ``R`` of the active gems: the figures of
        ``self.lattice().summary()``, bit for bit (the same values in the same order through
        the same expressions), without building the Lattice. Cached until the state changes
        (clock, parameter and edge entries reuse it)."""
        if self._summary is not None and self._summary[0] == self.version:
            return self._summary[1]
        order = self._active_order()
        phi, c = self._rows(1), self._rows(2)
        if order.size:
            a, b = np.column_stack((c * np.cos(phi), c * np.sin(phi))).mean(axis=0)  # Lattice.order_parameter
            out = {"gems": int(order.size), "mean_coherence": float(c.mean()), "R": abs(complex(a, b))}
        else:
            out = {"gems": 0, "mean_coherence": 0.0, "R": 0.0}
        self._summary = (self.version, out)
        return out

    # ------------------------------------------------------------- changing
    def _changed(self, membership: bool) -> None:
        self.version += 1
        if membership:
            self._order = None

    def _lookup(self, gem_ids: Sequence[str]) -> np.ndarray:
        """Positions of gems that must be present (KeyError naming the first unknown one)."""
        return np.fromiter(map(self._pos.__getitem__, gem_ids), np.int64, len(gem_ids))

    def _place(self, ids: list) -> np.ndarray:
        """Positions for the ids of an import: a present id keeps its position, a new one
        gets the next free one."""
        m, n0 = len(ids), self._n
        if n0 + m > self._seq.size:  # amortised growth: many small creates stay linear
            cap = max(n0 + m, 2 * self._seq.size, 16)
            self._ids, self._seq = _grown(self._ids, cap), _grown(self._seq, cap)
            self._state, self._active = _grown(self._state, cap), _grown(self._active, cap)
        fresh = dict(zip(ids, range(n0, n0 + m)))
        if len(fresh) == m and self._pos.keys().isdisjoint(fresh):  # all new and distinct: no loop
            self._pos.update(fresh)
            self._ids[n0:n0 + m] = ids
            self._n += m
            return np.arange(n0, n0 + m)
        pos = np.empty(m, dtype=np.int64)
        for k, gid in enumerate(ids):  # re-imported or repeated ids (rare)
            p = self._pos.get(gid)
            if p is None:
                p = self._pos[gid] = self._n
                self._ids[p] = gid
                self._n += 1
            pos[k] = p
        return pos

    def _add(self, cols: dict, active: np.ndarray | None = None) -> None:
        """Gems of an import/create payload (``id``, ``seq`` and the state columns); all
        active unless ``active`` (one flag per gem) says otherwise."""
        ids = list(cols["id"])
        m = len(ids)
        seq = np.asarray(cols["seq"], dtype=np.int64)
        if seq.shape != (m,):
            raise ValueError(f"seq: the log entry has {seq.size} values for {m} gems")
        values = np.stack([_floats(cols[s], ids, s) for s in STATE]) if m else np.zeros((len(STATE), 0))
        on = np.ones(m, dtype=bool) if active is None else np.asarray(active, dtype=bool)
        pos = self._place(ids)  # everything checked above: nothing changes on a bad payload
        keep = _last_of_each(pos)
        if keep is not None:
            pos, seq, values, on = pos[keep], seq[keep], values[:, keep], on[keep]
        self._seq[pos] = seq
        self._state[:, pos] = values
        self._active[pos] = on
        self._changed(membership=True)

    def _set(self, gem_ids: Sequence[str], values: dict) -> None:
        """The state values an observe/edit/unarchive entry logged for its gems."""
        names = [s for s in STATE if s in values]
        if not names:
            return
        pos = self._lookup(gem_ids)
        new = [(STATE.index(s), _floats(values[s], gem_ids, s)) for s in names]
        keep = _last_of_each(pos)
        if keep is not None:
            pos, new = pos[keep], [(row, v[keep]) for row, v in new]
        for row, v in new:
            self._state[row, pos] = v
        self._changed(membership=False)

    def _evolve(self, a: dict, until: float | None) -> None:
        params = LatticeParams.from_dict(a["params"])
        times = time_grid(float(a["t0"]), float(a["horizon"]), float(a["step"]))
        if until is not None:
            times = times[times <= until]
        # Edges only matter to a coupled evolution (Lattice.evolve ignores them when K = 0).
        lat = self._lattice(params, with_edges=params.K != 0.0)
        for k in range(1, len(times)):
            lat.evolve(times[k] - times[k - 1])  # same steps as trajectory.simulate
        order = self._active_order()
        for row, arr in enumerate((lat.energy, lat.phase, lat.coherence, lat.uncertainty)):
            self._state[row, order] = arr
        self.t = lat.t
        self._changed(membership=False)

    def apply(self, kind: str, gem_ids: list[str], before: dict | None, after: dict | None, t: float,
              until: float | None = None) -> None:
        """Apply one log entry (payloads as stored, packed, or as ``Store.transactions``
        returns them). ``until``: for an evolution, stop after its last step at or before
        that lattice time (the state the lattice went through at that time)."""
        a = unpack(after, as_arrays=True) or {}
        if kind == "evolve":
            self._evolve(a, until)
            return
        if kind in ("import", "create"):
            self._add(a["gems"])
            for src, dst, w in a.get("edges", []):
                self.edges[tuple(sorted((src, dst)))] = float(w)
        elif kind in ("observe", "edit"):
            self._set(gem_ids, a)
        elif kind == "archive":
            pos = [self._pos[g] for g in gem_ids if g in self._pos]  # an unknown gem: nothing to archive
            self._active[pos] = False
            self._changed(membership=True)
        elif kind == "unarchive":
            self._set(gem_ids, a)
            self._active[self._lookup(gem_ids)] = True
            self._changed(membership=True)
        elif kind == "delete":
            for gid in gem_ids:
                p = self._pos.pop(gid, None)
                if p is not None:
                    self._active[p] = False
            gone = set(gem_ids)
            if gone and self.edges:
                self.edges = {p: w for p, w in self.edges.items() if p[0] not in gone and p[1] not in gone}
            self._changed(membership=True)
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
        self.t = t


def replay_state(snapshot: Snapshot) -> ReplayState:
    """The state a snapshot holds, as the start of a replay (restore verification,
    point-in-time recovery and the history series all start from it)."""
    rs = ReplayState(LatticeParams.from_dict(snapshot.lattice["params"]), float(snapshot.lattice["t"]))
    gems = snapshot.gems
    if gems:
        cols = {"id": [g["id"] for g in gems], "seq": [int(g["seq"]) for g in gems],
                **{s: [float(g[s]) for g in gems] for s in STATE}}
        rs._add(cols, active=np.array([not g["archived"] for g in gems], dtype=bool))
    for e in snapshot.edges:
        rs.edges[tuple(sorted((e["source"], e["target"])))] = float(e["weight"])
    return rs
