"""``POST /v1/lattices/{name}/reflect``: a question answered from the resonant gems.

With ``Accept: text/event-stream`` the answer streams as Server-Sent Events: ``event: token``
(a chunk of the answer; join the ``data`` lines with newlines), then one ``event: record``
(the reflection record as JSON); a failure after the stream started is an ``event: error``
carrying the usual error body. Otherwise the record comes back as JSON once complete. Either
way it is the app's reflection (core.service.Workbench.reflect): the same rate limit, cache,
router, and the used gems re-cohere and become entangled in the store.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Iterator

from fastapi import APIRouter, Depends, Request
from sse_starlette import EventSourceResponse

from core.access import Actor
from core.api.context import ApiContext, context
from core.api.convert import plain
from core.api.errors import classify, error_body
from core.api.schemas import AUTH_ERRORS, NOT_FOUND, ReflectIn
from core.api.security import current_actor
from core.errors import LatticeError
from core.service import gem_titles

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/lattices/{name}", tags=["reflect"], responses={**AUTH_ERRORS, **NOT_FOUND})


def record_out(ctx: ApiContext, name: str, record: Any) -> dict[str, Any]:
    """The reflection record as JSON, each gem with its ``id`` and display ``title``, best first."""
    data = record.to_dict()
    ids = [g["gem_id"] for g in data["gems"]]
    titles = gem_titles(ctx.store.gem_texts(name, ids), ids) if ids else []
    data["gems"] = [{"id": g["gem_id"], "title": t, **g} for g, t in zip(data["gems"], titles)]
    return plain(data)


def _events(ctx: ApiContext, name: str, reflection: Any) -> Iterator[dict[str, str]]:
    try:
        for chunk in reflection:
            yield {"event": "token", "data": chunk}
        yield {"event": "record", "data": json.dumps(record_out(ctx, name, reflection.result()))}
    except LatticeError as exc:
        yield {"event": "error", "data": json.dumps(error_body(classify(exc)[1], str(exc)))}
    except Exception:  # noqa: BLE001 - the stream has started: report in-band, log the traceback
        log.exception("reflection stream of %r failed", name)
        yield {"event": "error", "data": json.dumps(error_body("internal", "internal error; it has been logged"))}


@router.post("/reflect", summary="answer a question from the lattice (SSE with Accept: text/event-stream)",
             responses={200: {"content": {"application/json": {}, "text/event-stream": {}},
                              "description": "the reflection record (JSON), or the streamed answer then the record"}})
def reflect(name: str, body: ReflectIn, request: Request, ctx: ApiContext = Depends(context),
            actor: Actor = Depends(current_actor)) -> Any:
    # raises at once (before any byte is sent) on permission, rate limit, unknown lattice, empty question
    reflection = ctx.workbench.reflect(name, body.question, actor, session_id=f"{actor.name}:{body.session_id}")
    if "text/event-stream" in request.headers.get("accept", ""):
        return EventSourceResponse(_events(ctx, name, reflection), ping=15)
    return record_out(ctx, name, reflection.result())
