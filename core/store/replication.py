"""Streaming replication as the store sees it: the standbys of a primary and their lag, or a
standby's own lag (PostgreSQL; SQLite has no replication: role ``"none"``).

Two vantage points, both read-only queries anyone connected can run (the lag columns of
``pg_stat_replication`` need a superuser or ``pg_monitor``; without it they are None):

- on the **primary**, one :class:`StandbyLag` per connected standby from
  ``pg_stat_replication``: bytes of WAL the primary has written that the standby has not
  replayed yet (``pg_current_wal_lsn() - replay_lsn``), and ``replay_lag``, the time from a
  commit here to its replay there (PostgreSQL's own measure of the last commits; it keeps
  the last value for a while after the standby caught up, then clears it, which we report as
  0 s when no byte is missing);
- on a **standby** (a read replica, ``LATTICE_READ_DATABASE_URL``): the WAL received but not
  yet replayed (bytes), and the age of the last replayed commit when something is still to
  replay (seconds; 0 when everything received is replayed). That age is an upper bound: on a
  primary that writes nothing for an hour, a standby behind by one checkpoint record shows an
  hour.

Synchronous commit (``synchronous_standby_names`` on the primary): a standby whose
``sync_state`` is ``sync`` confirms every commit before the client gets its answer
(``synchronous_commit = on``: flushed there; ``remote_apply``: visible to its readers).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text


@dataclass(frozen=True)
class StandbyLag:
    """One standby as its primary sees it (a row of ``pg_stat_replication``)."""

    name: str  # application_name (the standby's primary_conninfo, or its cluster_name)
    address: str  # client address, "local" for a Unix socket
    state: str  # startup | catchup | streaming | backup | stopping
    sync_state: str  # async | potential | sync | quorum
    lag_bytes: int | None  # WAL written here and not yet replayed there, bytes
    lag_seconds: float | None  # commit here -> replayed there (last measured), s

    @property
    def synchronous(self) -> bool:
        return self.sync_state in ("sync", "quorum")


@dataclass(frozen=True)
class ReplicationStatus:
    """The database's place in replication (see the module docstring for the measures)."""

    dialect: str  # "sqlite" | "postgresql"
    role: str  # "primary" | "standby" | "none" (SQLite)
    standbys: tuple[StandbyLag, ...] = ()  # on a primary: connected standbys, by name
    synchronous_standby_names: str = ""  # on a primary: who must confirm a commit ("" = nobody)
    synchronous_commit: str = ""  # this session's setting: on | remote_apply | remote_write | local | off
    lag_bytes: int | None = None  # on a standby: received, not yet replayed, bytes
    lag_seconds: float | None = None  # on a standby: age of the last replayed commit while behind, s
    last_replay_at: datetime | None = None  # on a standby: commit time of the last replayed transaction
    receiving: bool | None = None  # on a standby: the WAL receiver is streaming from the primary
    replay_paused: bool = False  # on a standby: replay paused (pg_wal_replay_pause)

    @property
    def synchronous(self) -> bool:
        """A primary on which every commit waits for at least one synchronous standby now."""
        return any(s.synchronous for s in self.standbys)

    def summary(self) -> str:
        """One line for a page or a log."""
        if self.role == "none":
            return f"no replication ({self.dialect})"
        if self.role == "standby":
            state = "receiving" if self.receiving else "not receiving from the primary"
            paused = ", replay paused" if self.replay_paused else ""
            return f"standby ({state}{paused}): {_amount(self.lag_bytes, self.lag_seconds)} behind"
        if not self.standbys:
            waiting = (f"; commits wait for {self.synchronous_standby_names!r}, which is not connected"
                       if self.synchronous_standby_names else "")
            return f"primary without connected standbys{waiting}"
        parts = [f"{s.name} ({s.sync_state}, {s.state}): {_amount(s.lag_bytes, s.lag_seconds)} behind"
                 for s in self.standbys]
        return "primary; " + "; ".join(parts)

    def figures(self, measured_on: str | None = None) -> list[dict[str, Any]]:
        """The lag as rows for the Prometheus gauges and the Metrics page's table: one per
        standby on a primary (``measured_on="primary"``), one for a standby itself (its name
        ``"self"``, ``measured_on="standby"``); none without replication. Keys: standby,
        measured_on, lag_bytes, lag_seconds (None when unknown), synchronous (0/1), state."""
        if self.role == "primary":
            return [{"standby": s.name, "measured_on": measured_on or "primary", "lag_bytes": s.lag_bytes,
                     "lag_seconds": s.lag_seconds, "synchronous": 1 if s.synchronous else 0, "state": s.state}
                    for s in self.standbys]
        if self.role == "standby":
            return [{"standby": "self", "measured_on": measured_on or "standby", "lag_bytes": self.lag_bytes,
                     "lag_seconds": self.lag_seconds, "synchronous": None,
                     "state": "streaming" if self.receiving else "not receiving"}]
        return []


def _amount(lag_bytes: int | None, lag_seconds: float | None) -> str:
    b = "? bytes" if lag_bytes is None else f"{lag_bytes} bytes"
    s = "? s" if lag_seconds is None else f"{lag_seconds:.3f} s"
    return f"{b} / {s}"


_PRIMARY = text("""
    SELECT application_name, coalesce(host(client_addr), 'local') AS address, state, sync_state,
           pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes,
           extract(epoch FROM replay_lag)::float8 AS lag_seconds
    FROM pg_stat_replication ORDER BY application_name, pid""")

_STANDBY = text("""
    SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint AS lag_bytes,
           pg_last_xact_replay_timestamp() AS last_replay_at,
           extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS age_s,
           pg_is_wal_replay_paused() AS paused,
           (SELECT status FROM pg_stat_wal_receiver LIMIT 1) AS receiver""")


def replication_status(conn: Connection) -> ReplicationStatus:
    """The replication status of the database behind ``conn`` (read-only queries)."""
    dialect = conn.dialect.name
    if dialect != "postgresql":
        return ReplicationStatus(dialect=dialect, role="none")
    sync_commit = conn.execute(text("SELECT current_setting('synchronous_commit')")).scalar_one()
    if conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one():
        r = conn.execute(_STANDBY).mappings().one()
        lag_bytes = None if r["lag_bytes"] is None else max(0, int(r["lag_bytes"]))
        if lag_bytes == 0:
            lag_s: float | None = 0.0  # everything received is replayed
        else:
            lag_s = None if r["age_s"] is None else max(0.0, float(r["age_s"]))
        return ReplicationStatus(dialect=dialect, role="standby", synchronous_commit=sync_commit, lag_bytes=lag_bytes,
                                 lag_seconds=lag_s, last_replay_at=r["last_replay_at"],
                                 receiving=r["receiver"] == "streaming", replay_paused=bool(r["paused"]))
    names = conn.execute(text("SELECT current_setting('synchronous_standby_names')")).scalar_one()
    standbys = []
    for r in conn.execute(_PRIMARY).mappings():
        lag_bytes = None if r["lag_bytes"] is None else max(0, int(r["lag_bytes"]))
        lag_s = r["lag_seconds"]
        if lag_s is None and lag_bytes == 0:
            lag_s = 0.0  # PostgreSQL clears replay_lag once an idle standby has caught up
        standbys.append(StandbyLag(name=r["application_name"] or "", address=r["address"], state=r["state"] or "",
                                   sync_state=r["sync_state"] or "", lag_bytes=lag_bytes,
                                   lag_seconds=None if lag_s is None else float(lag_s)))
    return ReplicationStatus(dialect=dialect, role="primary", standbys=tuple(standbys),
                             synchronous_standby_names=names, synchronous_commit=sync_commit)
