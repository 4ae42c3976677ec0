"""The database goes away while the workbench runs (a TCP proxy between the store and
PostgreSQL is cut; the shared server keeps running): every store call raises
DatabaseUnavailable with an actionable message, nothing is written or doubled, and the
same Store works again by itself once the link returns (pooled connections are
pre-pinged and replaced)."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.engine import make_url

from core.access import SYSTEM, Actor, Role
from core.service import ensure_demo
from core.router import build_router
from core.store import DatabaseUnavailable, Store
from core.service import Workbench

from .tcpproxy import TcpProxy

pytestmark = pytest.mark.postgres
RESEARCHER = Actor("ria", Role.RESEARCHER)
OUTAGE: dict[str, int] = {}


@pytest.fixture
def proxied(pg_url):
    url = make_url(pg_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    direct = Store.open(pg_url)
    ensure_demo(direct)
    via = Store.open(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    yield proxy, via, direct
    via.close()
    direct.close()
    proxy.close()


def test_calls_fail_clearly_while_the_database_is_gone_and_recover(proxied):
    proxy, store, direct = proxied
    store.advance("demo", 1.0, SYSTEM)
    wb = Workbench(store, router=build_router("offline"))
    proxy.cut()
    calls = {
        "info": lambda: store.info("demo"),
        "list_gems": lambda: store.list_gems("demo", text="wave"),
        "load": lambda: store.load("demo"),
        "advance": lambda: store.advance("demo", 1.0, SYSTEM),
        "add_gem": lambda: store.add_gem("demo", RESEARCHER, "zqx written during the outage"),
        "reflect": lambda: wb.reflect("demo", "What is a phasor?", RESEARCHER),
        "save_run": lambda: store.save_run("demo", "r", {}, {}, RESEARCHER),
    }
    for name, call in calls.items():
        t0 = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as err:
            call()
        assert "unavailable" in str(err.value) and "then retry - nothing was written" in str(err.value)
        assert time.monotonic() - t0 < 10, name  # fails fast (no endless hang)
    OUTAGE["calls_refused"] = len(calls)
    # nothing of the failed writes reached the database
    info = direct.info("demo")
    assert info.t == 1.0 and len(direct.transactions("demo", kinds=["evolve"])) == 1
    assert direct.list_gems("demo", text="zqx")[1] == 0 and len(direct.list_runs()) == 0
    proxy.restore()
    # the same Store (same pool) works again without any intervention
    assert store.advance("demo", 1.0, SYSTEM).t == 2.0
    answer = "".join(wb.reflect("demo", "What is a phasor?", RESEARCHER))
    assert answer and direct.info("demo").t == 2.0


def test_a_retried_write_applies_exactly_once(proxied):
    proxy, store, direct = proxied
    version = direct.version("demo")
    attempts = {"failed": 0}

    def advance_with_retry(dt: float) -> None:
        while True:
            try:
                store.advance("demo", dt, SYSTEM)
                return
            except DatabaseUnavailable:
                attempts["failed"] += 1
                time.sleep(0.2)

    done = 0.0
    for k in range(12):  # the link flaps: cut every third write, restored 0.5 s later
        if k % 3 == 1:
            proxy.cut()
            threading.Timer(0.5, proxy.restore).start()
        advance_with_retry(0.25)
        done += 0.25
    assert attempts["failed"] >= 4  # each cut failed at least one attempt
    info = direct.info("demo")
    assert info.t == pytest.approx(done)  # not lost, not doubled
    evolves = direct.transactions("demo", kinds=["evolve"])
    assert len(evolves) == 12 and info.version == version + 12
    OUTAGE.update(writes=12, failed_attempts=attempts["failed"], proxy_connections=proxy.connections)
    print(f"\nOUTAGE: {OUTAGE}")


@pytest.mark.slow
def test_a_page_shows_the_outage_and_recovers_by_itself(proxied, monkeypatch):
    """AppTest of the real app over the proxied database: st.error while it is gone, the
    normal page again when it returns (same process, same cached Store)."""
    from tests.ui.helpers import app_as
    proxy, store, direct = proxied
    for k in ("LATTICE_COOKIE_KEY", "LATTICE_CREDENTIALS", "LATTICE_DEMO_DIR"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("LATTICE_DEMO", "1")
    monkeypatch.setenv("LATTICE_SOURCE", "store")
    monkeypatch.setenv("LATTICE_DATABASE_URL", store.engine.url.render_as_string(hide_password=False))
    at = app_as("researcher")
    assert not at.error and any("Lattice clock" in m.label for m in at.metric)
    t0, version = direct.info("demo").t, direct.version("demo")
    proxy.cut()
    at.button(key="evo_advance").click().run()  # the user presses "Advance lattice" during the outage
    errors = " | ".join(e.value for e in at.error)
    assert "unavailable" in errors and "retry" in errors, errors
    assert not at.exception
    assert (direct.info("demo").t, direct.version("demo")) == (t0, version)  # nothing written
    proxy.restore()
    at.run()
    assert not at.error and not at.exception and any("Lattice clock" in m.label for m in at.metric)
    at.button(key="evo_advance").click().run()  # pressed again once it is back: applied once
    assert not at.error and direct.info("demo").t == t0 + 1.0
    assert len(direct.transactions("demo", kinds=["evolve"])) == 1
    OUTAGE["page_recovered"] = 1
