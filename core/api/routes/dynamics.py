"""``POST /v1/lattices/{name}/observe`` (gems re-cohere, partners too) and ``POST .../advance``
(the clock moves: every gem decays and rotates), as the app's Store calls do them."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from core.access import Actor, Permission, require
from core.api.context import ApiContext, context
from core.api.convert import plain
from core.api.routes.lattices import lattice_out
from core.api.schemas import AUTH_ERRORS, CONFLICT, NOT_FOUND, AdvanceIn, LatticeOut, ObserveIn
from core.api.security import current_actor
from core.engine import parse_duration

router = APIRouter(prefix="/v1/lattices/{name}", tags=["dynamics"], responses={**AUTH_ERRORS, **NOT_FOUND, **CONFLICT})


@router.post("/observe", summary="observe gems: they and their entangled partners re-cohere (researcher, admin)")
def observe(name: str, body: ObserveIn, ctx: ApiContext = Depends(context),
            actor: Actor = Depends(current_actor)) -> dict[str, Any]:
    return plain(ctx.store.observe(name, body.gem_ids, actor, strength=body.strength,
                                   expected_version=body.expected_version))


@router.post("/advance", response_model=LatticeOut,
             summary="advance the lattice clock by a duration (14d, 36h, 90min or lattice units)")
def advance(name: str, body: AdvanceIn, ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    require(actor, Permission.EDIT, "advance the lattice clock")
    unit = ctx.store.info(name).time_unit
    dt = parse_duration(body.dt, unit, "dt")
    step = None if body.step is None else parse_duration(body.step, unit, "step")
    return lattice_out(ctx.store.advance(name, dt, actor, step=step, expected_version=body.expected_version))
