"""Hostile and damaged snapshot files (issue 11, items 2, 3, 5 and 7): every one is refused with
a SnapshotError and the database is left exactly as it was; restores never move versions back.

Long file: one section per hostile-file family (damaged bytes, zip bombs, versions, forged
fields), all on the same snapshot fixture and the same re-signing helper."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import struct
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.access import SYSTEM
from core.cli import main
from core.errors import LatticeError
from core.store import ConflictError, SnapshotError, Store
from tests.store.conftest import RESEARCHER
from ui import admin

MEMBERS = ("lattice.json", "gems.jsonl", "embeddings.npy", "entanglements.jsonl")


def db_state(store: Store) -> list:
    """Everything a user sees: the lattices with their versions and every gem row."""
    out = []
    for info in store.list_lattices():
        gems = store.list_gems(info.name, archived=None)[0]
        lat = store.load(info.name).lattice
        out.append((info.name, info.version, info.t, gems.to_dict("records"),
                    [getattr(lat, s).tolist() for s in ("energy", "phase", "coherence", "uncertainty")]))
    return out


@pytest.fixture
def snap(filled, tmp_path) -> Path:
    """A real snapshot of lattice ``lab``, after which the lattice moves on (the db differs from it)."""
    path = Path(filled.backup("lab", tmp_path / "good.zip", SYSTEM)["path"])
    filled.advance("lab", 0.75, SYSTEM)
    return path


# ------------------------------------------------------------------ item 2: damaged bytes
def member_ranges(path: Path) -> list[tuple[int, int]]:
    """(start, end) of every member's compressed data in the file."""
    out = []
    with zipfile.ZipFile(path) as zf:
        raw = path.read_bytes()
        for info in zf.infolist():
            h = info.header_offset
            n, m = struct.unpack("<HH", raw[h + 26:h + 30])
            start = h + 30 + n + m
            out.append((start, start + info.compress_size))
    return out


@st.composite
def damage(draw, data: bytes, ranges: list[tuple[int, int]]) -> bytes:
    kind = draw(st.sampled_from(["flip_member", "flip_any", "truncate", "delete", "insert"]))
    if kind == "flip_member":  # inside compressed data: the raw zlib.error of the issue
        a, b = draw(st.sampled_from([r for r in ranges if r[1] > r[0]]))
        i = draw(st.integers(a, b - 1))
        return data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
    i = draw(st.integers(0, len(data) - 1))
    if kind == "flip_any":
        return data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
    if kind == "truncate":
        return data[:i]
    if kind == "delete":
        return data[:i] + data[i + draw(st.integers(1, 64)):]
    return data[:i] + draw(st.binary(min_size=1, max_size=64)) + data[i:]


def same_snapshot(a: Path, b: Path) -> bool:
    x, y = Store.verify_snapshot(a)[0], Store.verify_snapshot(b)[0]
    return (x.lattice, x.gems, x.edges) == (y.lattice, y.gems, y.edges) and np.array_equal(x.embeddings, y.embeddings)


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(data=st.data())
def test_damaged_snapshot_anywhere_is_refused_and_changes_nothing(filled, snap, tmp_path, data):
    raw = snap.read_bytes()
    bad = tmp_path / "damaged.zip"
    bad.write_bytes(data.draw(damage(raw, member_ranges(snap))))
    before = db_state(filled)
    try:
        filled.restore(bad, SYSTEM, overwrite=True)
    except SnapshotError as exc:
        assert "\n" not in str(exc)
        assert db_state(filled) == before
    else:  # only bytes nothing reads (a time stamp, an attribute) were changed
        assert same_snapshot(bad, snap)


@PROPERTY
@given(data=st.data())
def test_damaged_snapshot_through_cli_and_admin_page(filled, snap, tmp_path, db_url, monkeypatch, data):
    monkeypatch.setenv("LATTICE_DATABASE_URL", db_url)
    raw = snap.read_bytes()
    damaged = data.draw(damage(raw, member_ranges(snap)))
    bad = tmp_path / "damaged.zip"
    bad.write_bytes(damaged)
    before = db_state(filled)
    if damaged != raw:
        try:
            Store.verify_snapshot(bad)
        except SnapshotError:
            pass
        else:
            assert same_snapshot(bad, snap)
            return
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["restore", str(bad)])
    assert code == 2 and err.getvalue().startswith("error: ") and err.getvalue().count("\n") == 1
    for call in (lambda: admin.verify_upload(filled, damaged, "up.zip"),
                 lambda: admin.restore_upload(filled, damaged, "up.zip", SYSTEM)):
        with pytest.raises(LatticeError):
            call()
    assert db_state(filled) == before


def test_admin_upload_names_the_uploaded_file_whatever_its_name(filled, snap):
    data = snap.read_bytes()
    for name in ("..", "", "a/b/../c.zip"):
        assert admin.verify_upload(filled, data, name or "x.zip")["gems"] == 12
    with pytest.raises(SnapshotError) as err:
        admin.verify_upload(filled, data[:-100], "mine.zip")
    assert str(err.value).startswith("mine.zip: ") and "lattice-verify" not in str(err.value)
    assert admin.restore_upload(filled, data, "..", SYSTEM, overwrite=True)["gems"] == 12


# ------------------------------------------------------------------ item 3: zip bombs
BIG = 256 * 2**20  # unpacked size of the bomb member; the zip itself is about 0.25 MB


def bomb(path: Path, declared: int | None = None, extra: str | None = None, forge_size: bool = False,
         source: Path | None = None) -> Path:
    """A snapshot whose gems.jsonl is BIG zero bytes (written in chunks; the test stays small).
    ``declared``: the bytes the manifest claims (default: the truth); ``extra``: one more member
    name; ``forge_size``: the central directory claims ``declared`` bytes too."""
    with zipfile.ZipFile(source) as zf:
        members = {n: zf.read(n) for n in MEMBERS if n != "gems.jsonl"}
        manifest = json.loads(zf.read("manifest.json"))
    size = BIG if declared is None else declared
    manifest["files"]["gems.jsonl"] = {"sha256": "0" * 64, "bytes": size}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for n, b in members.items():
            zf.writestr(n, b)
        for name in ["gems.jsonl"] + ([extra] if extra else []):
            with zf.open(name, "w", force_zip64=False) as f:
                chunk = bytes(2**20)
                for _ in range(BIG // len(chunk)):
                    f.write(chunk)
    if forge_size:  # the central directory's uncompressed size of gems.jsonl: offset 24 of its record
        raw = bytearray(path.read_bytes())
        at = raw.index(b"PK\x01\x02", raw.index(b"gems.jsonl") + 1)  # central records follow the data
        while raw[at + 46:at + 46 + 10] != b"gems.jsonl":
            at = raw.index(b"PK\x01\x02", at + 4)
        raw[at + 24:at + 28] = struct.pack("<I", size)
        path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("case", ["honest", "manifest_lies", "directory_lies", "unexpected_member"])
def test_zip_bomb_is_refused_quickly_with_bounded_memory(filled, snap, tmp_path, monkeypatch, case):
    monkeypatch.setenv("LATTICE_SNAPSHOT_MAX_BYTES", str(64 * 2**20))
    small = 2000
    path = {"honest": lambda: bomb(tmp_path / "b.zip", source=snap),
            "manifest_lies": lambda: bomb(tmp_path / "b.zip", declared=small, source=snap),
            "directory_lies": lambda: bomb(tmp_path / "b.zip", declared=small, forge_size=True, source=snap),
            "unexpected_member": lambda: bomb(tmp_path / "b.zip", declared=small, extra="x.bin", source=snap),
            }[case]()
    assert path.stat().st_size < BIG // 100
    before = db_state(filled)
    tracemalloc.start()
    try:
        with pytest.raises(SnapshotError) as err:
            filled.restore(path, SYSTEM, overwrite=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB for a {BIG / 2**20:.0f} MiB member"
    message = str(err.value)
    assert str(path) in message and "nothing was restored" in message
    assert {"honest": "LATTICE_SNAPSHOT_MAX_BYTES", "manifest_lies": "gems.jsonl",
            "directory_lies": "gems.jsonl", "unexpected_member": "x.bin"}[case] in message
    assert db_state(filled) == before


def test_snapshot_member_names_are_checked(filled, snap, tmp_path):
    with zipfile.ZipFile(snap) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    cases = {"duplicate": list(members.items()) + [("gems.jsonl", members["gems.jsonl"])],
             "folder": list(members.items()) + [("gems.jsonl/", b"")],
             "missing": [(n, b) for n, b in members.items() if n != "lattice.json"]}
    before = db_state(filled)
    for case, items in cases.items():
        bad = tmp_path / f"{case}.zip"
        with warnings.catch_warnings(), zipfile.ZipFile(bad, "w") as zf:
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
            for n, b in items:
                zf.writestr(n, b)
        with pytest.raises(SnapshotError, match="member"):
            filled.restore(bad, SYSTEM, overwrite=True)
    assert db_state(filled) == before


# ------------------------------------------------------------------ item 5: versions never go back
def test_an_edit_form_opened_before_a_restore_is_refused_after_it(filled, tmp_path):
    g = filled.get_gem("lab", "g004")
    snap = filled.backup("lab", tmp_path / "s.zip", SYSTEM)["path"]
    filled.update_gem("lab", "g004", RESEARCHER, expected_version=g["version"], title="edited before restore")
    form = filled.get_gem("lab", "g004")  # an edit form opened now
    lattice_form = filled.info("lab").version
    filled.restore(snap, SYSTEM, overwrite=True)
    after = filled.get_gem("lab", "g004")
    assert after["version"] > form["version"] and after["state_version"] > form["state_version"]
    filled.update_gem("lab", "g004", RESEARCHER, expected_version=after["version"], title="newer edit")
    with pytest.raises(ConflictError):
        filled.update_gem("lab", "g004", RESEARCHER, expected_version=form["version"], title="stale form")
    with pytest.raises(ConflictError):
        filled.update_gem("lab", "g004", RESEARCHER, expected_state_version=form["state_version"], energy=2.0)
    with pytest.raises(ConflictError):
        filled.advance("lab", 1.0, RESEARCHER, expected_version=lattice_form)
    assert filled.get_gem("lab", "g004")["title"] == "newer edit"


def test_restored_lattice_version_is_above_the_snapshot_and_the_current_one(filled, tmp_path):
    for _ in range(5):
        filled.advance("lab", 0.1, SYSTEM)
    snap = filled.backup("lab", tmp_path / "s.zip", SYSTEM)
    filled.delete_lattice("lab", SYSTEM)
    filled.restore(snap["path"], SYSTEM, overwrite=True)  # the lattice is created again from the snapshot
    assert filled.info("lab").version > snap["version"]
    gems = filled.list_gems("lab", archived=None)[0]
    assert (gems["version"] > 1).all()


# ------------------------------------------------------------------ item 7: forged snapshots
def resign(src: Path, dst: Path, edit) -> Path:
    """A forged copy of snapshot ``src``: ``edit(lattice, gems, edges, embeddings, manifest)``
    changes the parsed content (returns new embeddings or None), and every checksum is recomputed."""
    with zipfile.ZipFile(src) as zf:
        lattice = json.loads(zf.read("lattice.json"))
        gems = [json.loads(line) for line in zf.read("gems.jsonl").decode().splitlines()]
        edges = [json.loads(line) for line in zf.read("entanglements.jsonl").decode().splitlines()]
        emb = np.load(io.BytesIO(zf.read("embeddings.npy")))
        manifest = json.loads(zf.read("manifest.json"))
    new = edit(lattice, gems, edges, emb, manifest)
    emb = emb if new is None else new
    buf = io.BytesIO()
    np.save(buf, emb, allow_pickle=False)
    blobs = {"lattice.json": json.dumps(lattice).encode(),
             "gems.jsonl": "".join(json.dumps(g) + "\n" for g in gems).encode(),
             "embeddings.npy": buf.getvalue(),
             "entanglements.jsonl": "".join(json.dumps(e) + "\n" for e in edges).encode()}
    manifest["files"] = {n: {"sha256": hashlib.sha256(b).hexdigest(), "bytes": len(b)} for n, b in blobs.items()}
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for n, b in blobs.items():
            zf.writestr(n, b)
    return dst


def _gem(k, **values):
    def edit(lattice, gems, edges, emb, manifest):
        for key, v in values.items():
            if v is KeyError:
                del gems[k][key]
            else:
                gems[k][key] = v
    return edit


def _all(fn):
    def edit(lattice, gems, edges, emb, manifest):
        for g in gems:
            fn(g)
    return edit


def _lat(**values):
    def edit(lattice, gems, edges, emb, manifest):
        for key, v in values.items():
            if v is KeyError:
                del lattice[key]
            else:
                lattice[key] = v
    return edit


def _edges(fn):
    def edit(lattice, gems, edges, emb, manifest):
        fn(edges)
    return edit


def _emb(fn):
    def edit(lattice, gems, edges, emb, manifest):
        return fn(emb)
    return edit


FORGERIES = {
    "unknown_embedder": _lat(embedder="no-such-embedder"),
    "dim_mismatch": _lat(dim=64),  # embeddings (and the embedder) have another dimension
    "emb_and_dim_mismatch_embedder": lambda la, g, e, emb, m: (la.update(dim=32), np.zeros((len(g), 32), "<f4"))[1],
    "clock_huge": _lat(t=1e296),
    "clock_negative": _lat(t=-5.0),
    "clock_string": _lat(t="0"),
    "clock_kind": _lat(clock="sundial"),
    "time_unit": _lat(time_unit="fortnight"),
    "params_bad": _lat(params={"lambda_": -1.0}),
    "params_not_dict": _lat(params=[1, 2]),
    "name_bad": _lat(name="base\n"),
    "version_string": _lat(version="7"),
    "version_negative": _lat(version=-3),
    "last_tx_bad": _lat(last_tx_id=1.5),
    "missing_lattice_field": _lat(dim=KeyError),
    "lattice_not_dict": lambda la, g, e, emb, m: la.clear() or la.update({"x": 1}),
    "state_nan": _gem(2, phase=float("nan")),
    "state_inf": _gem(2, energy=float("inf")),
    "energy_zero": _gem(2, energy=0.0),
    "energy_negative": _gem(2, energy=-1.0),
    "coherence_string": _gem(2, coherence="0.5"),
    "uncertainty_bool": _gem(2, uncertainty=True),
    "missing_energy": _gem(2, energy=KeyError),
    "missing_content": _gem(2, content=KeyError),
    "missing_archived": _gem(2, archived=KeyError),
    "missing_seq": _gem(2, seq=KeyError),
    "unknown_field": _gem(2, colour="red"),
    "id_int": _gem(2, id=5),
    "id_empty": _gem(2, id=""),
    "tags_string": _gem(2, tags="a;b"),
    "title_int": _gem(2, title=3),
    "archived_string": _gem(2, archived="no"),
    "seq_string": _gem(2, seq="2"),
    "seq_float": _gem(2, seq=2.5),
    "version_float": _gem(2, version=1.5),
    "state_version_zero": _gem(2, state_version=0),
    "last_observed_string": _gem(2, last_observed="yesterday"),
    "gem_not_dict": lambda la, g, e, emb, m: g.__setitem__(2, [1, 2]),
    "duplicate_id": _gem(3, id="g002"),
    "duplicate_seq": _gem(3, seq=2),
    "edge_unknown": _edges(lambda es: es.append({"source": "g000", "target": "ghost", "weight": 0.5})),
    "edge_weight_zero": _edges(lambda es: es.append({"source": "g003", "target": "g004", "weight": 0.0})),
    "edge_weight_nan": _edges(lambda es: es.append({"source": "g003", "target": "g004", "weight": float("nan")})),
    "edge_weight_string": _edges(lambda es: es.append({"source": "g003", "target": "g004", "weight": "0.5"})),
    "edge_self": _edges(lambda es: es.append({"source": "g003", "target": "g003", "weight": 0.5})),
    "edge_duplicate": _edges(lambda es: es.append({"source": "g001", "target": "g000", "weight": 0.5})),
    "edge_missing_field": _edges(lambda es: es.append({"source": "g003", "target": "g004"})),
    "edge_not_dict": _edges(lambda es: es.append([1, 2, 3])),
    "emb_nan": _emb(lambda emb: np.full_like(emb, np.nan)),
    "emb_rows": _emb(lambda emb: emb[:-1]),
    "emb_dtype": _emb(lambda emb: emb.astype("<f8")),
    "manifest_gem_count": lambda la, g, e, emb, m: m.update(gems=len(g) + 3),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_snapshot_with_valid_checksums_is_refused(filled, snap, tmp_path, forgery):
    forged = resign(snap, tmp_path / "forged.zip", FORGERIES[forgery])
    before = db_state(filled)
    with pytest.raises(SnapshotError) as err:
        Store.verify_snapshot(forged)
    assert "nothing was restored" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(SnapshotError):
        filled.restore(forged, SYSTEM, overwrite=True)
    with pytest.raises(SnapshotError):
        filled.restore(forged, SYSTEM, name="elsewhere")
    assert db_state(filled) == before


def test_unusual_but_valid_snapshots_restore_to_a_working_lattice(filled, snap, tmp_path):
    """All gems archived is a state the store itself produces: it restores, and the lattice
    works (advance, unarchive). Text with U+2028 or NEL is one gem line, not two."""
    forged = resign(snap, tmp_path / "archived.zip", _all(lambda g: g.update(archived=True)))
    filled.restore(forged, SYSTEM, name="shelf")
    assert len(filled.load("shelf").lattice) == 0
    filled.advance("shelf", 1.0, SYSTEM)
    filled.restore_gem("shelf", "g003", SYSTEM)
    assert filled.load("shelf").lattice.ids == ["g003"]
    text = "line\u2028separator\x85next\u2029para"
    filled.add_gem("lab", SYSTEM, text, id="odd")
    path = filled.backup("lab", tmp_path / "odd.zip", SYSTEM)["path"]
    filled.restore(path, SYSTEM, name="odd")
    assert filled.get_gem("odd", "odd")["content"] == text


def test_resigned_but_unchanged_snapshot_restores(filled, snap, tmp_path):
    """The forging helper itself is sound: a re-signed copy with no change restores."""
    forged = resign(snap, tmp_path / "same.zip", lambda *a: None)
    filled.restore(forged, SYSTEM, overwrite=True)
    assert math.isclose(filled.info("lab").t, Store.verify_snapshot(snap)[0].lattice["t"])
