"""Timestamped imports and chat transcripts (issue 13, item 1): gems created in the past enter
with the state they would have had; bad times get file:line:field errors and write nothing."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.access import SYSTEM
from core.engine import Lattice, LatticeParams, aged_states, enter_with_age, preset_params
from core.errors import ValidationError
from core.store import ImportFailed, Store
from core.store.gem_records import BadField, parse_time
from tests.store.conftest import write_jsonl

NOW = datetime.now(timezone.utc)


def iso(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def _failed(store, name, path, **kw) -> list:
    with pytest.raises(ImportFailed) as err:
        store.import_path(name, path, SYSTEM, **kw)
    return err.value.issues


def test_a_memory_from_90_days_ago_under_memory_and_under_seed(store, tmp_path):
    """Memory preset: the gem of 90 days has coherence 0.5 ** (90 / 7) (half-life 7 days at E = 1);
    seed preset: exactly the seed's c exp(-lambda_ age / E), phase and uncertainty alike."""
    rows = [{"id": "old", "content": "the lighthouse keeper", "energy": 1.0, "phase": 0.25, "coherence": 1.0,
             "uncertainty": 0.1, "created_at": iso(90)},
            {"id": "mid", "content": "a walk by the sea", "energy": 2.0, "created_at": iso(10)},
            {"id": "now", "content": "today's weather", "created_at": iso(0)}]
    path = write_jsonl(tmp_path / "h.jsonl", rows)
    for preset in ("memory", "seed"):
        store.import_path(preset, path, SYSTEM, preset=preset)
        info, lat = store.info(preset), store.load(preset).lattice
        assert info.preset == preset and info.params == preset_params(preset)
        assert info.t == pytest.approx(90 * 24)  # epoch at the oldest row, clock at the newest
        assert info.epoch.timestamp() == pytest.approx(datetime.fromisoformat(rows[0]["created_at"]).timestamp())
        times = store.gem_times(preset)
        age = info.t - times["created_t"].to_numpy()
        assert age == pytest.approx([90 * 24, 10 * 24, 0], abs=1e-6)
        ph, c, u = aged_states(np.array([1.0, 2.0, 1.0]), np.array([0.25, 0, 0]), np.ones(3), np.full(3, 0.1),
                               age, info.params)
        np.testing.assert_array_equal(lat.coherence, c)
        np.testing.assert_array_equal(lat.phase, ph)
        np.testing.assert_array_equal(lat.uncertainty, u)
        if preset == "memory":
            assert lat.coherence[0] == pytest.approx(0.5 ** (90 / 7), rel=1e-9)
            assert lat.coherence[1] == pytest.approx(0.5 ** (10 / 14), rel=1e-9)  # E = 2: twice the half-life
        else:  # the seed's formulas: lambda_ = 1 per hour, f = 1, u_rate = 0.1 per hour
            assert lat.coherence[0] == math.exp(-(1.0 * age[0]) / 1.0) == 0.0  # e^-2160 underflows to 0
            assert lat.coherence[1] == np.exp(-(1.0 * age[1]) / 2.0)
            assert lat.phase[1] == 0.0 + 2.0 * (1.0 * age[1]) and lat.uncertainty[0] == 1.0
        assert times["created_at"].tolist() == [datetime.fromisoformat(r["created_at"]) for r in rows]
        assert lat.coherence[2] == 1.0  # created now: not aged


def test_numbers_are_lattice_times_and_rows_without_time_are_created_now(store, tmp_path):
    store.create_lattice("lab", SYSTEM, params={"time_unit": "day"})
    store.advance("lab", 10.0, SYSTEM)
    info = store.info("lab")
    rows = [{"id": "a", "content": "before the epoch", "created_at": -3},
            {"id": "d", "content": "an instant", "created_at": info.wall_time(-1.5).isoformat()},
            {"id": "b", "content": "at day 4", "created_at": 4.0},
            {"id": "c", "content": "no time"}]
    store.import_path("lab", write_jsonl(tmp_path / "n.jsonl", rows), SYSTEM)
    times = store.gem_times("lab")
    assert times["created_t"].tolist() == pytest.approx([-3.0, -1.5, 4.0, 10.0])
    assert times["created_at"][0].to_pydatetime() == info.wall_time(-3.0)
    c = store.load("lab").lattice.coherence
    assert c.tolist() == pytest.approx(np.exp(-np.array([13.0, 11.5, 6.0, 0.0])).tolist(), rel=1e-12)


def test_csv_rows_carry_created_at_too(store, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(f"id,content,created_at\na,first,{iso(2)}\nb,second,{iso(1)}\n", encoding="utf-8")
    store.import_path("csv", path, SYSTEM, preset="memory")
    assert store.gem_times("csv")["created_t"].tolist() == pytest.approx([0.0, 24.0], abs=1e-6)


def test_export_and_import_round_trip_created_at_and_state(store, tmp_path):
    rows = [{"id": f"g{i}", "content": f"event {i}", "created_at": iso(20 - i)} for i in range(6)]
    store.import_path("a", write_jsonl(tmp_path / "h.jsonl", rows), SYSTEM, preset="memory")
    store.advance("a", 5.0, SYSTEM)
    for suffix in (".jsonl", ".csv"):
        out = tmp_path / f"out{suffix}"
        store.export("a", out)
        store.import_path(f"b{suffix[1:]}", out, SYSTEM, preset="memory")
        assert (store.gem_times(f"b{suffix[1:]}")["created_at"].tolist()
                == store.gem_times("a")["created_at"].tolist())
        np.testing.assert_array_equal(store.load(f"b{suffix[1:]}").lattice.coherence, store.load("a").lattice.coherence)


@pytest.mark.parametrize("bad, field, message", [
    ("ORDER", "created_at", "out of order"),  # 3 days ago: after line 1 (5 days) but before line 2 (1 day)
    ((NOW + timedelta(days=2)).isoformat(), "created_at", "in the future"),
    ("2026-03-01T12:00:00", "created_at", "no time zone; add Z"),
    ("yesterday-ish", "created_at", "is not a time"),
    (True, "created_at", "expected a time"),
])
def test_bad_times_fail_with_file_line_and_field_and_write_nothing(store, tmp_path, bad, field, message):
    rows = [{"id": "a", "content": "one", "created_at": iso(5)}, {"id": "b", "content": "two", "created_at": iso(1)},
            {"id": "c", "content": "three", "created_at": bad}]
    if bad == "ORDER":
        rows[2]["created_at"] = iso(3)
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    issues = _failed(store, "lab", path)
    assert [(i.line, i.field) for i in issues] == [(3, field)] and message in issues[0].message
    assert str(path) in str(issues[0]) and not store.exists("lab")
    report = store.import_path("lab", path, SYSTEM, skip_bad=True)  # --skip-bad skips it, reported
    assert report.imported == 2 and [(i.line, i.field) for i in report.skipped] == [(3, field)]


def test_an_existing_lattice_refuses_rows_after_its_clock(store, tmp_path):
    """A history lattice (epoch 30 days ago, clock at its last row 20 days ago): a row of 10 days
    ago is in its future, though not in wall time's."""
    history = [{"id": "h0", "content": "start", "created_at": iso(30)}, {"id": "h1", "content": "end",
                                                                         "created_at": iso(20)}]
    store.import_path("lab", write_jsonl(tmp_path / "h.jsonl", history), SYSTEM)
    version = store.version("lab")
    info = store.info("lab")
    assert info.t == pytest.approx(240.0)
    rows = [{"id": "ok", "content": "in the past", "created_at": iso(25)},
            {"id": "late", "content": "after the clock", "created_at": iso(10)},
            {"id": "num", "content": "a number after it", "created_at": 241}]
    issues = _failed(store, "lab", write_jsonl(tmp_path / "f.jsonl", rows))
    assert [(i.line, i.field) for i in issues] == [(2, "created_at"), (3, "created_at")]
    assert all("advance the lattice first or import into a new lattice" in i.message for i in issues)
    assert store.version("lab") == version and store.info("lab").gems == 2
    store.import_path("lab", write_jsonl(tmp_path / "ok.jsonl", rows[:1]), SYSTEM)
    assert store.gem_times("lab")["created_t"].tolist()[-1] == pytest.approx(120.0)


def test_state_at_and_its_checks(store, tmp_path):
    rows = [{"id": "a", "content": "x", "created_at": iso(10), "state_at": iso(2), "coherence": 0.5},
            {"id": "b", "content": "y", "created_at": iso(1), "state_at": "now", "coherence": 0.25}]
    store.import_path("lab", write_jsonl(tmp_path / "s.jsonl", rows), SYSTEM, preset="memory")
    c = store.load("lab").lattice.coherence
    assert c[0] == pytest.approx(0.5 * 0.5 ** (1 / 7), rel=1e-9) and c[1] == 0.25  # aged from state_at only
    bad = [{"id": "c", "content": "z", "created_at": iso(3), "state_at": iso(4)},
           {"id": "d", "content": "w", "state_at": iso(1)}]
    issues = _failed(store, "other", write_jsonl(tmp_path / "b.jsonl", bad))
    assert [(i.line, i.field) for i in issues] == [(1, "state_at"), (2, "state_at")]


def test_coupled_newcomers_are_replayed_in_time_order(store, tmp_path):
    params = LatticeParams(K=2.0)
    rows = [{"id": "a", "content": "first", "phase": 0.0, "created_at": 0.0},
            {"id": "b", "content": "second", "phase": 2.0, "energy": 1.5, "created_at": 0.5},
            {"id": "c", "content": "alone", "created_at": 1.0}]
    path = write_jsonl(tmp_path / "k.jsonl", rows)
    (tmp_path / "k.entanglements.csv").write_text("source,target,weight\na,b,0.8\n")
    store.create_lattice("k", SYSTEM, params=params)
    store.advance("k", 2.0, SYSTEM)
    store.import_path("k", path, SYSTEM)
    lat = store.load("k").lattice
    src = Lattice([1.0, 1.5, 1.0], [0.0, 2.0, 0.0], params=params, ids=["a", "b", "c"])
    src.set_edges([0], [1], [0.8])
    want = enter_with_age(src, np.array([0.0, 0.5, 1.0]), 2.0)
    np.testing.assert_allclose(lat.phase, want.phase, rtol=1e-12)
    np.testing.assert_array_equal(lat.coherence, want.coherence)


def test_preset_of_an_existing_lattice_must_match(store, tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"content": "x"}])
    store.import_path("lab", path, SYSTEM, preset="archive")
    assert store.info("lab").preset == "archive" and store.info("lab").params.lambda_ == 0.0
    version = store.version("lab")
    with pytest.raises(ValidationError, match="already exists with preset 'archive', not 'memory'") as err:
        store.import_path("lab", path, SYSTEM, preset="memory")
    assert err.value.field == "preset" and store.version("lab") == version
    with pytest.raises(ValidationError, match="allowed: seed, memory, archive"):
        store.import_path("new", path, SYSTEM, preset="fast")
    assert not store.exists("new")
    store.import_path("live", path, SYSTEM, clock="wall")
    assert store.info("live").clock == "wall" and store.info("live").preset == "memory"


# ------------------------------------------------------------------ chat transcripts
def _chat(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "talk.jsonl", [
        {"time": iso(40), "speaker": "ana", "text": "Shall we plan the trip to Lisbon in May this year?",
         "session": "s1"},
        {"time": iso(39.9), "speaker": "bo", "text": "Yes, and book the tram tour", "session": "s1"},
        {"time": iso(2), "speaker": "ana", "text": "Remind me of the hotel name"}])


def test_a_chat_transcript_imports_one_gem_per_message(store, tmp_path):
    path = _chat(tmp_path)
    report = store.import_path("chat", path, SYSTEM, preset="memory")
    assert report.gem_ids == ["s1-1", "s1-2", "talk-3"]
    texts = store.gem_texts("chat")
    assert texts["id"].tolist() == ["s1-1", "s1-2", "talk-3"]
    assert texts["title"][0] == "ana: Shall we plan the trip to Lisbon in..."
    assert texts["title"][1] == "bo: Yes, and book the tram tour"
    assert texts["content"][2] == "Remind me of the hotel name"
    assert texts["tags"].tolist() == [["ana", "s1"], ["bo", "s1"], ["ana", "talk"]]
    assert texts["source"].tolist() == ["talk.jsonl#s1", "talk.jsonl#s1", "talk.jsonl#talk"]
    times = store.gem_times("chat")
    assert times["created_t"].tolist() == pytest.approx([0.0, 0.1 * 24, 38 * 24], abs=1e-6)
    # the same file again under its stable ids: every row is already there
    issues = _failed(store, "chat", path)
    assert {i.field for i in issues} == {"id"}


def test_chat_rows_get_the_usual_errors_and_format_chat_forces_it(store, tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [
        {"time": iso(3), "speaker": "ana", "text": "hello"},
        {"time": iso(2), "speaker": "bo"},
        {"time": iso(1), "speaker": "ana", "text": "x", "mood": "happy"},
        {"time": "2026-01-01 10:00", "speaker": "ana", "text": "naive"},
        {"time": iso(4), "speaker": "ana", "text": "out of order"}])
    issues = _failed(store, "c", path)
    assert [(i.line, i.field) for i in issues] == [(2, "text"), (3, "mood"), (4, "created_at"), (5, "created_at")]
    assert not store.exists("c")
    gems = write_jsonl(tmp_path / "g.jsonl", [{"content": "a gem row", "time": iso(1)}])
    issues = _failed(store, "g", gems, format="chat")  # forced: a gem row is not a chat row
    assert [(i.line, i.field) for i in issues] == [(1, "content")]
    with pytest.raises(ValidationError, match="allowed: auto, gems, chat"):
        store.import_path("g", gems, SYSTEM, format="xml")
    csv = tmp_path / "c.csv"
    csv.write_text("content\nx\n")
    with pytest.raises(ValidationError, match="chat transcript is a .jsonl"):
        store.import_path("g", csv, SYSTEM, format="chat")


# ------------------------------------------------------------------ bad time strings (hypothesis)
def _valid_time(text: str) -> bool:
    stripped = text.strip()
    try:
        float(stripped)
        return stripped.lower() not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity")
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(stripped)
    except ValueError:
        return False
    return when.utcoffset() is not None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_a_time_or_a_created_at_error(text):
    """parse_time of JSON text never raises anything but BadField(created_at); CSV text that reads
    as a number is a lattice time; a naive ISO time names the missing zone."""
    for from_text in (False, True):
        try:
            value, is_iso = parse_time("created_at", text, from_text)
        except BadField as bad:
            assert bad.field == "created_at" and bad.message
            continue
        assert math.isfinite(value)
        assert is_iso or from_text  # a JSON string is never a number
        assert _valid_time(text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=30).filter(lambda s: not _valid_time(s)),
                 st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)).map(
                     lambda d: d.isoformat())))
def test_bad_time_strings_fail_the_import_at_their_line(sqlite_url, tmp_path, text):
    path = write_jsonl(tmp_path / "h.jsonl", [{"id": "a", "content": "ok", "created_at": iso(1)},
                                              {"id": "b", "content": "bad", "created_at": text}])
    with Store.open(sqlite_url) as store:
        with pytest.raises(ImportFailed) as err:
            store.import_path("lab", path, SYSTEM)
        assert [(i.line, i.field) for i in err.value.issues] == [(2, "created_at")]
        assert not store.exists("lab")


def test_a_wall_lattice_history_ends_now_and_takes_rows_up_to_now(store, tmp_path):
    rows = [{"id": "a", "content": "a week ago", "created_at": iso(7)}, {"id": "b", "content": "a day ago",
                                                                         "created_at": iso(1)}]
    store.import_path("live", write_jsonl(tmp_path / "w.jsonl", rows), SYSTEM, clock="wall")
    info = store.info("live")
    assert info.preset == "memory" and info.epoch.timestamp() == pytest.approx(
        datetime.fromisoformat(rows[0]["created_at"]).timestamp(), abs=1e-3)
    assert info.wall_time(info.t).timestamp() == pytest.approx(datetime.now(timezone.utc).timestamp(), abs=5)
    loaded = store.load("live")
    age = loaded.lattice.t - store.gem_times("live")["created_t"].to_numpy()  # hours (the clock moves on)
    assert age == pytest.approx([7 * 24, 24], abs=0.5)
    np.testing.assert_allclose(loaded.lattice.coherence, 0.5 ** (age / (7 * 24)), rtol=1e-9)  # half-life a week
    # a row stamped a minute ahead (another machine's clock) is "now" for a wall lattice; an hour is not
    soon = [{"id": "c", "content": "just now", "created_at": (datetime.now(timezone.utc) + timedelta(minutes=1))
             .isoformat()}, {"id": "d", "content": "later", "created_at": (datetime.now(timezone.utc)
                                                                          + timedelta(hours=1)).isoformat()}]
    issues = _failed(store, "live", write_jsonl(tmp_path / "s.jsonl", soon))
    assert [(i.line, i.field) for i in issues] == [(2, "created_at")] and "in the future" in issues[0].message
    store.import_path("live", write_jsonl(tmp_path / "s1.jsonl", soon[:1]), SYSTEM)
    times = store.gem_times("live", ["c"])
    assert times["created_t"][0] <= store.info("live").t
    assert store.load("live").lattice.coherence[-1] == pytest.approx(1.0, abs=1e-5)  # aged 0 (then seconds)


def test_a_time_beyond_the_calendar_is_an_error_not_a_crash(store, tmp_path):
    store.create_lattice("lab", SYSTEM)
    issues = _failed(store, "lab", write_jsonl(tmp_path / "far.jsonl", [{"content": "x", "created_at": 1e15}]))
    assert [(i.line, i.field) for i in issues] == [(1, "created_at")] and "7,900 years" in issues[0].message
    issues = _failed(store, "new", write_jsonl(tmp_path / "far.jsonl", [{"content": "x", "created_at": -1e12}]))
    assert [(i.line, i.field) for i in issues] == [(1, "created_at")] and not store.exists("new")
