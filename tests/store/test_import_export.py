"""Bulk import (JSONL, CSV, Markdown folders): all-or-nothing, skip-bad, round trip through export."""
from __future__ import annotations

import json
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.access import SYSTEM
from core.errors import LatticeError
from core.store import ImportFailed, Store
from tests.store.conftest import RESEARCHER, write_jsonl


def _nothing_written(store, name="lab", gems=None):
    if gems is None:
        assert not store.exists(name)
    else:
        assert store.list_gems(name, archived=None)[1] == gems


BAD_JSONL = [
    ('{"id": "a", "content": "ok"}\n{"id": "b", "content": ', 2, "-", "malformed JSON"),
    ('{"id": "a", "title": "no content"}', 1, "content", "missing"),
    ('{"id": "a", "content": "x", "energy": "high"}', 1, "energy", "expected a number"),
    ('{"id": "a", "content": "x", "coherence": true}', 1, "coherence", "expected a number"),
    ('{"id": "a", "content": "x", "phase": NaN}', 1, "phase", "finite"),
    ('{"id": "a", "content": "x", "energy": Infinity}', 1, "energy", "finite"),
    ('{"id": "a", "content": "x", "energy": 0}', 1, "energy", "energy must be"),
    ('{"id": "a", "content": "x", "coherence": 1.2}', 1, "coherence", "[0, 1]"),
    ('{"id": "a", "content": "x", "uncertainty": -0.1}', 1, "uncertainty", "[0, 1]"),
    ('{"id": "a", "content": "x"}\n{"id": "a", "content": "y"}', 2, "id", "duplicate id 'a'"),
    ('{"id": "a", "content": "x", "tags": [1, 2]}', 1, "tags", "list of strings"),
    ('{"id": "a", "contnet": "x"}', 1, "contnet", "unknown field"),
    ('[1, 2]', 1, "-", "JSON object"),
    ('{"id": ["a"], "content": "x"}', 1, "id", "expected text"),
    ('{"id": "a", "content": "x\\ud800"}', 1, "content", "lone surrogate"),
    ('{"id": "a", "content": "x\\u0000"}', 1, "content", "NUL"),
]


@pytest.mark.parametrize("text,line,field,message", BAD_JSONL)
def test_bad_jsonl_fails_whole_import_naming_file_line_field(sqlite_url, tmp_path, text, line, field, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "ok1", "content": "fine"}\n' + text + "\n")
    with Store.open(sqlite_url) as store:
        with pytest.raises(ImportFailed) as err:
            store.import_path("lab", path, RESEARCHER)
        msg = str(err.value)
        assert str(path) in msg and f"line {line + 1}" in msg and f"field {field!r}" in msg and message in msg
        _nothing_written(store)


def test_bad_rows_in_existing_lattice_write_nothing(filled, tmp_path):
    v0 = filled.info("lab").version
    path = write_jsonl(tmp_path / "more.jsonl", [{"id": "n1", "content": "new"}, {"id": "g001", "content": "clash"}])
    with pytest.raises(ImportFailed, match="line 2, field 'id': gem id 'g001' already exists"):
        filled.import_path("lab", path, RESEARCHER)
    _nothing_written(filled, gems=12)
    assert filled.info("lab").version == v0
    report = filled.import_path("lab", path, RESEARCHER, skip_bad=True)
    assert report.imported == 1 and [i.line for i in report.skipped] == [2]
    assert filled.list_gems("lab")[1] == 13


def test_skip_bad_reports_each_row(sqlite_url, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"content": "good one"}\nnot json\n{"title": "x"}\n\n{"content": "good two", "energy": -1}\n'
                    '{"content": "good three", "tags": "a; b"}\n')
    with Store.open(sqlite_url) as store:
        report = store.import_path("lab", path, RESEARCHER, skip_bad=True)
        assert report.imported == 2
        assert [(i.line, i.field) for i in report.skipped] == [(2, "-"), (3, "content"), (5, "energy")]
        df, _ = store.list_gems("lab")
        assert df["tags"].iloc[1] == ["a", "b"] and df["id"].str.startswith("g-").all()


def test_csv_import_and_errors(sqlite_url, tmp_path):
    good = tmp_path / "g.csv"
    good.write_text('id,content,tags,energy,coherence\nc1,"Line one, with comma",x;y,2.5,0.5\nc2,second,,,\n')
    bad = tmp_path / "b.csv"
    bad.write_text("id,content,energy\nc1,first,1\nc2,second,abc\n")
    nocontent = tmp_path / "n.csv"
    nocontent.write_text("id,title\nc1,t\n")
    with Store.open(sqlite_url) as store:
        store.import_path("lab", good, RESEARCHER)
        g = store.get_gem("lab", "c1")
        assert (g["content"], g["tags"], g["energy"], g["coherence"]) == ("Line one, with comma", ["x", "y"], 2.5, 0.5)
        assert store.get_gem("lab", "c2")["energy"] == 1.0
        with pytest.raises(ImportFailed, match=r"b\.csv, line 3, field 'energy'"):
            store.import_path("lab2", bad, RESEARCHER)
        with pytest.raises(ImportFailed, match="no 'content' column"):
            store.import_path("lab2", nocontent, RESEARCHER)
        assert not store.exists("lab2")


def test_markdown_folder_per_file_and_per_heading(sqlite_url, tmp_path):
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("# Alpha\n\nAlpha text.\n\n# Beta\n\nBeta text.\n```\n# not a heading\n```\n")
    (folder / "sub" / "b.txt").write_text("Plain text note.\n")
    (folder / "ignored.bin").write_bytes(b"\x00\x01")
    with Store.open(sqlite_url) as store:
        r1 = store.import_path("files", folder, RESEARCHER)
        assert sorted(r1.gem_ids) == ["a", "sub/b"]
        assert store.get_gem("files", "a")["title"] == "Alpha"
        r2 = store.import_path("sections", folder, RESEARCHER, split_headings=True)
        assert r2.gem_ids == ["a#alpha", "a#beta", "sub/b"]
        beta = store.get_gem("sections", "a#beta")
        assert beta["title"] == "Beta" and "# not a heading" in beta["content"] and beta["source"] == "a.md"
        (folder / "empty.md").write_text("\n\n")
        with pytest.raises(ImportFailed, match=r"empty\.md, line 1, field 'content'"):
            store.import_path("again", folder, RESEARCHER)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_export_reimport_round_trip(store, sample_file, tmp_path, suffix):
    store.import_path("lab", sample_file, SYSTEM)
    store.advance("lab", 0.3, SYSTEM)
    store.update_gem("lab", "g004", SYSTEM, tags=["a;b", "c,d"], title='Quote " and, comma', content="x\ny")
    out = tmp_path / f"out{suffix}"
    res = store.export("lab", out)
    assert res["gems"] == 12 and res["entanglements"] == 2
    store.import_path("copy", out, SYSTEM)  # picks up out.entanglements.csv
    a, b = store.load("lab").lattice, store.load("copy").lattice
    assert a.ids == b.ids
    for name in ("energy", "phase", "coherence", "uncertainty"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.edge_arrays()[2], b.edge_arrays()[2])
    ta, tb = store.gem_texts("lab"), store.gem_texts("copy")
    assert ta.equals(tb)


def test_unknown_edge_endpoint_fails(sqlite_url, sample_file):
    sample_file.with_name("sample.entanglements.csv").write_text("source,target,weight\ng000,zzz,0.5\n")
    with Store.open(sqlite_url) as store:
        with pytest.raises(ImportFailed, match=r"line 2, field 'target': unknown gem id 'zzz'"):
            store.import_path("lab", sample_file, RESEARCHER)
        assert not store.exists("lab")


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory):
    s = Store.open(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'f.db'}")
    s.create_lattice("fuzz", SYSTEM)
    yield s
    s.close()


_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=8), st.lists(st.text(max_size=3), max_size=2))
_rows = st.dictionaries(st.sampled_from(["id", "content", "title", "tags", "energy", "phase", "coherence",
                                         "uncertainty", "extra"]), _values, max_size=6)
_lines = st.one_of(_rows.map(json.dumps), st.text(alphabet=string.printable, max_size=30))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_lines, min_size=1, max_size=5), as_csv=st.booleans())
def test_fuzzed_input_only_lattice_errors_and_no_partial_write(fuzz_store, tmp_path_factory, lines, as_csv):
    folder = tmp_path_factory.mktemp("in")
    if as_csv:
        path = folder / "f.csv"
        path.write_text("id,content,energy,tags\n" + "\n".join(lines) + "\n", encoding="utf-8")
    else:
        path = folder / "f.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = fuzz_store.list_gems("fuzz", archived=None)[1]
    try:
        report = fuzz_store.import_path("fuzz", path, SYSTEM)
    except LatticeError:
        assert fuzz_store.list_gems("fuzz", archived=None)[1] == before
    else:
        assert fuzz_store.list_gems("fuzz", archived=None)[1] == before + report.imported
        lat = fuzz_store.load("fuzz").lattice
        assert np.isfinite(lat.energy).all() and (lat.energy > 0).all()
        assert ((lat.coherence >= 0) & (lat.coherence <= 1)).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=200), kind=st.sampled_from([".jsonl", ".csv", ".md", "dir"]),
       split=st.booleans())
def test_fuzzed_bytes_never_traceback(fuzz_store, tmp_path_factory, blob, kind, split):
    folder = tmp_path_factory.mktemp("raw")
    path = folder if kind == "dir" else folder / f"f{kind}"
    (folder / "f.md" if kind == "dir" else path).write_bytes(blob)
    before = fuzz_store.list_gems("fuzz", archived=None)[1]
    try:
        report = fuzz_store.import_path("fuzz", path, SYSTEM, split_headings=split)
    except LatticeError as exc:
        assert str(exc) and fuzz_store.list_gems("fuzz", archived=None)[1] == before
    else:
        assert fuzz_store.list_gems("fuzz", archived=None)[1] == before + report.imported
