"""Through real HTTP (uvicorn on a free port, the httpx2 client): the token flow, a streamed
reflection (Server-Sent Events) and a CRUD journey, as a client program does them."""
from __future__ import annotations

import json

import httpx2

from core.auth import DEMO_PASSWORD


def _token(client: httpx2.Client, **grant) -> dict:
    r = client.post("/v1/auth/token", json=grant)
    assert r.status_code == 200, r.text
    return r.json()


def test_token_flow_refresh_rotates_and_reuse_is_refused(live):
    url, api = live
    with httpx2.Client(base_url=url) as client:
        pair = _token(client, grant_type="password", username="researcher", password=DEMO_PASSWORD)
        assert pair["token_type"] == "Bearer" and pair["expires_in"] > 0
        me = {"Authorization": f"Bearer {pair['access_token']}"}
        assert client.get("/v1/lattices", headers=me).status_code == 200
        kid = json.loads(__import__("base64").urlsafe_b64decode(pair["access_token"].split(".")[0] + "=="))["kid"]
        assert kid in {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
        new = _token(client, grant_type="refresh_token", refresh_token=pair["refresh_token"])
        assert new["refresh_token"] != pair["refresh_token"]
        reused = client.post("/v1/auth/token", json={"grant_type": "refresh_token",
                                                     "refresh_token": pair["refresh_token"]})
        assert reused.status_code == 401 and reused.json()["error"]["code"] == "token_refused"
        wrong = client.post("/v1/auth/token", json={"grant_type": "password", "username": "researcher",
                                                    "password": "nope"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
        odd = client.post("/v1/auth/token", json={"grant_type": "magic"})
        assert odd.status_code == 422 and odd.json()["error"]["code"] == "invalid"


def _sse(lines) -> list[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream (data lines joined with newlines)."""
    events, name, data = [], None, []
    for line in lines:
        if line == "":
            if name is not None or data:
                events.append((name or "message", "\n".join(data)))
            name, data = None, []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:][1:] if line[5:].startswith(" ") else line[5:])
    return events


def test_reflect_streams_tokens_then_the_record(live):
    url, api = live
    before = api.store.version("demo")
    with httpx2.Client(base_url=url, timeout=30) as client:
        h = {"Authorization": api.as_("researcher")["Authorization"], "Accept": "text/event-stream"}
        with client.stream("POST", "/v1/lattices/demo/reflect", json={"question": "how do oscillators synchronise?"},
                           headers=h) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            events = _sse(r.iter_lines())
    tokens = [d for e, d in events if e == "token"]
    records = [json.loads(d) for e, d in events if e == "record"]
    assert tokens and len(records) == 1 and events[-1][0] == "record"
    record = records[0]
    assert record["answer"] == "".join(tokens)
    assert record["gems"] and {"id", "title", "score"} <= set(record["gems"][0])
    assert api.store.version("demo") > before  # the used gems re-cohered in the store
    with httpx2.Client(base_url=url, timeout=30) as client:  # a viewer may not reflect: refused before the stream
        r = client.post("/v1/lattices/demo/reflect", json={"question": "x"},
                        headers={**api.as_("viewer"), "Accept": "text/event-stream"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"


def test_a_crud_journey(live):
    url, api = live
    with httpx2.Client(base_url=url) as client:
        pair = _token(client, grant_type="password", username="researcher", password=DEMO_PASSWORD)
        h = {"Authorization": f"Bearer {pair['access_token']}"}
        assert client.post("/v1/lattices", json={"name": "journal", "preset": "memory"}, headers=h).status_code == 201
        made = client.post("/v1/lattices/journal/gems", json={"content": "Met Ada at the tide pools", "id": "j1"},
                           headers=h).json()
        gem = client.get("/v1/lattices/journal/gems/j1", headers=h).json()
        edited = client.patch("/v1/lattices/journal/gems/j1", json={"tags": ["people"],
                                                                    "expected_version": gem["version"]}, headers=h)
        assert edited.status_code == 200 and edited.json()["tags"] == ["people"]
        found = client.post("/v1/lattices/journal/search", json={"question": "tide pools Ada"}, headers=h).json()
        assert found["gems"][0]["gem_id"] == "j1" and made["version"] >= 1
        assert client.delete("/v1/lattices/journal/gems/j1", headers=h).status_code == 204
        assert client.get("/v1/lattices/journal/gems", headers=h).json()["total"] == 0
        # a streamed body over the limit: 413 JSON, nothing written
        def body():
            yield b'{"content": "'
            for _ in range(2048):
                yield b"x" * 1024
            yield b'"}'
        r = client.post("/v1/lattices/journal/gems", content=body(), headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        assert client.get("/v1/lattices/journal", headers=h).json()["gems"] == 0
