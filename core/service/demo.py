"""The shipped demo lattice: ``data/demo/gems.jsonl`` and ``data/demo/entanglements.csv``.

Real, readable gems on seven related topics (synchronization, memory and forgetting,
retrieval-augmented generation, wave interference, exponential decay, databases,
timekeeping) with a spread of energies and phases and some entanglements.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd

from core.access import SYSTEM

from core.errors import LatticeError
from core.paths import DATA_DIR
from core.engine.lattice import Lattice
from core.engine.params import LatticeParams

DEMO_DIR = DATA_DIR / "demo"
DEMO_NAME = "demo"


def load_demo_records(demo_dir: Path = DEMO_DIR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The demo gems (one row each) and entanglements (source, target, weight)."""
    gems_path, edges_path = demo_dir / "gems.jsonl", demo_dir / "entanglements.csv"
    if not gems_path.exists():
        raise LatticeError(f"demo data not found at {gems_path}; is the repository complete?")
    with gems_path.open(encoding="utf-8") as fh:
        gems = pd.DataFrame([json.loads(line) for line in fh if line.strip()])
    with edges_path.open(encoding="utf-8", newline="") as fh:
        edges = pd.DataFrame(list(csv.DictReader(fh)), columns=["source", "target", "weight"])
    edges["weight"] = edges["weight"].astype(float)
    return gems, edges


def load_demo_lattice(params: LatticeParams | None = None, demo_dir: Path = DEMO_DIR) -> tuple[Lattice, pd.DataFrame]:
    """Build the demo :class:`Lattice` (ids = gem ids) and return it with its records."""
    gems, edges = load_demo_records(demo_dir)
    lattice = Lattice(gems["energy"], gems["phase"], gems["coherence"], gems["uncertainty"],
                      params=params, ids=gems["id"].tolist())
    position = {gid: i for i, gid in enumerate(gems["id"])}
    lattice.set_edges(edges["source"].map(position), edges["target"].map(position), edges["weight"])
    return lattice, gems


def ensure_demo(store, rebuild: bool = False) -> bool:
    """Load the shipped demo into ``store`` as lattice "demo"; False if it was already there."""
    if store.exists(DEMO_NAME):
        if not rebuild:
            return False
        store.delete_lattice(DEMO_NAME, SYSTEM)
    store.import_path(DEMO_NAME, DEMO_DIR / "gems.jsonl", SYSTEM, edges=DEMO_DIR / "entanglements.csv")
    return True
