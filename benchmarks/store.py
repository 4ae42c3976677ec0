"""Store benchmarks (issue 3), measured as absolute figures on this machine.

Run with ``python -m core bench --suite store`` (``--quick``: 10k gems, naive 1k; ``--json``).
Each database gets a fresh, throwaway place: a temporary SQLite file, and on PostgreSQL
(``LATTICE_TEST_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
a schema ``lt_bench_<random>`` selected through ``options=-csearch_path=...`` and dropped
afterwards; PostgreSQL is skipped with a printed reason when it cannot be reached.

- ``import``: ``Store.import_path`` of a generated JSONL file (embedder ``hashing-v1``,
  ~30 words per gem from a fixed vocabulary, seeded), in gems/s, against a naive loop on a
  sample (per row: embed, ``session.add(GemRow(..., state=GemStateRow(...)))``, ``session.commit()``). Target: >= 20x.
- ``import_memory``: peak memory (the child process's peak RSS, ``ru_maxrss``) of importing
  1e6 short gems (~15 MiB of JSONL; ``--quick``: 1e5) in a fresh child process, against the
  same process's RSS before the import. Target: peak < 1 GB (the import runs in bounded batches).
  Not in the default run (minutes per database): ``python -m core bench --suite store --only import_memory``.
- ``load_save``: ``store.load`` of the imported lattice (target < 1 s), ``store.save`` of it
  after an in-memory evolve (target < 2 s), and ``store.advance`` (load + evolve + save in
  the store, for comparison).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from core.access import SYSTEM
from core.knowledge import get_embedder
from core.store import Store
from core.store.models import GemRow, GemStateRow, LatticeRow

POSTGRES_URL = os.environ.get("LATTICE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
EMBEDDER = "hashing-v1"
SIZES = {False: (100_000, 5_000), True: (10_000, 1_000)}  # quick -> (gems, naive sample)
DATABASES = ("sqlite", "postgresql")

_VOCAB = """
wave phase memory decay signal lattice crystal gem coherence field energy pattern clock
river stone light shadow garden window bridge archive letter music rhythm echo mirror
theory model measure method sample error bound proof limit order noise drift source
north winter summer harvest market city village harbor engine circuit voltage current
protein cell neuron synapse forest canopy soil root seed bloom storm cloud rain ocean
tide current salt glass paper ink story chapter author reader question answer reason
quiet rapid slow bright dark early late simple complex stable fragile ancient modern
learn build observe recall forget connect share repeat compare explain follow change
""".split()


def make_gems_file(path: Path, n: int, seed: int = 0) -> Path:
    """Write ``n`` gems as JSONL: ~30 words of a fixed vocabulary each, seeded state values."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        words = rng.choices(_VOCAB, k=rng.randint(20, 40))
        content = " ".join(words).capitalize() + "."
        lines.append(json.dumps({
            "id": f"g{i:06d}", "title": " ".join(words[:4]).title(), "content": content,
            "tags": rng.sample(_VOCAB[:24], 2), "source": "bench", "energy": rng.uniform(0.2, 3.0),
            "phase": rng.uniform(0.0, 6.283), "coherence": rng.uniform(0.0, 1.0), "uncertainty": rng.uniform(0.0, 0.5)}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Unavailable(Exception):
    """The database cannot be used here (the reason is the message)."""


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A URL to a fresh, empty database of ``kind``; removed afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    if kind != "postgresql":
        raise ValueError(f"unknown database {kind!r}; use {', '.join(DATABASES)}")
    admin = create_engine(POSTGRES_URL, pool_size=1, connect_args={"connect_timeout": 3})
    try:
        try:
            with admin.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any connection failure means "not here"
            raise Unavailable(f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}") from None
        schema = f"lt_bench_{uuid.uuid4().hex[:12]}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def _naive_import(store: Store, path: Path, name: str, limit: int) -> int:
    """The naive reference: one ORM object and one commit per row (embedding per row)."""
    store.create_lattice(name, SYSTEM, embedder=EMBEDDER)
    emb = get_embedder(EMBEDDER)
    with Session(store.engine) as session:
        lid = session.execute(select(LatticeRow.id).where(LatticeRow.name == name)).scalar_one()
        session.commit()
        n = 0
        with path.open(encoding="utf-8") as f:
            for seq, line in enumerate(f, start=1):
                if n >= limit:
                    break
                r = json.loads(line)
                vec = emb.embed([r["content"]])[0]
                session.add(GemRow(lattice_id=lid, gem_id=r["id"], seq=seq, title=r["title"], content=r["content"],
                                   tags=r["tags"], source=r["source"], embedding=vec.astype("<f4").tobytes(),
                                   state=GemStateRow(energy=r["energy"], phase=r["phase"], coherence=r["coherence"],
                                                     uncertainty=r["uncertainty"])))
                session.commit()
                n += 1
    return n


def bench_import(url: str, path: Path, n: int, naive_n: int, name: str = "bench") -> dict:
    """Import the ``n`` gems of ``path`` into lattice ``name``; the naive loop on ``naive_n`` of them."""
    with Store.open(url) as store:
        embedded_at: list[float] = []
        t0 = time.perf_counter()
        report = store.import_path(name, path, SYSTEM, embedder=EMBEDDER,
                                   progress=lambda done, total: embedded_at.append(time.perf_counter()))
        t_import = time.perf_counter() - t0
        assert report.imported == n, (report.imported, n)
        t_parse_embed = (embedded_at[-1] - t0) if embedded_at else float("nan")

        emb = get_embedder(EMBEDDER)
        sample = [json.loads(line)["content"] for _, line in zip(range(naive_n), path.open(encoding="utf-8"))]
        t0 = time.perf_counter()
        emb.embed(sample)
        t_embed = time.perf_counter() - t0

        t0 = time.perf_counter()
        done = _naive_import(store, path, f"{name}-naive", naive_n)
        t_naive = time.perf_counter() - t0
    rate, naive_rate = n / t_import, done / t_naive
    return {"name": "import", "gems": n, "seconds": t_import, "gems_per_s": rate,
            "parse_embed_s": t_parse_embed, "write_s": t_import - t_parse_embed,
            "embed_only_gems_per_s": naive_n / t_embed, "naive_gems": done, "naive_seconds": t_naive,
            "naive_gems_per_s": naive_rate, "ratio": rate / naive_rate, "target": ">= 20x naive"}


def bench_load_save(url: str, name: str = "bench") -> dict:
    """Load lattice ``name``, evolve it in memory, save it; then ``advance`` it in the store."""
    with Store.open(url) as store:
        t0 = time.perf_counter()
        loaded = store.load(name)
        t_load = time.perf_counter() - t0
        loaded.lattice.evolve(0.5)
        t0 = time.perf_counter()
        saved = store.save(loaded, SYSTEM)
        t_save = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.advance(name, 0.5, SYSTEM, expected_version=saved.version)
        t_advance = time.perf_counter() - t0
    return {"name": "load_save", "gems": len(loaded.lattice), "load_s": t_load, "save_s": t_save,
            "advance_s": t_advance, "target": "load < 1 s, save < 2 s"}


MEMORY_SIZES = {False: 1_000_000, True: 100_000}
_MEMORY_CHILD = """
import json, resource, sys
from core.access import SYSTEM
from core.store import Store
url, path = sys.argv[1], sys.argv[2]
with Store.open(url) as store:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = store.import_path("memory", path, SYSTEM, embedder="hashing-v1")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"imported": report.imported, "before_kib": before, "peak_kib": peak}))
"""


def make_short_gems_file(path: Path, n: int) -> Path:
    """``n`` short gems (a few words, no id), ~16 bytes of JSONL each, written as a stream."""
    words = _VOCAB
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write('{"content":"%s %s %d"}\n' % (words[i % len(words)], words[(i // 7) % len(words)], i % 1000))
    return path


def bench_import_memory(url: str, path: Path, n: int) -> dict:
    """Peak RSS of a child process importing the ``n`` gems of ``path`` into a fresh lattice."""
    root = Path(__file__).resolve().parent.parent
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, url, str(path)], capture_output=True, text=True,
                         cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, check=False)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"the import child failed: {out.stderr.strip().splitlines()[-1:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["imported"] == n, (res["imported"], n)
    peak_mb, before_mb = res["peak_kib"] / 1024, res["before_kib"] / 1024
    return {"name": "import_memory", "gems": n, "file_mib": path.stat().st_size / 2**20, "seconds": seconds,
            "peak_rss_mb": peak_mb, "rss_before_mb": before_mb, "import_mb": peak_mb - before_mb,
            "target": "peak < 1 GB"}


BENCHMARKS = ("import", "load_save", "import_memory")
DEFAULT_BENCHMARKS = ("import", "load_save")  # import_memory takes minutes: ``--only import_memory``


def _line(res: dict) -> str:
    figures = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in res.items() if k not in ("name", "database"))
    return f"{res['name']:10s} {res['database']:10s} {figures}"


def run_all(quick: bool = False, only: list[str] | None = None, log: Callable[[str], None] | None = print,
            databases: tuple[str, ...] = DATABASES, n: int | None = None, naive_n: int | None = None) -> list[dict]:
    """Run the store benchmarks on each database; ``n``/``naive_n`` override the sizes."""
    unknown = set(only or []) - set(BENCHMARKS)
    if unknown:
        raise ValueError(f"unknown store benchmark {sorted(unknown)[0]!r}; available: {', '.join(BENCHMARKS)}")
    size, naive_size = SIZES[bool(quick)]
    n, naive_n = n or size, min(naive_n or naive_size, n or size)
    results: list[dict] = []
    workdir = Path(tempfile.mkdtemp(prefix="lattice-bench-"))
    try:
        wanted = set(only or DEFAULT_BENCHMARKS)
        path = make_gems_file(workdir / "gems.jsonl", n) if wanted & {"import", "load_save"} else None
        short = (make_short_gems_file(workdir / "short.jsonl", MEMORY_SIZES[bool(quick)])
                 if "import_memory" in wanted else None)
        for kind in databases:
            try:
                res = []
                if path is not None:
                    with database(kind, workdir) as url:
                        # load_save needs the imported lattice: the import always runs
                        res.append({"database": kind, **bench_import(url, path, n, naive_n)})
                        if "load_save" in wanted:
                            res.append({"database": kind, **bench_load_save(url)})
                if short is not None:
                    if kind == "sqlite":
                        (workdir / "bench.db").unlink(missing_ok=True)
                    with database(kind, workdir) as url:
                        res.append({"database": kind, **bench_import_memory(url, short, MEMORY_SIZES[bool(quick)])})
            except Unavailable as exc:
                if log:
                    log(f"{kind}: skipped ({exc})")
                continue
            for r in res:
                if only and r["name"] not in only:
                    continue
                results.append(r)
                if log:
                    log(_line(r))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None, help="gems to import (default 100k, quick 10k)")
    ap.add_argument("--naive", type=int, default=None, help="rows of the naive loop (default 5k, quick 1k)")
    ap.add_argument("--db", action="append", choices=DATABASES, help="database(s) to run (default: both)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    out = run_all(a.quick, log=None if a.json else print, databases=tuple(a.db or DATABASES), n=a.n, naive_n=a.naive)
    if a.json:
        print(json.dumps(out, indent=2))
