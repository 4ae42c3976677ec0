"""Who is calling: the bearer token of every request -> a ``core.access.Actor``, then its rate limit.

The seed's flow: the client gets a JWT from ``POST /v1/auth/token``, sends it with each request
(``Authorization: Bearer <token>``), and the gateway validates it before the resource server acts.
Validation (signature, ``exp``, ``nbf``, ``iss``, ``aud`` = the REST API, ``kid``) is the token
service's (core.auth.tokens); the role in the token is what core then enforces (core.access, in
every mutating Store call). Each authenticated request counts against the caller's request limit
(``workbench.rate_limits.requests``, per identity, shared by every node through Redis).
"""
from __future__ import annotations

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.access import Actor
from core.api.context import ApiContext, context
from core.auth.tokens import API_AUDIENCE, TokenRefused

bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                    description="an access token from POST /v1/auth/token (a signed JWT)")


def current_actor(credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                  ctx: ApiContext = Depends(context)) -> Actor:
    """The verified caller of this request (401 without a valid token; 429 over its request limit)."""
    if credentials is None or not credentials.credentials:
        raise TokenRefused("missing", "no bearer token: send `Authorization: Bearer <access token>` (get one from "
                           "POST /v1/auth/token)")
    actor = ctx.tokens.verify(credentials.credentials, audience=API_AUDIENCE)
    ctx.workbench.rate_limits.requests.acquire(actor.name)
    return actor
