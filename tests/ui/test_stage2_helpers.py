"""Pure helpers of stage 2: the log replay behind the Metrics chart, upload staging, tables.

(Lives in tests/ui because this stage owns only tests/ui and tests/browser.)
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    store.restore(snap["path"], SYSTEM, overwrite=True)  # replaces the demo (the CLI's --force)
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


# ---------------------------------------------------------------- issue 11: hostile zips, safe CSVs
def _patch_method(data: bytes, method: int) -> bytes:
    """Rewrite the compression method of every member (local and central headers)."""
    b = bytearray(data)
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        k = b.find(sig)
        while k >= 0:
            b[k + at:k + at + 2] = method.to_bytes(2, "little")
            k = b.find(sig, k + 4)
    return bytes(b)


def _forged_size_zip() -> bytes:
    """A deflated member of 8 MB whose headers declare 10 bytes."""
    data = bytearray(_zip_deflated({"big.md": "a" * 8_000_000}))
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        k = data.find(sig)
        data[k + at:k + at + 4] = (10).to_bytes(4, "little")
    return bytes(data)


def _zip_deflated(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for n, d in files.items():
            zf.writestr(n, d)
    return buf.getvalue()


def _encrypted_zip() -> bytes:
    """A member flagged as encrypted (general purpose bit 0 in both headers)."""
    b = bytearray(_zip({"secret.md": "x"}))
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        k = b.find(sig)
        b[k + at] |= 0x1
    return bytes(b)


@pytest.mark.parametrize("data, message", [
    (_encrypted_zip(), "encrypted"),
    (_patch_method(_zip({"a.md": "# A\n\nx"}), 99), "unsupported compression"),
    (_zip({"a.md": "x", "a.md/b.md": "y"}), "both a file and a folder"),
    (_zip({"/".join(["d"] * 30) + "/x.md": "x"}), "too deep"),
    (_zip({f"n{i}.md": "x" for i in range(5)}), "too many"),
    (_forged_size_zip(), "not a readable zip"),
    (_zip_deflated({"a.md": "x" * 3_000})[:-60], "not a readable zip"),
])
def test_malformed_upload_zips_are_refused_clearly(monkeypatch, data, message):
    import ui.gems as G
    monkeypatch.setattr(G, "MAX_ZIP_FILES", 4)
    with pytest.raises(LatticeError, match=message):
        stage_uploads([Up("x.zip", data)])


def test_the_unpacked_size_is_counted_while_reading(monkeypatch):
    import ui.gems as G
    monkeypatch.setattr(G, "MAX_ZIP_BYTES", 1_000_000)
    with pytest.raises(LatticeError, match="MB unpacked|not a readable zip"):
        stage_uploads([Up("x.zip", _forged_size_zip())])
    data = _zip_deflated({"a.md": "a" * 600_000, "b.md": "b" * 600_000})
    with pytest.raises(LatticeError, match="MB unpacked"):
        stage_uploads([Up("x.zip", data)])


_REAL_ZIP = _zip_deflated({"notes/a.md": "# Alpha\n\nwaves and memory " * 20, "notes/b.txt": "plain text " * 30,
                           "c.md": "# C\n\n" + "x" * 500})


@settings(max_examples=150, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, len(_REAL_ZIP) - 1), st.integers(0, 255)), min_size=1, max_size=4))
def test_any_damage_to_an_upload_zip_is_a_lattice_error_or_harmless(edits):
    data = bytearray(_REAL_ZIP)
    for at, value in edits:
        data[at] = value
    try:
        staged = stage_uploads([Up("x.zip", bytes(data))])
    except LatticeError:
        return
    staged.cleanup()


@given(cells=st.lists(st.text(max_size=12), min_size=1, max_size=8))
def test_every_csv_download_is_formula_safe(cells):
    import csv as _csv
    import pandas as pd
    from ui.tables import csv_bytes
    df = pd.DataFrame({"text": cells, "=head": cells, "num": [-1.5] * len(cells)})
    rows = list(_csv.reader(io.StringIO(csv_bytes(df).decode("utf-8"), newline="")))
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or cell == "-1.5", cell


def test_a_csv_cell_with_a_bare_carriage_return_stays_one_cell():
    import csv as _csv
    import pandas as pd
    from ui.tables import csv_bytes
    cells = ["\r\t", "a\rb", "line\nbreak", "plain"]
    rows = list(_csv.reader(io.StringIO(csv_bytes(pd.DataFrame({"text": cells})).decode("utf-8"), newline="")))
    assert rows == [["text"], ["'\r\t"], ["a\rb"], ["line\nbreak"], ["plain"]]
