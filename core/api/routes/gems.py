"""Gems: add one or a batch, read, edit with the expected version, archive, delete, list (the Lattice
page's filters, paginated), and import a file.

A batch and an import go through the Store's import path (all or nothing, one transaction,
rows with ``created_at`` aged to the clock): a batch is written as a JSONL file first, so a
bad row is reported as ``request, line N`` of the batch.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile

from core.access import Actor, Permission, require
from core.api.context import ApiContext, context
from core.api.convert import plain, records
from core.api.schemas import (AUTH_ERRORS, CONFLICT, MAX_PAGE, NOT_FOUND, ErrorResponse, GemBatch, GemCreated, GemIn,
                              GemOut, GemPage, GemPatch, ImportOut)
from core.api.security import current_actor
from core.errors import ValidationError
from core.store import ImportFailed

router = APIRouter(prefix="/v1/lattices/{name}", tags=["gems"], responses={**AUTH_ERRORS, **NOT_FOUND})
STATUS = {"active": False, "archived": True, "all": None}  # ?status= -> Store.list_gems(archived=)
UPLOAD_SUFFIXES = (".jsonl", ".csv", ".md", ".markdown", ".txt")
TOO_LARGE = {413: {"model": ErrorResponse, "description": "the body is over the size limit"}}


def _rows(gems: list[GemIn]) -> list[dict[str, Any]]:
    return [g.model_dump(exclude_none=True) for g in gems]


def import_rows(ctx: ApiContext, name: str, actor: Actor, rows: list[dict[str, Any]]) -> Any:
    """Write ``rows`` (import fields) into existing lattice ``name`` through the Store's import path."""
    ctx.store.info(name)  # an unknown lattice is a 404 here, not a new lattice
    with tempfile.TemporaryDirectory(prefix="api-batch-") as tmp:
        path = Path(tmp) / "batch.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        try:
            return ctx.store.import_path(name, path, actor, format="gems")
        except ImportFailed as exc:  # name the request, not the scratch file
            raise ImportFailed([replace(i, file="request") for i in exc.issues]) from None


@router.get("/gems", response_model=GemPage, summary="a page of gems matching the Lattice page's filters")
def list_gems(name: str, tag: str | None = Query(None, max_length=200),
              text: str | None = Query(None, max_length=1000, description="in title or content, any case"),
              coherence_min: float | None = Query(None, ge=0, le=1),
              coherence_max: float | None = Query(None, ge=0, le=1),
              status: Literal["active", "archived", "all"] = "active",
              limit: int = Query(50, ge=1, le=MAX_PAGE), offset: int = Query(0, ge=0, le=10**9),
              ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    query = dict(tag=tag or None, text=text or None, coherence_min=coherence_min, coherence_max=coherence_max,
                 archived=STATUS[status], page_size=limit)
    # Store.list_gems pages by page number: an offset inside a page reads that page and the next
    first = offset // limit + 1
    df, total = ctx.store.list_gems(name, page=first, **query)
    items = records(df)
    skip = offset - (first - 1) * limit
    if skip:
        more, total = ctx.store.list_gems(name, page=first + 1, **query)
        items = (items + records(more))[skip:skip + limit]
    end = offset + len(items)
    return {"items": items, "total": total, "limit": limit, "offset": offset,
            "next_offset": end if end < total and items else None}


@router.post("/gems", response_model=GemCreated, status_code=201, responses={**CONFLICT, **TOO_LARGE},
             summary="add one gem (embedded with the lattice's embedder)")
def add_gem(name: str, gem: GemIn, ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    if gem.created_at is not None:  # a gem with its own time enters aged: the import path does that
        report = import_rows(ctx, name, actor, _rows([gem]))
        return {"lattice": name, "ids": report.gem_ids, "version": report.version}
    fields = gem.model_dump(exclude_none=True, exclude={"created_at"})
    gem_id = ctx.store.add_gem(name, actor, fields.pop("content"), **fields)
    return {"lattice": name, "ids": [gem_id], "version": ctx.store.version(name)}


@router.post("/gems/batch", response_model=GemCreated, status_code=201, responses={**CONFLICT, **TOO_LARGE},
             summary="add a batch of gems, all or nothing")
def add_batch(name: str, batch: GemBatch, ctx: ApiContext = Depends(context),
              actor: Actor = Depends(current_actor)) -> Any:
    require(actor, Permission.EDIT, "add gems")
    report = import_rows(ctx, name, actor, _rows(batch.gems))
    return {"lattice": name, "ids": report.gem_ids, "version": report.version}


@router.get("/gems/{gem_id}", response_model=GemOut, summary="one gem's fields and state")
def get_gem(name: str, gem_id: str, ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    return plain(ctx.store.get_gem(name, gem_id))


@router.patch("/gems/{gem_id}", response_model=GemOut, responses=CONFLICT,
              summary="edit a gem; with expected_version, 409 if it changed since you read it")
def patch_gem(name: str, gem_id: str, body: GemPatch, ctx: ApiContext = Depends(context),
              actor: Actor = Depends(current_actor)) -> Any:
    changes = body.model_dump(exclude_none=True, exclude={"expected_version", "expected_state_version"})
    return plain(ctx.store.update_gem(name, gem_id, actor, expected_version=body.expected_version,
                                      expected_state_version=body.expected_state_version, **changes))


@router.post("/gems/{gem_id}/archive", response_model=GemOut, summary="take a gem out of the lattice (kept, frozen)")
def archive_gem(name: str, gem_id: str, ctx: ApiContext = Depends(context),
                actor: Actor = Depends(current_actor)) -> Any:
    ctx.store.archive_gem(name, gem_id, actor)
    return plain(ctx.store.get_gem(name, gem_id))


@router.post("/gems/{gem_id}/unarchive", response_model=GemOut, summary="bring an archived gem back")
def unarchive_gem(name: str, gem_id: str, ctx: ApiContext = Depends(context),
                  actor: Actor = Depends(current_actor)) -> Any:
    ctx.store.restore_gem(name, gem_id, actor)
    return plain(ctx.store.get_gem(name, gem_id))


@router.delete("/gems/{gem_id}", status_code=204, summary="delete a gem and its entanglements for good")
def delete_gem(name: str, gem_id: str, ctx: ApiContext = Depends(context),
               actor: Actor = Depends(current_actor)) -> Response:
    ctx.store.delete_gem(name, gem_id, actor)
    return Response(status_code=204)


@router.post("/import", response_model=ImportOut, status_code=201, responses=TOO_LARGE,
             summary="import a .jsonl/.csv/.md/.txt file (creates the lattice if missing, as the CLI does)")
def import_file(name: str, file: UploadFile = File(..., description="gems (.jsonl, .csv), a chat transcript "
                                                                    "(.jsonl) or a note (.md, .txt)"),
                preset: Literal["seed", "memory", "archive"] | None = Form(None),
                clock: Literal["manual", "wall"] | None = Form(None),
                format: Literal["auto", "gems", "chat"] = Form("auto"),
                split_headings: bool = Form(False), skip_bad: bool = Form(False),
                ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    require(actor, Permission.EDIT, "import gems")
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ValidationError("file", f"{file.filename!r}: the file name must end in one of "
                                      f"{', '.join(UPLOAD_SUFFIXES)} (it tells the format)")
    with tempfile.TemporaryDirectory(prefix="api-import-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        with path.open("wb") as out:
            while chunk := file.file.read(1 << 20):
                out.write(chunk)
        try:
            report = ctx.store.import_path(name, path, actor, split_headings=split_headings, skip_bad=skip_bad,
                                           preset=preset, clock=clock, format=format)
        except ImportFailed as exc:
            raise ImportFailed([replace(i, file=file.filename or "upload") for i in exc.issues]) from None
    out = plain(report.to_dict())
    out["source"] = file.filename or "upload"
    for issue in out["skipped"]:
        issue["file"] = file.filename or "upload"
    return out
