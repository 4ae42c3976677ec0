"""``python -m core fading`` (issue 13, item 6): the gems that fade within a span, soonest
first, with every figure; read-only, also on a wall-clock lattice; clear errors."""
from __future__ import annotations

import argparse
import json
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from core.access import SYSTEM
from core.cli import fading
from core.errors import LatticeError
from core.engine import fading_times


@pytest.fixture
def run(db_url, monkeypatch, capsys):
    """``run("--lattice", "lab")`` -> (exit code, stdout, stderr) through a parser with only
    ``fading`` registered (as core.cli.parser will register it), handled as ``main`` does."""
    monkeypatch.setenv("LATTICE_DATABASE_URL", db_url)
    parser = argparse.ArgumentParser(prog="python -m core")
    fading.register(parser.add_subparsers(dest="command"))

    def call(*argv):
        args = parser.parse_args(["fading", *argv])
        try:
            code = args.handler(args)
        except LatticeError as exc:
            print(f"error: {exc}", file=__import__("sys").stderr)
            code = 2
        out, err = capsys.readouterr()
        return code, out, err

    return call


def log_length(store, name):
    return len(store.transactions(name))


def test_lists_the_gems_fading_within_the_span_soonest_first(filled, run):
    lat = filled.load("lab").lattice
    times = fading_times(lat)
    expect = [lat.ids[i] for i in np.argsort(times, kind="stable")
              if lat.coherence[i] > 0.1 and times[i] <= lat.t + 2.0]
    assert 0 < len(expect) < len(lat)  # the span cuts the list
    code, out, _ = run("--lattice", "lab", "--within", "2h", "--json")
    data = json.loads(out)
    assert code == 0 and [g["id"] for g in data["gems"]] == expect
    first = data["gems"][0]
    i = lat.ids.index(first["id"])
    assert first["coherence"] == lat.coherence[i] and first["energy"] == lat.energy[i]
    assert first["half_life"] == pytest.approx(lat.energy[i] * math.log(2))  # lambda_ = 1 per hour
    assert first["fades_at_t"] == times[i] and first["time_left"] == pytest.approx(times[i] - lat.t)
    assert first["title"] == filled.get_gem("lab", first["id"])["title"]
    assert data["within"] == 2.0 and data["threshold"] == 0.1 and data["fading"] == len(expect)
    # UTC from the lattice's epoch
    info = filled.info("lab")
    assert datetime.fromisoformat(first["fades_at_utc"]) == info.wall_time(times[i])
    code, text, _ = run("--lattice", "lab", "--within", "2h")
    assert code == 0 and f"{len(expect)} of {len(lat)} gems" in text
    rows = [line for line in text.splitlines() if ": Gem " in line]
    assert [r.split()[-3].rstrip(":") for r in rows] == expect and "min" in rows[0]


def test_the_threshold_and_a_span_in_days_are_taken_in_the_lattices_unit(filled, run):
    lat = filled.load("lab").lattice
    data = json.loads(run("--lattice", "lab", "--within", "1d", "--threshold", "0.5", "--json")[1])
    assert data["within"] == 24.0 and data["threshold"] == 0.5
    assert data["fading"] == int(np.count_nonzero(lat.coherence > 0.5))  # all of them fade within a day
    assert data["faded_now"] == int(np.count_nonzero(lat.coherence <= 0.5))


def test_nothing_fading_says_why(filled, run):
    filled.update_params("lab", {"lambda_": 0.0}, SYSTEM)
    code, out, _ = run("--lattice", "lab")
    assert code == 0 and "0 of 12 gems" in out and "decay scale λ is 0" in out
    assert json.loads(run("--lattice", "lab", "--json")[1])["gems"] == []


@pytest.mark.parametrize("within, says", [("7x", "unknown unit 'x'"), ("-3d", ">= 0"), ("soon", "duration"),
                                          ("inf", "finite")])
def test_a_bad_span_is_a_clear_error(filled, run, within, says):
    code, out, err = run("--lattice", "lab", f"--within={within}")
    assert code == 2 and out == "" and "within" in err and says in err


def test_a_bad_threshold_or_lattice_is_a_clear_error(filled, run):
    code, _, err = run("--lattice", "lab", "--threshold", "1.5")
    assert code == 2 and "threshold" in err and "[0, 1]" in err
    code, _, err = run("--lattice", "nope")
    assert code == 2 and "nope" in err


def test_read_only_even_on_a_wall_clock_lattice(filled, run):
    """The forecast is as of now (the wall lattice evolved on a copy); nothing is written."""
    filled.update_params("lab", {"time_unit": "second", "lambda_": 0.001}, SYSTEM)  # a gem halves in ~12 min
    filled.set_clock("lab", "wall", SYSTEM)
    before = filled.info("lab")  # caught up (a write) here; from now on nothing may write
    entries = log_length(filled, "lab")
    start = datetime.now(timezone.utc)
    data = json.loads(run("--lattice", "lab", "--within", "1h", "--json")[1])
    assert data["t"] > before.t and data["clock"] == "wall"  # brought to now, in memory
    assert filled.load_stored("lab").version == before.version and log_length(filled, "lab") == entries
    g = data["gems"][0]
    fades = datetime.fromisoformat(g["fades_at_utc"])
    assert start < fades <= datetime.now(timezone.utc) + timedelta(seconds=g["time_left"] + 1)


def test_register_adds_the_command_with_its_help():
    parser = argparse.ArgumentParser()
    fading.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["fading", "--lattice", "x"])
    assert (args.within, args.threshold, args.json) == ("7d", None, False)
    with pytest.raises(SystemExit):
        parser.parse_args(["fading"])  # --lattice is required
