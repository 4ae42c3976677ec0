"""Log replay over packed arrays (issue 12, item 4): the same states, bit for bit, as the
per-gem replay it replaced, which is kept here as the reference (``RefReplayState``, the
old ``core.store.txlog.ReplayState`` verbatim but for names)."""
from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from core.access import SYSTEM
from core.engine import LatticeParams
from core.engine.lattice import Lattice
from core.engine.trajectory import time_grid
from core.errors import LatticeError
from core.store import decay_segments, lattice_history, txlog
from core.store.history import History
from core.store.tables import STATE

_PACKED = {"f8": "<f8", "i8": "<i8"}


# ------------------------------------------------------------ the reference (old code)
def ref_unpack(payload):
    if not isinstance(payload, dict):
        return payload
    out = {}
    for k, v in payload.items():
        if isinstance(v, dict) and len(v) == 1 and next(iter(v)) in _PACKED:
            code, data = next(iter(v.items()))
            out[k] = np.frombuffer(base64.b64decode(data), dtype=_PACKED[code]).tolist()
        elif isinstance(v, dict):
            out[k] = ref_unpack(v)
        else:
            out[k] = v
    return out


@dataclass
class RefReplayState:
    params: LatticeParams
    t: float
    seq: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    active: dict = field(default_factory=dict)
    edges: dict = field(default_factory=dict)

    def lattice(self) -> Lattice:
        ids = sorted((g for g, on in self.active.items() if on), key=self.seq.__getitem__)
        arr = np.array([self.state[g] for g in ids], dtype=np.float64).reshape(len(ids), 4)
        lat = Lattice(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], params=self.params, ids=ids, t=self.t)
        pos = {g: i for i, g in enumerate(ids)}
        pairs = [(pos[a], pos[b], w) for (a, b), w in self.edges.items() if a in pos and b in pos]
        if pairs:
            i, j, w = zip(*pairs)
            lat.set_edges(i, j, w)
        return lat

    def _add(self, cols):
        for k, gid in enumerate(cols["id"]):
            self.seq[gid] = cols["seq"][k]
            self.state[gid] = [float(cols[s][k]) for s in STATE]
            self.active[gid] = True

    def _set(self, gem_ids, values):
        for s_idx, name in enumerate(STATE):
            if name in values:
                for k, gid in enumerate(gem_ids):
                    self.state[gid][s_idx] = float(values[name][k])

    def apply(self, kind, gem_ids, before, after, t, until=None):
        a = ref_unpack(after) or {}
        if kind == "evolve":
            lat = self.lattice()
            lat.params = LatticeParams.from_dict(a["params"])
            times = time_grid(float(a["t0"]), float(a["horizon"]), float(a["step"]))
            if until is not None:
                times = times[times <= until]
            for k in range(1, len(times)):
                lat.evolve(times[k] - times[k - 1])
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
        else:
            raise LatticeError(kind)
        self.t = t


def ref_history(store, name: str, max_points: int = 1000) -> pd.DataFrame:
    """The old lattice_history loop (no restore entries in these logs)."""
    log = store.transactions(name)
    rs = RefReplayState(store.info(name).params, 0.0)
    n = len(log)
    keep = set(np.unique(np.linspace(0, n - 1, min(n, max_points)).round().astype(int)).tolist()) if n else set()
    rows = []
    for k, e in enumerate(log.itertuples(index=False)):
        rs.apply(e.kind, list(e.gem_ids or []), e.before, e.after, float(e.lattice_t))
        if k in keep:
            if any(rs.active.values()):
                s = rs.lattice().summary()
                mc, R, gems = s["mean_coherence"], s["R"], s["gems"]
            else:
                mc, R, gems = np.nan, np.nan, 0
            rows.append({"entry": int(e.id), "kind": e.kind, "actor": e.actor, "wall_time": e.wall_time,
                         "lattice_t": float(rs.t), "gems": gems, "mean_coherence": mc, "R": R})
    return pd.DataFrame(rows, columns=["entry", "kind", "actor", "wall_time", "lattice_t", "gems",
                                       "mean_coherence", "R"])


# ------------------------------------------------------------ a randomized log
def bits(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).view(np.int64)


def assert_identical(new: Lattice, ref: Lattice) -> None:
    """Same gems in the same order, the same state bit for bit, clock, parameters and edges."""
    assert new.ids == ref.ids
    for s in STATE:
        np.testing.assert_array_equal(bits(getattr(new, s)), bits(getattr(ref, s)), err_msg=s)
    assert bits([new.t]) == bits([ref.t])
    assert new.params == ref.params
    for x, y in zip(new.edge_arrays(), ref.edge_arrays()):
        np.testing.assert_array_equal(x, y)


class LogMaker:
    """Entries of every kind, with payloads as ``txlog.append`` stores them (``pack``)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.next_seq, self.next_id = 1, 0
        self.live: list[str] = []  # gems present (archived or not)
        self.archived: set[str] = set()
        self.deleted: list[str] = []
        self.t = 0.0

    def _state(self, n: int) -> dict:
        r = self.rng
        return {"energy": r.uniform(0.2, 3.0, n), "phase": r.uniform(-6.0, 6.0, n),
                "coherence": r.uniform(0.0, 1.0, n), "uncertainty": r.uniform(0.0, 0.9, n)}

    def _gems(self, ids: list[str]) -> dict:
        seq = np.arange(self.next_seq, self.next_seq + len(ids), dtype=np.int64)
        self.next_seq += len(ids)
        return {"id": ids, "seq": seq, **self._state(len(ids))}

    def _new_ids(self, n: int) -> list[str]:
        ids = [f"g{self.next_id + k:05d}" for k in range(n)]
        self.next_id += n
        return ids

    def _pick(self, n: int, active_only: bool = True) -> list[str]:
        pool = [g for g in self.live if not (active_only and g in self.archived)]
        if not pool:
            return []
        return [str(g) for g in self.rng.choice(pool, min(n, len(pool)), replace=False)]

    def entry(self, kind: str):
        r = self.rng
        gem_ids: list[str] = []
        after: dict | None = None
        if kind in ("import", "create"):
            n = int(r.choice([1, 3, 300, 520])) if kind == "import" else 1
            ids = self._new_ids(n)
            if kind == "create" and self.deleted and r.random() < 0.5:
                ids = [self.deleted.pop()]  # a deleted gem's id used again
            elif kind == "create" and self.live and r.random() < 0.2:
                ids = [self.live[int(r.integers(len(self.live)))]]  # an id imported again: new seq and state
            pairs = []
            both = self.live + ids
            for _ in range(int(r.integers(0, 6))):
                a, b = r.choice(both, 2, replace=False)
                pairs.append([str(a), str(b), float(r.uniform(0.05, 1.0))])
            gem_ids = ids
            after = {"gems": self._gems(ids), "edges": pairs}
            for g in ids:
                if g not in self.live:
                    self.live.append(g)
                self.archived.discard(g)
        elif kind == "observe":
            gem_ids = self._pick(int(r.integers(1, 12)))
            s = self._state(len(gem_ids))
            after = {"coherence": s["coherence"].tolist(), "uncertainty": s["uncertainty"].tolist(),
                     "observed": gem_ids[:1], "strength": [0.5] * len(gem_ids)}
        elif kind == "edit":
            gem_ids = self._pick(int(r.choice([1, 5, 400])), active_only=False)
            if len(gem_ids) > 1 and r.random() < 0.3:
                gem_ids.append(gem_ids[0])  # a gem named twice: the later value wins
            s = self._state(len(gem_ids))
            names = list(STATE) if len(gem_ids) > 1 else list(r.choice(STATE, 2, replace=False))
            after = {k: s[k] for k in names}
            if len(gem_ids) == 1:
                after = {k: [float(v[0])] for k, v in after.items()} | {"title": ["a new title"]}
        elif kind == "archive":
            gem_ids = self._pick(1)
            self.archived.update(gem_ids)
        elif kind == "unarchive":
            if self.archived:
                gem_ids = [sorted(self.archived)[int(r.integers(len(self.archived)))]]
                self.archived.difference_update(gem_ids)
                after = {k: [float(v[0])] for k, v in self._state(1).items()}
            else:
                kind = "clock"
        elif kind == "delete":
            gem_ids = self._pick(1, active_only=False)
            for g in gem_ids:
                self.live.remove(g)
                self.archived.discard(g)
                self.deleted.append(g)
        elif kind == "entangle":
            pool = self.live
            pairs = []
            for _ in range(int(r.integers(1, 5))):
                if len(pool) >= 2:
                    a, b = r.choice(pool, 2, replace=False)
                    pairs.append([str(a), str(b), float(r.choice([0.0, r.uniform(0.05, 1.0)]))])
            after = {"pairs": pairs}
            gem_ids = sorted({g for p in pairs for g in p[:2]})
        elif kind == "params":
            after = {"params": LatticeParams(lambda_=float(r.uniform(0.5, 2.0)), f=float(r.uniform(0.5, 2.0)),
                                             K=float(r.choice([0.0, 0.8]))).to_dict()}
        elif kind == "evolve":
            horizon = float(r.choice([0.0, 0.3, 1.0]))
            step = float(r.choice([0.1, 0.25, 1.0]))
            params = LatticeParams(lambda_=float(r.uniform(0.5, 2.0)), K=float(r.choice([0.0, 0.0, 0.8])))
            after = {"t0": self.t, "horizon": horizon, "step": step, "params": params.to_dict(),
                     "gems": len(self.live), "mean_coherence_delta": 0.0}
            self.t += horizon
            return kind, [], None, txlog.pack(after), self.t
        elif kind in ("clock", "reembed"):
            after = {"t": self.t} if kind == "clock" else {"embedder": "hashing-v1", "dim": 64}
        self.t += float(r.choice([0.0, 0.01]))
        return kind, gem_ids, None, txlog.pack(after), self.t


KINDS = ["import", "create", "observe", "edit", "archive", "unarchive", "delete", "entangle", "params",
         "evolve", "clock", "reembed"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_replay_over_arrays_is_bit_for_bit_the_per_gem_replay(seed):
    """Every entry kind, packed and listed payloads, gems named twice, ids deleted and used
    again, archived gems with edges, coupled evolutions: after every entry the replayed
    lattice (ids in seq order, state bits, clock, parameters, edges) and its summary equal
    the reference's."""
    maker = LogMaker(seed)
    params = LatticeParams()
    new, ref = txlog.ReplayState(params, 0.0), RefReplayState(params, 0.0)
    order = ["import"] + list(maker.rng.choice(KINDS, 140))
    seen = set()
    for kind in order:
        entry = maker.entry(str(kind))
        seen.add(entry[0])
        new.apply(*entry)
        ref.apply(*entry)
        expected = ref.lattice()
        assert_identical(new.lattice(), expected)
        s, e = new.summary(), expected.summary()
        assert (s["gems"], s["mean_coherence"], s["R"]) == (e["gems"], e["mean_coherence"], e["R"])
    assert seen == set(KINDS)


def test_point_in_time_evolve_stops_at_the_same_step_as_the_reference():
    maker = LogMaker(7)
    params = LatticeParams()
    new, ref = txlog.ReplayState(params, 0.0), RefReplayState(params, 0.0)
    imported, entangled = maker.entry("import"), maker.entry("entangle")
    evolve = {"t0": 0.0, "horizon": 2.0, "step": 0.3, "params": LatticeParams(K=0.8).to_dict()}
    for rs in (new, ref):
        rs.apply(*imported)
        rs.apply(*entangled)
        rs.apply("evolve", [], None, evolve, 2.0, until=1.0)
    assert_identical(new.lattice(), ref.lattice())
    assert new.t == pytest.approx(entangled[4] + 0.9)  # the last step at or before t = 1 (steps of 0.3)


def test_unpack_as_arrays_gives_the_same_exact_values_as_numpy_and_lists_by_default():
    values = np.random.default_rng(3).normal(size=txlog.PACK_MIN + 5)
    stored = txlog.pack({"coherence": values, "short": np.arange(3.0), "gems": {"seq": np.arange(300)}})
    as_lists = txlog.unpack(stored)
    as_arrays = txlog.unpack(stored, as_arrays=True)
    assert isinstance(as_lists["coherence"], list) and isinstance(as_lists["gems"]["seq"], list)
    assert isinstance(as_arrays["coherence"], np.ndarray) and as_arrays["gems"]["seq"].dtype == np.int64
    np.testing.assert_array_equal(bits(as_arrays["coherence"]), bits(values))
    assert as_lists["coherence"] == values.tolist() and as_arrays["short"] == [0.0, 1.0, 2.0]


def test_a_bad_entry_changes_nothing_and_says_what_is_wrong():
    rs = txlog.ReplayState(LatticeParams(), 0.0)
    rs.apply("import", ["a", "b"], None, {"gems": {"id": ["a", "b"], "seq": [1, 2], "energy": [1.0, 2.0],
                                                   "phase": [0.0, 0.0], "coherence": [1.0, 1.0],
                                                   "uncertainty": [0.1, 0.1]}}, 0.0)
    before = rs.lattice()
    with pytest.raises(ValueError, match="1 values for 2 gems"):
        rs.apply("observe", ["a", "b"], None, {"coherence": [0.5], "uncertainty": [0.1, 0.1]}, 1.0)
    with pytest.raises(KeyError, match="zz"):
        rs.apply("edit", ["a", "zz"], None, {"coherence": [0.5, 0.5]}, 1.0)
    with pytest.raises(ValueError, match="seq"):
        rs.apply("import", ["c"], None, {"gems": {"id": ["c"], "seq": [3, 4], "energy": [1.0], "phase": [0.0],
                                                  "coherence": [1.0], "uncertainty": [0.1]}}, 1.0)
    with pytest.raises(LatticeError, match="coherence.*'b'.*outside the allowed range"):
        rs.apply("observe", ["a", "b"], None, {"coherence": [0.5, 1.5]}, 1.0)
    assert_identical(rs.lattice(), before)


# ------------------------------------------------------------ through the store
def _history_store(store, n: int = 600):
    rng = np.random.default_rng(11)
    rows = [{"id": f"h{i:04d}", "content": f"gem {i} about waves", "energy": float(rng.uniform(0.3, 3.0)),
             "phase": float(rng.uniform(0, 6)), "coherence": float(rng.uniform(0.2, 1.0)),
             "uncertainty": float(rng.uniform(0, 0.5))} for i in range(n)]
    import json
    from pathlib import Path
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "h.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        store.import_path("hist", path, SYSTEM, embedder="hashing-v1")
    ids = store.load("hist").lattice.ids
    for k in range(4):
        store.advance("hist", 1.5, SYSTEM)
        store.observe("hist", [str(g) for g in rng.choice(ids, 10, replace=False)], SYSTEM)
    store.update_gem("hist", ids[2], SYSTEM, coherence=0.25)
    store.entangle("hist", ids[0], ids[1], 0.7, SYSTEM)
    store.archive_gem("hist", ids[5], SYSTEM)
    store.advance("hist", 2.0, SYSTEM)
    store.restore_gem("hist", ids[5], SYSTEM)
    store.delete_gem("hist", ids[6], SYSTEM)
    store.advance("hist", 0.5, SYSTEM, step=0.1)
    loaded = store.load("hist")
    loaded.lattice.evolve(0.2)  # a save of every gem: a packed edit entry
    store.save(loaded, SYSTEM)
    return store


@pytest.mark.parametrize("max_points", [1000, 5])
def test_lattice_history_equals_the_per_entry_lattice_summaries(store, max_points):
    """The history series (and so the decay fit's observations) is the old series exactly:
    mean coherence and R after every kept entry, bit for bit."""
    _history_store(store)
    h = lattice_history(store, "hist", max_points=max_points)
    assert isinstance(h, History) and h.stopped_at is None
    expected = ref_history(store, "hist", max_points=max_points)
    assert len(h.frame) == min(max_points, h.entries)
    pd.testing.assert_frame_equal(h.frame, expected, check_exact=True)
    np.testing.assert_array_equal(h.log_ids, store.transactions("hist")["id"].to_numpy())
    obs = decay_segments(h.frame, h.log_ids, h.log_kinds)
    pd.testing.assert_frame_equal(obs, decay_segments(expected, h.log_ids, h.log_kinds), check_exact=True)
    final = h.frame.iloc[-1]
    live = store.load("hist").lattice
    assert final["gems"] == len(live) and final["mean_coherence"] == float(live.coherence.mean())


def test_transactions_still_return_plain_lists(store):
    _history_store(store, n=300)
    entry = store.transactions("hist", kinds=["import"]).iloc[0]
    assert isinstance(entry["after"]["gems"]["coherence"], list)
    assert isinstance(entry["after"]["gems"]["seq"][0], int)
