"""The process-wide services of the workbench: one Store and one Workbench per process.

Both are ``st.cache_resource`` singletons keyed by the database URL
(``LATTICE_DATABASE_URL``; default SQLite in data/), so every session of the server
shares one connection pool, one resonance cache, one LLM router (with its cooldowns),
one rate limiter and one latency series. On first use of an empty database the shipped
demo lattice is loaded (``core.service.ensure_demo``), so a fresh checkout shows data.
"""
from __future__ import annotations

import os

import streamlit as st

from core.errors import LatticeError
from core.monitoring import metrics_port, start_exporter
from core.service import Workbench, ensure_demo
from core.store import Store

DATABASE_ENV = "LATTICE_DATABASE_URL"


def database_url() -> str:
    """The configured URL ("" = the store's default, SQLite in data/)."""
    return os.environ.get(DATABASE_ENV, "").strip()


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:
    try:
        store = Store.open(url or None)
    except LatticeError:
        raise
    except Exception as exc:  # e.g. PostgreSQL unreachable: a message, not a traceback (retried next run)
        raise LatticeError(f"cannot open the lattice database ({type(exc).__name__}: {exc}); check "
                           f"{DATABASE_ENV}") from None
    if not store.list_lattices():  # an empty database: give it the demo lattice
        ensure_demo(store)
    return store


@st.cache_resource(show_spinner=False)
def _workbench(url: str) -> Workbench:
    workbench = Workbench(_store(url))
    port = metrics_port()  # LATTICE_METRICS_PORT: Prometheus endpoint, off by default
    if port is not None:
        start_exporter(port, workbench.collector())
    return workbench


def get_store() -> Store:
    """The process's Store for the configured database (opened once, demo loaded if empty)."""
    return _store(database_url())


def get_workbench() -> Workbench:
    """The process's Workbench (cache, router, rate limiter, conversations, latency) on :func:`get_store`."""
    return _workbench(database_url())
