"""``GET /v1/health`` (the process answers) and ``GET /v1/ready`` (it can serve: the database answers)."""
from __future__ import annotations

from fastapi import APIRouter, Depends

from core.api.context import ApiContext, context
from core.api.schemas import ErrorResponse, Health, Ready

router = APIRouter(prefix="/v1", tags=["health"])


@router.get("/health", response_model=Health, summary="liveness: the process answers (no token needed)")
def health() -> Health:
    return Health()


@router.get("/ready", response_model=Ready, summary="readiness: the database answers (no token needed)",
            responses={503: {"model": ErrorResponse, "description": "the database is unavailable"}})
def ready(ctx: ApiContext = Depends(context)) -> Ready:
    # one cheap query through the store (DatabaseUnavailable -> 503 database_unavailable)
    names = ctx.store.lattice_names()
    return Ready(database=ctx.store.engine.dialect.name, lattices=len(names),
                 rate_limits=ctx.workbench.rate_limits.store.stats())
