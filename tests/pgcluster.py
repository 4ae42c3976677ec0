"""Throwaway PostgreSQL clusters for the replication and PITR tests: a primary with WAL
archiving, streaming standbys made with ``pg_basebackup -R``, synchronous commit on demand.

Never touches the machine's own server (port 5432): every cluster is a fresh ``initdb`` in a
temporary directory of its own, on a free port, listening on 127.0.0.1 and a socket in its own
directory, superuser ``lattice`` with trust authentication (local test clusters only).

PostgreSQL refuses to run as root: when the tests run as uid 0 (CI), the server binaries run
as the unprivileged ``postgres`` user through ``runuser`` and the temporary directory is
chowned to it; as any other user they run as that user. ``Clusters`` (a context manager, also
the :func:`pg_clusters` fixture: import it into a test module) stops every cluster and deletes
every directory it made, whatever happened in the test.

    with Clusters() as pg:
        primary = pg.primary(sync_standby="standby1")   # archive_mode=on into pg.archive
        standby = pg.standby(primary, "standby1")        # streaming, hot standby
        primary.url(), standby.url()                      # postgresql+psycopg://lattice@127.0.0.1:<port>/postgres
        primary.kill()                                    # SIGKILL of the postmaster and its children

The binaries come from $LATTICE_PG_BIN (default /usr/lib/postgresql/15/bin); when they are
missing the test skips, or fails when LATTICE_REQUIRE_REPLICA=1 (CI).
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import skip_or_fail

PG_BIN = Path(os.environ.get("LATTICE_PG_BIN", "/usr/lib/postgresql/15/bin"))
REQUIRE = "LATTICE_REQUIRE_REPLICA"
SUPERUSER = "lattice"
SERVER_USER_WHEN_ROOT = "postgres"
START_TIMEOUT_S = 120  # pg_ctl -t: a slow CI machine replaying WAL at start-up


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's choice for port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_user() -> str | None:
    """Who runs the server binaries: ``postgres`` when we are root (PostgreSQL refuses root),
    else None (ourselves). Skips/fails when root and no such user exists."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER_WHEN_ROOT)
    except KeyError:
        skip_or_fail(f"running as root, and there is no {SERVER_USER_WHEN_ROOT!r} user to run PostgreSQL as",
                     REQUIRE)
    return SERVER_USER_WHEN_ROOT


def require_binaries() -> None:
    missing = [b for b in ("initdb", "pg_ctl", "pg_basebackup", "postgres") if not (PG_BIN / b).exists()]
    if missing:
        skip_or_fail(f"PostgreSQL server binaries {', '.join(missing)} not found in {PG_BIN} (install "
                     "postgresql-15 or set LATTICE_PG_BIN)", REQUIRE)


class Cluster:
    """One server: its data directory, port and log; started and stopped with pg_ctl."""

    def __init__(self, owner: "Clusters", name: str, datadir: Path, port: int):
        self.owner, self.name, self.datadir, self.port = owner, name, datadir, port
        self.log = datadir.parent / f"{name}.log"  # outside the data directory: base backups skip it anyway

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def sql(self, query: str, **params) -> list[tuple]:
        """Run one statement (autocommit) and return its rows (empty for statements without)."""
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                result = conn.execute(text(query), params)
                return [tuple(r) for r in result] if result.returns_rows else []
        finally:
            engine.dispose()

    def configure(self, **settings: object) -> None:
        """Append settings to postgresql.auto.conf (read last, so they win); strings quoted."""
        lines = []
        for key, value in settings.items():
            if isinstance(value, bool):
                value = "on" if value else "off"
            lines.append(f"{key} = '{value}'" if isinstance(value, str) else f"{key} = {value}")
        with open(self.datadir / "postgresql.auto.conf", "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")

    def start(self, wait: bool = True) -> None:
        """``pg_ctl start``; ``wait=False``: return at once (a server that may stop by itself)."""
        self.owner.chown()
        self.owner.run([PG_BIN / "pg_ctl", "-D", self.datadir, "-l", self.log,
                        *(["-w", "-t", str(START_TIMEOUT_S)] if wait else ["-W"]), "start"],
                       what=f"start {self.name}", log=self.log)

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast`` (clean) or ``immediate`` (no checkpoint, like a crash)."""
        if self.running():
            self.owner.run([PG_BIN / "pg_ctl", "-D", self.datadir, "-m", mode, "-w", "stop"], what=f"stop {self.name}")

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    def kill(self) -> None:
        """SIGKILL the postmaster and its children (by pid: the processes this cluster started),
        as when the machine loses the server; the data directory stays as the crash left it."""
        pid = self.postmaster_pid()
        if pid is None or not self.running():
            return
        children = _children(pid)
        for p in [pid, *children]:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in [pid, *children]:
            _wait_gone(p)

    def promote(self) -> None:
        self.owner.run([PG_BIN / "pg_ctl", "-D", self.datadir, "-w", "promote"], what=f"promote {self.name}")

    def wait_for(self, query: str, timeout_s: float = 60.0, **params) -> None:
        """Poll ``query`` (one boolean) until it is true; AssertionError with the log tail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.sql(query, **params)[0][0]:
                    return
            except Exception:  # noqa: BLE001 - not up yet: keep polling until the deadline
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {query!r} not true after {timeout_s} s\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc: the backends and workers of a postmaster)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _wait_gone(pid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:  # reap it if it is our own child (pg_ctl detaches, so usually it is not)
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.02)


class Clusters:
    """Every cluster of one test, under one temporary directory; cleaned up on exit."""

    def __init__(self) -> None:
        require_binaries()
        self.user = _server_user()
        # not pytest's tmp_path: under /tmp/pytest-of-root (mode 700) the postgres user could not enter it
        self.root = Path(tempfile.mkdtemp(prefix="lattice-pg-"))
        self.archive = self.root / "wal-archive"
        self.archive.mkdir()
        self.clusters: list[Cluster] = []

    def __enter__(self) -> "Clusters":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for c in reversed(self.clusters):
            try:
                c.stop("immediate")
            except Exception:  # noqa: BLE001 - a cluster that will not stop cleanly is killed
                pass
            c.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------ processes
    def chown(self, path: Path | None = None) -> None:
        """Give the server user every file under ``path`` (default: this test's directory)."""
        if self.user is None:
            return
        info = pwd.getpwnam(self.user)
        top = path or self.root
        os.chown(top, info.pw_uid, info.pw_gid)
        for dirpath, dirnames, filenames in os.walk(top):
            for n in dirnames + filenames:
                os.chown(os.path.join(dirpath, n), info.pw_uid, info.pw_gid, follow_symlinks=False)

    def run(self, argv: Sequence[object], what: str, log: Path | None = None) -> str:
        """Run a PostgreSQL binary as the server user; AssertionError with its output on failure."""
        cmd = [str(a) for a in argv]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        proc = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=START_TIMEOUT_S + 60)
        if proc.returncode != 0:
            tail = ""
            if log is not None and log.exists():
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise AssertionError(f"{what} failed ({proc.returncode}): {proc.stdout}{proc.stderr}\n{tail}")
        return proc.stdout

    # ------------------------------------------------------------ clusters
    def _settings(self, c: Cluster) -> dict[str, object]:
        return {"port": c.port, "listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.root),
                "max_connections": 40, "shared_buffers": "32MB"}

    def primary(self, name: str = "primary", *, sync_standby: str | None = None,
                synchronous_commit: str = "on", fsync: bool = False) -> Cluster:
        """A started primary: wal_level=replica, WAL senders, archive_mode=on copying each
        segment into :attr:`archive`; ``sync_standby``: synchronous_standby_names (commits
        wait for that standby; ``synchronous_commit``: on = flushed there, remote_apply =
        visible there). ``fsync`` off by default: a SIGKILL of the server loses nothing the
        OS already has; only a machine crash would."""
        c = Cluster(self, name, self.root / name, free_port())
        self.chown()
        self.run([PG_BIN / "initdb", "-D", c.datadir, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-instructions"], what=f"initdb {name}")
        c.configure(**self._settings(c), wal_level="replica", max_wal_senders=8, max_replication_slots=8,
                    wal_keep_size="256MB", hot_standby=True, archive_mode=True,
                    archive_command=f"test ! -f {self.archive}/%f && cp %p {self.archive}/%f",
                    synchronous_standby_names=sync_standby or "", synchronous_commit=synchronous_commit,
                    fsync=fsync, wal_sender_timeout="10s")
        self.clusters.append(c)
        c.start()
        return c

    def standby(self, primary: Cluster, name: str = "standby1") -> Cluster:
        """A started hot standby of ``primary``, streaming as application ``name``
        (``pg_basebackup -R -X stream``)."""
        c = Cluster(self, name, self.root / name, free_port())
        self.chown()
        self.run([PG_BIN / "pg_basebackup", "-D", c.datadir, "-h", "127.0.0.1", "-p", primary.port,
                  "-U", SUPERUSER, "-X", "stream", "-R", "-c", "fast"], what=f"pg_basebackup for {name}")
        c.configure(**self._settings(c), primary_conninfo=f"host=127.0.0.1 port={primary.port} user={SUPERUSER} "
                    f"application_name={name}", hot_standby_feedback=True, wal_receiver_status_interval="1s")
        self.clusters.append(c)
        c.start()
        return c

    def base_backup(self, primary: Cluster, dest: Path) -> float:
        """A plain-format base backup of ``primary`` into ``dest`` (WAL streamed alongside, so it is
        consistent on its own); returns the seconds it took."""
        self.chown()
        started = time.monotonic()
        self.run([PG_BIN / "pg_basebackup", "-D", dest, "-h", "127.0.0.1", "-p", primary.port, "-U", SUPERUSER,
                  "-X", "stream", "-c", "fast"], what="pg_basebackup")
        return time.monotonic() - started

    def adopt(self, name: str, datadir: Path, port: int, wait: bool = True) -> Cluster:
        """A cluster whose data directory was prepared elsewhere (a PITR restore), started here."""
        c = Cluster(self, name, datadir, port)
        self.clusters.append(c)
        c.start(wait)
        return c


@pytest.fixture
def pg_clusters():
    """A :class:`Clusters` for one test, stopped and deleted afterwards."""
    with Clusters() as pg:
        yield pg
