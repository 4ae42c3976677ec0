"""``python -m core demo`` keeps an existing demo unless --reset/--force (audited), and
``simulate --set`` takes ``half_life=DURATION`` and ``preset=NAME`` (issue 13, items 2 and 7)."""
from __future__ import annotations

import math

import pytest

from core.access import SYSTEM
from core.cli.common import parse_settings
from core.engine import PARAM_SPECS
from core.errors import LatticeError


def test_demo_is_built_once_and_kept_without_reset(cli, db_url):
    from core.store import Store
    first = cli.json("demo")
    assert first["created"] and not first["reset"] and first["preset"] == "memory"
    assert first["half_life_text"] == "7 days"
    cli("simulate", "--lattice", "demo", "--t", "5")
    code, out, _ = cli("demo")
    assert code == 0 and "already present, not overwritten" in out and "--reset" in out
    again = cli.json("demo")
    assert not again["created"] and again["t"] == 5.0  # the simulated clock survived
    assert not cli.json("demo", "--if-missing")["created"]
    with Store.open(db_url) as store:
        assert store.audit_log(action="demo.reset").empty


@pytest.mark.parametrize("flag", ["--reset", "--force"])
def test_demo_reset_rebuilds_it_and_is_audited(cli, db_url, flag):
    from core.store import Store
    cli.json("demo")
    cli("simulate", "--lattice", "demo", "--t", "30")
    code, out, _ = cli("demo", flag)
    assert code == 0 and "reset: rebuilt from the shipped files" in out
    data = cli.json("demo")
    assert data["t"] == 0.0  # the shipped state again...
    with Store.open(db_url) as store:
        audit = store.audit_log(action="demo.reset")
        assert len(audit) == 1 and audit.iloc[0]["target"] == "demo"
        details = audit.iloc[0]["details"]
        assert details["old_t"] == 30.0 and details["gems"] == data["gems"]
        # ...restored over the old one: its version keeps rising, so no cache keyed by
        # (lattice, version) on any node can serve the old demo's state for the new one
        assert data["version"] > details["old_version"]
        assert store.transactions("demo")["kind"].tolist()[-1] == "restore"
        from core.service.demo import load_demo_lattice
        shipped, _ = load_demo_lattice(store.info("demo").params)
        now = store.load("demo").lattice
        assert list(now.ids) == list(shipped.ids)
        for field in ("energy", "phase", "coherence", "uncertainty"):
            assert (getattr(now, field) == getattr(shipped, field)).all()


def test_demo_reset_of_a_missing_demo_just_builds_it(cli):
    data = cli.json("demo", "--reset")
    assert data["created"] and not data["reset"]


def test_demo_if_missing_and_reset_contradict(cli):
    code, out, err = cli("demo", "--if-missing", "--reset")
    assert code == 2 and out == "" and "--if-missing" in err and "--reset" in err


def test_simulate_takes_a_half_life_and_shows_it(cli, sample_file):
    cli("import", str(sample_file), "--lattice", "lab")
    data = cli.json("simulate", "--lattice", "lab", "--t", "1", "--set", "half_life=14d")
    assert data["params"]["lambda_"] == pytest.approx(math.log(2) / (14 * 24))  # per hour
    assert data["half_life"] == pytest.approx(14 * 24) and data["half_life_text"] == "2 weeks"
    code, out, _ = cli("simulate", "--lattice", "lab", "--t", "1", "--set", "half_life=45min")
    assert code == 0 and "half-life 45 min at E = 1" in out
    code, out, _ = cli("simulate", "--lattice", "lab", "--t", "1")  # the override was for those runs only
    assert "half-life 42 min at E = 1 (preset seed)" in out


def test_simulate_takes_a_preset_with_overrides(cli, sample_file):
    cli("import", str(sample_file), "--lattice", "lab")
    data = cli.json("simulate", "--lattice", "lab", "--t", "2", "--set", "preset=memory", "--set", "K=0.5")
    assert data["preset"] == "memory" and data["params"]["scoring"] == "floor" and data["params"]["K"] == 0.5
    assert data["half_life_text"] == "7 days" and data["steps"] == 2  # the memory preset's dt is 1 hour
    archive = cli.json("simulate", "--lattice", "lab", "--t", "1", "--set", "preset=archive")
    assert archive["half_life"] is None and archive["half_life_text"] == "∞"
    assert archive["end"]["mean_coherence"] == archive["start"]["mean_coherence"]


@pytest.mark.parametrize("pairs, says", [
    (["half_life=soon"], "half_life"), (["half_life=-2d"], "half_life"), (["preset=fast"], "preset"),
    (["half_life=14d", "lambda_=2"], "either half_life or lambda_"), (["K=2", "K=3"], "given twice"),
    (["halflife=14d"], "unknown setting")])
def test_bad_settings_fail_before_the_database(cli, pairs, says):
    args = [a for p in pairs for a in ("--set", p)]
    code, out, err = cli("simulate", "--lattice", "nope", "--t", "1", *args)
    assert code == 2 and out == "" and says in err and "unknown lattice" not in err


def test_the_unknown_name_error_and_the_help_list_half_life_and_preset(cli, capsys):
    with pytest.raises(LatticeError) as err:
        parse_settings(["tau=3"])
    message = str(err.value)
    assert "half_life" in message and "preset" in message and all(n in message for n in PARAM_SPECS)
    with pytest.raises(LatticeError, match="half_life, preset"):
        parse_settings(["no-equals-sign"])
    assert parse_settings([" half_life = 14d ", "preset=memory"]) == {"half_life": "14d", "preset": "memory"}
    with pytest.raises(SystemExit):
        cli("simulate", "--help")
    help_text = capsys.readouterr().out
    assert "half_life=DURATION" in help_text and "preset=seed|memory|archive" in help_text


def test_the_stored_demo_has_the_demo_parameters(store):
    from core.service import ensure_demo
    from core.service.demo import demo_params
    ensure_demo(store)
    params = store.info("demo").params
    assert params == demo_params() and params.preset == "memory" and params.reinforcement > 0
    assert not ensure_demo(store)  # present: kept
    assert ensure_demo(store, rebuild=True, actor=SYSTEM)
