"""A Store that only reads: for a read replica (``LATTICE_READ_DATABASE_URL``), or a primary
opened for reading only.

Read-only pages (the Metrics page's stored reflections and lattice history) may read from a
streaming standby to take load off the primary. :class:`ReadOnlyStore` has every read of
:class:`~core.store.store.Store` and refuses every write twice over: the store's own
transactions raise :class:`ReadOnlyError` before anything reaches the database, and each
database session is itself read-only (core.store.db ``create_db_engine(read_only=True)``).

What a replica read means: the state as of the last replayed commit, behind the primary by
the replication lag (``store.replication()``; 0 with ``synchronous_commit = remote_apply``).
A wall-clock lattice is never caught up here (catching up is a write): ``info``, ``get_gem``,
``list_gems`` and ``export`` compute its present in memory, as the primary's reads do, while
``load`` shows its clock at the last write. Writes (and reads that must see them at once) use
the primary's :class:`Store`.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from core.errors import LatticeError
from core.store import db
from core.store.store import Store


class ReadOnlyError(LatticeError):
    """A write was attempted through a read-only store; nothing was written."""


class ReadOnlyStore(Store):
    """Every read of :class:`Store`, no write (see the module docstring)."""

    READ_ONLY = True

    @classmethod
    def open(cls, url: str | None = None, *, keys: Sequence[str] | None = None, **_ignored: Any) -> "ReadOnlyStore":
        """Connect to ``url`` (default: $LATTICE_READ_DATABASE_URL, else $LATTICE_DATABASE_URL),
        never migrating: a replica follows its primary's schema, so an older one is refused
        with SchemaError until the primary has been upgraded and the change replayed."""
        return super().open(url or db.read_database_url(), upgrade=False, keys=keys)

    def _refuse(self) -> ReadOnlyError:
        return ReadOnlyError(f"the database {self.url} is open read-only (a read replica); writes go to "
                             f"{db.ENV_URL}, the primary - nothing was written")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        raise self._refuse()
        yield  # pragma: no cover - a generator for contextmanager

    @contextmanager
    def _write(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        raise self._refuse()
        yield  # pragma: no cover - a generator for contextmanager

    def _catch_up(self, name: str) -> None:
        return  # reading a wall-clock lattice as stored: catching up is a write (see the module docstring)
