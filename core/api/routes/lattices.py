"""Lattices: list, create (with a preset), describe, read and change parameters, delete (admin)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from core.access import Actor, Permission, require
from core.api.context import ApiContext, context
from core.api.convert import plain
from core.api.schemas import (AUTH_ERRORS, CONFLICT, NOT_FOUND, LatticeCreate, LatticeList, LatticeOut, ParamsOut,
                              ParamsPatch)
from core.api.security import current_actor
from core.engine import LatticeParams, apply_settings
from core.store import ConflictError

router = APIRouter(prefix="/v1/lattices", tags=["lattices"], responses=AUTH_ERRORS)


def lattice_out(info: Any) -> dict[str, Any]:
    """A LatticeInfo as the API returns it."""
    return plain(info.to_dict())


def params_out(info: Any) -> dict[str, Any]:
    return {"lattice": info.name, "version": info.version, "preset": info.preset, "params": plain(info.params.to_dict())}


@router.get("", response_model=LatticeList, summary="every lattice, with its gem counts, clock and version")
def list_lattices(ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    return {"items": [lattice_out(i) for i in ctx.store.list_lattices()]}


@router.post("", response_model=LatticeOut, status_code=201, responses=CONFLICT,
             summary="create an empty lattice from a preset (researcher or admin)")
def create_lattice(body: LatticeCreate, ctx: ApiContext = Depends(context),
                   actor: Actor = Depends(current_actor)) -> Any:
    require(actor, Permission.EDIT, "create a lattice")  # before any other answer: a viewer learns nothing
    params = None
    if body.settings:
        # as `--set` does it: the preset first (the clock's default one if none), then the settings
        preset = body.preset or ("memory" if body.clock == "wall" else "seed")
        params = apply_settings(LatticeParams(), {"preset": preset, **body.settings})
    if ctx.store.exists(body.name):
        raise ConflictError(f"lattice {body.name!r} already exists; pick another name - nothing was written")
    info = ctx.store.create_lattice(body.name, actor, params=params, embedder=body.embedder, clock=body.clock,
                                    preset=None if params is not None else body.preset)
    return lattice_out(info)


@router.get("/{name}", response_model=LatticeOut, responses=NOT_FOUND, summary="one lattice's description")
def get_lattice(name: str, ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    return lattice_out(ctx.store.info(name))


@router.delete("/{name}", status_code=204, responses=NOT_FOUND,
               summary="delete a lattice with its gems, log and reflections (admin; audited)")
def delete_lattice(name: str, ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Response:
    ctx.store.delete_lattice(name, actor)
    ctx.workbench.lattices.forget(name)
    return Response(status_code=204)


@router.get("/{name}/parameters", response_model=ParamsOut, responses=NOT_FOUND,
            summary="the lattice's parameters and the preset they started from")
def get_parameters(name: str, ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    return params_out(ctx.store.info(name))


@router.patch("/{name}/parameters", response_model=ParamsOut, responses={**NOT_FOUND, **CONFLICT},
              summary="change parameters, as --set does (researcher or admin)")
def patch_parameters(name: str, body: ParamsPatch, ctx: ApiContext = Depends(context),
                     actor: Actor = Depends(current_actor)) -> Any:
    info = ctx.store.info(name)
    new = apply_settings(info.params, body.settings)
    return params_out(ctx.store.update_params(name, new, actor, expected_version=body.expected_version))
