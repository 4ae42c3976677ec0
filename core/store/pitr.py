"""Point-in-time recovery of a PostgreSQL database to a wall-clock time (WAL archiving plus
``recovery_target_time``), beside the lattice-time replay of snapshots (``Store.replay_to``).

What it needs: a plain-format base backup taken *before* the target time
(``pg_basebackup -D BASE -X stream``) and the WAL archive the primary has been filling since
(``archive_mode = on``, ``archive_command`` copying each segment there), including at least one
commit *after* the target (PostgreSQL stops at the first commit past it; with no such commit
it refuses to finish, "recovery ended before configured recovery target was reached": switch
the WAL, ``SELECT pg_switch_wal()``, and wait for it to be archived).

:func:`prepare_pitr` copies the base backup into a new data directory and configures it to
replay the archive up to the target and then promote (``recovery_target_action = promote``),
as a separate server on its own port: the damaged or running primary is never touched, and
the recovered server does not archive into the archive it reads from, waits for no standby
and streams from no primary. Start it with ``pg_ctl`` as the server's user
(:meth:`RecoveryPlan.start_command`; PostgreSQL refuses to run as root), then
:func:`wait_for_recovery` until it has promoted, and open a Store on it to check the lattices
(or point ``LATTICE_DATABASE_URL`` at it once satisfied). The runbook: README "Disaster
recovery"; the drill: tests/store/test_pitr.py.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from core.errors import LatticeError, ValidationError

_START_TIME = re.compile(r"^START TIME: (.+)$", re.MULTILINE)
SOCKET_PATH_MAX = 100  # a Unix socket path must fit sun_path (108 bytes) with ".s.PGSQL.<port>"


class RecoveryError(LatticeError):
    """A point-in-time recovery that cannot be prepared or did not finish (the reason says which)."""


@dataclass(frozen=True)
class RecoveryPlan:
    """A prepared data directory (see :func:`prepare_pitr`)."""

    datadir: Path
    port: int
    target_time: datetime  # UTC
    base: Path
    wal_archive: Path
    backup_started: datetime | None  # from the base backup's backup_label
    pg_version: str  # major version of the base backup (PG_VERSION)

    @property
    def log(self) -> Path:
        """Where :meth:`start_command` sends the server's log (inside the data directory)."""
        return self.datadir / "pitr.log"

    def bin_dir(self) -> Path:
        """The server binaries for this major version: Debian's layout, else pg_ctl on PATH."""
        debian = Path(f"/usr/lib/postgresql/{self.pg_version}/bin")
        if (debian / "pg_ctl").exists():
            return debian
        found = shutil.which("pg_ctl")
        if found is None:
            raise RecoveryError(f"pg_ctl not found (looked in {debian} and on PATH); install the PostgreSQL "
                                f"{self.pg_version} server binaries")
        return Path(found).parent

    def start_command(self) -> list[str]:
        """``pg_ctl start`` for the prepared directory (run it as the owner of the directory)."""
        return [str(self.bin_dir() / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.log), "-w", "-t", "600",
                "start"]


@dataclass(frozen=True)
class RecoveryResult:
    """How a recovery ended (see :func:`wait_for_recovery`)."""

    seconds: float  # from the call until the server left recovery, s
    stopped: str  # the server's "recovery stopping before commit ..." line ("" when no log was read)


def parse_target_time(value: str | datetime) -> datetime:
    """An ISO 8601 time with its zone (``2026-05-01T12:00:00+00:00``, ``...Z``) as UTC."""
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValidationError("target_time", f"{value!r} is not an ISO 8601 time; use e.g. "
                                  "2026-05-01T12:00:00+00:00") from None
    if when.tzinfo is None:
        raise ValidationError("target_time", f"{value!s} has no time zone; add one (e.g. +00:00 or Z) so the "
                              "recovery stops where you mean")
    return when.astimezone(timezone.utc)


def _conf_path(path: Path, what: str) -> str:
    s = str(path)
    if any(c in s for c in "'\"\n\r%"):
        raise ValidationError(what, f"{s!r}: use a path without quotes, % or line breaks (it goes into the "
                              "server's configuration and restore_command)")
    return s


def _backup_started(label: Path) -> datetime | None:
    m = _START_TIME.search(label.read_text(errors="replace"))
    if not m:
        return None
    try:  # "2026-05-01 12:00:00 UTC" (the server's log_timezone; UTC in a default cluster)
        stamp, _, zone = m.group(1).strip().rpartition(" ")
        if zone.upper() not in ("UTC", "GMT"):
            return None  # another zone name: leave the check to the server
        return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def prepare_pitr(base: str | Path, wal_archive: str | Path, target_time: str | datetime, datadir: str | Path,
                 port: int, *, listen: str = "127.0.0.1") -> RecoveryPlan:
    """Copy the base backup ``base`` into the new data directory ``datadir`` and configure it
    to replay ``wal_archive`` up to ``target_time`` (ISO 8601 with a zone), then promote, on
    ``port`` (TCP on ``listen``). Every check runs before anything is written; a refused call
    leaves no directory behind."""
    base, wal_archive, datadir = Path(base), Path(wal_archive), Path(datadir)
    target = parse_target_time(target_time)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValidationError("port", f"got {port!r}; use a free TCP port number (1-65535)")
    if not (base / "PG_VERSION").is_file():
        raise RecoveryError(f"{base} is not a PostgreSQL base backup (no PG_VERSION); give the directory written "
                            "by `pg_basebackup -D DIR -X stream` (a tar backup, -Ft: extract base.tar into a "
                            "directory first) - nothing was written")
    if not (base / "backup_label").is_file():
        raise RecoveryError(f"{base} has no backup_label: a data directory copied from a stopped or running server "
                            "cannot be rolled forward reliably; take a base backup with pg_basebackup - nothing "
                            "was written")
    if not wal_archive.is_dir() or not any(p.is_file() for p in wal_archive.iterdir()):
        raise RecoveryError(f"the WAL archive {wal_archive} is missing or empty; point --wal-archive at the "
                            "directory the primary's archive_command copies into - nothing was written")
    if datadir.exists() and (not datadir.is_dir() or any(datadir.iterdir())):
        raise RecoveryError(f"{datadir} exists and is not empty; recover into a new directory (the recovered "
                            "server is separate from the one you are recovering from) - nothing was written")
    started = _backup_started(base / "backup_label")
    if started is not None and target < started:
        raise RecoveryError(f"the base backup started at {started.isoformat()}, after the target time "
                            f"{target.isoformat()}; use a base backup taken before it - nothing was written")
    archive_s, datadir_s = _conf_path(wal_archive.resolve(), "wal_archive"), _conf_path(datadir.resolve(), "datadir")
    pg_version = (base / "PG_VERSION").read_text().strip()

    existed = datadir.exists()
    try:
        if existed:
            datadir.rmdir()  # empty (checked): copytree creates it
        shutil.copytree(base, datadir, symlinks=True)
        os.chmod(datadir, 0o700)  # the server refuses a data directory others can read
        (datadir / "standby.signal").unlink(missing_ok=True)  # a base taken with -R: recover, do not follow
        sockets = datadir_s if len(datadir_s) <= SOCKET_PATH_MAX else ""  # TCP only when the path is too long
        settings = {
            "port": str(port), "listen_addresses": f"'{listen}'", "unix_socket_directories": f"'{sockets}'",
            "restore_command": f"'cp \"{archive_s}/%f\" \"%p\"'",
            "recovery_target_time": f"'{target.isoformat(sep=' ')}'",
            "recovery_target_action": "'promote'",
            "archive_mode": "off",  # never write the new timeline into the archive being read
            "synchronous_standby_names": "''",  # no standby here: commits would wait for ever
            "primary_conninfo": "''",  # never stream from the live primary
        }
        lines = [f"# point-in-time recovery to {target.isoformat()} (core.store.pitr, "
                 f"{datetime.now(timezone.utc).isoformat(timespec='seconds')})"]
        lines += [f"{k} = {v}" for k, v in settings.items()]
        with open(datadir / "postgresql.auto.conf", "a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(lines) + "\n")
        (datadir / "recovery.signal").touch()
    except OSError as exc:
        shutil.rmtree(datadir, ignore_errors=True)
        if existed:
            datadir.mkdir(exist_ok=True)
        raise RecoveryError(f"cannot prepare {datadir}: {exc.strerror or exc} - nothing was kept") from None
    return RecoveryPlan(datadir=datadir, port=port, target_time=target, base=base, wal_archive=wal_archive,
                        backup_started=started, pg_version=pg_version)


def _running(datadir: Path) -> bool:
    try:
        pid = int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
        return True
    except PermissionError:
        return True  # alive, owned by the server's user
    except (OSError, ValueError):
        return False


def _log_line(log: Path | None, needle: str) -> str:
    """The last line with ``needle`` written since the server last started (the log is appended to)."""
    if log is None or not log.exists():
        return ""
    lines = log.read_text(errors="replace").splitlines()
    starts = [i for i, ln in enumerate(lines) if "starting PostgreSQL" in ln]
    found = [ln for ln in lines[starts[-1] if starts else 0:] if needle in ln]
    return found[-1].strip() if found else ""


def wait_for_recovery(datadir: str | Path, timeout_s: float = 600.0, log: str | Path | None = None) -> RecoveryResult:
    """Wait until the server started on the prepared ``datadir`` has replayed to the target
    and promoted (PostgreSQL deletes ``recovery.signal`` then). RecoveryError with the
    server's own reason from ``log`` (default: :attr:`RecoveryPlan.log`) if it stops instead
    (target past the archive, a segment missing...), or after ``timeout_s`` seconds."""
    datadir = Path(datadir)
    log = Path(log) if log is not None else datadir / "pitr.log"
    began, seen = time.monotonic(), False
    while (datadir / "recovery.signal").exists() or not _running(datadir):
        running = _running(datadir)
        seen = seen or running
        fatal = "" if running else (_log_line(log, "FATAL") or _log_line(log, "PANIC"))
        if not running and (seen or fatal or time.monotonic() - began > 5.0):  # 5 s for a server still forking
            fatal = fatal or "(no log line; see the server log)"
            raise RecoveryError(f"the recovered server at {datadir} stopped before finishing: {fatal}")
        if time.monotonic() - began > timeout_s:
            raise RecoveryError(f"recovery of {datadir} did not finish within {timeout_s:.0f} s; see {log}")
        time.sleep(0.05)
    return RecoveryResult(seconds=time.monotonic() - began, stopped=_log_line(log, "recovery stopping"))
