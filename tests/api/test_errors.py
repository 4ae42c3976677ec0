"""Errors over the API: one JSON shape with a stable code and the right status; bad input never a
500 and never a change (the lattice version is checked before and after)."""
from __future__ import annotations

import json
import shutil

import pytest

from core.api import BodyLimits
from tests.api.conftest import assert_error, build_api, version


def test_no_token_is_401_with_www_authenticate(api):
    r = api.client.get("/v1/lattices")
    err = assert_error(r, 401, "token_refused")
    assert err["reason"] == "missing"
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="gem-lattice"'


@pytest.mark.parametrize("header", ["Bearer not-a-jwt", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "Bearer "])
def test_a_bad_token_is_401_and_writes_nothing(api, header):
    before = version(api)
    r = api.client.post("/v1/lattices/demo/gems", json={"content": "x"}, headers={"Authorization": header})
    assert_error(r, 401, "token_refused")
    assert "Bearer" in r.headers["WWW-Authenticate"]
    assert version(api) == before


def test_a_token_for_another_audience_is_refused(api):
    from core.auth import DEMO_PASSWORD
    from core.auth.tokens import MCP_AUDIENCE
    pair = api.tokens.issue_for_password("admin", DEMO_PASSWORD, audience=[MCP_AUDIENCE])
    r = api.client.get("/v1/lattices", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert_error(r, 401, "token_refused")


def test_unknown_lattice_and_gem_are_404(api):
    for method, path, body in [("get", "/v1/lattices/ghost", None), ("get", "/v1/lattices/ghost/gems", None),
                               ("post", "/v1/lattices/ghost/search", {"question": "x"}),
                               ("post", "/v1/lattices/ghost/gems", {"content": "x"}),
                               ("post", "/v1/lattices/ghost/gems/batch", {"gems": [{"content": "x"}]}),
                               ("get", "/v1/lattices/demo/gems/no-such-gem", None),
                               ("patch", "/v1/lattices/demo/gems/no-such-gem", {"title": "t"})]:
        r = api.client.request(method, path, json=body, headers=api.as_("admin"))
        assert_error(r, 404, "not_found")
    assert not api.store.exists("ghost")


def test_malformed_json_is_400_and_wrong_types_422(api):
    before = version(api)
    r = api.client.post("/v1/lattices/demo/gems", content=b'{"content": "x",', headers={
        **api.as_("admin"), "Content-Type": "application/json"})
    assert_error(r, 400, "malformed")
    for body, field in [({"content": 5}, "content"), ({"content": "x", "energy": "lots"}, "energy"),
                        ({"content": "x", "tags": "a,b"}, "tags"), ({"content": "x", "colour": "red"}, "colour"),
                        ([1, 2], "request")]:
        r = api.client.post("/v1/lattices/demo/gems", json=body, headers=api.as_("admin"))
        err = assert_error(r, 422, "invalid")
        assert field in err["field"] or field == "request", err
    r = api.client.post("/v1/lattices/demo/search", json={"question": "x", "k": 0}, headers=api.as_("viewer"))
    assert assert_error(r, 422, "invalid")["field"] == "k"
    r = api.client.get("/v1/lattices/demo/gems?limit=100000", headers=api.as_("viewer"))
    assert assert_error(r, 422, "invalid")["field"] == "limit"
    assert version(api) == before


def test_model_rules_are_core_validation_errors_422(api):
    before = version(api)
    cases = [("post", "/v1/lattices/demo/gems", {"content": "x", "coherence": 7}, "coherence"),
             ("patch", "/v1/lattices/demo/parameters", {"settings": {"k": -3}}, "k"),
             ("patch", "/v1/lattices/demo/parameters", {"settings": {"nonsense": 1}}, "nonsense"),
             ("post", "/v1/lattices/demo/advance", {"dt": "3 fortnights"}, "dt"),
             ("post", "/v1/lattices/demo/advance", {"dt": -1}, "dt"),
             ("post", "/v1/lattices/demo/search", {"question": "x", "at": "yesterday"}, "at"),
             ("post", "/v1/lattices", {"name": "bad/name"}, "lattice")]
    for method, path, body, field in cases:
        r = api.client.request(method, path, json=body, headers=api.as_("admin"))
        assert assert_error(r, 422, "invalid")["field"] == field, (path, body)
    assert version(api) == before


def test_unknown_route_and_method_keep_the_shape(api):
    assert_error(api.client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(api.client.put("/v1/lattices", headers=api.as_("admin")), 405, "method_not_allowed")


def test_a_body_over_the_limit_is_413_declared_or_streamed(sqlite_url):
    a = build_api(sqlite_url, limits=BodyLimits(json=4096, upload=8192))
    try:
        before = version(a)
        big = json.dumps({"content": "x" * 10_000})
        r = a.client.post("/v1/lattices/demo/gems", content=big, headers={**a.as_("admin"),
                                                                           "Content-Type": "application/json"})
        assert_error(r, 413, "payload_too_large")

        def chunks():  # no Content-Length: counted as it arrives
            for i in range(0, len(big), 1000):
                yield big[i:i + 1000].encode()
        r = a.client.post("/v1/lattices/demo/gems", content=chunks(), headers={**a.as_("admin"),
                                                                                "Content-Type": "application/json"})
        assert "content-length" not in {k.lower() for k in r.request.headers}
        assert_error(r, 413, "payload_too_large")
        r = a.client.post("/v1/lattices/demo/import", headers=a.as_("admin"),
                          files={"file": ("big.jsonl", b'{"content": "y"}\n' * 1000)})
        assert_error(r, 413, "payload_too_large")
        assert version(a) == before
    finally:
        a.client.close()
        a.store.close()


def test_rate_limit_is_429_with_retry_after(sqlite_url):
    a = build_api(sqlite_url, requests="3/minute")
    try:
        for _ in range(3):
            assert a.client.get("/v1/lattices", headers=a.as_("viewer")).status_code == 200
        r = a.client.get("/v1/lattices", headers=a.as_("viewer"))
        assert_error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert a.client.get("/v1/lattices", headers=a.as_("admin")).status_code == 200  # per identity
    finally:
        a.client.close()
        a.store.close()


def test_login_lockout_is_429_with_retry_after(api):
    for _ in range(5):
        r = api.client.post("/v1/auth/token", json={"grant_type": "password", "username": "viewer",
                                                    "password": "wrong"})
        assert r.status_code in (401, 429)
    r = api.client.post("/v1/auth/token", json={"grant_type": "password", "username": "viewer", "password": "demo"})
    assert_error(r, 429, "login_locked")
    assert int(r.headers["Retry-After"]) >= 1


def test_database_down_is_503(tmp_path):
    folder = tmp_path / "db"
    folder.mkdir()
    a = build_api(f"sqlite:///{folder / 'lattice.db'}")
    try:
        assert a.client.get("/v1/ready").json()["status"] == "ready"
        a.store.engine.dispose()
        shutil.rmtree(folder)  # the file is gone: every connection fails
        assert_error(a.client.get("/v1/ready"), 503, "database_unavailable")
        assert_error(a.client.get("/v1/lattices/demo", headers=a.as_("viewer")), 503, "database_unavailable")
        assert a.client.get("/v1/health").status_code == 200  # the process itself is alive
    finally:
        a.client.close()
        a.store.close()
