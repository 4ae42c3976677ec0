"""Every error the API returns: one JSON shape, a stable ``code``, the project's message, the right status.

Body: ``{"error": {"code": "not_found", "message": "...", "field": "..."?, "issues": [...]?}}``.
The ``code`` is what a client branches on (it never changes for a given cause); the message is
the one the CLI prints and the app shows. The table below maps each ``LatticeError`` subclass to
its status and code (the first matching row wins, so subclasses come before their bases):

- 400 ``malformed``: a body that is not JSON (FastAPI's ``json_invalid``); 422 ``invalid``: a
  value outside what the model allows (a ValidationError, or FastAPI's own request validation);
- 401 ``token_refused`` with ``WWW-Authenticate: Bearer``; 403 ``permission_denied``;
- 404 ``not_found``; 409 ``conflict`` (a version changed; nothing was written);
- 413 ``payload_too_large``; 429 ``rate_limited`` / ``login_locked`` with ``Retry-After``;
- 503 ``database_unavailable`` (retry when the database is back, ``Retry-After: 5``);
- after a failover or restore (core.store.recovery): 503 ``recovering`` with ``Retry-After: 1``
  while another request verifies the database (a verification takes well under a second: retry
  the same request, nothing was written); 409 ``read_only`` once the verification failed. 409,
  not 503: the refusal lasts until an operator repairs or overrides, so it is not a transient
  server fault to retry (a 5xx would make clients and proxies retry it, and count the node as
  failing although its reads work); it is a conflict with the state of the database, which the
  message names along with what to do;
- anything else: 500 ``internal`` with no traceback (it is logged): a bug, never bad input.
"""
from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.access import PermissionDenied
from core.auth.throttle import LoginLocked
from core.auth.tokens import TokenRefused
from core.engine.limits import Cancelled, WorkLimitExceeded
from core.errors import LatticeError, ValidationError
from core.knowledge.base import EmbedderMismatchError
from core.reflection.ratelimit import RateLimitExceeded
from core.store.db import SchemaError
from core.store.errors import (ConflictError, DatabaseUnavailable, EncryptionError, ImportFailed, NotFoundError,
                               SnapshotError)
from core.store.recovery import RecoveryInProgress, RecoveryReadOnly

log = logging.getLogger(__name__)


class PayloadTooLarge(LatticeError):
    """A request body over the size limit of its route; nothing was read further or written."""

    def __init__(self, limit_bytes: int):
        self.limit_bytes = int(limit_bytes)
        super().__init__(f"request body too large: at most {limit_bytes:,} bytes here; send a smaller body "
                         "(split a batch, or import a smaller file) - nothing was written")


# (error class, HTTP status, stable code); checked in order, so subclasses first
ERROR_TABLE: list[tuple[type[BaseException], int, str]] = [
    (TokenRefused, 401, "token_refused"),
    (PermissionDenied, 403, "permission_denied"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (RecoveryReadOnly, 409, "read_only"),  # until a repair or an override: not a retryable 503
    (PayloadTooLarge, 413, "payload_too_large"),
    (ImportFailed, 422, "import_failed"),
    (SnapshotError, 422, "bad_snapshot"),
    (WorkLimitExceeded, 422, "too_much_work"),
    (ValidationError, 422, "invalid"),
    (EmbedderMismatchError, 409, "embedder_mismatch"),
    (LoginLocked, 429, "login_locked"),
    (RateLimitExceeded, 429, "rate_limited"),
    (RecoveryInProgress, 503, "recovering"),  # a DatabaseUnavailable: before its base
    (DatabaseUnavailable, 503, "database_unavailable"),
    (SchemaError, 503, "schema_mismatch"),
    (EncryptionError, 503, "encryption_unavailable"),
    (Cancelled, 503, "cancelled"),
    (LatticeError, 400, "bad_request"),  # every other user error: the message says what to change
]

# seconds a client waits before retrying a 503 of this code (others: RETRY_AFTER_S)
RETRY_AFTER_BY_CODE = {"recovering": 1}
RETRY_AFTER_S = 5

STATUS_CODES = {404: "not_found", 405: "method_not_allowed", 406: "not_acceptable", 413: "payload_too_large",
                415: "unsupported_media_type"}


def classify(exc: BaseException) -> tuple[int, str]:
    """The (status, code) of a LatticeError (500, "internal" for anything not in the table)."""
    for cls, status, code in ERROR_TABLE:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal"


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    """``{"error": {"code", "message", "field"?, ...}}``: the one shape of every error response."""
    err: dict[str, Any] = {"code": code, "message": message}
    if field:
        err["field"] = field
    err.update({k: v for k, v in extra.items() if v is not None})
    return {"error": err}


def lattice_error_response(exc: LatticeError) -> JSONResponse:
    """The response for a LatticeError: its status, code, message, field and the headers it needs."""
    status, code = classify(exc)
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if status == 429 and retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(float(retry_after))))
    reason = getattr(exc, "reason", None) if isinstance(exc, TokenRefused) else None
    if status == 401:  # RFC 6750: no error attribute when no token was sent at all
        headers["WWW-Authenticate"] = ('Bearer realm="gem-lattice"' if reason == "missing" else
                                       'Bearer realm="gem-lattice", error="invalid_token"')
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_BY_CODE.get(code, RETRY_AFTER_S))
    issues = [vars(i) for i in exc.issues[:100]] if isinstance(exc, ImportFailed) else None
    body = error_body(code, str(exc), getattr(exc, "field", None), issues=issues, reason=reason)
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple | list) -> str:
    """FastAPI's error location ("body", "items", 0, "content") as one dotted field name."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or (str(loc[0]) if loc else "request")


def validation_response(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's request validation errors in the same shape: 400 for a body that is not JSON, else 422."""
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
        detail = first.get("ctx", {}).get("error", "")
        return JSONResponse(error_body("malformed", f"the request body is not valid JSON ({detail}); send a JSON "
                                                    "object - nothing was written", "body"), status_code=400)
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = _field(first.get("loc", ()))
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    details = [{"field": _field(e.get("loc", ())), "message": str(e.get("msg", ""))} for e in errors[:20]]
    return JSONResponse(error_body("invalid", f"{field}: {first.get('msg', 'invalid')}{more} - nothing was written",
                                   field, details=details), status_code=422)


def install(app: FastAPI) -> None:
    """Register the handlers: LatticeError, request validation, Starlette's HTTP errors, and the catch-all."""

    @app.exception_handler(LatticeError)
    async def _lattice(request: Request, exc: LatticeError) -> JSONResponse:
        status, _ = classify(exc)
        if status >= 500:
            log.warning("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return lattice_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # a bug, never bad input: logged with its traceback here, never sent to the client
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse(error_body("internal", "internal error; it has been logged - retry, and report it "
                                                   "if it persists"), status_code=500)
