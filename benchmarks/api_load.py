"""API load benchmark (issue 15): 50 concurrent clients for 20 s against two API nodes behind nginx.

Run with ``python -m benchmarks.api_load`` (``--quick``: 10 clients for 5 s; ``--clients``,
``--seconds``, ``--no-nginx``, ``--json``). Needs PostgreSQL (``LATTICE_TEST_POSTGRES_URL``, a
throwaway schema as benchmarks.store makes) and Redis (``LATTICE_TEST_REDIS_URL``, default
redis://127.0.0.1:6379/0, a key prefix of this run's own, deleted afterwards).

Set-up: a lattice of 2,000 generated gems; two API nodes (``python -m core serve`` in two
processes) on that database and one Redis prefix; nginx in front of them (deploy/nginx.conf.template
rendered by scripts/render-nginx.py with ``--api-node a --api-node b``: round robin) or, without
nginx, each client alternating between the two nodes. Every client is a program with its own
API key, exchanged once for a JWT.

Phase 1 (load): each client, in a loop for the duration, either adds a gem (20 %, a unique id and a
tag of this run; ``POST /v1/lattices/load/gems``) or searches (``POST .../search``, k=10).
Figures: requests, throughput (requests/s), p50/p95 latency (client-side, ms; search and write
apart), errors (any status but 200/201, or a transport error; goal 0), writes acknowledged (201)
against writes found afterwards in the database (goal: 0 lost), requests served per node.

Phase 2 (rate limit across nodes): the nodes restarted with a low limit (``LATTICE_API_RATE_LIMIT``,
30/minute), one identity sends 3 x the limit from 10 concurrent clients alternating between the
two nodes; held when exactly the limit is granted in total (each node alone would grant it all)
and the rest is refused with 429.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from benchmarks.api_search import build_store, fmt, percentiles, questions, table
from benchmarks.store import Unavailable, database

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("LATTICE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LATTICE = "load"
SIZES = {False: (50, 20.0), True: (10, 5.0)}  # quick -> (clients, seconds)
WRITE_SHARE = 0.2
LOW_LIMIT = 30
STARTUP_S = 60.0


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, and its children."""
    import signal
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait(url: str, proc: subprocess.Popen, log: Path) -> None:
    import httpx2
    deadline = time.monotonic() + STARTUP_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx2.get(url, timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer in {STARTUP_S:g} s:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)


@contextmanager
def api_nodes(db_url: str, redis_url: str, prefix: str, limit: str, workdir: Path, n: int = 2) -> Iterator[list[str]]:
    """``n`` API nodes (``python -m core serve``) on ``db_url`` and one Redis prefix; their base URLs."""
    env = {k: v for k, v in os.environ.items() if k not in ("LATTICE_CREDENTIALS",)}
    env.update(LATTICE_DEMO="1", LATTICE_DATABASE_URL=db_url, LATTICE_REDIS_URL=redis_url,
               LATTICE_REDIS_PREFIX=prefix, LATTICE_API_RATE_LIMIT=limit, HOME=str(workdir), PYTHONUNBUFFERED="1")
    procs, urls = [], []
    try:
        for i in range(n):  # started together, then waited for: start-ups overlap
            port = _free_port()
            log = workdir / f"node-{i}-{port}.log"
            with log.open("w") as out:
                procs.append((subprocess.Popen([sys.executable, "-m", "core", "serve", "--port", str(port),
                                                "--log-level", "warning"], cwd=ROOT, env=env, stdout=out,
                                               stderr=subprocess.STDOUT, start_new_session=True), log))
            urls.append(f"http://127.0.0.1:{port}")
        for url, (proc, log) in zip(urls, procs):
            _wait(url + "/v1/health", proc, log)
        yield urls
    finally:
        for proc, _ in procs:
            _stop(proc)


@contextmanager
def nginx_proxy(urls: list[str], run: Path) -> Iterator[str | None]:
    """nginx round robin over the API nodes ``urls``: its base URL (None when nginx is not installed)."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx:
        yield None
        return
    run.mkdir(parents=True, exist_ok=True)
    run.chmod(0o755)
    listen = _free_port()
    args = [sys.executable, str(ROOT / "scripts" / "render-nginx.py"), "--listen", f"127.0.0.1:{listen}",
            "--run-dir", str(run), "--foreground"]
    for i, url in enumerate(urls):
        args += ["--api-node", f"n{i}={url.split('//', 1)[1]}"]
    (run / "nginx.conf").write_text(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
    proc = subprocess.Popen([nginx, "-c", str(run / "nginx.conf"), "-p", str(run)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait(f"http://127.0.0.1:{listen}/v1/health", proc, run / "error.log")
        yield f"http://127.0.0.1:{listen}"
    finally:
        _stop(proc)


def _served(run: Path, path: str) -> dict[str, int]:
    """Requests for paths starting with ``path`` per upstream (nginx's access log)."""
    log = (run / "access.log").read_text() if (run / "access.log").exists() else ""
    return dict(Counter(re.findall(rf'"\w+ {re.escape(path)}[^"]*" \d+ node=\S+ upstream=(\S+)', log)))


def _tokens(base: str, keys: list[str]) -> list[dict[str, str]]:
    import httpx2
    out = []
    with httpx2.Client(base_url=base, timeout=60) as client:
        for key in keys:
            r = client.post("/v1/auth/token", json={"grant_type": "api_key", "api_key": key})
            r.raise_for_status()
            out.append({"Authorization": f"Bearer {r.json()['access_token']}"})
    return out


async def _load(bases: list[str], tokens: list[dict[str, str]], seconds: float, run_tag: str) -> dict:
    """Phase 1: every client loops until the deadline; returns latencies, errors and acknowledged ids."""
    import httpx2
    qs = questions(500, seed=11)
    lat: dict[str, list[float]] = {"search": [], "write": []}
    errors: Counter = Counter()
    acked: list[str] = []
    per_base: Counter = Counter()
    deadline = time.perf_counter() + seconds

    async def client(i: int, headers: dict[str, str]) -> None:
        rng = random.Random(i)
        limits = httpx2.Limits(max_connections=len(bases), max_keepalive_connections=len(bases))
        async with httpx2.AsyncClient(headers=headers, timeout=60, limits=limits) as http:
            n = 0
            while time.perf_counter() < deadline:
                base = bases[n % len(bases)]  # alternating (one base: nginx alternates)
                n += 1
                write = rng.random() < WRITE_SHARE
                t0 = time.perf_counter()
                try:
                    if write:
                        gem_id = f"{run_tag}-{i}-{n}"
                        r = await http.post(f"{base}/v1/lattices/{LATTICE}/gems",
                                            json={"id": gem_id, "content": f"load test gem {gem_id}: {rng.choice(qs)}",
                                                  "tags": [run_tag]})
                    else:
                        r = await http.post(f"{base}/v1/lattices/{LATTICE}/search",
                                            json={"question": rng.choice(qs), "k": 10})
                except httpx2.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    continue
                lat["write" if write else "search"].append((time.perf_counter() - t0) * 1000.0)
                per_base[base] += 1
                if r.status_code != (201 if write else 200):
                    errors[f"{r.status_code} {r.text[:80]}"] += 1
                elif write:
                    acked.extend(r.json()["ids"])

    t0 = time.perf_counter()
    await asyncio.gather(*(client(i, tok) for i, tok in enumerate(tokens)))
    return {"lat": lat, "errors": errors, "acked": acked, "elapsed": time.perf_counter() - t0,
            "per_base": dict(per_base)}


async def _limit_phase(bases: list[str], headers: dict[str, str], total: int, workers: int = 10) -> Counter:
    """Phase 2: ``total`` requests of one identity from ``workers`` concurrent clients, alternating nodes;
    returns (node, status) counts."""
    import httpx2
    out: Counter = Counter()
    todo = iter(range(total))

    async def worker() -> None:
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            for n in todo:
                base = bases[n % len(bases)]
                r = await http.get(f"{base}/v1/lattices")
                out[(base, r.status_code)] += 1
                if r.status_code == 429:
                    assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return out


def _found(url: str, run_tag: str) -> set[str]:
    """Ids of the gems tagged ``run_tag`` in the database (read straight from the store)."""
    from core.store import Store
    ids: set[str] = set()
    with Store.open(url) as store:
        page = 1
        while True:
            df, total = store.list_gems(LATTICE, page=page, page_size=500, tag=run_tag, archived=None)
            ids.update(df["id"].tolist())
            if len(ids) >= total or not len(df):
                return ids
            page += 1


def api_load(clients: int = 50, seconds: float = 20.0, *, db_url: str | None = None, redis_url: str = REDIS_URL,
             prefix: str | None = None, gems: int = 2000, low_limit: int = LOW_LIMIT, use_nginx: bool = True,
             log: Callable[[str], None] | None = None) -> dict:
    """Both phases (see the module docstring); ``db_url`` default: a throwaway PostgreSQL schema."""
    import redis

    from core.access import SYSTEM
    from core.auth.api_keys import create_api_key
    from core.service import ensure_demo
    from core.store import Store

    run_tag = f"load{uuid.uuid4().hex[:8]}"
    prefix = prefix or f"bench-{run_tag}"
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-api-load-")))
        url = db_url or stack.enter_context(database("postgresql", work))
        build_store(url, gems, work, LATTICE)
        with Store.open(url) as store:
            # the demo lattice before the nodes start: each node's start-up creates it when missing,
            # and two doing that at once race (the loser exits)
            ensure_demo(store)
            keys = [create_api_key(store, SYSTEM, f"load-client-{i}", "researcher").key for i in range(clients)]
            limit_key = create_api_key(store, SYSTEM, "limit-client", "viewer").key
        stack.callback(_clean_redis, redis, redis_url, prefix)
        with api_nodes(url, redis_url, prefix, "1000000/minute", work) as nodes:
            with nginx_proxy(nodes, work / "nginx") if use_nginx else _nothing() as proxy:
                bases = [proxy] if proxy else nodes
                tokens = _tokens(bases[0], keys)
                if log:
                    log(f"  ({len(nodes)} API nodes {'behind nginx' if proxy else 'alternated by the clients'}; "
                        f"{clients} clients for {seconds:g} s)")
                res = _run_async(_load(bases, tokens, seconds, run_tag))
                served = _served(work / "nginx", f"/v1/lattices/{LATTICE}/") if proxy else res["per_base"]
        found = _found(url, run_tag)
        with api_nodes(url, redis_url, prefix, f"{low_limit}/minute", work) as nodes:
            (limit_headers,) = _tokens(nodes[0], [limit_key])
            limited = _run_async(_limit_phase(nodes, limit_headers, 3 * low_limit))
    acked = set(res["acked"])
    everything = res["lat"]["search"] + res["lat"]["write"]
    p50, p95 = percentiles(everything)
    granted = sum(n for (_, s), n in limited.items() if s == 200)
    refused = sum(n for (_, s), n in limited.items() if s == 429)
    granted_by_node = sorted(n for (_, s), n in limited.items() if s == 200)
    return {"name": "api_load", "nodes": 2, "via": "nginx" if proxy else "alternating", "clients": clients,
            "seconds": round(res["elapsed"], 2), "gems": gems,
            "requests": len(everything) + sum(res["errors"].values()),
            "throughput_rps": len(everything) / res["elapsed"], "p50_ms": p50, "p95_ms": p95,
            "search_p95_ms": percentiles(res["lat"]["search"])[1] if res["lat"]["search"] else float("nan"),
            "write_p95_ms": percentiles(res["lat"]["write"])[1] if res["lat"]["write"] else float("nan"),
            "errors": sum(res["errors"].values()), "error_kinds": dict(res["errors"]),
            "writes_acked": len(acked), "writes_found": len(acked & found), "writes_lost": len(acked - found),
            "writes_unacked_but_stored": len(found - acked), "served_per_node": sorted(served.values()),
            "limit": f"{low_limit}/minute", "limit_requests": 3 * low_limit, "limit_granted": granted,
            "limit_granted_per_node": granted_by_node, "limit_refused": refused,
            "limit_asked_per_node": sorted(Counter(b for (b, _), n in limited.items() for _ in range(n)).values()),
            "limit_held": bool(granted == low_limit and refused == 2 * low_limit)}


def _run_async(coro: Any) -> Any:
    """``asyncio.run(coro)`` on a thread of its own: the caller's thread may already run an event
    loop (Playwright's sync API keeps one in the test session's main thread)."""
    import threading
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["result"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            out["error"] = exc

    thread = threading.Thread(target=target, name="api-load-clients")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["result"]


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _clean_redis(redis: object, url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)  # type: ignore[attr-defined]
    try:
        for key in client.scan_iter(match=f"*{prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()


def load_table(res: dict) -> str:
    return table([
        ("API nodes", f"{res['nodes']} "
                      f"({'behind nginx, round robin' if res['via'] == 'nginx' else 'clients alternate'})"),
        ("clients x seconds", f"{res['clients']} x {res['seconds']:g}"),
        ("requests (20 % writes)", fmt(res["requests"])),
        ("throughput, requests/s", f"{res['throughput_rps']:.1f}"),
        ("latency p50 / p95, ms", f"{res['p50_ms']:.1f} / {res['p95_ms']:.1f}"),
        ("search p95 / write p95, ms", f"{res['search_p95_ms']:.1f} / {res['write_p95_ms']:.1f}"),
        ("requests served per node", " / ".join(str(n) for n in res["served_per_node"])),
        ("errors", f"{res['errors']}" + (f"  {res['error_kinds']}" if res["errors"] else "")),
        ("writes acknowledged / found / lost", f"{res['writes_acked']} / {res['writes_found']} / {res['writes_lost']}"),
        ("rate limit (one identity, 2 nodes)", f"{res['limit']}: {res['limit_requests']} sent, {res['limit_granted']} "
                                               f"granted ({' + '.join(map(str, res['limit_granted_per_node']))}), "
                                               f"{res['limit_refused']} refused: "
                                               f"{'held' if res['limit_held'] else 'NOT HELD'}"),
    ], "API load: concurrent clients against two API nodes (PostgreSQL, Redis)")


def run_all(quick: bool = False, only: list[str] | None = None, log: Callable[[str], None] | None = print) -> list[dict]:
    """The suite's one benchmark, for ``python -m core bench``-style callers."""
    clients, seconds = SIZES[quick]
    res = api_load(clients, seconds, log=log)
    if log:
        log(load_table(res))
    return [res]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.api_load", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 clients for 5 s (default 50 for 20 s)")
    ap.add_argument("--clients", type=int, help="concurrent clients (overrides --quick)")
    ap.add_argument("--seconds", type=float, help="load duration (overrides --quick)")
    ap.add_argument("--no-nginx", action="store_true", help="clients alternate between the nodes themselves")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    clients, seconds = SIZES[args.quick]
    try:
        res = api_load(args.clients or clients, args.seconds or seconds, use_nginx=not args.no_nginx,
                       log=None if args.json else print)
    except Unavailable as exc:
        print(f"api_load needs PostgreSQL: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(res, indent=2) if args.json else load_table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
