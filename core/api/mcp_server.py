"""The MCP server for agents: tools to remember, search, reflect and forget, and the gems as resources.

Built with the official ``mcp`` SDK (``mcp.server.mcpserver.MCPServer``) on the process's
:class:`core.service.Workbench`, so every rule is core's: the Store's permission checks
(core.access: a viewer may read and search, a researcher also remember, reflect and forget),
the shared ranking (core.service.search), the reflection engine with its rate limit, and the
per-identity request limit (``workbench.rate_limits.requests``, one hit per tool call or read).

Tools (arguments -> result; the result is JSON, also as ``structuredContent``):

- ``remember(content, lattice?, title?, tags?, created_at?)`` -> ``{lattice, ids, version}``: a new
  gem, embedded with the lattice's embedder; with ``created_at`` (ISO 8601 with a zone, or a
  lattice time) it enters aged to the clock, through the Store's import path as the REST API does.
- ``search(question, lattice?, k?, at?)`` -> the ranked gems with every score term (nothing written).
- ``reflect(question, lattice?, session_id?)`` -> ``{answer, record}``; each streamed chunk of the
  answer is also sent as a progress notification (``progress`` = chunks so far, ``message`` = the
  chunk) when the client asked for progress. The used gems re-cohere and become entangled.
- ``forget(gem_id, lattice?, delete?)`` -> archived (kept, frozen, can be brought back), or deleted
  for good with ``delete=true``. Needs edit permission.

Resources (``application/json``): ``lattice://index`` (every lattice), ``gem://{lattice}{?offset,limit}``
(a page of a lattice's active gems, each with its ``uri``) and ``gem://{lattice}/{gem_id}`` (one gem).

Who calls: over HTTP (core.api.mcp_http) the Actor of the verified bearer token, whose audience
must be the MCP one; over stdio (``python -m core mcp``) the actor configured in the
environment (:func:`stdio_actor`). A refused or failed call is a tool error (``isError``) whose
text is ``<code>: <the project's message>`` (the codes of core.api.errors); never a traceback.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Callable, Mapping

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from pydantic import Field

from core.access import Actor, Permission, Role, require
from core.api.convert import plain, records
from core.api.errors import classify
from core.auth import (MCP_AUDIENCE, AuthConfigError, CredentialsSource, TokenRefused, TokenService, actor_for,
                       check_api_key)
from core.errors import LatticeError
from core.service import Workbench, gem_titles, search as rank
from core.store import ImportFailed, NotFoundError

LATTICE_ENV = "LATTICE_MCP_LATTICE"  # the lattice a tool uses when the call names none (default "demo")
USER_ENV = "LATTICE_MCP_USER"  # stdio: act as this user of the app (its role from the credentials)
API_KEY_ENV = "LATTICE_MCP_API_KEY"  # stdio: act as this API key (its role; refused once revoked)
DEFAULT_LATTICE = "demo"
PAGE = 100  # gems per page of a gem:// listing (at most MAX_PAGE)
MAX_PAGE = 500
INSTRUCTIONS = """Long-term memory as a lattice of gems whose coherence decays with time and is restored when
a gem is used. `search` ranks gems for a question (read only); `reflect` answers a question from the
resonant gems and reinforces them; `remember` adds a gem; `forget` archives one (delete=true removes
it for good). Gems are resources: lattice://index lists the lattices, gem://{lattice} a lattice's gems,
gem://{lattice}/{gem_id} one gem."""

ActorSource = Callable[[], Actor]
log = logging.getLogger(__name__)


# ----------------------------------------------------------------- who calls
class McpTokenVerifier:
    """The SDK's ``TokenVerifier`` protocol on :class:`TokenService`: a bearer token is accepted
    only if ``TokenService.verify(token, audience=MCP_AUDIENCE)`` accepts it (signature, ``kid``,
    ``iss``, ``exp``/``nbf``, the subject's current role; a token for the REST API only is refused).
    A refusal is ``None``, which the SDK answers 401 with ``WWW-Authenticate: Bearer``; the token
    service has written the ``token.refuse`` audit row."""

    def __init__(self, tokens: TokenService):
        self.tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        try:  # a database read at worst (keys and subjects are cached): off the event loop
            actor = await anyio.to_thread.run_sync(functools.partial(self.tokens.verify, token, audience=MCP_AUDIENCE))
        except TokenRefused:
            return None
        except LatticeError as exc:  # the database is down: no caller can be verified now
            log.warning("MCP bearer token not verified: %s", exc)
            return None
        return access_token_for(actor, token)


def token_actor() -> Actor:
    """The Actor of this request's verified bearer token (:class:`McpTokenVerifier` put it in the SDK's context)."""
    token = get_access_token()
    role = (token.claims or {}).get("role") if token is not None else None
    if token is None or not token.subject or role not in {r.value for r in Role}:
        raise TokenRefused("missing", "no verified bearer token on this call; send `Authorization: Bearer <token>` "
                                      "(an access token for the MCP audience from POST /v1/auth/token)")
    return Actor(token.subject, Role(role))


def access_token_for(actor: Actor, token: str) -> AccessToken:
    """What the SDK keeps of a verified token: the subject, and the role in ``claims`` for :func:`token_actor`."""
    return AccessToken(token=token, client_id=actor.name, scopes=[], subject=actor.name,
                       claims={"role": actor.role.value, "aud": MCP_AUDIENCE})


def stdio_actor(store: Any, env: Mapping[str, str] | None = None) -> ActorSource:
    """Who ``python -m core mcp`` acts as, checked now and again at every call.

    ``LATTICE_MCP_API_KEY`` (an API key from ``python -m core apikeys create``): the key's role;
    a revoked key is refused from the next call on. Else ``LATTICE_MCP_USER``: a user of the app
    (the demo users with ``LATTICE_DEMO=1``, else the credentials file), with that user's role.
    The server runs on this machine with the database's own credentials, so this chooses whose
    permissions apply (and whose name the log records); it is not a log-in.
    """
    env = os.environ if env is None else env
    key, user = (env.get(API_KEY_ENV) or "").strip(), (env.get(USER_ENV) or "").strip().lower()
    if key:
        def from_key() -> Actor:
            record, reason = check_api_key(store, key)
            if record is None:
                raise TokenRefused(reason, f"{API_KEY_ENV}: the API key is {reason}; ask an admin for a new one "
                                           "(python -m core apikeys create NAME --role researcher)")
            return Actor(f"key:{record.id}", Role(record.role))
        source = from_key
    elif user:
        credentials = CredentialsSource(env=env)

        def from_user() -> Actor:
            actor = actor_for(credentials(), user)
            if actor is None:
                raise AuthConfigError(f"{USER_ENV}={user!r} is not a user of the app; add one with python -m core "
                                      "users add-user, or set LATTICE_DEMO=1 for the demo users")
            return actor
        source = from_user
    else:
        raise AuthConfigError(f"set {USER_ENV} (a user of the app, e.g. researcher with LATTICE_DEMO=1) or "
                              f"{API_KEY_ENV} (an API key) to say whose permissions the MCP server acts with")
    source()  # a wrong setting fails at start-up, not at the first call
    return source


# ----------------------------------------------------------------- helpers
def _tool_error(exc: LatticeError) -> ToolError:
    return ToolError(f"{classify(exc)[1]}: {exc}")


def _resource_error(exc: LatticeError) -> ResourceError:
    text = f"{classify(exc)[1]}: {exc}"
    return ResourceNotFoundError(text) if isinstance(exc, NotFoundError) else ResourceError(text)


def _import_one(store: Any, lattice: str, actor: Actor, row: dict[str, Any]) -> Any:
    """One gem with its own time through the Store's import path (all checks, aged to the clock)."""
    store.info(lattice)  # an unknown lattice is not_found here, not a new lattice
    with tempfile.TemporaryDirectory(prefix="mcp-remember-") as tmp:
        path = Path(tmp) / "gem.jsonl"
        path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
        try:
            return store.import_path(lattice, path, actor, format="gems")
        except ImportFailed as exc:  # name the call, not the scratch file
            raise ImportFailed([replace(issue, file="remember") for issue in exc.issues]) from None


def _record_json(store: Any, lattice: str, record: Any) -> dict[str, Any]:
    """A reflection record as JSON, each gem with its ``id`` and display ``title``, best first."""
    data = record.to_dict()
    ids = [g["gem_id"] for g in data["gems"]]
    titles = gem_titles(store.gem_texts(lattice, ids), ids) if ids else []
    data["gems"] = [{"id": g["gem_id"], "title": t, **g} for g, t in zip(data["gems"], titles)]
    return plain(data)


Lattice = Annotated[str, Field(min_length=1, max_length=200, description="the lattice (default: the server's)")]
Question = Annotated[str, Field(min_length=1, max_length=10_000)]
GemId = Annotated[str, Field(min_length=1, max_length=200)]


# ----------------------------------------------------------------- the server
def build_mcp_server(workbench: Workbench, tokens: TokenService | None = None, *, actor: ActorSource | None = None,
                     lattice: str | None = None, version: str = "") -> MCPServer:
    """The MCP server over ``workbench``.

    Parameters
    ----------
    workbench : Workbench
        The process's services (store, caches, router, rate limits).
    tokens : TokenService, optional
        For HTTP: every call runs as the Actor of its bearer token, verified by ``tokens`` for
        the MCP audience (:class:`McpTokenVerifier`, the SDK's TokenVerifier); serve the server
        with :class:`core.api.mcp_http.McpEndpoint`.
    actor : callable, optional
        For stdio instead: ``actor() -> Actor`` at every call (:func:`stdio_actor`).
    lattice : str, optional
        The lattice a call uses when it names none (default ``LATTICE_MCP_LATTICE`` or ``demo``).
    version : str
        The server version announced to clients (the API's).
    """
    if (tokens is None) == (actor is None):
        raise ValueError("give tokens (HTTP: callers from bearer tokens) or actor (stdio), not both or neither")
    store, default = workbench.store, lattice or os.environ.get(LATTICE_ENV) or DEFAULT_LATTICE
    caller: ActorSource = token_actor if tokens is not None else actor  # type: ignore[assignment]
    auth: dict[str, Any] = {}
    if tokens is not None:
        # AuthSettings wants an issuer URL; it is advertised only with protected-resource metadata,
        # which is not served (tokens come from POST /v1/auth/token, not an OAuth authorize flow)
        auth = {"token_verifier": McpTokenVerifier(tokens),
                "auth": AuthSettings(issuer_url="http://localhost/v1/auth/token", resource_server_url=None)}
    server: MCPServer = MCPServer("gem-lattice", title="Gem Lattice Workbench", version=version,
                                  instructions=INSTRUCTIONS, log_level="WARNING", **auth)

    def who() -> Actor:
        """The caller, counted against its request limit (RateLimitExceeded past it)."""
        person = caller()
        workbench.rate_limits.requests.acquire(person.name)
        return person

    @server.tool(description="Add a gem (a piece of knowledge) to a lattice; returns its id. Needs edit permission.")
    def remember(content: Annotated[str, Field(min_length=1, max_length=200_000)], lattice: Lattice = default,
                 title: Annotated[str, Field(max_length=1000)] = "",
                 tags: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=100)] | None = None,
                 created_at: Annotated[str | float | None, Field(description=(
                     "when it was learnt: ISO 8601 with a zone, or a lattice time; it enters aged to the "
                     "clock (default: now)"))] = None) -> dict[str, Any]:
        try:
            person = who()
            require(person, Permission.EDIT, "remember a gem")
            if created_at is not None:
                row = {"content": content, "title": title, "tags": list(tags or []), "created_at": created_at}
                report = _import_one(store, lattice, person, row)
                return {"lattice": lattice, "ids": list(report.gem_ids), "version": int(report.version)}
            gem_id = store.add_gem(lattice, person, content, title=title, tags=list(tags or []))
            return {"lattice": lattice, "ids": [gem_id], "version": store.version(lattice)}
        except LatticeError as exc:
            raise _tool_error(exc) from None

    @server.tool(description="Rank a lattice's gems for a question, with every score term (similarity, coherence, "
                             "resonance...). Reads only.")
    def search(question: Question, lattice: Lattice = default,
               k: Annotated[int | None, Field(ge=1, le=1000, description="gems (default: the lattice's k)")] = None,
               at: Annotated[str | float | None, Field(description=(
                   "now (default), an ISO 8601 instant with a zone, or a lattice time"))] = None) -> dict[str, Any]:
        try:
            who()
            return plain(rank(store, lattice, question, None if at is None else str(at), k,
                              lattices=workbench.lattices, embedder=workbench.embedder))
        except LatticeError as exc:
            raise _tool_error(exc) from None

    @server.tool(description="Answer a question from the lattice's resonant gems (streamed as progress "
                             "notifications); the gems used are reinforced. Needs reflect permission.")
    async def reflect(question: Question, ctx: Context, lattice: Lattice = default,
                      session_id: Annotated[str, Field(min_length=1, max_length=200, description=(
                          "conversation to continue"))] = "mcp") -> dict[str, Any]:
        def answer() -> dict[str, Any]:  # on a worker thread (a copy of the request's context: its token)
            person = who()
            reflection = workbench.reflect(lattice, question, person, session_id=f"{person.name}:{session_id}")
            for n, chunk in enumerate(reflection, 1):  # the engine streams; the client sees progress
                anyio.from_thread.run(ctx.report_progress, n, None, chunk)
            record = _record_json(store, lattice, reflection.result())
            return {"answer": record["answer"], "record": record}
        try:
            return await anyio.to_thread.run_sync(answer)
        except LatticeError as exc:
            raise _tool_error(exc) from None

    @server.tool(description="Forget a gem: archive it (kept, frozen; can be brought back), or delete it for good "
                             "with delete=true. Needs edit permission.")
    def forget(gem_id: GemId, lattice: Lattice = default, delete: bool = False) -> dict[str, Any]:
        try:
            person = who()
            require(person, Permission.EDIT, "forget a gem")
            if delete:
                store.delete_gem(lattice, gem_id, person)
            else:
                store.archive_gem(lattice, gem_id, person)
            return {"lattice": lattice, "gem_id": gem_id, "archived": not delete, "deleted": delete,
                    "version": store.version(lattice)}
        except LatticeError as exc:
            raise _tool_error(exc) from None

    @server.resource("gem://{lattice}/{gem_id}", name="gem", mime_type="application/json",
                     description="one gem: its text, tags, times and state (energy, phase, coherence, uncertainty)")
    def gem(lattice: str, gem_id: str) -> str:
        try:
            who()
            return json.dumps(plain(store.get_gem(lattice, gem_id)), ensure_ascii=False)
        except LatticeError as exc:
            raise _resource_error(exc) from None

    @server.resource("gem://{lattice}{?offset,limit}", name="gems", mime_type="application/json",
                     description=f"a page of a lattice's active gems (seq order; limit default {PAGE}, at most "
                                 f"{MAX_PAGE}), each with its uri")
    def gems(lattice: str, offset: int = 0, limit: int = PAGE) -> str:
        try:
            who()
            if offset < 0 or not 1 <= limit <= MAX_PAGE:
                raise ResourceError(f"invalid: offset must be >= 0 and limit in 1..{MAX_PAGE}")
            # Store.list_gems pages by page number: read the pages that hold [offset, offset + limit)
            first = offset // limit + 1
            frame, total = store.list_gems(lattice, page=first, page_size=limit)
            items = records(frame)
            if offset % limit:
                more, total = store.list_gems(lattice, page=first + 1, page_size=limit)
                items = (items + records(more))[offset % limit:offset % limit + limit]
            listed = [{"uri": f"gem://{lattice}/{g['id']}", "id": g["id"], "title": g.get("title", ""),
                       "tags": g.get("tags", []), "coherence": g.get("coherence"), "created_at": g.get("created_at")}
                      for g in items]
            end = offset + len(listed)
            return json.dumps({"lattice": lattice, "total": total, "offset": offset, "gems": listed,
                               "next_offset": end if end < total and listed else None}, ensure_ascii=False)
        except LatticeError as exc:
            raise _resource_error(exc) from None

    @server.resource("lattice://index", name="lattices", mime_type="application/json",
                     description="every lattice: gem counts, clock, version; its gems at gem://{lattice}")
    def lattices() -> str:
        try:
            who()
            return json.dumps([{**plain(i.to_dict()), "uri": f"gem://{i.name}"} for i in store.list_lattices()],
                              ensure_ascii=False)
        except LatticeError as exc:
            raise _resource_error(exc) from None

    return server
