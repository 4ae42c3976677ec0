"""Fixtures of the REST API tests: a real store with the demo lattice, the real token service
with the demo users (admin, researcher, viewer), the app on FastAPI's TestClient, and the same
app served by uvicorn on a free port for tests through real HTTP.

The LLM router is the offline one (an extractive answer; no network), and the rate limits are
high enough that only the tests about them reach them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from core.access import SYSTEM
from core.api import ServerThread, create_app
from core.auth import DEMO_PASSWORD, DEMO_USERS, hash_password
from core.auth.tokens import TokenService
from core.router import build_router
from core.service import RateLimits, Workbench, ensure_demo
from core.store import Store

ROLES = ("admin", "researcher", "viewer")


def _hashed_users() -> dict:
    # the demo users, hashed once with bcrypt at its lowest cost (4): a real check, fast enough
    # to log in three roles in every test (the shipped cost 12 takes ~0.3 s a check)
    if not _USERS:
        _USERS.update({"usernames": {name: {"name": f"Demo {name}", "email": f"{name}@demo.invalid",
                                            "password": hash_password(DEMO_PASSWORD, rounds=4),
                                            "roles": [role.value]} for name, role in DEMO_USERS.items()}})
    return _USERS


_USERS: dict = {}


@dataclass
class Api:
    """The app under test and what it stands on."""

    app: Any
    store: Store
    workbench: Workbench
    tokens: TokenService
    client: TestClient
    bearer: dict[str, dict[str, str]]  # role -> {"Authorization": "Bearer ..."}

    def as_(self, role: str) -> dict[str, str]:
        return self.bearer[role]


def build_api(url: str, *, requests: str = "100000/minute", reflections: str = "10000/minute", **app_kw: Any) -> Api:
    store = Store.open(url)
    ensure_demo(store)
    workbench = Workbench(store, router=build_router("offline"), rate_limits=RateLimits(requests, reflections))
    tokens = TokenService(store, credentials=_hashed_users)
    app = create_app(workbench, tokens, **app_kw)
    client = TestClient(app)  # raises any server error: a test can never pass over a 500
    bearer = {role: {"Authorization": f"Bearer {tokens.issue_for_password(role, DEMO_PASSWORD).access_token}"}
              for role in ROLES}
    return Api(app, store, workbench, tokens, client, bearer)


@pytest.fixture
def api(sqlite_url) -> Any:
    a = build_api(sqlite_url)
    yield a
    a.client.close()
    a.store.close()


@pytest.fixture
def api_db(db_url) -> Any:
    """As ``api``, on SQLite and on PostgreSQL."""
    a = build_api(db_url)
    yield a
    a.client.close()
    a.store.close()


@pytest.fixture
def live(api) -> Any:
    """The ``api`` app served by uvicorn on a free port: ``(base_url, api)``."""
    with ServerThread(api.app) as server:
        yield server.url, api


def version(api: Api, name: str = "demo") -> int:
    return api.store.version(name)


def assert_error(response, status: int, code: str) -> dict:
    """The response is the API's error shape with this status and code; returns the error object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    return body["error"]


def new_lattice(api: Api, name: str = "notes", gems: int = 3) -> list[str]:
    """A manual lattice with ``gems`` gems, made through the store; returns their ids."""
    api.store.create_lattice(name, SYSTEM, preset="memory")
    return [api.store.add_gem(name, SYSTEM, f"note {i} about tide pools and kelp forests", id=f"n{i}",
                              tags=["sea"] if i % 2 == 0 else ["land"]) for i in range(gems)]
