"""A lattice's history reconstructed from its transaction log (for the Metrics page).

The log records every state change from the lattice's creation (imports carry the new
gems' state, ``evolve`` entries are deterministic and recomputed, observations and
edits carry their new values), so replaying it from an empty lattice gives the exact
state after every entry. :func:`lattice_history` returns mean coherence and the order
parameter R after each entry: a truthful series of what the lattice went through, not
a simulation. A ``restore`` replaces the state with a snapshot that is not in the log;
the series continues from the restored snapshot if its file is still readable, else it
stops there (``stopped_at`` says why).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.errors import LatticeError


@dataclass
class History:
    frame: pd.DataFrame  # entry, kind, actor, wall_time, lattice_t, gems, mean_coherence, R
    entries: int  # log entries replayed
    stopped_at: str | None = None  # why the series ends early, if it does
    # id and kind of every log entry (the frame may be thinned): what a reader needs to
    # know which changes happened between two points, without reading the log again
    log_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    log_kinds: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))


def _from_snapshot(path: str):
    """Replay state of a snapshot (the store's own conversion, so the two never diverge)."""
    from core.store import snapshot_file as snap
    from core.store.manager import Store
    return Store._replay_state(snap.read_snapshot(path))


def lattice_history(store, name: str, max_points: int = 1000) -> History:
    """Mean coherence and R of lattice ``name`` after each logged change (at most ``max_points``,
    evenly thinned; the last entry is always kept)."""
    from core.store.txlog import ReplayState
    log = store.transactions(name)
    params = store.info(name).params
    rs = ReplayState(params, 0.0)
    n = len(log)
    keep = set(np.unique(np.linspace(0, n - 1, min(n, max_points)).round().astype(int)).tolist()) if n else set()
    rows, stopped = [], None
    for k, e in enumerate(log.itertuples(index=False)):
        try:
            if e.kind == "restore":
                rs = _from_snapshot(str((e.after or {}).get("snapshot", "")))
            else:
                rs.apply(e.kind, list(e.gem_ids or []), e.before, e.after, float(e.lattice_t))
        except (LatticeError, OSError, KeyError, ValueError, TypeError) as exc:
            stopped = f"entry {e.id} ({e.kind}) could not be replayed: {exc}"
            break
        if k in keep:
            if any(rs.active.values()):
                s = rs.lattice().summary()
                mc, R, gems = s["mean_coherence"], s["R"], s["gems"]
            else:
                mc, R, gems = np.nan, np.nan, 0
            rows.append({"entry": int(e.id), "kind": e.kind, "actor": e.actor, "wall_time": e.wall_time,
                         "lattice_t": float(rs.t), "gems": gems, "mean_coherence": mc, "R": R})
    frame = pd.DataFrame(rows, columns=["entry", "kind", "actor", "wall_time", "lattice_t", "gems",
                                        "mean_coherence", "R"])
    return History(frame, n, stopped, log["id"].to_numpy(dtype=np.int64), log["kind"].to_numpy(dtype=object))
