"""What a Patroni test cluster needs from this machine (tests/patroni_cluster.py uses it).

* :func:`missing_reason` / :func:`require_patroni`: etcd (Debian's etcd-server), Patroni with
  its etcd3 client in this venv, the PostgreSQL 15 binaries, and, as root, the ``postgres``
  user and a system ``python3`` it may run.
* :func:`copy_site`: the venv's Patroni distributions and their dependencies, copied where the
  ``postgres`` user can read them (the venv's interpreter may live under ``/root``).
* Process helpers on Linux ``/proc``: children of a pid, command lines, SIGKILL.
"""
from __future__ import annotations

import importlib.metadata
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import skip_or_fail

PG_BIN = Path(os.environ.get("LATTICE_PG_BIN", "/usr/lib/postgresql/15/bin"))
SYSTEM_PYTHON = Path("/usr/bin/python3")


def etcd_binary() -> str | None:
    return shutil.which("etcd") or ("/usr/bin/etcd" if os.access("/usr/bin/etcd", os.X_OK) else None)


def _patroni() -> str | None:
    try:
        importlib.metadata.distribution("patroni")
        importlib.metadata.distribution("python-etcd")  # the etcd3 extra's client
    except importlib.metadata.PackageNotFoundError:
        return None
    return "patroni"


def _system_python_ok() -> bool:
    """A python3 every user may run, of this interpreter's minor version (compiled
    extensions such as psutil and psycopg-binary are copied from this venv)."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    out = subprocess.run([str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version_info[:2])"],
                         capture_output=True, text=True, timeout=30).stdout.strip()
    return out == str(tuple(sys.version_info[:2]))


def _distributions(roots: tuple[str, ...] = ("patroni", "python-etcd", "psycopg", "psycopg-binary")
                   ) -> list[importlib.metadata.Distribution]:
    """The installed distributions ``roots`` need to run (their non-extra requirements, transitively)."""
    from packaging.markers import Marker
    seen: dict[str, importlib.metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional one (psycopg-binary) or one Python itself provides
        seen[key] = dist
        for req in dist.requires or []:
            marker = req.split(";", 1)[1] if ";" in req else None
            if marker and ("extra" in marker or not Marker(marker).evaluate()):
                continue
            todo.append(re.split(r"[ <>=!~;\[(]", req, maxsplit=1)[0])
    return list(seen.values())


def copy_site(dest: Path) -> None:
    """Copy the files of :func:`_distributions` (as their RECORDs list them) under ``dest``."""
    for dist in _distributions():
        for f in dist.files or []:
            if str(f).startswith(".."):
                continue  # scripts in bin/: not needed, patroni runs as ``python -m patroni``
            src = Path(f.locate())
            if src.is_file():
                target = dest / str(f)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)


def missing_reason() -> str | None:
    """Why a cluster cannot be started here (None: it can)."""
    if etcd_binary() is None:
        return "etcd not found (install Debian's etcd-server: scripts/ensure-system-packages.sh as root)"
    if _patroni() is None:
        return "patroni not installed (pip install 'patroni[etcd3]', see requirements-dev.txt)"
    if not (PG_BIN / "postgres").exists():
        return f"PostgreSQL binaries not found in {PG_BIN} (set LATTICE_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run PostgreSQL as"
        if not _system_python_ok():
            return (f"running as root: Patroni runs as 'postgres' on {SYSTEM_PYTHON}, which is missing or not "
                    f"Python {sys.version_info.major}.{sys.version_info.minor}")
    return None


def require_patroni() -> None:
    """Skip the calling test when a cluster cannot be started (fail under LATTICE_REQUIRE_PATRONI=1)."""
    reason = missing_reason()
    if reason:
        skip_or_fail(reason, "LATTICE_REQUIRE_PATRONI")


# ----------------------------------------------------------------- process helpers (Linux /proc)
def pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    out = []
    for p in pids():
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4: the parent pid
            out.append(p)
    return out


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def reap(proc: subprocess.Popen) -> None:
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
