"""History benchmarks (issue 12, item 4): replaying a lattice's transaction log at 100k gems.

Run with ``python -m core bench --suite history`` (``--quick``: 10k gems; ``--json``).
A temporary SQLite store gets one lattice imported through ``Store.import_path`` (the
generated gems of ``benchmarks.store.make_gems_file``, embedder ``hashing-v1``, so the log
holds one packed ``import`` entry per import batch) and a short history: six clock
advances each followed by an observation of 10 gems, an edit, three more advances.

- ``history_replay``: ``core.store.lattice_history`` (mean coherence and R after every
  entry: the Metrics page's history, and the decay observations of followed gems), the
  decay fit from the log (``lattice_history`` + ``core.engine.fitting.fit_decay`` of
  ``History.decay`` with the gems' energies: the Parameters page's *fit decay from the
  lattice's log*, without its Streamlit cache), and the snapshot replay of restore
  verification and point-in-time recovery (``txlog.replay_state`` + ``ReplayState.lattice``
  of the lattice as a snapshot holds it, built in memory), each as seconds and as a ratio
  to ``Store.load`` of the same lattice: the floor, since a replay has to read at least the
  state once. Best of 3 runs each.
"""
from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks import run_suite, suite_main
from benchmarks.store import EMBEDDER, make_gems_file

from core.access import SYSTEM
from core.engine.fitting import fit_decay
from core.store import Store, lattice_history
from core.store import txlog
from core.store.snapshot_file import Snapshot

LATTICE = "bench"


def best_of(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """(best wall time in seconds, result of the last run) of ``repeat`` runs."""
    times, out = [], None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def build_history(store: Store, path: Path, seed: int = 1) -> None:
    """Import ``path`` as lattice ``bench`` and give it a short history (see the module doc)."""
    store.import_path(LATTICE, path, SYSTEM, embedder=EMBEDDER)
    ids = store.load(LATTICE).lattice.ids
    rng = np.random.default_rng(seed)
    for _ in range(6):
        store.advance(LATTICE, 2.0, SYSTEM)
        store.observe(LATTICE, [str(g) for g in rng.choice(ids, 10, replace=False)], SYSTEM)
    store.update_gem(LATTICE, ids[3], SYSTEM, coherence=0.5)
    for _ in range(3):
        store.advance(LATTICE, 1.0, SYSTEM)


def snapshot_of(lat, params: dict) -> Snapshot:
    """The lattice as a snapshot file holds it (gems as dicts), in memory: what restore
    verification and point-in-time recovery replay from."""
    gems = [{"id": g, "seq": k + 1, "archived": False, "energy": e, "phase": p, "coherence": c, "uncertainty": u}
            for k, (g, e, p, c, u) in enumerate(zip(lat.ids, lat.energy.tolist(), lat.phase.tolist(),
                                                    lat.coherence.tolist(), lat.uncertainty.tolist()))]
    i, j, w = lat.edge_arrays()
    edges = [{"source": lat.ids[a], "target": lat.ids[b], "weight": x} for a, b, x in zip(i, j, w.tolist())]
    return Snapshot({}, {"params": params, "t": lat.t}, gems, np.zeros((len(gems), 0), np.float32), edges, "")


def bench_history_replay(quick: bool) -> dict:
    n = 10_000 if quick else 100_000
    with tempfile.TemporaryDirectory(prefix="lattice-bench-history-") as d:
        path = make_gems_file(Path(d) / "gems.jsonl", n)
        with Store.open(f"sqlite:///{Path(d) / 'history.db'}") as store:
            t0 = time.perf_counter()
            build_history(store, path)
            setup_s = time.perf_counter() - t0
            store.load(LATTICE)  # warm the database's page cache for every timing below
            t_load, loaded = best_of(lambda: store.load(LATTICE))
            t_hist, hist = best_of(lambda: lattice_history(store, LATTICE))

            def fit_from_log():  # the page's: followed gems' coherence and energy per stretch, λ fitted
                obs = lattice_history(store, LATTICE).decay
                return fit_decay(obs["t"], obs["coherence"], obs["gem"], energy=obs["energy"])

            t_fit, fit = best_of(fit_from_log)
            snap = snapshot_of(loaded.lattice, loaded.lattice.params.to_dict())
            t_snap, _ = best_of(lambda: txlog.replay_state(snap).lattice())
    return {"name": "history_replay", "gems": n, "log_entries": hist.entries, "load_s": t_load,
            "history_s": t_hist, "history_vs_load": t_hist / t_load, "decay_fit_s": t_fit,
            "decay_fit_vs_load": t_fit / t_load, "lambda_fit": float(fit.lambda_),
            "lambda_true": float(loaded.lattice.params.lambda_), "decay_points": int(fit.n_points),
            "snapshot_replay_s": t_snap, "snapshot_replay_vs_load": t_snap / t_load, "setup_s": setup_s,
            "target": "history and decay fit within a few loads"}


BENCHMARKS = {
    "history_replay": bench_history_replay,
}


def run_all(quick: bool = False, only: list[str] | None = None, log: Callable[[str], None] | None = print) -> list[dict]:
    return run_suite(BENCHMARKS, quick, only, log)


if __name__ == "__main__":
    raise SystemExit(suite_main(BENCHMARKS, "python -m benchmarks.history", __doc__.splitlines()[0]))
