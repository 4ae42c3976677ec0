"""Pure helpers of stage 2: the log replay behind the Metrics chart, upload staging, tables.

(Lives in tests/ui because this stage owns only tests/ui and tests/browser.)
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest

from core.access import SYSTEM
from core.service import ensure_demo
from core.errors import LatticeError
from core.store import lattice_history
from core.store import Store
from ui.admin import log_table
from ui.gems import parse_tags, stage_uploads


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'h.db'}")
    ensure_demo(s)
    yield s
    s.close()


def test_history_replays_the_log_to_the_stored_state(store, tmp_path):
    store.advance("demo", 2.0, SYSTEM)
    store.observe("demo", ["wave-decoherence", "sync-kuramoto-model"], SYSTEM)
    store.archive_gem("demo", "rag-bm25", SYSTEM)
    store.advance("demo", 1.5, SYSTEM)
    h = lattice_history(store, "demo")
    assert h.stopped_at is None and h.entries == len(store.transactions("demo"))
    assert h.frame["kind"].tolist() == ["create_lattice", "import", "evolve", "observe", "archive", "evolve"]
    last = h.frame.iloc[-1]
    s = store.load("demo").lattice.summary()
    assert last["gems"] == s["gems"] == 167 and last["lattice_t"] == pytest.approx(3.5)
    assert last["mean_coherence"] == pytest.approx(s["mean_coherence"], rel=1e-12)
    assert last["R"] == pytest.approx(s["R"], rel=1e-9)
    # a restore continues from the snapshot it restored
    snap = store.backup("demo", tmp_path, SYSTEM)
    store.advance("demo", 1.0, SYSTEM)
    store.restore(snap["path"], SYSTEM)
    h = lattice_history(store, "demo")
    assert h.stopped_at is None and h.frame["kind"].iloc[-1] == "restore"
    assert h.frame["mean_coherence"].iloc[-1] == pytest.approx(store.load("demo").lattice.summary()["mean_coherence"])
    thin = lattice_history(store, "demo", max_points=3)
    assert len(thin.frame) == 3 and thin.frame["entry"].iloc[-1] == h.frame["entry"].iloc[-1]


@dataclass
class Up:
    name: str
    data: bytes

    def getvalue(self) -> bytes:
        return self.data


def _zip(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)
    return buf.getvalue()


def test_stage_uploads_accepts_the_supported_shapes():
    s = stage_uploads([Up("g.jsonl", b"{}"), Up("g.entanglements.csv", b"source,target,weight\n")])
    assert s.path.name == "g.jsonl" and s.edges.name == "g.entanglements.csv"
    s.cleanup()
    assert not s.path.exists()
    s = stage_uploads([Up("notes.zip", _zip({"a/x.md": "# X\n\nx", "b.txt": "y", "__MACOSX/._a": "junk"}))])
    assert s.path.is_dir() and sorted(p.name for p in s.path.rglob("*") if p.is_file()) == ["b.txt", "x.md"]
    s.cleanup()


@pytest.mark.parametrize("files, message", [
    ([], "at least one file"),
    ([Up("a.jsonl", b""), Up("b.csv", b"")], "one JSONL/CSV file at a time"),
    ([Up("a.jsonl", b""), Up("b.md", b"")], "not both"),
    ([Up("a.pdf", b"")], "unsupported file"),
    ([Up("x.zip", b"not a zip")], "not a readable zip"),
    ([Up("x.zip", _zip({"../../etc/passwd.md": "x"}))], "unsafe path"),
    ([Up("g.entanglements.csv", b"")], "needs its JSONL/CSV"),
])
def test_stage_uploads_refuses_bad_uploads_clearly(files, message):
    with pytest.raises(LatticeError, match=message):
        stage_uploads(files)


def test_small_helpers(store):
    assert parse_tags(" a, b;c ,, ") == ["a", "b", "c"]
    table = log_table(store.transactions("demo"))
    assert table["kind"].tolist() == ["import", "create_lattice"]  # newest first
    assert table["gems"].tolist() == [168, 0] and "(+163)" in table["gem ids"].iloc[0]
    assert np.all(table["after"].str.len() <= 161)
