"""Snapshots (admin): ``GET /v1/lattices/{name}/snapshot`` downloads a verified snapshot zip (sha256
manifest), ``POST /v1/snapshots/restore`` restores one atomically, as ``backup``/``restore`` do."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from core.access import Actor
from core.api.context import ApiContext, context
from core.api.convert import plain
from core.api.schemas import AUTH_ERRORS, NOT_FOUND, ErrorResponse, RestoreOut
from core.api.security import current_actor

router = APIRouter(tags=["snapshots"], responses={**AUTH_ERRORS, **NOT_FOUND})


@router.get("/v1/lattices/{name}/snapshot", response_class=FileResponse,
            responses={200: {"content": {"application/zip": {}}, "description": "the snapshot file"}},
            summary="download a consistent snapshot of the lattice (admin; audited)")
def download(name: str, ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    tmp = tempfile.mkdtemp(prefix="api-snapshot-")
    try:
        out = ctx.store.backup(name, Path(tmp), actor)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    path = Path(out["path"])
    return FileResponse(path, media_type="application/zip", filename=path.name,
                        headers={"X-Snapshot-SHA256": out["sha256"], "X-Lattice-Version": str(out["version"])},
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


@router.post("/v1/snapshots/restore", response_model=RestoreOut, status_code=201,
             responses={413: {"model": ErrorResponse, "description": "the file is over the upload limit"}},
             summary="verify a snapshot and restore it atomically (admin; audited)")
def restore(file: UploadFile = File(..., description="a snapshot zip from GET .../snapshot or `backup`"),
            lattice: str | None = Form(None, max_length=200, description="restore under this name (default: the "
                                                                         "snapshot's)"),
            overwrite: bool = Form(False, description="replace an existing lattice of that name"),
            ctx: ApiContext = Depends(context), actor: Actor = Depends(current_actor)) -> Any:
    with tempfile.TemporaryDirectory(prefix="api-restore-") as tmp:
        path = Path(tmp) / "snapshot.zip"
        with path.open("wb") as out:
            while chunk := file.file.read(1 << 20):
                out.write(chunk)
        result = ctx.store.restore(path, actor, name=lattice or None, overwrite=overwrite)
    ctx.workbench.lattices.forget(result["lattice"])
    result["path"] = file.filename or "upload"
    return plain(result)
