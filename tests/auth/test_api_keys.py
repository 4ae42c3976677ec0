"""Programs' API keys (issue 15, item 2): created and revoked by an admin, shown once, stored hashed,
exchanged for tokens that carry the key's role; on SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib

import pytest

from core.access import SYSTEM, Actor, PermissionDenied, Role
from core.auth import (API_AUDIENCE, MCP_AUDIENCE, TokenRefused, check_api_key, create_api_key, list_api_keys,
                       revoke_api_key)
from core.errors import ValidationError
from core.store import NotFoundError
from tests.auth.token_fixtures import auth_state, credentials, last_audit, make_service, now, service  # noqa: F401

ADA = Actor("ada", Role.ADMIN)


def test_a_key_is_shown_once_and_stored_hashed(store, now):
    new = create_api_key(store, ADA, "  nightly-import ", "researcher", now=now())
    assert new.key.startswith(f"glk_{new.id}_") and len(new.key) == 4 + 12 + 1 + 43
    assert (new.name, new.role, new.created_at) == ("nightly-import", "researcher", now())
    state = auth_state(store)
    stored = state["api_keys"][0]
    assert new.key not in repr(state) and new.key.split("_", 2)[2] not in repr(state)
    assert hashlib.sha256(new.key.encode()).hexdigest() in stored
    listed = list_api_keys(store)
    assert listed == [{"id": new.id, "name": "nightly-import", "role": "researcher", "created_by": "ada",
                       "created_at": now(), "revoked_at": None, "last_used_at": None}]
    row = last_audit(store)
    assert (row["action"], row["actor"], row["target"], row["details"]) == \
        ("apikey.create", "ada", new.id, {"name": "nightly-import", "role": "researcher"})
    assert new.key not in store.audit_log().to_csv()
    assert check_api_key(store, new.key)[0].id == new.id


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_a_key_exchanged_for_tokens_carries_its_role(service, store, now, role):
    new = create_api_key(store, SYSTEM, f"bot-{role}", role)
    now.advance(10)
    pair = service.issue_for_api_key(new.key, audience=[MCP_AUDIENCE])
    actor = service.verify(pair.access_token, audience=MCP_AUDIENCE)
    assert actor == Actor(f"key:{new.id}", Role(role))
    assert list_api_keys(store)[0]["last_used_at"] == now()
    issued = last_audit(store)
    assert (issued["action"], issued["details"]["method"], issued["details"]["name"]) == \
        ("token.issue", "api_key", f"bot-{role}")
    again = service.refresh(pair.refresh_token)
    assert service.verify(again.access_token, audience=MCP_AUDIENCE) == actor
    with pytest.raises(TokenRefused) as err:
        service.verify(pair.access_token, audience=API_AUDIENCE)  # narrowed to MCP
    assert err.value.reason == "audience"


def test_wrong_malformed_and_revoked_keys_are_refused(make_service, store):
    service = make_service(cache_s=0.0)  # no subject cache: a revocation counts at the next request
    new = create_api_key(store, ADA, "reporter", "viewer")
    pair = service.issue_for_api_key(new.key)
    wrong_secret = new.key[:-4] + ("AAAA" if not new.key.endswith("AAAA") else "BBBB")
    for key, reason in ((wrong_secret, "unknown"), ("glk_000000000000_" + "x" * 43, "unknown"),
                        ("glk_short", "malformed"), (None, "malformed"), (new.key + "\n", "malformed")):
        state = auth_state(store)
        with pytest.raises(TokenRefused) as err:
            service.issue_for_api_key(key)
        assert err.value.reason == reason
        assert auth_state(store) == {**state, "audit": state["audit"] + 1}
        assert last_audit(store)["details"] == {"reason": reason, "stage": "api_key"}
    revoked = revoke_api_key(store, ADA, new.id)
    assert revoked["revoked_at"] is not None and "secret_hash" not in revoked
    row = last_audit(store)
    assert (row["action"], row["target"], row["details"]["refresh_tokens"]) == ("apikey.revoke", new.id, 1)
    for attempt, reason in ((lambda: service.issue_for_api_key(new.key), "revoked"),
                            (lambda: service.refresh(pair.refresh_token), "ended"),
                            (lambda: service.verify(pair.access_token, audience=API_AUDIENCE), "subject")):
        with pytest.raises(TokenRefused) as err:
            attempt()
        assert err.value.reason == reason
    state = auth_state(store)
    assert revoke_api_key(store, ADA, new.id)["revoked_at"] == revoked["revoked_at"]  # again: no change
    assert auth_state(store) == state
    with pytest.raises(NotFoundError, match="apikeys list"):
        revoke_api_key(store, ADA, "000000000000")


def test_only_an_admin_creates_or_revokes_and_bad_input_changes_nothing(store):
    new = create_api_key(store, ADA, "kept", "admin")
    state = auth_state(store)
    for role in (Role.VIEWER, Role.RESEARCHER):
        with pytest.raises(PermissionDenied):
            create_api_key(store, Actor("rex", role), "mine", "admin")
        with pytest.raises(PermissionDenied):
            revoke_api_key(store, Actor("rex", role), new.id)
    after = auth_state(store)
    assert after["api_keys"] == state["api_keys"] and after["refresh"] == state["refresh"]
    assert list(store.audit_log(limit=4)["outcome"]) == ["denied"] * 4
    state = auth_state(store)
    for name, role, field in (("", "viewer", "name"), ("x" * 101, "viewer", "name"), ("tab\there", "viewer", "name"),
                              ("ok", "owner", "role")):
        with pytest.raises(ValidationError) as err:
            create_api_key(store, ADA, name, role)
        assert err.value.field == field
    assert auth_state(store) == state
