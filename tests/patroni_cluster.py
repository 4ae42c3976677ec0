"""A throwaway Patroni cluster for tests: one etcd, two PostgreSQL 15 nodes managed by Patroni.

Everything lives in one temporary directory and on free ports of 127.0.0.1; the machine's
own PostgreSQL (5432) is never touched. The nodes run with ``synchronous_mode: on``: once
the replica is the synchronous standby, a commit the client saw acknowledged is on both
nodes, so losing the primary loses no acknowledged write.

Run as root (CI), PostgreSQL refuses to start, so etcd, Patroni and PostgreSQL run as the
unprivileged ``postgres`` user (``subprocess.Popen(user=...)``, no ``runuser`` in between:
the pid we hold is the real process, and SIGKILL reaches it); run as a normal user, as that
user. The venv's interpreter may live where ``postgres`` cannot read (``/root/.pyenv``), so
as root Patroni runs on the system ``python3`` (same minor version) with copies of the
venv's Patroni distributions and their dependencies in the cluster directory.

    with PatroniCluster() as cluster:          # starts etcd, node0 (leader), node1 (sync standby)
        url = cluster.url                      # postgresql+psycopg://postgres@h:p0,h:p1/postgres?...
        old = cluster.leader()
        cluster.kill(old)                      # SIGKILL its Patroni, postmaster and backends
        new = cluster.wait_leader(exclude=old) # the promoted standby
    # every process killed and the directory removed, also when the body raised

What the machine must have, and the process helpers: tests/patroni_support.py.
Missing tools: :func:`require_patroni` skips (``LATTICE_REQUIRE_PATRONI=1``: fails).
Times are seconds throughout.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.patroni_support import (PG_BIN, SYSTEM_PYTHON, children, cmdline, copy_site, etcd_binary, kill,
                                   missing_reason, pids, reap, require_patroni, tail)

__all__ = ["PatroniCluster", "Node", "ClusterError", "require_patroni", "missing_reason", "free_port", "PG_BIN"]
HOST = "127.0.0.1"
# Patroni's own floor: ttl >= 20 s, loop_wait >= 1 s, retry_timeout >= 3 s
# (loop_wait + 2 * retry_timeout <= ttl). A killed leader's key expires after at most
# ``TTL`` seconds; the standby then wins the race and promotes within a loop or two.
TTL, LOOP_WAIT, RETRY_TIMEOUT = 20, 1, 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class ClusterError(RuntimeError):
    """The cluster did not reach the awaited state in time (the message names the log to read)."""


@dataclass
class Node:
    """One Patroni member: its PostgreSQL port, REST API port and files."""

    name: str
    pg_port: int
    api_port: int
    dir: Path
    proc: subprocess.Popen | None = None
    killed: bool = False

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def log(self) -> Path:
        return self.dir / "patroni.log"

    def postmaster_pid(self) -> int | None:
        """The postmaster's pid from ``postmaster.pid`` (None: not running or not yet written)."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def api(self, path: str, timeout: float = 2.0) -> dict | None:
        """GET ``path`` of this node's REST API as JSON (None: unreachable). Status codes
        other than 200 still carry a JSON body (``/primary`` answers 503 on a replica)."""
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.api_port}{path}", timeout=timeout) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                return json.loads(exc.read() or b"{}")
            except ValueError:
                return {}
        except (OSError, ValueError):
            return None


@dataclass
class PatroniCluster:
    """etcd + two Patroni nodes in a temporary directory (see the module docstring)."""

    scope: str = "lattice"
    nodes: list[Node] = field(default_factory=list)
    base: Path | None = None
    etcd_proc: subprocess.Popen | None = None
    etcd_port: int = 0

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> "PatroniCluster":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, timeout: float = 90.0) -> None:
        """etcd, then node0 until it leads, then node1 until it is the synchronous standby."""
        reason = missing_reason()
        if reason:
            raise ClusterError(reason)
        self.base = Path(tempfile.mkdtemp(prefix="lattice-patroni-"))
        self._user = self._run_as()
        if self._user is not None:
            os.chown(self.base, self._user.pw_uid, self._user.pw_gid)
        self._start_etcd(timeout)
        self.nodes = [self._node(f"node{i}") for i in range(2)]
        deadline = time.monotonic() + timeout
        self._start_node(self.nodes[0])
        self.wait_leader(timeout=deadline - time.monotonic())
        self._start_node(self.nodes[1])
        self.wait_sync_standby(timeout=deadline - time.monotonic())

    def close(self) -> None:
        """SIGKILL every process of the cluster and remove its directory (safe to call twice)."""
        for node in self.nodes:
            self._kill_node_processes(node)
        if self.etcd_proc is not None:
            kill(self.etcd_proc.pid)
            reap(self.etcd_proc)
        if self.base is not None:
            self._kill_leftovers()  # e.g. a postmaster started after we last read its pid
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None

    # ------------------------------------------------------------- queries
    @property
    def url(self) -> str:
        """The multi-host URL the store uses: whichever node accepts writes."""
        hosts = ",".join(f"{HOST}:{n.pg_port}" for n in self.nodes)
        return f"postgresql+psycopg://postgres@{hosts}/postgres?target_session_attrs=read-write&connect_timeout=2"

    def node_url(self, node: Node) -> str:
        """A URL of one node only (to read back from a given server)."""
        return f"postgresql+psycopg://postgres@{HOST}:{node.pg_port}/postgres?connect_timeout=2"

    def members(self) -> list[dict]:
        """``GET /cluster`` from any live node: name, role (leader/sync_standby/replica), state, lag."""
        for node in self.nodes:
            if not node.killed:
                info = node.api("/cluster")
                if info and "members" in info:
                    return info["members"]
        return []

    def leader(self) -> Node | None:
        """The node Patroni lists as the running leader (None: none right now)."""
        for m in self.members():
            if m.get("role") == "leader" and m.get("state") == "running":
                return self._by_name(m["name"])
        return None

    def wait_leader(self, timeout: float = 60.0, exclude: Node | None = None) -> Node:
        """Wait until a node (other than ``exclude``) leads and its PostgreSQL accepts writes."""
        def ready() -> Node | None:
            node = self.leader()
            if node is None or node is exclude:
                return None
            primary = node.api("/primary")
            return node if primary and primary.get("role") in ("primary", "master") else None
        return self._wait(ready, timeout, "a leader" + (f" other than {exclude.name}" if exclude else ""))

    def wait_sync_standby(self, timeout: float = 60.0) -> Node:
        """Wait until a replica streams and is the synchronous standby (commits wait for it)."""
        def ready() -> Node | None:
            for m in self.members():
                if m.get("role") == "sync_standby" and m.get("state") == "streaming":
                    return self._by_name(m["name"])
            return None
        return self._wait(ready, timeout, "a streaming synchronous standby")

    # --------------------------------------------------------------- faults
    def kill(self, node: Node) -> None:
        """SIGKILL the node's Patroni, its postmaster and every backend: the server is lost."""
        self._kill_node_processes(node)
        node.killed = True

    # ------------------------------------------------------------- internals
    @staticmethod
    def _run_as() -> pwd.struct_passwd | None:
        return pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    def _python(self) -> tuple[str, dict[str, str]]:
        """The interpreter Patroni runs on and the environment it needs (see the module docstring)."""
        if self._user is None:  # this interpreter (a venv finds its own packages; keep a PYTHONPATH)
            return sys.executable, {k: v for k, v in os.environ.items() if k == "PYTHONPATH"}
        site = self.base / "site-packages"
        copy_site(site)
        for path in [site, *site.rglob("*")]:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)
        return str(SYSTEM_PYTHON), {"PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1"}

    def _popen(self, args: list[str], log: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        env = {"PATH": f"{PG_BIN}:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "HOME": str(self.base), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        kwargs: dict = {}
        if self._user is not None:
            kwargs = {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        out = open(log, "ab")
        if self._user is not None:
            os.chown(log, self._user.pw_uid, self._user.pw_gid)
        try:
            # own session: a Ctrl-C of the test run does not reach them, close() does
            return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=self.base, start_new_session=True, **kwargs)
        finally:
            out.close()

    def _start_etcd(self, timeout: float) -> None:
        self.etcd_port, peer = free_port(), free_port()
        data = self.base / "etcd"
        client, peer_url = f"http://{HOST}:{self.etcd_port}", f"http://{HOST}:{peer}"
        self.etcd_proc = self._popen([
            etcd_binary(), "--name", "e0", "--data-dir", str(data),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"e0={peer_url}", "--initial-cluster-state", "new",
            "--initial-cluster-token", f"lattice-{os.getpid()}"], self.base / "etcd.log")

        def healthy() -> bool | None:
            if self.etcd_proc.poll() is not None:
                raise ClusterError(f"etcd exited with {self.etcd_proc.returncode}; see {self.base / 'etcd.log'}")
            try:
                with urllib.request.urlopen(f"{client}/health", timeout=1) as r:
                    return json.loads(r.read()).get("health") in ("true", True) or None
            except (OSError, ValueError):
                return None
        self._wait(healthy, timeout, "etcd to answer /health")

    def _node(self, name: str) -> Node:
        node = Node(name, free_port(), free_port(), self.base / name)
        node.dir.mkdir()
        if self._user is not None:
            os.chown(node.dir, self._user.pw_uid, self._user.pw_gid)
        return node

    def _start_node(self, node: Node) -> None:
        config = node.dir / "patroni.yml"
        config.write_text(json.dumps(self._config(node), indent=2))  # JSON is YAML
        if self._user is not None:
            os.chown(config, self._user.pw_uid, self._user.pw_gid)
        if not hasattr(self, "_py"):
            self._py = self._python()
        python, env = self._py
        node.proc = self._popen([python, "-m", "patroni", str(config)], node.log, env)

    def _config(self, node: Node) -> dict:
        """The node's patroni.yml (deploy/patroni/ has the same settings, commented)."""
        return {
            "scope": self.scope, "name": node.name,
            "log": {"level": "INFO"},
            "restapi": {"listen": f"{HOST}:{node.api_port}", "connect_address": f"{HOST}:{node.api_port}"},
            "etcd3": {"hosts": [f"{HOST}:{self.etcd_port}"]},
            "bootstrap": {
                "dcs": {"ttl": TTL, "loop_wait": LOOP_WAIT, "retry_timeout": RETRY_TIMEOUT,
                        "maximum_lag_on_failover": 1048576,
                        # commits wait for the standby: an acknowledged write is on both nodes
                        "synchronous_mode": True,
                        "postgresql": {"use_pg_rewind": False, "parameters": {
                            "wal_level": "replica", "hot_standby": "on", "max_wal_senders": 5,
                            "max_replication_slots": 5, "wal_keep_size": "64MB",
                            "synchronous_commit": "on", "max_connections": 50}}},
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"{HOST}:{node.pg_port}", "connect_address": f"{HOST}:{node.pg_port}",
                "data_dir": str(node.data_dir), "bin_dir": str(PG_BIN),
                "pgpass": str(node.dir / "pgpass"),
                # a throwaway cluster on the loopback only: trust, no passwords to manage
                "pg_hba": [f"local all all trust", f"host all all {HOST}/32 trust",
                           f"host replication all {HOST}/32 trust"],
                "authentication": {"superuser": {"username": "postgres"},
                                   "replication": {"username": "postgres"}},
                "parameters": {"unix_socket_directories": str(node.dir), "shared_buffers": "32MB",
                               "fsync": "on"},
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }

    def _by_name(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def _wait(self, ready, timeout: float, what: str):
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            got = ready()
            if got:
                return got
            for node in self.nodes:
                if node.proc is not None and not node.killed and node.proc.poll() is not None:
                    raise ClusterError(f"patroni {node.name} exited with {node.proc.returncode}; see {node.log}:\n"
                                       + tail(node.log))
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n.log}\n{tail(n.log)}" for n in self.nodes if n.log.exists())
                raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
            time.sleep(0.2)

    def _kill_node_processes(self, node: Node) -> None:
        if node.proc is not None:
            kill(node.proc.pid)
        postmaster = node.postmaster_pid()
        if postmaster is not None and cmdline(postmaster).find(str(node.data_dir)) >= 0:
            for pid in [postmaster, *children(postmaster)]:
                kill(pid)
        if node.proc is not None:
            reap(node.proc)

    def _kill_leftovers(self) -> None:
        """Any process still naming our directory on its command line (postgres -D <dir>/...)."""
        mark = str(self.base)
        for pid in pids():
            if pid != os.getpid() and mark in cmdline(pid):
                kill(pid)
