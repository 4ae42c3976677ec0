"""``python -m core search`` (issue 13): the ranking with every score term, read only, at any
later time; and the import options of issue 13 (--preset, --clock, --format chat)."""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.access import SYSTEM
from core.cli import search as search_cli
from core.cli.store import PRESETS
from core.engine import PRESET_NAMES
from core.store import Store
from tests.store.conftest import write_jsonl


def run_search(monkeypatch, capsys, url: str, *argv: str) -> tuple[int, str, str]:
    """The search command on a parser of its own (the lead registers it in core/cli/parser.py)."""
    from core.errors import LatticeError
    monkeypatch.setenv("LATTICE_DATABASE_URL", url)
    parser = argparse.ArgumentParser(prog="python -m core")
    search_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["search", *argv])
    try:
        code = args.handler(args)
    except LatticeError as exc:
        print(f"error: {exc}", file=sys.stderr)  # as core.cli.parser.main reports it
        code = 2
    out, err = capsys.readouterr()
    return code, out, err


def _files(url: str) -> dict[str, str]:
    path = Path(url.removeprefix("sqlite:///"))
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in path.parent.glob(path.name + "*") if p.is_file()}


@pytest.fixture
def memory(sqlite_url, tmp_path):
    now = datetime.now(timezone.utc)
    rows = [{"id": "trip", "title": "Lisbon trip", "content": "We planned the trip to Lisbon in May",
             "created_at": (now - timedelta(days=90)).isoformat()},
            {"id": "tram", "content": "Book the tram tour in Lisbon", "created_at": (now - timedelta(days=60)).isoformat()},
            {"id": "cake", "content": "The lemon cake recipe needs two eggs", "created_at": now.isoformat()}]
    with Store.open(sqlite_url) as store:
        store.import_path("mem", write_jsonl(tmp_path / "h.jsonl", rows), SYSTEM, preset="memory")
        store.create_lattice("wall", SYSTEM, clock="wall")
        store.add_gem("wall", SYSTEM, "Lisbon has yellow trams", id="w1")
    return sqlite_url


def test_search_prints_every_score_term_and_changes_nothing(monkeypatch, capsys, memory):
    with Store.open(memory) as store:
        versions = {n: store.load_stored(n).version for n in ("mem", "wall")}
        logs = {n: len(store.transactions(n)) for n in ("mem", "wall")}
    files = _files(memory)
    code, out, err = run_search(monkeypatch, capsys, memory, "trip to Lisbon", "--lattice", "mem", "--json")
    assert code == 0, err
    gems = json.loads(out)
    assert [g["gem_id"] for g in gems][:2] == ["trip", "tram"] and gems[0]["title"] == "Lisbon trip"
    assert gems[0]["rank"] == 1 and {"similarity", "coherence", "resonance", "score"} <= set(gems[0])
    code, out, _ = run_search(monkeypatch, capsys, memory, "trip to Lisbon", "--lattice", "mem")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("lattice 'mem' at t=") and "scoring floor" in lines[0]
    assert lines[1].split()[:2] == ["rank", "gem_id"] and lines[1].split()[-1] == "title"
    assert {"similarity", "coherence", "score"} <= set(lines[1].split())
    assert lines[2].split()[:2] == ["1", "trip"] and lines[2].endswith("Lisbon trip")
    code, out, err = run_search(monkeypatch, capsys, memory, "yellow trams", "--lattice", "wall", "--json")
    assert code == 0 and json.loads(out)[0]["gem_id"] == "w1"
    assert _files(memory) == files  # not a byte of the database (or its WAL) changed
    with Store.open(memory) as store:
        assert {n: store.load_stored(n).version for n in ("mem", "wall")} == versions
        assert {n: len(store.transactions(n)) for n in ("mem", "wall")} == logs  # no catch-up, no observe


def test_search_at_a_later_time_ranks_the_lattice_as_it_will_be(monkeypatch, capsys, memory):
    _, now_out, _ = run_search(monkeypatch, capsys, memory, "Lisbon", "--lattice", "mem", "--json", "--k", "3")
    with Store.open(memory) as store:
        info = store.load_stored("mem").info
    later = (info.wall_time(info.t) + timedelta(days=14)).isoformat()
    for at in (str(info.t + 14 * 24), later):
        code, out, err = run_search(monkeypatch, capsys, memory, "Lisbon", "--lattice", "mem", "--json", "--at", at)
        assert code == 0, err
        now_c = {g["gem_id"]: g["coherence"] for g in json.loads(now_out)}
        later_c = {g["gem_id"]: g["coherence"] for g in json.loads(out)}
        assert later_c["trip"] == pytest.approx(now_c["trip"] * 0.25, rel=1e-6)  # two half-lives on
    code, out, err = run_search(monkeypatch, capsys, memory, "Lisbon", "--lattice", "mem", "--at", "now", "--k", "1",
                                "--json")
    assert code == 0 and len(json.loads(out)) == 1
    for at, message in ((str(info.t - 1), "before the lattice clock"), ("2026-01-01T00:00:00", "no time zone"),
                        ("soon", "ISO 8601")):
        code, _, err = run_search(monkeypatch, capsys, memory, "Lisbon", "--lattice", "mem", "--at", at)
        assert code == 2 and message in err
    code, _, err = run_search(monkeypatch, capsys, memory, "Lisbon", "--lattice", "mem", "--k", "0")
    assert code == 2 and "k" in err
    code, _, err = run_search(monkeypatch, capsys, memory, "Lisbon", "--lattice", "ghost")
    assert code == 2 and "unknown lattice 'ghost'" in err


def test_the_cli_presets_are_the_engines():
    assert PRESETS == PRESET_NAMES


def test_import_with_preset_clock_and_chat_format(cli, tmp_path):
    now = datetime.now(timezone.utc)
    chat = write_jsonl(tmp_path / "talk.jsonl", [
        {"time": (now - timedelta(days=3)).isoformat(), "speaker": "ana", "text": "hello there", "session": "s"},
        {"time": now.isoformat(), "speaker": "bo", "text": "hi ana", "session": "s"}])
    out = cli.json("import", str(chat), "--lattice", "talk", "--preset", "memory")
    assert out["imported"] == 2 and out["lattice"] == "talk"
    info = cli.json("lattices")[0]
    assert info["preset"] == "memory" and info["t"] == pytest.approx(72.0, abs=1e-3)
    code, _, err = cli("import", str(chat), "--lattice", "talk", "--preset", "archive")
    assert code == 2 and "already exists with preset 'memory', not 'archive'" in err
    rows = write_jsonl(tmp_path / "rows.jsonl", [{"content": "a", "time": now.isoformat()}])
    code, _, err = cli("import", str(rows), "--lattice", "forced", "--format", "chat")
    assert code == 2 and "field 'content'" in err
    gems = write_jsonl(tmp_path / "gems.jsonl", [{"content": "a gem", "created_at": now.isoformat()}])
    assert cli.json("import", str(gems), "--lattice", "live", "--clock", "wall", "--format", "gems")["imported"] == 1
    live = {i["name"]: i for i in cli.json("lattices")}["live"]
    assert live["clock"] == "wall" and live["preset"] == "memory"


def test_an_empty_search_names_the_real_cause(cli, tmp_path):
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    rows = [{"id": f"g{i}", "content": f"the lighthouse keeper kept the lamp burning {i}",
             "created_at": (now - timedelta(days=30 - i)).isoformat()} for i in range(3)]
    path = tmp_path / "old.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert cli("import", str(path), "--lattice", "old", "--preset", "seed")[0] == 0
    assert cli("simulate", "--lattice", "old", "--t", "48")[0] == 0
    code, out, err = cli("search", "lighthouse keeper lamp", "--lattice", "old")
    assert code == 0 and "no gem returned" in out and "decay has brought their coherence" in out
    assert "raise the half-life (now 42 min)" in out
