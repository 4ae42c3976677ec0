"""The recovery banner (ui/recovery_banner.py): every page says "recovering" while the store
verifies the database after a failover or restore, "read-only" when the verification failed,
and nothing once it passed."""
from __future__ import annotations

from sqlalchemy import text

from core.store import verify_recovery
from core.store.recovery import RECOVERING
from tests.ui.helpers import app_as
from ui.recovery_banner import banner_text


def _shown(at) -> list[str]:
    return [e.value for e in list(at.warning) + list(at.error) if "Recovering" in e.value or "Read-only" in e.value]


def _shift_clock(store, by: float) -> None:
    with store.engine.begin() as conn:  # the lattice row's clock no longer matches its log
        conn.execute(text("UPDATE lattices SET t = t + :d WHERE name = 'demo'"), {"d": by})


def test_every_page_shows_recovering_then_read_only_then_nothing():
    at = app_as("researcher")
    assert _shown(at) == []
    from ui.services import get_store
    store = get_store()  # the app's own cached store (same process)

    store.recovery.mark(RECOVERING, "failover: the database moved from a:1 to b:2")
    at.run()
    assert not at.exception, at.exception
    [shown] = _shown(at)
    assert "Recovering" in shown and "a:1 to b:2" in shown

    _shift_clock(store, 0.5)
    assert not verify_recovery(store, reason="test").ok
    at.run()
    [shown] = _shown(at)
    assert "Read-only" in shown and "lattice clock" in shown
    assert [e.value for e in at.error if "Read-only" in e.value]  # an error, not a warning

    _shift_clock(store, -0.5)
    assert verify_recovery(store, reason="after the repair").ok
    at.run()
    assert _shown(at) == []


def test_banner_text_per_state():
    from core.store import RecoveryStatus
    assert banner_text(RecoveryStatus("ok")) is None
    kind, words = banner_text(RecoveryStatus("recovering", "failover: x"))
    assert kind == "warning" and "verifying the database" in words and "failover: x" in words
    kind, words = banner_text(RecoveryStatus("read-only", "restore"))
    assert kind == "error" and "writes are refused" in words
