"""What every route stands on: the process's Workbench (store, caches, router, rate limits) and token service.

One :class:`ApiContext` per app, kept in ``app.state.lattice``; routes get it through the
:func:`context` dependency, so a test can build an app over its own store and tokens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from core.api.limits import BodyLimits
from core.auth.tokens import TokenService
from core.service import Workbench
from core.store import Store


@dataclass
class ApiContext:
    """The API's shared services (one per process)."""

    workbench: Workbench
    tokens: TokenService
    limits: BodyLimits
    owns_store: bool = False  # the app opened the store itself: it closes it at shutdown

    @property
    def store(self) -> Store:
        return self.workbench.store

    def close(self) -> None:
        if self.owns_store:
            self.workbench.store.close()


def context(request: Request) -> ApiContext:
    """The :class:`ApiContext` of the app serving ``request`` (a FastAPI dependency)."""
    return request.app.state.lattice


def embedder_of(ctx: ApiContext) -> Any:
    """``embedder(name)``: the Workbench's embedders, loaded once per process."""
    return ctx.workbench.embedder
