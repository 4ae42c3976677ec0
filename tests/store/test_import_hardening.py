"""Import hardening (issue 11): bounded memory, a gem size limit, byte-exact round trips through
JSONL and CSV, and CSV exports that a spreadsheet cannot run as formulas (items 4, 6 and 11)."""
from __future__ import annotations

import csv
import io
import json
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.access import SYSTEM
from core.store import ImportFailed, Store
from core.store import gem_files, transfer

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _gems(store, name):
    df, _ = store.list_gems(name, archived=None, page_size=10_000)
    return {r["id"]: store.get_gem(name, r["id"]) for _, r in df.iterrows()}


def _write_rows(path, n, with_ids=False):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            row = {"content": f"gem number {i} about waves and memory {i % 97}"}
            if with_ids:
                row["id"] = f"r{i}"
            f.write(json.dumps(row) + "\n")
    return path


def _peak_import(tmp_path, n, tag):
    path = _write_rows(tmp_path / f"rows{tag}.jsonl", n)
    with Store.open(f"sqlite:///{tmp_path / f'mem{tag}.db'}") as store:
        tracemalloc.start()
        try:
            store.import_path("lab", path, SYSTEM)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert store.info("lab").gems == n if hasattr(store.info("lab"), "gems") else True
    return peak


# ------------------------------------------------------------------ item 4: memory and size limits
def test_import_memory_does_not_grow_with_the_row_count(tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "IMPORT_BATCH_ROWS", 200, raising=False)
    small = _peak_import(tmp_path, 2_000, "s")
    large = _peak_import(tmp_path, 16_000, "l")
    assert large < 2.0 * small, (small, large)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_oversized_gem_is_refused_naming_file_line_field_and_the_limit(tmp_path, monkeypatch, fmt):
    monkeypatch.setenv("LATTICE_MAX_GEM_BYTES", "1000")
    big = "x" * 1001
    if fmt == "jsonl":
        path = tmp_path / "big.jsonl"
        path.write_text(json.dumps({"id": "ok", "content": "fine"}) + "\n" + json.dumps({"id": "b", "content": big}) + "\n")
    else:
        path = tmp_path / "big.csv"
        path.write_text(f"id,content\nok,fine\nb,{big}\n")
    with Store.open(f"sqlite:///{tmp_path / 'l.db'}") as store:
        with pytest.raises(ImportFailed) as err:
            store.import_path("lab", path, SYSTEM)
        msg = str(err.value)
        line = 2 if fmt == "jsonl" else 3  # CSV: after the header line
        assert str(path) in msg and f"line {line}," in msg and "field 'content'" in msg
        assert "1000 bytes" in msg and "LATTICE_MAX_GEM_BYTES" in msg
        assert not store.exists("lab")


def test_a_huge_line_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("LATTICE_MAX_GEM_BYTES", "1000")
    path = tmp_path / "huge.jsonl"
    path.write_text('{"id": "a", "content": "' + "y" * 200_000 + '"}\n{"id": "b", "content": "fine"}\n')
    with Store.open(f"sqlite:///{tmp_path / 'l.db'}") as store:
        with pytest.raises(ImportFailed, match=r"line 1, field 'content'.*LATTICE_MAX_GEM_BYTES"):
            store.import_path("lab", path, SYSTEM)
        assert not store.exists("lab")
        rep = store.import_path("lab", path, SYSTEM, skip_bad=True)
        assert rep.gem_ids == ["b"] and len(rep.skipped) == 1


def test_batched_import_is_still_all_or_nothing_and_skip_bad_skips_the_same_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(transfer, "IMPORT_BATCH_ROWS", 3, raising=False)
    rows = [{"id": f"a{i}", "content": f"text {i}"} for i in range(10)]
    rows[7] = {"id": "a1", "content": "duplicate of a1"}
    path = tmp_path / "dups.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "dups.entanglements.csv").write_text("source,target,weight\na0,a9,0.5\n")
    with Store.open(f"sqlite:///{tmp_path / 'l.db'}") as store:
        with pytest.raises(ImportFailed, match="line 8, field 'id': duplicate id 'a1' \\(first at line 2\\)"):
            store.import_path("lab", path, SYSTEM)
        assert not store.exists("lab")
        rep = store.import_path("lab", path, SYSTEM, skip_bad=True)
        assert rep.imported == 9 and rep.edges == 1 and len(rep.skipped) == 1
        assert store.get_gem("lab", "a1")["content"] == "text 1"
        assert len(store.transactions("lab")) >= 2


# ------------------------------------------------------------------ items 6 and 11: exact round trips
_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
_content = st.one_of(
    _text.filter(lambda s: s.strip()),
    st.builds(lambda a, b, c: a + b + c, st.sampled_from(["", " ", "\t", "\r\n", "\n ", "'", "''", "=", "+", "-",
                                                          "@", "\r", "'=", "'-1", "-1", "  =1+1"]),
              _text.filter(lambda s: s.strip()), st.sampled_from(["", " ", "\r\n", "\n\n", "\t", "'"])),
)
_title = st.one_of(st.just(""), st.sampled_from(["=cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "'quoted", "plain"]),
                   _text)
_tag = st.sampled_from(["=x", "+y", "-z", "@a", "'b", "plain", "ü"])


def _csv_cells(path):
    with open(path, encoding="utf-8", newline="") as f:
        return [cell for row in csv.reader(f) for cell in row]


def _is_number(cell):
    try:
        float(cell)
        return True
    except ValueError:
        return False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gems=st.lists(st.tuples(_content, _title, st.lists(_tag, max_size=3, unique=True)), min_size=1, max_size=6),
       fmt=st.sampled_from(["jsonl", "csv"]))
def test_export_then_import_keeps_every_gem_byte_for_byte(tmp_path_factory, gems, fmt):
    d = tmp_path_factory.mktemp("rt")
    src = d / "src.jsonl"
    src.write_text("".join(json.dumps({"id": f"=g{i}" if i % 2 else f"g{i}", "content": c, "title": t, "tags": tags,
                                       "source": "-src", "phase": -0.5 - i}) + "\n"
                           for i, (c, t, tags) in enumerate(gems)), encoding="utf-8")
    with Store.open(f"sqlite:///{d / 'l.db'}") as store:
        store.import_path("a", src, SYSTEM)
        first = _gems(store, "a")
        for i, (c, _, _) in enumerate(gems):  # the content is kept exactly as given
            assert first[f"=g{i}" if i % 2 else f"g{i}"]["content"] == c
        out = d / f"out.{fmt}"
        store.export("a", out)
        if fmt == "csv":
            for cell in _csv_cells(out):
                assert not cell.startswith(DANGEROUS) or _is_number(cell), cell
        store.import_path("b", out, SYSTEM)
        second = _gems(store, "b")
        keys = ("title", "content", "tags", "source", "energy", "phase", "coherence", "uncertainty")
        assert {k: {f: v[f] for f in keys} for k, v in first.items()} == \
               {k: {f: v[f] for f in keys} for k, v in second.items()}


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_gem_at_the_size_limit_round_trips(tmp_path, monkeypatch, fmt):
    monkeypatch.setenv("LATTICE_MAX_GEM_BYTES", str(300 * 1024))
    content = ("  line with , and \" and ü\r\n" * 12_000)[: 250 * 1024] + "\n "
    assert len(content.encode()) <= 300 * 1024 and len(content) > 128 * 1024
    src = tmp_path / "big.jsonl"
    src.write_text(json.dumps({"id": "big", "content": content}) + "\n")
    with Store.open(f"sqlite:///{tmp_path / 'l.db'}") as store:
        store.import_path("a", src, SYSTEM)
        out = tmp_path / f"out.{fmt}"
        store.export("a", out)
        store.import_path("b", out, SYSTEM)
        assert store.get_gem("b", "big")["content"] == content


@given(cell=_text)
def test_csv_cell_escaping_is_reversible_and_safe(cell):
    safe = gem_files.csv_safe(cell)
    assert not safe.startswith(DANGEROUS) or _is_number(safe)
    assert gem_files.csv_unsafe(safe) == cell


def test_a_hand_written_leading_apostrophe_is_kept(tmp_path):
    path = tmp_path / "hand.csv"
    path.write_text("id,content\na,'tis the season\nb,'=1+1\n")
    with Store.open(f"sqlite:///{tmp_path / 'l.db'}") as store:
        store.import_path("a", path, SYSTEM)
        assert store.get_gem("a", "a")["content"] == "'tis the season"
        assert store.get_gem("a", "b")["content"] == "=1+1"  # the OWASP-escaped formula, as text
