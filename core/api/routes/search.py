"""``POST /v1/lattices/{name}/search``: the ranked gems with every score term, as of now or a later time.

Read only, and the same ranking as ``python -m core search`` (core.service.search), on the
Workbench's lattice cache (a query costs a read of what changed, not of the whole lattice).
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from core.access import Actor
from core.api.context import ApiContext, context, embedder_of
from core.api.convert import plain
from core.api.schemas import AUTH_ERRORS, NOT_FOUND, SearchIn, SearchOut
from core.api.security import current_actor
from core.service import search as rank

router = APIRouter(prefix="/v1/lattices/{name}", tags=["search"], responses={**AUTH_ERRORS, **NOT_FOUND})


@router.post("/search", response_model=SearchOut, summary="rank the gems for a question (nothing is written)")
def search(name: str, body: SearchIn, ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    at = None if body.at is None else str(body.at)
    return plain(rank(ctx.store, name, body.question, at, body.k, lattices=ctx.workbench.lattices,
                      embedder=embedder_of(ctx)))
