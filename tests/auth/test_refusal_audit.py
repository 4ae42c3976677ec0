"""A flood of forged tokens cannot grow the audit table without bound: refusals are audited up to
a per-process budget per minute, the rest counted and reported in the next row written."""
from __future__ import annotations

import pytest

from core.auth import API_AUDIENCE, TokenRefused
from core.auth.tokens import REFUSALS_AUDITED_PER_MINUTE, RefusalBudget
from tests.auth.token_fixtures import auth_state, credentials, last_audit, make_service, now, service  # noqa: F401
from tests.fakes import FakeClock

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_budget_admits_per_minute_then_reports_what_it_left_out():
    clock = FakeClock(start=1000.0)
    budget = RefusalBudget(3, clock)
    assert [budget.admit() for _ in range(5)] == [0, 0, 0, None, None]
    clock.advance(59.0)
    assert budget.admit() is None  # still the same minute
    clock.advance(1.0)
    assert budget.admit() == 3  # a new minute: the first row says three were left out
    assert budget.admit() == 0


def test_forged_token_flood_writes_a_bounded_number_of_audit_rows(service, store, now):
    before = auth_state(store)
    flood = REFUSALS_AUDITED_PER_MINUTE + 40
    for i in range(flood):
        with pytest.raises(TokenRefused) as err:
            service.verify(f"not-a-jwt-{i}", audience=API_AUDIENCE)
        assert err.value.reason == "malformed"  # every one is still refused
    after = auth_state(store)
    assert after == {**before, "audit": before["audit"] + REFUSALS_AUDITED_PER_MINUTE}
    now.advance(60.0)
    with pytest.raises(TokenRefused):
        service.verify("not-a-jwt-again", audience=API_AUDIENCE)
    row = last_audit(store)
    assert row["details"]["reason"] == "malformed"
    assert row["details"]["suppressed"] == 40
