"""The API side of the failover drill (tests/reliability/test_failover_drill.py): an API node on
the cluster's multi-host URL, a client writing gems through it at a steady rate, and a probe of
its /v1/ready and /v1/health.

The API node is what ``python -m core serve`` runs: its own Store (so its own recovery gate and
connection pool, as a separate process would have) under a Workbench, the real token service
and app, served by uvicorn on a free port (core.api.ServerThread). The client is plain HTTP
(httpx2) with a bearer token, one request at a time, a new gem id for every attempt (a refused
attempt's outcome is unknown, so its id is never reused). Times are monotonic seconds.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx2

from core.api import ServerThread, create_app
from core.auth import hash_password
from core.auth.tokens import TokenService
from core.router import build_router
from core.service import RateLimits, Workbench
from core.store import Store

USER, PASSWORD = "drill-client", "drill-client-password"


@dataclass
class ApiNode:
    """An API node on ``url``: ``base`` is its HTTP address, ``headers`` a researcher's bearer token."""

    store: Store
    server: ServerThread
    headers: dict[str, str]

    @property
    def base(self) -> str:
        return self.server.url

    @classmethod
    def start(cls, url: str) -> "ApiNode":
        store = Store.open(url)
        users = {"usernames": {USER: {"name": "Drill client", "email": "drill@demo.invalid",
                                      "password": hash_password(PASSWORD, rounds=4), "roles": ["researcher"]}}}
        workbench = Workbench(store, router=build_router("offline"),
                              rate_limits=RateLimits("1000000/minute", "10000/minute"))  # never the limit here
        tokens = TokenService(store, credentials=lambda: users)
        server = ServerThread(create_app(workbench, tokens)).start()
        token = tokens.issue_for_password(USER, PASSWORD).access_token  # 15 min: longer than the drill
        return cls(store, server, {"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self.server.stop()
        self.store.close()


@dataclass
class ApiWriter:
    """POSTs gems ``<prefix>000001``... to ``/v1/lattices/<lattice>/gems`` every ``interval`` seconds.

    Acknowledged: a 201 (the gem is committed). Refused: a 503 (``database_unavailable`` or
    ``recovering``: nothing acknowledged, retried with the next id). Unanswered: no response
    (a connection error or a timeout: not acknowledged). Anything else is a failure of the drill.
    """

    node: ApiNode
    lattice: str
    interval: float
    prefix: str = "api-"
    acked: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, gem id)
    refused: Counter = field(default_factory=Counter)  # error code -> attempts
    unanswered: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # "<status> <body>": the drill fails on these
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        n = 0
        path = f"/v1/lattices/{self.lattice}/gems"
        with httpx2.Client(base_url=self.node.base, headers=self.node.headers, timeout=30.0) as client:
            while not self.stop.is_set():
                n += 1
                gid = f"{self.prefix}{n:06d}"
                try:
                    r = client.post(path, json={"content": f"api drill write {n}", "id": gid})
                except httpx2.HTTPError as exc:
                    self.unanswered.append(f"{type(exc).__name__}: {exc}")
                else:
                    if r.status_code == 201 and r.json()["ids"] == [gid]:
                        self.acked.append((time.monotonic(), gid))
                    elif r.status_code == 503:
                        self.refused[_code(r)] += 1
                    else:
                        self.other.append(f"{r.status_code} {r.text[:300]}")
                self.stop.wait(self.interval)

    def acked_after(self, t: float) -> int:
        return sum(1 for when, _ in self.acked if when > t)


@dataclass
class ReadyProbe:
    """GETs /v1/ready and /v1/health every ``interval`` seconds, as a load balancer would.

    ``samples``: (monotonic time, ready status code, ready answer: ``ready`` / ``read-only`` or the
    error code, the recovery state /v1/health reported).
    """

    node: ApiNode
    interval: float
    samples: list[tuple[float, int, str, str]] = field(default_factory=list)
    last_ready: dict[str, Any] = field(default_factory=dict)  # the last 200 answer of /v1/ready
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx2.Client(base_url=self.node.base, timeout=10.0) as client:
            while not self.stop.is_set():
                try:
                    health = client.get("/v1/health").json()["recovery"]["state"]
                    r = client.get("/v1/ready")
                except httpx2.HTTPError:
                    self.samples.append((time.monotonic(), 0, "unanswered", ""))
                else:
                    body = r.json()
                    if r.status_code == 200:
                        self.last_ready = body
                    self.samples.append((time.monotonic(), r.status_code,
                                         body["status"] if r.status_code == 200 else _code(r), health))
                self.stop.wait(self.interval)

    def summary(self, after: float) -> dict[str, Any]:
        """What the probe saw after ``after``: answers counted, and whether it saw ``recovering``."""
        seen = [s for s in self.samples if s[0] > after]
        # ready again: the first "200 ready" after the first answer that was not (a probe
        # already under way at the kill may still have read the old primary)
        down = next((i for i, s in enumerate(seen) if (s[1], s[2]) != (200, "ready")), None)
        first_ready = None if down is None else next(
            (s[0] for s in seen[down:] if (s[1], s[2]) == (200, "ready")), None)
        return {"probes": len(seen), "ready_answers": dict(Counter(f"{s[1]} {s[2]}" for s in seen)),
                "health_states": dict(Counter(s[3] for s in seen)),
                "recovering_seen": any(s[2] == "recovering" or s[3] == "recovering" for s in seen),
                "seconds_kill_to_ready": round(first_ready - after, 2) if first_ready else None}


def _code(r: Any) -> str:
    try:
        return str(r.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http {r.status_code}"
