"""Verified recovery: after a failover or a restore, check the state before accepting writes again.

The seed's recovery process is detect -> assess -> fail over -> *verify state* -> restore
service. This module is the verify step and the gate in front of writes:

* **Detect.** Every new PostgreSQL connection of a store reports which server it reached
  (address, port, postmaster start time). When that changes (a standby was promoted and the
  multi-host URL moved to it, or the server restarted after a crash) the store's
  :class:`RecoveryGate` turns to ``recovering``. After a restore, call
  :func:`verify_recovery` (the gate cannot see a file being put back).
* **Verify** (:func:`verify_recovery`, one read transaction plus the snapshot files):
  the schema revision is the code's; per lattice, no log entry is ahead of the lattice row
  (version) and the newest entry at the row's version carries the row's clock ``t``; the
  newest backup of each lattice is not from the future (its recorded version and last log id
  are reached by this database: otherwise acknowledged changes were lost) and its file still
  matches its recorded sha256 and member checksums.
* **Gate.** While ``recovering``, the first write runs the verification (other writers get
  :class:`RecoveryInProgress`, a DatabaseUnavailable: retry in a moment, nothing written).
  Passed: writes flow again. Failed (an ``error`` check): ``read-only`` until a later
  verification passes (after a repair) or an admin overrides (:meth:`RecoveryGate.override`).
  A ``warning`` (a snapshot file corrupted or gone) is reported and audited but does not stop
  writes: the database is sound, one backup is not.
* **Record.** Every verification is an audit entry ``db.recovery`` (outcome ok / failed,
  the reason, the checks and how long it took).

:func:`recovery_status` is what the health endpoint and the UI banner show.
Times are seconds; instants are UTC.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, event, func, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.access import SYSTEM, Actor, Permission, require
from core.errors import LatticeError
from core.store import db, snapshot_file
from core.store.errors import DatabaseUnavailable, SnapshotError
from core.store.tables import AUDIT, LATTICES, SNAPSHOTS, TRANSACTIONS

# ``store`` below is a core.store.Store (any StoreKernel): typed Any, since the kernel imports
# this module (an import back would be a cycle, even one for type checking only)

OK, RECOVERING, READ_ONLY = "ok", "recovering", "read-only"
ERROR, WARNING = "error", "warning"
AUDIT_ACTION = "db.recovery"


class RecoveryInProgress(DatabaseUnavailable):
    """The store is verifying the database after a failover or restore; retry in a moment."""


class RecoveryReadOnly(LatticeError):
    """The verification after a failover or restore failed: writes are refused until it passes."""


@dataclass(frozen=True)
class RecoveryCheck:
    """One check of :func:`verify_recovery`: ``severity`` error (blocks writes) or warning."""

    name: str  # schema | log | snapshot
    target: str  # the lattice (or "" for the database)
    ok: bool
    detail: str
    severity: str = ERROR


@dataclass(frozen=True)
class RecoveryReport:
    """The result of one verification; ``ok`` when no error-severity check failed."""

    reason: str
    checks: tuple[RecoveryCheck, ...]
    started_at: datetime
    seconds: float  # wall time the verification took

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[RecoveryCheck]:
        return [c for c in self.checks if not c.ok and c.severity == ERROR]

    @property
    def warnings(self) -> list[RecoveryCheck]:
        return [c for c in self.checks if not c.ok and c.severity == WARNING]

    def summary(self) -> str:
        bad = self.errors + self.warnings
        head = (f"recovery verification {'passed' if self.ok else 'FAILED'} ({len(self.checks)} checks, "
                f"{self.seconds:.2f} s; reason: {self.reason})")
        return head + "".join(f"\n  {c.severity}: {c.name} {c.target}: {c.detail}".rstrip() for c in bad)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason, "seconds": round(self.seconds, 3),
                "started_at": self.started_at.isoformat(), "checks": len(self.checks),
                "failed": [{"name": c.name, "target": c.target, "severity": c.severity, "detail": c.detail}
                           for c in self.errors + self.warnings]}


@dataclass(frozen=True)
class RecoveryStatus:
    """What the health endpoint and the UI show: ``state`` ok | recovering | read-only."""

    state: str
    reason: str = ""
    since: datetime | None = None  # when the state was entered
    server: str = ""  # the database server last connected to (PostgreSQL: host:port)
    report: RecoveryReport | None = None  # the last verification, if any

    @property
    def writable(self) -> bool:
        return self.state == OK

    def message(self) -> str:
        """One line for a banner or a health answer."""
        if self.state == RECOVERING:
            return f"Recovering: verifying the database before accepting writes ({self.reason})."
        if self.state == READ_ONLY:
            why = "; ".join(f"{c.name} {c.target}: {c.detail}".strip() for c in (self.report.errors if self.report
                                                                                 else []))
            return f"Read-only: the recovery verification failed ({why or self.reason}); writes are refused."
        return "OK"

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "writable": self.writable, "reason": self.reason, "server": self.server,
                "since": self.since.isoformat() if self.since else None, "message": self.message(),
                "last_verification": self.report.as_dict() if self.report else None}


def _now() -> datetime:
    return datetime.now(timezone.utc)


class RecoveryGate:
    """Per store: detects a change of database server and holds writes until it is verified.

    Thread-safe: the state is read without a lock on the fast path (a plain attribute), and
    changed under ``_lock``; one thread verifies, the others do not wait for it.
    """

    def __init__(self, engine: Engine):
        self._lock = threading.Lock()
        self._verifying = threading.Lock()
        self._status = RecoveryStatus(OK)
        self._server_id: tuple | None = None
        if engine.dialect.name == "postgresql":
            event.listen(engine, "connect", self._on_connect)
            self._baseline(engine)

    def _baseline(self, engine: Engine) -> None:
        """The server the store starts on (its pooled connections predate the listener)."""
        try:
            with engine.connect() as conn:
                self._server_id = tuple(conn.exec_driver_sql(_SERVER_SQL).one())
        except (DBAPIError, PoolTimeout):
            return  # unreachable now: the first connection that succeeds sets it
        self._status = RecoveryStatus(OK, server=_server_name(self._server_id))

    @property
    def status(self) -> RecoveryStatus:
        return self._status

    def mark(self, state: str, reason: str, report: RecoveryReport | None = None) -> None:
        """Enter ``state`` (ok | recovering | read-only) for ``reason``."""
        with self._lock:
            self._status = RecoveryStatus(state, reason, _now(), self._status.server,
                                          report if report is not None else self._status.report)

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        """A new connection: which server is it? A different one than before means recovery."""
        try:
            cur = dbapi_conn.cursor()
            cur.execute(_SERVER_SQL)
            addr, port, started = cur.fetchone()
            cur.close()
            dbapi_conn.rollback()  # the query opened a transaction; leave the connection idle
        except Exception:  # never break a connection over this; the next one asks again
            try:
                dbapi_conn.rollback()
            except Exception:
                pass  # a broken connection: the pool's own checks discard it
            return
        server_id = (addr, port, started)
        with self._lock:
            previous, self._server_id = self._server_id, server_id
            server = _server_name(server_id)
            self._status = RecoveryStatus(self._status.state, self._status.reason, self._status.since, server,
                                          self._status.report)
            if previous is None or previous == server_id or self._status.state != OK:
                return
            was = _server_name(previous)
            why = (f"failover: the database moved from {was} to {server}" if previous[:2] != server_id[:2]
                   else f"the database server at {server} restarted (crash recovery)")
            self._status = RecoveryStatus(RECOVERING, why, _now(), server, self._status.report)

    def before_write(self, store: Any) -> None:
        """Called by every write transaction before its first statement (see the module docstring)."""
        status = self._status
        if status.state == OK:
            return
        if status.state == RECOVERING:
            if not self._verifying.acquire(blocking=False):
                raise RecoveryInProgress(f"the workbench is verifying the database after a recovery "
                                         f"({status.reason}); retry in a moment - nothing was written")
            try:
                if self._status.state == RECOVERING:
                    _verify(store, self, status.reason, SYSTEM)
            finally:
                self._verifying.release()
            status = self._status
        if status.state == READ_ONLY:
            raise RecoveryReadOnly(f"{status.message()} Repair the state (python -m core lattices repair) and "
                                   "verify again, or have an admin override - nothing was written")

    def override(self, store: Any, actor: Actor, note: str = "") -> None:
        """An admin accepts the state as it is: writes flow again (audited, outcome ok)."""
        require(actor, Permission.ADMIN, "override the recovery verification")
        previous = self._status
        _audit(store.engine, actor, "ok", {"override": True, "note": note[:500], "was": previous.as_dict()})
        self.mark(OK, f"overridden by {actor.name}" + (f": {note}" if note else ""))


# which server a connection reached: a promoted standby has another address or port, a
# restarted server another start time
_SERVER_SQL = "SELECT host(inet_server_addr()), inet_server_port(), pg_postmaster_start_time()::text"


def _server_name(server_id: tuple) -> str:
    return f"{server_id[0]}:{server_id[1]}" if server_id[0] else "local socket"


def recovery_status(store: Any) -> RecoveryStatus:
    """The store's recovery state for the health endpoint and the UI (no database access)."""
    gate = getattr(store, "recovery", None)
    return gate.status if isinstance(gate, RecoveryGate) else RecoveryStatus(OK)


def verify_recovery(store: Any, reason: str = "manual", actor: Actor = SYSTEM) -> RecoveryReport:
    """Check the database after a failover or restore (see the module docstring); audit it.

    Updates the store's gate: ok when passed, read-only when an error-severity check failed
    (recovering while it runs: writers are asked to retry). Raises DatabaseUnavailable
    (nothing recorded, the verification still due) when the database cannot be reached.
    """
    gate = getattr(store, "recovery", None)
    if not isinstance(gate, RecoveryGate):
        return _verify(store, None, reason, actor)
    with gate._verifying:  # one verification at a time (a writer's, or this one)
        return _verify(store, gate, reason, actor)


def _verify(store: Any, gate: RecoveryGate | None, reason: str, actor: Actor) -> RecoveryReport:
    if gate is not None and gate.status.state == OK:
        gate.mark(RECOVERING, reason)
    started, t0 = _now(), time.monotonic()
    try:
        checks = _database_checks(store.engine) + _snapshot_files(store.engine)
    except (DBAPIError, PoolTimeout) as exc:  # the gate stays recovering: the next write verifies again
        raise store._db_error(exc) from None
    report = RecoveryReport(reason, tuple(checks), started, time.monotonic() - t0)
    try:
        _audit(store.engine, actor, "ok" if report.ok else "failed", report.as_dict())
    except (DBAPIError, PoolTimeout) as exc:
        raise store._db_error(exc) from None
    if gate is not None:
        gate.mark(OK if report.ok else READ_ONLY, reason, report)
    return report


def _audit(engine: Engine, actor: Actor, outcome: str, details: dict[str, Any]) -> None:
    # directly on the engine, not through the store's write path (which the gate holds)
    with engine.begin() as conn:
        conn.execute(insert(AUDIT).values(wall_time=_now(), actor=actor.name, role=actor.role.value,
                                          action=AUDIT_ACTION, target="database", outcome=outcome,
                                          details=details))


def _database_checks(engine: Engine) -> list[RecoveryCheck]:
    """Schema revision, and each lattice's version and clock against its log (one read)."""
    checks: list[RecoveryCheck] = []
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            revs = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
            checks.append(RecoveryCheck("schema", "", revs == [db.HEAD_REVISION],
                                        f"revision {', '.join(revs) or 'none'}, code expects {db.HEAD_REVISION}"))
            newest = (select(TRANSACTIONS.c.lattice_id, func.max(TRANSACTIONS.c.id).label("last_id"),
                             func.max(TRANSACTIONS.c.lattice_version).label("max_version"))
                      .group_by(TRANSACTIONS.c.lattice_id).subquery())
            rows = conn.execute(select(LATTICES.c.id, LATTICES.c.name, LATTICES.c.version, LATTICES.c.t,
                                       newest.c.last_id, newest.c.max_version)
                                .outerjoin(newest, newest.c.lattice_id == LATTICES.c.id)
                                .order_by(LATTICES.c.name)).all()
            for lid, name, version, t, last_id, max_version in rows:
                checks.append(_log_check(conn, lid, name, int(version), float(t), last_id, max_version))
    return checks


def _log_check(conn: Any, lid: int, name: str, version: int, t: float, last_id: int | None,
               max_version: int | None) -> RecoveryCheck:
    if last_id is None:
        return RecoveryCheck("log", name, True, f"version {version}, t {t:g}; no log entries (an older lattice)")
    if int(max_version) > version:
        return RecoveryCheck("log", name, False, f"the log reaches version {max_version} but the lattice row is at "
                                                 f"{version}: changes were lost or the row was rolled back")
    # the newest entry written at the row's version carries the row's clock (several entries
    # may share a version: a repair logs its edit and its clock reset in one transaction)
    at = conn.execute(select(TRANSACTIONS.c.lattice_t)
                      .where(TRANSACTIONS.c.lattice_id == lid, TRANSACTIONS.c.lattice_version == version)
                      .order_by(TRANSACTIONS.c.id.desc()).limit(1)).scalar()
    if at is not None and float(at) != t:
        return RecoveryCheck("log", name, False, f"the lattice clock is t={t!r} but the log's entry for version "
                                                 f"{version} says t={float(at)!r}")
    return RecoveryCheck("log", name, True, f"version {version}, t {t:g}, log up to entry {last_id}")


def _snapshot_files(engine: Engine) -> list[RecoveryCheck]:
    """The newest backup of each lattice: reached by this database, and its file intact."""
    with engine.connect() as conn:
        newest = (select(func.max(SNAPSHOTS.c.id)).where(SNAPSHOTS.c.action == "backup")
                  .group_by(SNAPSHOTS.c.lattice_name))
        snaps = conn.execute(select(SNAPSHOTS).where(SNAPSHOTS.c.id.in_(newest))
                             .order_by(SNAPSHOTS.c.lattice_name)).mappings().all()
        lattices = {r.name: r for r in conn.execute(select(LATTICES.c.id, LATTICES.c.name, LATTICES.c.version,
                                                           LATTICES.c.created_at))}
        last_ids = dict(conn.execute(select(TRANSACTIONS.c.lattice_id, func.max(TRANSACTIONS.c.id))
                                     .group_by(TRANSACTIONS.c.lattice_id)).all())
    checks = []
    for s in snaps:
        lat = lattices.get(s["lattice_name"])
        if lat is not None and _as_utc(lat.created_at) <= _as_utc(s["created_at"]):
            # a lattice re-created after its backup starts its versions again: not comparable
            if int(s["lattice_version"]) > int(lat.version) or int(s["last_tx_id"]) > int(last_ids.get(lat.id, 0)):
                checks.append(RecoveryCheck(
                    "snapshot", s["lattice_name"], False,
                    f"the backup {s['path']} holds version {s['lattice_version']} (log entry {s['last_tx_id']}) but "
                    f"the database is at version {lat.version} (log entry {last_ids.get(lat.id, 0)}): "
                    "acknowledged changes were lost (an asynchronous standby promoted?); restore from the backup"))
                continue
        checks.append(_snapshot_file_check(s))
    return checks


def _snapshot_file_check(s: Any) -> RecoveryCheck:
    name, path = s["lattice_name"], s["path"]
    try:
        got = snapshot_file.read_snapshot(path)
    except SnapshotError as exc:
        missing = "no such snapshot file" in str(exc)
        return RecoveryCheck("snapshot", name, False, f"the newest backup {'is gone' if missing else 'is damaged'}: "
                             f"{exc}", WARNING)
    if got.sha256 != s["sha256"]:
        return RecoveryCheck("snapshot", name, False, f"{path}: manifest sha256 {got.sha256[:12]}... differs from the "
                             f"recorded {s['sha256'][:12]}... (replaced by another file)", WARNING)
    return RecoveryCheck("snapshot", name, True, f"{path}: checksums match (version {s['lattice_version']})", WARNING)


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)  # SQLite drops the zone
