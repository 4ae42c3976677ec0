"""The shipped demo lattice: ``data/demo/gems.jsonl``, ``data/demo/entanglements.csv`` and
``data/demo/params.json`` (its parameters).

Real, readable gems on seven related topics (synchronization, memory and forgetting,
retrieval-augmented generation, wave interference, exponential decay, databases,
astronomy and timekeeping) with a spread of energies and phases and some entanglements.
The demo runs under the ``memory`` preset (half-lives of days), so that the README's
examples and a day of playing leave it answering on topic (tests/service/test_demo_alive.py);
under the seed's parameters it fades to nothing within hours.
"""
from __future__ import annotations

import csv
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from core.access import SYSTEM, Actor, Permission, require
from core.errors import LatticeError
from core.paths import DATA_DIR
from core.engine.lattice import Lattice
from core.engine.params import LatticeParams, apply_settings

DEMO_DIR = DATA_DIR / "demo"
DEMO_NAME = "demo"
PARAMS_FILE = "params.json"
_RACE_CHECKS, _RACE_PAUSE_S = 50, 0.1  # how long a loser of the creation race waits for the winner's commit (5 s)


def demo_params(demo_dir: Path = DEMO_DIR) -> LatticeParams:
    """The demo's parameters: ``settings`` of ``params.json`` (names and values as for
    ``--set``: ``preset``, ``half_life`` or any parameter) over the defaults; the defaults
    when a demo folder has no such file. A malformed file is a LatticeError naming it."""
    path = Path(demo_dir) / PARAMS_FILE
    if not path.exists():
        return LatticeParams()
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))["settings"]
        if not isinstance(settings, dict):
            raise TypeError("settings must be an object")
        return apply_settings(LatticeParams(), settings)
    except (ValueError, KeyError, TypeError, LatticeError) as exc:
        raise LatticeError(f"{path}: not valid demo parameters ({exc}); expected "
                           '{"settings": {"preset": "memory"}}') from None


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
    """Build the demo :class:`Lattice` (ids = gem ids) and return it with its records.
    ``params``: default the demo's own (:func:`demo_params`)."""
    gems, edges = load_demo_records(demo_dir)
    lattice = Lattice(gems["energy"], gems["phase"], gems["coherence"], gems["uncertainty"],
                      params=params if params is not None else demo_params(demo_dir), ids=gems["id"].tolist())
    position = {gid: i for i, gid in enumerate(gems["id"])}
    lattice.set_edges(edges["source"].map(position), edges["target"].map(position), edges["weight"])
    return lattice, gems


def _create_if_missing(store) -> bool:
    """Import the shipped demo as a new lattice; False when a concurrent caller created it first.

    The loser of the race fails inside the store with a ConflictError (the unique name, or the
    look-alike check seeing the winner's committed row) or, on SQLite, a busy database; any
    such LatticeError after which the demo exists means it was created concurrently. An error
    after which it still does not exist (bad demo files, the database down) is raised as it is.
    """
    try:
        store.import_path(DEMO_NAME, DEMO_DIR / "gems.jsonl", SYSTEM, edges=DEMO_DIR / "entanglements.csv",
                          params=demo_params())
        return True
    except LatticeError:
        for _ in range(_RACE_CHECKS):  # the winner's commit may land just after our failure
            try:
                if store.exists(DEMO_NAME):
                    return False
            except LatticeError:
                pass  # still busy: look again
            time.sleep(_RACE_PAUSE_S)
        raise


def ensure_demo(store, rebuild: bool = False, actor: Actor | None = None) -> bool:
    """Load the shipped demo into ``store`` as lattice "demo", with its parameters; False
    if it was already there and ``rebuild`` is off.

    ``rebuild=True`` replaces an existing demo with the shipped one: ``actor`` (default: the
    system) needs the edit permission, and the reset is audited (``demo.reset``, naming who
    asked). The shipped demo is built in a scratch store and *restored* over the existing one
    (a verified snapshot, one transaction): the lattice keeps its row, its log (a ``restore``
    entry is appended) and a version that keeps rising, so no cache anywhere (the lattice and
    resonance caches of every node, keyed by version) can mistake the new demo for the old one
    at a repeated version number, as a delete and re-import could.

    Safe when several processes start together on an empty database (API nodes, app nodes):
    each tries to create the demo, one wins, and for the others "someone else created it just
    now" is success (False: not created by this call), not an error. The import is one
    transaction, so a demo that exists is a whole one.
    """
    if not store.exists(DEMO_NAME):
        return _create_if_missing(store)
    if not rebuild:
        return False
    who = actor or SYSTEM
    require(who, Permission.EDIT, "reset the demo lattice")
    old = store.info(DEMO_NAME)
    from core.store import Store  # the scratch store: a private SQLite file
    with tempfile.TemporaryDirectory(prefix="demo-reset-") as tmp:
        scratch = Store.open(f"sqlite:///{Path(tmp) / 'demo.db'}")
        try:
            report = scratch.import_path(DEMO_NAME, DEMO_DIR / "gems.jsonl", SYSTEM,
                                         edges=DEMO_DIR / "entanglements.csv", params=demo_params(),
                                         embedder=old.embedder)
            scratch.backup(DEMO_NAME, Path(tmp) / "demo.zip", SYSTEM)
        finally:
            scratch.close()
        store.restore(Path(tmp) / "demo.zip", SYSTEM, overwrite=True)  # admin-only: the system does it
    store.audit(SYSTEM, "demo.reset", DEMO_NAME, {"requested_by": who.name, "role": who.role.value,
                                                  "old_version": old.version, "old_t": old.t,
                                                  "gems": report.imported})
    return True
