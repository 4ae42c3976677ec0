"""The seed's token flow: ``POST /v1/auth/token`` (password, API key or refresh token -> a JWT pair)
and ``GET /.well-known/jwks.json`` (the public keys that verify the tokens).

Passwords are the app's (bcrypt credentials, the same roles and the same login throttling: a
locked-out user gets 429 with Retry-After); API keys are created by an admin (core.auth.api_keys);
refresh tokens rotate on use and a reused one is refused. Issue and refusal are audited by the
token service (core.auth.tokens).
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request

from core.api.context import ApiContext, context
from core.api.schemas import BAD_REQUEST, ErrorResponse, PasswordGrant, RefreshGrant, TokenRequest, TokenResponse

router = APIRouter(tags=["auth"])


@router.post("/v1/auth/token", response_model=TokenResponse, summary="exchange credentials for a JWT pair",
             responses={**BAD_REQUEST, 401: {"model": ErrorResponse, "description": "credentials refused"},
                        422: {"model": ErrorResponse, "description": "a malformed grant"},
                        429: {"model": ErrorResponse, "description": "too many failed log-ins (see Retry-After)"}})
def token(request: Request, grant: TokenRequest = Body(...), ctx: ApiContext = Depends(context)) -> Any:
    """``grant_type`` password (username, password), api_key (api_key) or refresh_token (refresh_token)."""
    if isinstance(grant, PasswordGrant):
        client = request.client.host if request.client else ""
        pair = ctx.tokens.issue_for_password(grant.username, grant.password, audience=grant.audience, client=client)
    elif isinstance(grant, RefreshGrant):
        pair = ctx.tokens.refresh(grant.refresh_token)
    else:
        pair = ctx.tokens.issue_for_api_key(grant.api_key, audience=grant.audience)
    return pair.to_dict()


@router.get("/.well-known/jwks.json", summary="the public signing keys (JWKS), current and previous")
def jwks(ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    return ctx.tokens.jwks()
