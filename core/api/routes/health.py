"""``GET /v1/health`` (liveness: the process answers) and ``GET /v1/ready`` (readiness: this node can serve),
both with the store's recovery state (core.store.recovery: ok | recovering | read-only).

The status codes are what a load balancer (nginx, Kubernetes probes) acts on:

* ``/v1/health`` is always 200 while the process answers, whatever the database does: a
  liveness failure restarts the process, which cures nothing when the database is down or
  being verified (and would drop the node's verified state and caches). Its ``recovery`` is
  read from memory, without touching the database.
* ``/v1/ready`` is 200 ``ready`` when reads and writes work; 503 ``database_unavailable`` (the
  error shape, ``Retry-After: 5``) when the database does not answer; 503 ``recovering``
  (``Retry-After: 1``, the error shape with ``recovery`` beside the message) while the database
  server changed (a failover, a restart) and another request is verifying it: take the node out
  for a moment, the writes sent to it would be told to retry. And 200 ``read-only``
  (``recovery.writable: false``) when the verification failed: reads still work, so the node
  stays in rotation (every node shares the database, so taking them out would end reads as well
  without making a write possible); writes answer 409 ``read_only`` until an operator repairs
  or overrides, and monitoring alerts on the state, not the balancer.

A readiness probe that finds the node ``recovering`` runs the verification itself (the one the
next write would run; at most one at a time, the others answer 503 ``recovering``). Otherwise a
node without traffic would stay ``recovering`` behind a balancer that sends traffic only to
ready nodes, and never become ready.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from core.api.context import ApiContext, context
from core.api.errors import RETRY_AFTER_BY_CODE, error_body
from core.api.schemas import ErrorResponse, Health, Ready
from core.store import RecoveryInProgress, RecoveryReadOnly, RecoveryStatus, Store, recovery_status

router = APIRouter(prefix="/v1", tags=["health"])
RECOVERING, READ_ONLY = "recovering", "read-only"


@router.get("/health", response_model=Health, summary="liveness: the process answers (no token needed)")
def health(ctx: ApiContext = Depends(context)) -> Health:
    return Health(recovery=recovery_status(ctx.store).as_dict())


@router.get("/ready", response_model=Ready, summary="readiness: the database answers and is verified (no token "
                                                     "needed)",
            responses={503: {"model": ErrorResponse, "description": "database_unavailable: the database does not "
                                                                    "answer; recovering: the database is being "
                                                                    "verified after a failover (see Retry-After)"}})
def ready(ctx: ApiContext = Depends(context)) -> Any:
    # one cheap query through the store (DatabaseUnavailable -> 503 database_unavailable); it
    # connects, so a server that changed since the last connection is detected before we look
    names = ctx.store.lattice_names()
    status = settle(ctx.store)
    if status.state == RECOVERING:
        body = error_body(RECOVERING, f"{status.message()} Retry in a moment.", recovery=status.as_dict())
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_BY_CODE[RECOVERING])})
    return Ready(status=READ_ONLY if status.state == READ_ONLY else "ready", database=ctx.store.engine.dialect.name,
                 lattices=len(names), rate_limits=ctx.workbench.rate_limits.store.stats(),
                 recovery=status.as_dict())


def settle(store: Store) -> RecoveryStatus:
    """The recovery state after running the verification if one is due and nobody else runs it.

    The gate's own write step (``before_write``) does exactly that: verify when ``recovering``
    (another thread verifying: RecoveryInProgress), refuse when ``read-only``. Both refusals are
    states to report here, not errors; DatabaseUnavailable (the verification could not read)
    propagates: a 503 ``database_unavailable``, the verification still due.
    """
    if recovery_status(store).state == RECOVERING:
        try:
            store.recovery.before_write(store)
        except (RecoveryInProgress, RecoveryReadOnly):
            pass  # reported through the status below
    return recovery_status(store)
