"""The MCP server with the SDK's own client: over streamable HTTP at /mcp of the API served by
uvicorn on a free port, and over stdio (``python -m core mcp`` spawned by the SDK's stdio client
on a temp SQLite database). Tools: remember, search, reflect (offline router), forget; the gems
as resources; the callers from bearer tokens for the MCP audience, the same core.access rules.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from core.access import Actor, Role
from core.api import build_mcp_server, stdio_actor
from core.auth import (API_AUDIENCE, DEMO_PASSWORD, MCP_AUDIENCE, AuthConfigError, TokenRefused, create_api_key,
                       revoke_api_key)
from core.service import load_demo_records
from core.store import NotFoundError, Store
from tests.api.conftest import new_lattice

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"remember", "search", "reflect", "forget"}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def mcp_token(api: Any, role: str, audience: str | None = MCP_AUDIENCE) -> str:
    return api.tokens.issue_for_password(role, DEMO_PASSWORD, audience=audience).access_token


def over_http(url: str, token: str, **client_kw: Any) -> Client:
    """The SDK's client on ``url``/mcp with ``token`` as its bearer token."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return Client(streamable_http_client(f"{url}/mcp", http_client=http), **client_kw)


def text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def refused(result: Any, code: str) -> str:
    """The call is a tool error carrying the project's code and message, and no traceback."""
    assert result.is_error, result
    message = text(result)
    assert f"{code}: " in message and "Traceback" not in message, message
    return message


def test_tools_over_http_remember_search_reflect_forget(live):
    url, api = live
    new_lattice(api, "notes")

    async def journey() -> dict[str, Any]:
        progress: list[str] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append(message or "")

        async with over_http(url, mcp_token(api, "researcher")) as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            made = await client.call_tool("remember", {"lattice": "notes", "title": "Ada",
                                                       "content": "Ada met Grace by the lighthouse at dawn",
                                                       "tags": ["people"]})
            found = await client.call_tool("search", {"lattice": "notes", "question": "Ada Grace lighthouse"})
            aged = await client.call_tool("remember", {"lattice": "notes", "content": "an old memory of gulls",
                                                       "created_at": "2020-01-01T00:00:00Z"})
            answer = await client.call_tool("reflect", {"lattice": "notes", "question": "who met by the lighthouse?"},
                                            progress_callback=on_progress)
            gem_id = made.structured_content["ids"][0]
            one = await client.read_resource(f"gem://notes/{gem_id}")
            listing = await client.read_resource("gem://notes?limit=2&offset=1")
            index = await client.read_resource("lattice://index")
            archived = await client.call_tool("forget", {"lattice": "notes", "gem_id": gem_id})
            deleted = await client.call_tool("forget", {"lattice": "notes", "gem_id": "n0", "delete": True})
            return dict(made=made, found=found, aged=aged, answer=answer, progress=progress, one=one,
                        listing=listing, index=index, archived=archived, deleted=deleted, gem_id=gem_id)

    r = anyio.run(journey)
    gem_id = r["gem_id"]
    assert not r["made"].is_error and r["made"].structured_content["lattice"] == "notes"
    assert api.store.get_gem("notes", gem_id)["tags"] == ["people"]  # written to the store
    assert json.loads(text(r["made"]))["ids"] == [gem_id]  # the text content is the same JSON
    ranked = r["found"].structured_content["gems"]
    assert ranked[0]["gem_id"] == gem_id and {"similarity", "coherence"} <= set(ranked[0])
    old = api.store.get_gem("notes", r["aged"].structured_content["ids"][0])
    assert old["coherence"] < 1.0  # it entered aged to the clock, through the import path
    record = r["answer"].structured_content["record"]
    assert r["answer"].structured_content["answer"] == record["answer"] != ""
    assert "".join(r["progress"]) == record["answer"]  # every streamed chunk came as a progress notification
    assert gem_id in {g["id"] for g in record["gems"]} and record["gems"][0]["title"]
    assert json.loads(r["one"].contents[0].text)["content"] == "Ada met Grace by the lighthouse at dawn"
    page = json.loads(r["listing"].contents[0].text)
    assert page["offset"] == 1 and [g["id"] for g in page["gems"]] == ["n1", "n2"] and page["total"] == 5
    assert page["gems"][0]["uri"] == "gem://notes/n1"
    assert {"demo", "notes"} <= {lat["name"] for lat in json.loads(r["index"].contents[0].text)}
    assert r["archived"].structured_content["archived"] and api.store.get_gem("notes", gem_id)["archived"]
    assert r["deleted"].structured_content["deleted"]
    with pytest.raises(NotFoundError):
        api.store.get_gem("notes", "n0")


def test_default_lattice_and_bad_input_are_tool_errors_with_nothing_written(live):
    url, api = live
    before = api.store.version("demo")

    async def calls() -> list[Any]:
        async with over_http(url, mcp_token(api, "researcher")) as client:
            out = [await client.call_tool("remember", {"content": "x", "lattice": "nope"}),
                   await client.call_tool("remember", {"content": ""}),
                   await client.call_tool("remember", {"content": "y", "created_at": "yesterday"}),
                   await client.call_tool("search", {"question": "tides", "at": "1999-01-01T00:00:00Z"}),
                   await client.call_tool("forget", {"gem_id": "no-such-gem"}),
                   await client.call_tool("search", {"question": "tides", "k": 2})]
            try:
                await client.read_resource("gem://demo/no-such-gem")
            except MCPError as exc:
                out.append(exc)
            return out

    unknown, empty, bad_time, past, missing, ranked, resource = anyio.run(calls)
    assert "unknown lattice 'nope'" in refused(unknown, "not_found")
    assert empty.is_error and "content" in text(empty)  # the input schema: at least one character
    refused(bad_time, "import_failed")
    assert "before the lattice clock" in refused(past, "invalid")
    refused(missing, "not_found")
    assert api.store.version("demo") == before  # none of them wrote anything
    assert not ranked.is_error and ranked.structured_content["lattice"] == "demo"  # the default lattice
    assert isinstance(resource, MCPError) and "not_found: no gem 'no-such-gem'" in str(resource)


def test_a_viewer_reads_and_searches_but_may_not_remember_reflect_or_forget(live):
    url, api = live
    before, gems_before = api.store.version("demo"), api.store.info("demo").gems

    async def calls() -> list[Any]:
        async with over_http(url, mcp_token(api, "viewer"), mode="legacy") as client:  # a 2025-era client too
            return [await client.call_tool("remember", {"content": "a viewer's note"}),
                    await client.call_tool("forget", {"gem_id": "sync-kuramoto-model"}),
                    await client.call_tool("reflect", {"question": "what is the Kuramoto model?"}),
                    await client.call_tool("search", {"question": "Kuramoto model", "k": 1}),
                    await client.read_resource("gem://demo/sync-kuramoto-model")]

    remember, forget, reflect, search, gem = anyio.run(calls)
    assert "'edit' permission" in refused(remember, "permission_denied")
    refused(forget, "permission_denied")
    assert "'reflect' permission" in refused(reflect, "permission_denied")
    assert api.store.version("demo") == before and api.store.info("demo").gems == gems_before  # nothing written
    assert not api.store.get_gem("demo", "sync-kuramoto-model")["archived"]
    assert "kuramoto" in search.structured_content["gems"][0]["gem_id"]  # a viewer may search
    assert json.loads(gem.contents[0].text)["id"] == "sync-kuramoto-model"


def test_no_token_or_a_token_for_another_audience_is_401(live):
    url, api = live
    api_only = mcp_token(api, "researcher", audience=API_AUDIENCE)
    both = mcp_token(api, "researcher", audience=None)  # no audience asked: the token is good for both
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with httpx2.Client(base_url=url, timeout=30) as http:
        bare = http.post("/mcp", json=LIST_TOOLS, headers=headers)
        wrong = http.post("/mcp", json=LIST_TOOLS, headers={**headers, "Authorization": f"Bearer {api_only}"})
        forged = http.post("/mcp", json=LIST_TOOLS, headers={**headers, "Authorization": f"Bearer {both[:-4]}AAAA"})
        # and the other way round: an MCP-only token is refused by the REST API
        rest = http.get("/v1/lattices", headers={"Authorization": f"Bearer {mcp_token(api, 'researcher')}"})
        assert http.get("/v1/lattices", headers={"Authorization": f"Bearer {api_only}"}).status_code == 200
    for response in (bare, wrong, forged):
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"].startswith("Bearer") and "Traceback" not in response.text
    assert rest.status_code == 401 and rest.json()["error"]["code"] == "token_refused"
    reasons = [json.loads(d)["reason"] if isinstance(d, str) else d["reason"]
               for d in api.store.audit_log(action="token.refuse")["details"]]
    assert {"audience", "signature"} <= set(reasons)  # the refusals are audited with their reason

    async def connect_with(token: str) -> list[str]:
        async with over_http(url, token) as client:
            return [t.name for t in (await client.list_tools()).tools]

    assert set(anyio.run(connect_with, both)) == TOOLS
    with pytest.raises(ExceptionGroup) as caught:  # the SDK's client cannot even connect with the API's token
        anyio.run(connect_with, api_only)
    assert caught.group_contains(MCPError)


def test_mcp_endpoint_answers_503_outside_the_app_lifespan(api):
    # TestClient used without `with` runs no lifespan: the SDK's session manager is not running
    r = api.client.post("/mcp", json=LIST_TOOLS, headers={"Authorization": api.as_("researcher")["Authorization"]})
    assert r.status_code == 503 and r.json()["error"]["code"] == "unavailable"
    with api.client as started:  # with the lifespan it serves (and a second start gets a new session manager)
        assert started.post("/mcp", json=LIST_TOOLS).status_code == 401
    with api.client as again:
        assert again.post("/mcp", json=LIST_TOOLS).status_code == 401


# ------------------------------------------------------------------ stdio
def test_stdio_actor_from_an_api_key_is_checked_at_every_call(api):
    # the stdio server's actor, in-process with the SDK's in-memory client (the wiring of stdio, no subprocess)
    admin = Actor("admin", Role.ADMIN)
    key = create_api_key(api.store, admin, "agent", "researcher")
    source = stdio_actor(api.store, {"LATTICE_MCP_API_KEY": key.key})
    assert source() == Actor(f"key:{key.id}", Role.RESEARCHER)
    server = build_mcp_server(api.workbench, actor=source, lattice="demo")

    async def remember(content: str) -> Any:
        async with Client(server) as client:
            return await client.call_tool("remember", {"content": content})

    made = anyio.run(remember, "a program's note about tide tables")
    assert not made.is_error and api.store.get_gem("demo", made.structured_content["ids"][0])
    revoke_api_key(api.store, admin, key.id)
    before = api.store.version("demo")
    assert "revoked" in refused(anyio.run(remember, "after the revocation"), "token_refused")
    assert api.store.version("demo") == before
    with pytest.raises(TokenRefused):  # and a revoked or wrong key stops the server at start-up
        stdio_actor(api.store, {"LATTICE_MCP_API_KEY": key.key})
    with pytest.raises(AuthConfigError, match="LATTICE_MCP_USER"):
        stdio_actor(api.store, {})


def stdio_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"LATTICE_DATABASE_URL": f"sqlite:///{tmp_path / 'stdio.db'}", "LATTICE_DEMO": "1",
           "LATTICE_LLM_ORDER": "offline", "PYTHONPATH": str(ROOT)}
    env.update(extra)
    return env


@pytest.mark.slow
def test_stdio_server_as_a_configured_user(tmp_path):
    researcher = StdioServerParameters(command=sys.executable, args=["-m", "core", "mcp"], cwd=str(ROOT),
                                       env=stdio_env(tmp_path, LATTICE_MCP_USER="researcher"))
    viewer = StdioServerParameters(command=sys.executable, args=["-m", "core", "mcp"], cwd=str(ROOT),
                                   env=stdio_env(tmp_path, LATTICE_MCP_USER="viewer"))

    async def sessions() -> dict[str, Any]:
        async with Client(researcher) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            made = await client.call_tool("remember", {"content": "Stdio gems remember the harbour seals",
                                                       "title": "seals"})
            found = await client.call_tool("search", {"question": "harbour seals", "k": 1})
            gem_id = made.structured_content["ids"][0]
            read = await client.read_resource(f"gem://demo/{gem_id}")
        async with Client(viewer) as client:
            denied = await client.call_tool("remember", {"content": "not allowed"})
        return dict(tools=tools, made=made, found=found, read=read, denied=denied, gem_id=gem_id)

    r = anyio.run(sessions)
    assert r["tools"] == TOOLS and not r["made"].is_error
    assert r["found"].structured_content["gems"][0]["gem_id"] == r["gem_id"]
    assert json.loads(r["read"].contents[0].text)["title"] == "seals"
    refused(r["denied"], "permission_denied")
    store = Store.open(stdio_env(tmp_path)["LATTICE_DATABASE_URL"])
    try:  # written by the stdio server as the configured user: in the log under that name
        assert store.get_gem("demo", r["gem_id"])["content"] == "Stdio gems remember the harbour seals"
        assert store.info("demo").gems == len(load_demo_records()[0]) + 1  # the shipped demo and one more
        log = store.transactions("demo")
        assert "researcher" in set(log["actor"]) and "viewer" not in set(log["actor"])
    finally:
        store.close()


@pytest.mark.slow
def test_stdio_server_without_a_configured_actor_says_what_to_set(tmp_path):
    env = {**os.environ, **stdio_env(tmp_path)}
    env.pop("LATTICE_MCP_USER", None)
    env.pop("LATTICE_MCP_API_KEY", None)
    done = subprocess.run([sys.executable, "-m", "core", "mcp"], cwd=ROOT, env=env, input="", capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert "LATTICE_MCP_USER" in done.stderr and "LATTICE_MCP_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr
    unknown = subprocess.run([sys.executable, "-m", "core", "mcp"], cwd=ROOT, input="", capture_output=True,
                             text=True, timeout=120, env={**env, "LATTICE_MCP_USER": "mallory"})
    assert unknown.returncode == 2 and "'mallory' is not a user" in unknown.stderr
