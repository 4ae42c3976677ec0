"""API search benchmark (issue 15): ``POST /v1/lattices/{name}/search`` over 100k gems, through real HTTP.

Run with ``python -m benchmarks.api_search`` (``--quick``: 10k gems; ``--gems N``, ``--questions Q``;
``--json``). One SQLite store of ``N`` generated gems (``benchmarks.store.make_gems_file``,
embedder hashing-v1, 1024 dimensions, or ``--embedder``), the API app (``core.api.create_app``) on
uvicorn on a free port
(``core.api.ServerThread``), one keep-alive HTTP client (httpx2), a program's token (an API key
exchanged at ``POST /v1/auth/token``). After a warm-up (the first request reads the lattice
into the Workbench's cache), ``Q`` seeded six-word questions, each timed three ways:

* ``server``: the server's own time to the response headers (``Server-Timing: app;dur=<ms>``,
  added by core.api.app.ServerTiming): token check, rate limit, ranking, JSON;
* ``client``: the client's wall time of the round trip (``time.perf_counter``), HTTP parsing and
  the loopback network included;
* ``direct``: ``core.service.search`` called in-process on the same Workbench cache and
  embedder: what the API adds nothing to;
* ``floor``: the one part of a search that must touch every gem, the float32 matrix-vector
  product of the question's embedding with the same cached (N, d) embeddings (``np.matmul``
  into a preallocated buffer; memory-bound, 400 MB at 100k x 1024): what no search can beat.

Two lattices of the same generated gems (``python -m core bench --suite api_search`` runs both;
``--preset``/``--embedder`` picks one): the seed's similarity ranking with hashing-v1, and a
``memory`` lattice (hashing-v2, the hybrid retriever: BM25 fused with the similarity, floor
scoring), as the demo and every new memory lattice rank.

Figures in milliseconds (p50, p95), the ratios ``server / floor`` and ``direct / floor`` (p50 and
p95, all measured in one run, question by question interleaved, so that the machine's load hits
them alike), ``server_p95 / direct_p95`` and ``client_p95 / direct_p95``, and the goal:
server-side p95 under 50 ms at 100k gems.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from benchmarks.store import _VOCAB, EMBEDDER, make_gems_file

GOAL_SERVER_P95_MS = 50.0
SIZES = {False: (100_000, 300), True: (10_000, 100)}  # quick -> (gems, questions)
LATTICE = "bench"
TIMING = re.compile(r"app;dur=([0-9.]+)")


def questions(n: int, seed: int = 7) -> list[str]:
    """``n`` seeded six-word questions from the generated gems' vocabulary."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(_VOCAB, k=6)).capitalize() + "?" for _ in range(n)]


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """(p50, p95) of ``samples``."""
    a = np.asarray(samples, dtype=float)
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def server_ms(response: Any) -> float:
    """The server-side time of a response, in ms, from its ``Server-Timing: app;dur=<ms>`` header."""
    m = TIMING.search(response.headers.get("server-timing", ""))
    if not m:
        raise RuntimeError(f"no Server-Timing header in the response ({response.status_code}): is this the API?")
    return float(m.group(1))


def api_token(base_url: str, store: Any, name: str = "bench-client", role: str = "researcher") -> dict[str, str]:
    """A bearer header for a program: an API key made in ``store``, exchanged over HTTP for a JWT."""
    import httpx2

    from core.access import SYSTEM
    from core.auth.api_keys import create_api_key

    key = create_api_key(store, SYSTEM, name, role).key
    r = httpx2.post(base_url + "/v1/auth/token", json={"grant_type": "api_key", "api_key": key}, timeout=60)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def build_store(url: str, n: int, workdir: Path, lattice: str = LATTICE, embedder: str | None = EMBEDDER,
                preset: str | None = None) -> None:
    """A lattice of ``n`` generated gems in the store at ``url``, embedded with ``embedder`` (None: the
    preset's, hashing-v2 for ``memory``) under ``preset`` (None: the seed's parameters)."""
    from core.access import SYSTEM
    from core.store import Store

    path = make_gems_file(workdir / f"gems-{n}.jsonl", n)
    with Store.open(url) as store:
        store.create_lattice(lattice, SYSTEM, embedder=embedder, preset=preset)
        store.import_path(lattice, path, SYSTEM)


def api_search(n: int, n_questions: int, log: Callable[[str], None] | None = None, embedder: str | None = EMBEDDER,
               preset: str | None = None) -> dict:
    """Search over ``n`` gems (embedded with ``embedder``, None: the preset's; parameters of ``preset``)
    through the API vs in-process vs the matrix-vector floor (see the module docstring)."""
    import httpx2

    from core.api import ServerThread, create_app
    from core.router import build_router
    from core.service import RateLimits, Workbench
    from core.service import search as direct_search
    from core.store import Store

    with tempfile.TemporaryDirectory(prefix="bench-api-search-") as d:
        url = f"sqlite:///{Path(d) / 'lattice.db'}"
        t0 = time.perf_counter()
        build_store(url, n, Path(d), embedder=embedder, preset=preset)
        if log:
            log(f"  (built {n} gems in {time.perf_counter() - t0:.0f} s)")
        store = Store.open(url)
        # one identity asks every question: a limit above what the run sends (the limit is not measured here)
        workbench = Workbench(store, router=build_router("offline"),
                              rate_limits=RateLimits("1000000/minute", "1000/minute"))
        try:
            with ServerThread(create_app(workbench)) as server:
                me = api_token(server.url, store)
                qs = questions(n_questions)
                body = lambda q: {"question": q, "k": 10}  # noqa: E731
                with httpx2.Client(base_url=server.url, headers=me, timeout=120) as client:
                    t0 = time.perf_counter()
                    first = client.post(f"/v1/lattices/{LATTICE}/search", json=body("warm up the lattice cache"))
                    first.raise_for_status()
                    cold_s = time.perf_counter() - t0
                    for q in qs[:10]:  # warm: JIT-free, but caches, allocators and the connection
                        client.post(f"/v1/lattices/{LATTICE}/search", json=body(q)).raise_for_status()
                    info = store.info(LATTICE)
                    emb = workbench.lattices.get(LATTICE).embeddings  # the very matrix a search reads
                    vectors = workbench.embedder(info.embedder).embed(qs)
                    buf = np.empty(emb.shape[0], dtype=np.float32)
                    server_t, client_t, direct_t, floor_t = [], [], [], []
                    for q, vector in zip(qs, vectors):  # each question through the API, then in-process: both see the same load
                        t0 = time.perf_counter()
                        r = client.post(f"/v1/lattices/{LATTICE}/search", json=body(q))
                        client_t.append((time.perf_counter() - t0) * 1000.0)
                        r.raise_for_status()
                        assert len(r.json()["gems"]) == 10, r.json()
                        server_t.append(server_ms(r))
                        t0 = time.perf_counter()
                        out = direct_search(store, LATTICE, q, None, 10, lattices=workbench.lattices,
                                            embedder=workbench.embedder)
                        direct_t.append((time.perf_counter() - t0) * 1000.0)
                        assert [g["gem_id"] for g in out["gems"]] == [g["gem_id"] for g in r.json()["gems"]]
                        t0 = time.perf_counter()
                        np.matmul(emb, vector, out=buf)
                        floor_t.append((time.perf_counter() - t0) * 1000.0)
        finally:
            store.close()
    (s50, s95), (c50, c95), (d50, d95) = percentiles(server_t), percentiles(client_t), percentiles(direct_t)
    f50, f95 = percentiles(floor_t)
    return {"name": "api_search", "gems": n, "embedder": info.embedder, "retriever": info.params.retriever,
            "scoring": info.params.scoring, "questions": n_questions, "cold_first_s": round(cold_s, 2),
            "server_p50_ms": s50, "server_p95_ms": s95, "client_p50_ms": c50, "client_p95_ms": c95,
            "direct_p50_ms": d50, "direct_p95_ms": d95, "floor_p50_ms": f50, "floor_p95_ms": f95,
            "server_vs_floor_p50": s50 / f50, "server_vs_floor_p95": s95 / f95,
            "direct_vs_floor_p50": d50 / f50, "direct_vs_floor_p95": d95 / f95,
            "server_vs_direct_p95": s95 / d95,
            "client_vs_direct_p95": c95 / d95, "goal_server_p95_ms": GOAL_SERVER_P95_MS,
            "meets_goal": bool(s95 < GOAL_SERVER_P95_MS)}


def table(rows: list[tuple[str, str]], title: str) -> str:
    """A two-column text table (figure, value) under ``title``."""
    width = max(len(k) for k, _ in rows)
    lines = [title, "-" * len(title)] + [f"{k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)


def fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def search_table(res: dict) -> str:
    return table([
        ("gems", fmt(res["gems"])), ("embedder", res["embedder"]),
        ("retriever / scoring", f"{res['retriever']} / {res['scoring']}"), ("questions", fmt(res["questions"])),
        ("first request (cold cache), s", fmt(res["cold_first_s"])),
        ("server-side p50 / p95, ms", f"{res['server_p50_ms']:.2f} / {res['server_p95_ms']:.2f}  (goal p95 < "
                                      f"{GOAL_SERVER_P95_MS:g}: {'met' if res['meets_goal'] else 'MISSED'})"),
        ("client-side p50 / p95, ms", f"{res['client_p50_ms']:.2f} / {res['client_p95_ms']:.2f}"),
        ("in-process p50 / p95, ms", f"{res['direct_p50_ms']:.2f} / {res['direct_p95_ms']:.2f}"),
        ("floor (float32 matvec) p50 / p95, ms", f"{res['floor_p50_ms']:.2f} / {res['floor_p95_ms']:.2f}"),
        ("server / floor (p50, p95)", f"{res['server_vs_floor_p50']:.2f}x, {res['server_vs_floor_p95']:.2f}x"),
        ("in-process / floor (p50, p95)", f"{res['direct_vs_floor_p50']:.2f}x, {res['direct_vs_floor_p95']:.2f}x"),
        ("server / in-process (p95)", f"{res['server_vs_direct_p95']:.2f}x"),
        ("client / in-process (p95)", f"{res['client_vs_direct_p95']:.2f}x"),
    ], f"API search over {res['gems']:,} gems (POST /v1/lattices/{{name}}/search, k=10)")


LATTICE_KINDS: dict[str, tuple[str | None, str | None]] = {
    "similarity": (EMBEDDER, None),  # the seed's parameters, hashing-v1
    "hybrid": (None, "memory"),  # the memory preset: hashing-v2, retriever=hybrid, floor scoring
}
"""The suite's benchmarks (``--only``): (embedder, preset) of the lattice searched."""


def run_all(quick: bool = False, only: list[str] | None = None, log: Callable[[str], None] | None = print) -> list[dict]:
    """Both lattices (``only``: some of ``LATTICE_KINDS``), for ``python -m core bench --suite api_search``."""
    n, q = SIZES[quick]
    out = []
    for kind, (embedder, preset) in LATTICE_KINDS.items():
        if only and kind not in only:
            continue
        res = {**api_search(n, q, log, embedder=embedder, preset=preset), "kind": kind}
        if log:
            log(search_table(res))
        out.append(res)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.api_search", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10k gems, 100 questions (default 100k, 300)")
    ap.add_argument("--gems", type=int, help="lattice size (overrides --quick)")
    ap.add_argument("--questions", type=int, help="timed questions (overrides --quick)")
    ap.add_argument("--embedder", default=EMBEDDER, help=f"the lattice's embedder (default {EMBEDDER}, 1024 "
                                                          "dimensions; hashing-v1-384: MiniLM's 384)")
    ap.add_argument("--preset", default=None, help="the lattice's preset (memory: hashing-v2 and the hybrid "
                                                   "retriever, unless --embedder says otherwise)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    n, q = SIZES[args.quick]
    embedder = args.embedder if args.embedder != EMBEDDER or args.preset is None else None
    res = api_search(args.gems or n, args.questions or q, None if args.json else print, embedder=embedder,
                     preset=args.preset)
    print(json.dumps(res, indent=2) if args.json else search_table(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
