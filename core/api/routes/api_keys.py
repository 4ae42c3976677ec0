"""Programs' API keys (admin): create (the key is in this one response only), list, revoke.
The keys are core.auth.api_keys' (stored hashed, audited); a program exchanges its key for a
JWT at ``POST /v1/auth/token`` with ``grant_type=api_key``."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from core.access import Actor, Permission, require
from core.api.context import ApiContext, context
from core.api.convert import plain
from core.api.schemas import AUTH_ERRORS, ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyOut, ErrorResponse
from core.api.security import current_actor
from core.auth.api_keys import create_api_key, list_api_keys, revoke_api_key

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"], responses=AUTH_ERRORS)


@router.post("", response_model=ApiKeyCreated, status_code=201,
             summary="create a key for a program with a role (admin); the key is shown this once")
def create(body: ApiKeyCreate, ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    return plain(create_api_key(ctx.store, actor, body.name, body.role).to_dict())


@router.get("", response_model=ApiKeyList, summary="every key, revoked ones too, without secrets (admin)")
def list_keys(ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    require(actor, Permission.ADMIN, "list API keys")
    return {"items": plain(list_api_keys(ctx.store))}


@router.delete("/{key_id}", response_model=ApiKeyOut,
               responses={404: {"model": ErrorResponse, "description": "no such key"}},
               summary="revoke a key and its refresh tokens (admin)")
def revoke(key_id: str, ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    return plain(revoke_api_key(ctx.store, actor, key_id))
