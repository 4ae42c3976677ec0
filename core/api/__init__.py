"""API gateway: the REST API (FastAPI, under /v1) and the MCP server (/mcp, stdio) on the process's Workbench and the JWT
token service."""
from core.api.app import API_VERSION, create_app
from core.api.errors import ERROR_TABLE, PayloadTooLarge, error_body
from core.api.limits import BodyLimits
from core.api.mcp_server import build_mcp_server, stdio_actor
from core.api.server import ServerThread, serve

__all__ = ["API_VERSION", "create_app", "ERROR_TABLE", "PayloadTooLarge", "error_body", "BodyLimits",
           "ServerThread", "serve", "build_mcp_server", "stdio_actor"]
