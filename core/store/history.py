"""A lattice's history: its transaction log, and the series reconstructed from it.

The log records every state change from the lattice's creation (imports carry the new
gems' state, ``evolve`` entries are deterministic and recomputed, observations and
edits carry their new values), so replaying it from an empty lattice gives the exact
state after every entry. :func:`lattice_history` returns mean coherence and the order
parameter R after each entry (for the Metrics page): a truthful series of what the
lattice went through, not a simulation. A ``restore`` replaces the state with a
snapshot that is not in the log; the series continues from the restored snapshot if its
file is still readable, else it stops there (``stopped_at`` says why).

Decay observations for the Parameters page's *Fit decay* (``History.decay``, made in the
same replay): between two non-evolve entries (observations, reflections, edits, imports,
parameter changes, restores...) the only thing that changes coherence is the clock: an
``evolve`` entry applies ``c <- c·exp(-λ·dt/E)`` to every gem. So each stretch "a state,
then only clock advances" is a genuine decay curve of every gem in it, with the energy the
gem had in that stretch (reinforcement by use changes energies at observations, which end a
stretch). For each stretch the ``decay_gems`` most coherent gems are followed: one row per
gem and point (its coherence and energy), one group per gem and stretch, for
``core.engine.fitting.fit_decay`` with ``energy=``: it fits λ itself, each gem decaying
with τ = E/λ. :func:`decay_segments` (the lattice's mean coherence per stretch, an
effective shared τ) is kept for readers of the mean.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import select

from core.errors import LatticeError
from core.store import txlog
from core.store.snapshots import validated_snapshot
from core.store.kernel import StoreKernel
from core.store.tables import TRANSACTIONS

LOG_COLUMNS = ["id", "kind", "gem_ids", "before", "after", "actor", "lattice_t", "lattice_version", "wall_time"]
DECAY_COLUMNS = ["t", "coherence", "gem", "entry"]
# History.decay: per gem and point of a decay stretch. gem: the group (gem id and the entry
# that started the stretch); energy: the gem's energy in the stretch; decay_scale: the λ the
# evolve entry used (1/time unit; NaN at a stretch's first point, which no evolve made)
DECAY_GEM_COLUMNS = ["t", "coherence", "energy", "gem", "gem_id", "entry", "decay_scale"]


class HistoryMixin(StoreKernel):
    """The transaction log as a table."""

    def transactions(self, name: str, *, since_id: int | None = None, kinds: Sequence[str] | None = None,
                     limit: int | None = None) -> pd.DataFrame:
        """The lattice's log, oldest first: id, kind, gem_ids, before, after, actor, lattice_t,
        lattice_version, wall_time."""
        rows = [(*r[:3], txlog.unpack(r[3]), txlog.unpack(r[4]), *r[5:])
                for r in self._log_rows(name, since_id=since_id, kinds=kinds, limit=limit)]
        return pd.DataFrame(rows, columns=LOG_COLUMNS)

    def _log_rows(self, name: str, *, since_id: int | None = None, kinds: Sequence[str] | None = None,
                  limit: int | None = None) -> list:
        """The log entries as stored (columns of :data:`LOG_COLUMNS`, payloads still packed),
        oldest first: what replay reads, unpacking the packed arrays straight to numpy."""
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"]
            q = select(*(TRANSACTIONS.c[k] for k in LOG_COLUMNS)).where(TRANSACTIONS.c.lattice_id == lid)
            if since_id is not None:
                q = q.where(TRANSACTIONS.c.id > since_id)
            if kinds:
                q = q.where(TRANSACTIONS.c.kind.in_(list(kinds)))
            if limit:
                q = q.order_by(TRANSACTIONS.c.id.desc()).limit(limit)
                return conn.execute(q).all()[::-1]
            return conn.execute(q.order_by(TRANSACTIONS.c.id)).all()


@dataclass
class History:
    """A lattice's mean coherence and R after each log entry (see :func:`lattice_history`)."""

    frame: pd.DataFrame  # entry, kind, actor, wall_time, lattice_t, gems, mean_coherence, R
    entries: int  # log entries replayed
    stopped_at: str | None = None  # why the series ends early, if it does
    # id and kind of every log entry (the frame may be thinned): what a reader needs to
    # know which changes happened between two points, without reading the log again
    log_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    log_kinds: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    # decay observations per gem (columns DECAY_GEM_COLUMNS): see the module doc
    decay: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DECAY_GEM_COLUMNS))


def _from_snapshot(path: str) -> txlog.ReplayState:
    """Replay state of a snapshot, checked as strictly as a restore (the store's own conversion)."""
    return txlog.replay_state(validated_snapshot(path)[0])


def lattice_history(store, name: str, max_points: int = 1000, decay_gems: int = 24, decay_points: int = 25,
                    decay_stretches: int = 100) -> History:
    """Mean coherence and R of lattice ``name`` after each logged change (at most ``max_points``,
    evenly thinned; the last entry is always kept), and the decay observations per gem
    (``History.decay``: the ``decay_gems`` most coherent gems of each of the last
    ``decay_stretches`` decay stretches, at most ``decay_points`` points per stretch).

    One replay over packed arrays (:class:`txlog.ReplayState`): an entry costs numpy work
    over the gems it names, an evolution one Lattice of the active gems, and a kept point
    one mean and one order parameter over the active gems (reused while only the clock,
    parameters or edges change); a decay stretch one partial sort of the coherences at its
    start and a gather of its followed gems at each point.
    """
    log = store._log_rows(name)  # payloads as stored: replay unpacks them to arrays
    params = store.info(name).params
    rs = txlog.ReplayState(params, 0.0)
    n = len(log)
    keep = np.zeros(n, dtype=bool)
    if n:
        keep[np.linspace(0, n - 1, min(n, max_points)).round().astype(int)] = True
    follow = _decay_points(np.array([e.kind == "evolve" for e in log], dtype=bool), decay_points, decay_stretches)
    decay = _DecayRecorder(decay_gems)
    rows, stopped = [], None
    for k, e in enumerate(log):
        try:
            if follow[k] & 2:  # the first evolve of a followed stretch: the state it starts from
                decay.start(rs, int(log[k - 1].id) if k else 0)
            if e.kind == "restore":
                rs = _from_snapshot(str((e.after or {}).get("snapshot", "")))
            else:
                rs.apply(e.kind, list(e.gem_ids or []), e.before, e.after, float(e.lattice_t))
            if follow[k] & 1:
                decay.point(rs, float((txlog.unpack(e.after) or {}).get("params", {}).get("lambda_", np.nan)))
            s = rs.summary() if keep[k] else None
        except (LatticeError, OSError, KeyError, ValueError, TypeError) as exc:
            stopped = f"entry {e.id} ({e.kind}) could not be replayed: {exc}"
            break
        if s is not None:
            mc, R = (s["mean_coherence"], s["R"]) if s["gems"] else (np.nan, np.nan)
            rows.append({"entry": int(e.id), "kind": e.kind, "actor": e.actor, "wall_time": e.wall_time,
                         "lattice_t": float(rs.t), "gems": s["gems"], "mean_coherence": mc, "R": R})
    frame = pd.DataFrame(rows, columns=["entry", "kind", "actor", "wall_time", "lattice_t", "gems",
                                        "mean_coherence", "R"])
    return History(frame, n, stopped, np.array([e.id for e in log], dtype=np.int64),
                   np.array([e.kind for e in log], dtype=object), decay.frame())


def _decay_points(evolve: np.ndarray, per_stretch: int, stretches: int) -> np.ndarray:
    """Per log entry, bit flags: 2 = the first evolve of a followed decay stretch (a maximal run
    of evolve entries: the state before it is the stretch's first point), 1 = an evolve whose
    state after it is recorded. At most ``per_stretch`` points per stretch (evenly spaced,
    always its last), only the last ``stretches`` stretches (the recent dynamics, under the
    current parameters)."""
    out = np.zeros(evolve.size, dtype=np.int8)
    if not evolve.any():
        return out
    edges = np.diff(np.concatenate([[False], evolve, [False]]).astype(np.int8))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # [start, end) of each run
    for a, b in list(zip(starts, ends))[-max(int(stretches), 1):]:
        m = min(b - a, max(int(per_stretch) - 1, 1))  # the stretch's start is a point too
        picked = np.unique((b - 1 - np.linspace(0, b - 1 - a, m)).round().astype(int))
        out[picked] = 1
        out[a] |= 2
    return out


class _DecayRecorder:
    """Collects the decay observations of followed gems during a replay (History.decay)."""

    def __init__(self, gems: int):
        self.gems = max(int(gems), 1)
        self.parts: list[tuple] = []  # (t, coherence, energy, labels, ids, entry, decay_scale), one per point
        self.pos = np.zeros(0, dtype=np.int64)  # replay positions of the followed gems
        self.labels = np.zeros(0, dtype=object)
        self.ids = np.zeros(0, dtype=object)
        self.entry = 0

    def start(self, rs: txlog.ReplayState, entry: int) -> None:
        """Follow the most coherent active gems of ``rs`` from its current state (in seq order)."""
        order = rs._active_order()
        c = rs._rows(2)
        live = np.flatnonzero(c > 0)  # a gem at coherence 0 carries no decay to fit
        if live.size > self.gems:
            live = live[np.argpartition(-c[live], self.gems - 1)[:self.gems]]
        idx = np.sort(live)
        self.pos, self.entry = order[idx], entry
        self.ids = rs._ids[self.pos]
        self.labels = np.array([f"{g} · from entry {entry}" for g in self.ids], dtype=object)
        self.point(rs, np.nan)

    def point(self, rs: txlog.ReplayState, decay_scale: float) -> None:
        """Record the followed gems' coherence and energy at the replay's current time."""
        if self.pos.size:
            m = self.pos.size
            self.parts.append((np.full(m, float(rs.t)), rs._state[2, self.pos].copy(), rs._state[0, self.pos].copy(),
                               self.labels, self.ids, np.full(m, self.entry, dtype=np.int64),
                               np.full(m, decay_scale)))

    def frame(self) -> pd.DataFrame:
        """The observations (DECAY_GEM_COLUMNS); groups with fewer than two distinct times dropped."""
        if not self.parts:
            return pd.DataFrame(columns=DECAY_GEM_COLUMNS)
        cols = [np.concatenate([p[j] for p in self.parts]) for j in range(len(DECAY_GEM_COLUMNS))]
        df = pd.DataFrame(dict(zip(DECAY_GEM_COLUMNS, cols)))
        by_gem = df.groupby("gem", sort=False)["t"]
        spread = (by_gem.transform("max") - by_gem.transform("min")).to_numpy()
        return df[spread > 0].reset_index(drop=True)


def decay_segments(frame: pd.DataFrame, log_ids: np.ndarray, log_kinds: np.ndarray) -> pd.DataFrame:
    """Observations ``t, coherence, gem (= stretch label), entry`` from a history frame.

    ``frame`` is ``History.frame`` (possibly thinned); ``log_ids``/``log_kinds`` are the
    whole log (ids ascending), so a stretch never spans a dropped non-evolve entry.
    Only stretches with at least two points at different times are kept.
    """
    order = np.argsort(log_ids)
    ids, kinds = np.asarray(log_ids)[order], np.asarray(log_kinds, dtype=object)[order]
    # entries up to an id, and non-evolve entries among them: prefix counts, so each row
    # asks "only clock advances since the previous row?" in O(log n), not a scan of the log
    non_evolve = np.concatenate([[0], np.cumsum(kinds != "evolve")])
    rows, current, prev_id = [], [], None

    def close() -> None:
        if len(current) >= 2 and np.ptp([r["t"] for r in current]) > 0:
            rows.extend(current)

    for r in frame.itertuples(index=False):
        entry = int(r.entry)
        pure_clock = False
        if prev_id is not None:
            lo, hi = np.searchsorted(ids, [prev_id, entry], side="right")
            pure_clock = hi > lo and non_evolve[hi] == non_evolve[lo]
        finite = bool(np.isfinite(r.mean_coherence))
        if not (pure_clock and finite and current):
            close()
            current = []
            if finite:
                label = f"from entry {entry} ({r.kind}, t = {float(r.lattice_t):.4g})"
                current = [{"t": float(r.lattice_t), "coherence": float(r.mean_coherence), "gem": label,
                            "entry": entry}]
        else:
            current.append({"t": float(r.lattice_t), "coherence": float(r.mean_coherence),
                            "gem": current[0]["gem"], "entry": entry})
        prev_id = entry
    close()
    return pd.DataFrame(rows, columns=DECAY_COLUMNS)
