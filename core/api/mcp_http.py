"""The MCP server over streamable HTTP at ``/mcp`` of the API app (the same process, store and caches).

:class:`McpEndpoint` is the ASGI app the API routes ``/mcp`` to. Each time the API app starts
(its lifespan), :meth:`McpEndpoint.running` builds the SDK's streamable-HTTP app for the server
(``MCPServer.streamable_http_app``: bearer auth by the SDK's middleware and the server's
TokenVerifier, core.api.mcp_server.McpTokenVerifier) and runs its session manager; the SDK's
session manager runs once per instance, so a restarted app gets a new one. Requests that come
while it is not running (an app used without its lifespan) get 503.

Stateless: every POST is served on its own (no ``Mcp-Session-Id`` to keep), so behind nginx
any API node can answer any request, as for ``/v1``. A tool's progress notifications still
reach the client, on the SSE response of its POST. The SDK's DNS-rebinding check (Host and
Origin allow-lists) is off: it guards unauthenticated servers on localhost against web pages,
and every request here needs a bearer token a web page does not have; the API is served
behind nginx under other host names.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from core.api.errors import error_body
from core.api.limits import BodyLimits

PATH = "/mcp"


class McpEndpoint:
    """ASGI app serving ``server`` at :data:`PATH` while :meth:`running` (see the module docstring).

    ``limits.json`` (bytes) bounds a request body, as for every JSON route of the API.
    """

    def __init__(self, server: MCPServer, limits: BodyLimits | None = None):
        self.server = server
        self.limits = limits or BodyLimits()
        self._app: Any = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Serve requests inside this context (the API app's lifespan)."""
        app = self.server.streamable_http_app(
            streamable_http_path=PATH, stateless_http=True, max_request_body_size=self.limits.json,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        async with self.server.session_manager.run():
            self._app = app
            try:
                yield
            finally:
                self._app = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            body = error_body("unavailable", "the MCP endpoint is not running (the server is starting or stopping); "
                                             "retry in a moment")
            await JSONResponse(body, status_code=503, headers={"Retry-After": "5"})(scope, receive, send)
            return
        await app(scope, receive, send)
