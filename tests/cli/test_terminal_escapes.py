"""Item 13: data (gem ids, titles, text, errors) never puts a control character on the terminal."""
from __future__ import annotations

import argparse
import io
import json
import re
from contextlib import redirect_stdout

from hypothesis import HealthCheck, given, settings, strategies as st

from core.cli import main
from core.cli.common import clean, emit

# C0 but newline, DEL, C1, and the bidi overrides/isolates
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
PIECES = ["\x1b[2J", "\x1b]0;pwned\x07", "\x07", "\r", "\n", "\t", "\x00", "\x7f", "\x9b", "\u202e", "\x08",
          "a", "é", " ", "gem"]
hostile = st.lists(st.sampled_from(PIECES), min_size=1, max_size=8).map("".join)


@given(st.text(), st.lists(st.text(), max_size=5))
def test_emit_text_never_prints_a_control_character(text, lines):
    with redirect_stdout(io.StringIO()) as buf:
        emit(argparse.Namespace(json=False), None, text)
        emit(argparse.Namespace(json=False), None, lines)
    out = buf.getvalue()
    assert not CONTROL.search(out)
    assert out.count("\n") == text.count("\n") + 1 + max(len(lines), 1)  # table rows stay one line each


@given(st.text())
def test_json_output_escapes_control_characters_and_round_trips(text):
    with redirect_stdout(io.StringIO()) as buf:
        emit(argparse.Namespace(json=True), {"id": text}, "")
    out = buf.getvalue()
    assert not CONTROL.search(out.replace("\n", ""))
    assert json.loads(out) == {"id": text}


def test_clean_shows_what_was_there():
    assert clean("a\x1b[31mb\x07\r\u202e") == "a\\x1b[31mb\\x07\\r\\u202e"
    assert clean("one\ntwo") == "one\ntwo" and clean("one\ntwo", newlines=False) == "one\\ntwo"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gem_id=hostile, title=hostile, content=hostile)
def test_commands_escape_hostile_gem_fields(sqlite_url, monkeypatch, capsys, tmp_path, gem_id, title, content):
    monkeypatch.setenv("LATTICE_DATABASE_URL", sqlite_url)
    src = tmp_path / "hostile.jsonl"
    src.write_text(json.dumps({"id": gem_id, "title": title, "content": f"coherence {content}",
                               "tags": [content]}) + "\n", encoding="utf-8")
    runs = [["import", str(src), "--lattice", "h", "--skip-bad"], ["log", "--lattice", "h"], ["lattices"],
            ["reflect", f"coherence {content}", "--lattice", "h", "--providers", "offline"],
            ["export", "--lattice", "h", "--out", str(tmp_path / "out.jsonl")],
            ["log", "--lattice", f"missing{gem_id}"], ["restore", str(tmp_path / f"no{content}.zip")]]
    for argv in runs:
        main(argv)
        out, err = capsys.readouterr()
        assert not CONTROL.search(out) and not CONTROL.search(err), (argv, out, err)
