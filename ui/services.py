"""The process-wide services of the workbench: one Store and one Workbench per process.

Both are ``st.cache_resource`` singletons keyed by the database URL
(``LATTICE_DATABASE_URL``; default SQLite in data/), so every session of the server
shares one connection pool, one resonance cache, one LLM router (with its cooldowns),
one latency series and the rate limits. The rate limits are the same as the REST API's
(``core.service.RateLimits.from_env``): with ``LATTICE_REDIS_URL`` set, a user's
reflections are counted together on every app and API node, in Redis; without it, per
process (one WARNING at start-up). On first use of an empty database the shipped
demo lattice is loaded (``core.service.ensure_demo``), so a fresh checkout shows data.
With ``LATTICE_SNAPSHOT_EVERY`` set, opening the store also starts the scheduled snapshots
(one thread per process; several processes share the folder's slots, core.service.SnapshotScheduler).
"""
from __future__ import annotations

import os

import streamlit as st

from core.errors import LatticeError
from core.monitoring import metrics_port, start_exporter
from core.service import RateLimits, Workbench, ensure_demo, snapshot_status_source, start_scheduled_snapshots
from core.store import ReadOnlyStore, Store

DATABASE_ENV = "LATTICE_DATABASE_URL"
READ_DATABASE_ENV = "LATTICE_READ_DATABASE_URL"  # a read replica for read-only pages (optional)


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
    try:  # LATTICE_SNAPSHOT_EVERY: one snapshot thread per process (else nothing)
        start_scheduled_snapshots(store)
    except LatticeError as exc:  # a bad setting: said on every page until fixed (backups must not stop quietly)
        store.close()
        raise LatticeError(f"scheduled snapshots are misconfigured: {exc}") from None
    return store


@st.cache_resource(show_spinner=False)
def _rate_limits() -> RateLimits:
    # one per process whatever the database: a user's count must not restart with another URL
    return RateLimits.from_env()


@st.cache_resource(show_spinner=False)
def _workbench(url: str) -> Workbench:
    workbench = Workbench(_store(url), rate_limits=_rate_limits())
    port = metrics_port()  # LATTICE_METRICS_PORT: Prometheus endpoint, off by default
    if port is not None:
        collector = workbench.collector()
        if workbench.store.engine.dialect.name == "postgresql":  # every standby's lag, as the primary sees it
            collector.replication = lambda: workbench.store.replication().figures()
        collector.snapshots = snapshot_status_source()  # the snapshot catalog's gauges, when configured
        start_exporter(port, collector)
    return workbench


def get_store() -> Store:
    """The process's Store for the configured database (opened once, demo loaded if empty)."""
    return _store(database_url())


def get_workbench() -> Workbench:
    """The process's Workbench (cache, router, rate limiter, conversations, latency) on :func:`get_store`."""
    return _workbench(database_url())


def read_database_url() -> str:
    """The read replica's URL ("" = none: read-only pages read from :func:`get_store`)."""
    return os.environ.get(READ_DATABASE_ENV, "").strip()


@st.cache_resource(show_spinner=False)
def _read_store(url: str) -> ReadOnlyStore:
    try:
        return ReadOnlyStore.open(url)
    except LatticeError:
        raise
    except Exception as exc:  # e.g. the replica unreachable: a message (not cached: retried next run)
        raise LatticeError(f"cannot open the read replica ({type(exc).__name__}: {exc}); check "
                           f"{READ_DATABASE_ENV}") from None


def get_read_store() -> Store:
    """The Store read-only pages read from: the replica at ``LATTICE_READ_DATABASE_URL``
    (a :class:`~core.store.ReadOnlyStore`: writes refused, state as of the replication lag),
    else the primary's :func:`get_store`. LatticeError when the replica cannot be opened."""
    url = read_database_url()
    return _read_store(url) if url else get_store()
