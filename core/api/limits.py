"""Request body size limits: a 413 JSON error before a byte too many is read, streamed bodies too.

Two limits, in bytes: ``json`` for every route (a batch of gems, a question set) and ``upload``
for the routes that take a file (import, restore). A request that declares a ``Content-Length``
over its limit is refused before its body is read; a body without one (chunked, streamed) is
counted as it arrives and refused at the first chunk past the limit (the route then sees
:class:`BodyTooLarge` while reading, and nothing is written). Environment:
``LATTICE_API_MAX_BODY_MB`` (default 1) and ``LATTICE_API_MAX_UPLOAD_MB`` (default 64).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.api.errors import PayloadTooLarge, lattice_error_response
from core.errors import ValidationError

MAX_BODY_ENV = "LATTICE_API_MAX_BODY_MB"
MAX_UPLOAD_ENV = "LATTICE_API_MAX_UPLOAD_MB"
DEFAULT_BODY_MB = 1.0
DEFAULT_UPLOAD_MB = 64.0
# the routes that take a file (multipart): the upload limit instead of the JSON one
UPLOAD_ROUTES = re.compile(r"^/v1/(lattices/[^/]+/import|snapshots/restore)/?$")


def _megabytes(env: Mapping[str, str], name: str, default: float) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return int(default * 2**20)
    try:
        mb = float(raw)
    except ValueError:
        raise ValidationError(name, f"got {raw!r}; give a size in megabytes, e.g. {default:g}") from None
    if not mb > 0 or mb == float("inf"):
        raise ValidationError(name, f"got {raw!r}; must be a number of megabytes > 0")
    return int(mb * 2**20)


class BodyTooLarge(HTTPException):
    """Raised from the counted ``receive`` of a streamed body past its limit. An HTTPException,
    because FastAPI re-raises those from a body read (any other error there becomes a 400);
    the API's handler answers it as ``payload_too_large`` with PayloadTooLarge's message."""

    def __init__(self, limit_bytes: int):
        super().__init__(status_code=413, detail=str(PayloadTooLarge(limit_bytes)))


@dataclass(frozen=True)
class BodyLimits:
    """Body size limits in bytes: ``json`` (every route) and ``upload`` (file routes)."""

    json: int = int(DEFAULT_BODY_MB * 2**20)
    upload: int = int(DEFAULT_UPLOAD_MB * 2**20)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "BodyLimits":
        env = os.environ if env is None else env
        return cls(_megabytes(env, MAX_BODY_ENV, DEFAULT_BODY_MB), _megabytes(env, MAX_UPLOAD_ENV, DEFAULT_UPLOAD_MB))

    def for_path(self, path: str) -> int:
        return self.upload if UPLOAD_ROUTES.match(path) else self.json


class BodySizeLimit:
    """ASGI middleware enforcing :class:`BodyLimits` (see the module docstring)."""

    def __init__(self, app: ASGIApp, limits: BodyLimits):
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope.get("path", ""))
        declared = None
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
        if declared is not None and declared > limit:
            await lattice_error_response(PayloadTooLarge(limit))(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)  # inside the route's body read: answered 413
            return message

        await self.app(scope, counted, send)
