"""The REST API gateway: ``create_app()`` -> a FastAPI app, versioned under ``/v1``, OpenAPI at ``/docs``.

It stands on the same services as the Streamlit app (one :class:`core.service.Workbench`: the
store, the lattice and resonance caches, the LLM router, the rate limits) and the JWT token
service (core.auth.tokens); every rule stays in core, the routes (core.api.routes) only
translate HTTP to those calls and errors to JSON (core.api.errors).
"""
from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.api import errors
from core.api.context import ApiContext
from core.api.limits import BodyLimits, BodySizeLimit
from core.api.mcp_http import PATH as MCP_PATH
from core.api.mcp_http import McpEndpoint
from core.api.mcp_server import build_mcp_server
from core.api.routes import ROUTERS
from core.auth.tokens import TokenService
from core.service import Workbench

API_VERSION = "1.0.0"
DESCRIPTION = """The Gem Lattice Workbench's memory over HTTP: lattices, gems, search, reflection (streamed as
Server-Sent Events), observation, clock advances, evaluation, snapshots.

**Auth** (the seed's token flow): `POST /v1/auth/token` with a user's name and password, a program's
API key or a refresh token returns a short-lived signed JWT; send it as `Authorization: Bearer <token>`.
The public keys are at `/.well-known/jwks.json`. Roles (admin, researcher, viewer) are enforced in core.

**MCP** for agents (tools remember, search, reflect, forget; gems as resources): streamable HTTP at `/mcp`,
with a bearer token for the MCP audience (`"audience": "gem-lattice-mcp"` in the token request, or none: both).

**Errors** are JSON `{"error": {"code", "message", "field"?}}` with a stable `code`.
"""


class ServerTiming:
    """Adds ``Server-Timing: app;dur=<ms>`` (time to the response's headers) to every response:
    the server-side latency a benchmark reads, without the client's or the network's share."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - start) * 1000.0
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"server-timing", f"app;dur={ms:.2f}".encode())]}
            await send(message)

        await self.app(scope, receive, timed)


def create_app(workbench: Workbench | None = None, tokens: TokenService | None = None, *,
               limits: BodyLimits | None = None, database_url: str | None = None) -> FastAPI:
    """The API app.

    Parameters
    ----------
    workbench : Workbench, optional
        The process's services; default a Workbench over ``Store.open(database_url)`` (the store
        of ``LATTICE_DATABASE_URL``, default data/lattice.db), closed when the app shuts down.
    tokens : TokenService, optional
        Default ``TokenService.from_env(workbench.store)``.
    limits : BodyLimits, optional
        Request body limits in bytes; default from ``LATTICE_API_MAX_BODY_MB`` / ``..._UPLOAD_MB``.
    """
    owns_store = workbench is None
    if workbench is None:
        from core.store import Store
        workbench = Workbench(Store.open(database_url))
    ctx = ApiContext(workbench, tokens or TokenService.from_env(workbench.store), limits or BodyLimits.from_env(),
                     owns_store)
    mcp = McpEndpoint(build_mcp_server(workbench, ctx.tokens, version=API_VERSION), ctx.limits)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        try:
            async with mcp.running():  # the MCP SDK's session manager lives as long as the app
                yield {}
        finally:
            ctx.close()

    app = FastAPI(title="Gem Lattice Workbench API", version=API_VERSION, description=DESCRIPTION,
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json", lifespan=lifespan)
    app.state.lattice = ctx
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.router.routes.append(Route(MCP_PATH, endpoint=mcp, include_in_schema=False))  # every method, exactly /mcp
    app.add_middleware(BodySizeLimit, limits=ctx.limits)
    app.add_middleware(ServerTiming)
    return app
