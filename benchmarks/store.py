"""Store benchmarks (issue 3), measured as absolute figures on this machine.

Long file: one module per suite (``python -m core bench --suite store`` loads it), whose
benchmarks share the throwaway-database and data-building helpers.

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
- ``pg_load_vs_copy`` (issue 12, 5b): ``Store.load`` of a 1e6-gem lattice on PostgreSQL
  (``--quick``: 1e5; built by a server-side ``INSERT ... SELECT generate_series``, not an
  import) against the floor: a binary ``COPY (SELECT pk and state) TO STDOUT`` read with
  psycopg's ``cursor.copy`` and decoded by one numpy structured dtype. Target: ratio <= 2.
  Also ``fetch_s`` (the same columns as one binary fetch) and ``sqlite_load_s`` (the same
  lattice on SQLite). Not in the default run (the build takes minutes at 1e6):
  ``python -m core bench --suite store --only pg_load_vs_copy``.
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from sqlalchemy import bindparam, create_engine, select, text
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


LOAD_SIZES = {False: 1_000_000, True: 100_000}  # pg_load_vs_copy: gems (quick -> 100k)
_SERIES = {"postgresql": "SELECT i FROM generate_series(1, :n) AS i",
           "sqlite": "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < :n) SELECT i FROM c"}
_RANDOM = {"postgresql": "random()", "sqlite": "((random() / 18446744073709551616.0) + 0.5)"}  # uniform [0, 1)


def build_synthetic_lattice(store: Store, name: str, n: int) -> None:
    """Lattice ``name`` with ``n`` gems written straight by SQL (one ``INSERT ... SELECT`` per table).

    Ids ``g1000000001...``, every 50th gem archived (so the load filters), random state in
    range, ``last_observed`` NULL for every third gem; a one-byte placeholder embedding
    (the load does not read it). Minutes faster than an import at 1e6, and the load
    sees the same rows an import would write.
    """
    kind = store.engine.dialect.name
    store.create_lattice(name, SYSTEM, embedder=EMBEDDER)
    rnd = _RANDOM[kind]
    with store.engine.begin() as conn:
        lid = conn.execute(select(LatticeRow.id).where(LatticeRow.name == name)).scalar_one()
        conn.execute(text(
            "INSERT INTO gems (lattice_id, gem_id, seq, title, content, tags, source, embedding, created_at, "
            "updated_at, archived, version) "
            f"SELECT :lid, 'g' || CAST(1000000000 + i AS TEXT), i, 'title', 'content', '[]', 'bench', "
            f":emb, :now, :now, i % 50 = 0, 1 FROM ({_SERIES[kind]}) AS s")
            .bindparams(bindparam("now", type_=GemRow.__table__.c.created_at.type)),  # the column's own format
            {"lid": lid, "n": int(n), "emb": b"\x00", "now": datetime.now(timezone.utc)})
        conn.execute(text(
            "INSERT INTO gem_states (gem_pk, energy, phase, coherence, uncertainty, last_observed, version) "
            f"SELECT pk, 0.2 + 2.8 * {rnd}, 6.283 * {rnd}, {rnd}, 0.5 * {rnd}, "
            f"CASE WHEN seq % 3 = 0 THEN NULL ELSE {rnd} END, 1 FROM gems WHERE lattice_id = :lid"), {"lid": lid})
    with store.engine.connect() as conn:  # fresh statistics, as _analyze_after_bulk gives an import
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


_STATE_SQL = ("SELECT CAST(g.pk AS BIGINT), s.energy, s.phase, s.coherence, s.uncertainty FROM gems g "
              "JOIN gem_states s ON s.gem_pk = g.pk WHERE g.lattice_id = {lid} AND NOT g.archived ORDER BY g.seq")


def copy_state_floor(store: Store, lid: int) -> list[np.ndarray]:
    """The floor of a load: pk and state of the active gems by binary COPY, decoded by one numpy
    structured dtype (per row: int16 field count, then per field int32 length and the big-endian
    value; no NULLs among these NOT NULL columns). Arrays: pk int64, then the four state float64."""
    layout = np.dtype([("n", ">i2"), ("len_pk", ">i4"), ("pk", ">i8")]
                      + [f for j in range(4) for f in ((f"len_{j}", ">i4"), (f"v_{j}", ">f8"))])
    with store.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            with conn.connection.driver_connection.cursor() as cur:
                with cur.copy(f"COPY ({_STATE_SQL.format(lid=int(lid))}) TO STDOUT (FORMAT BINARY)") as copy:
                    data = b"".join(copy)
    start = 19 + int.from_bytes(data[15:19], "big")  # signature, flags, header extension
    rows = np.frombuffer(data, dtype=layout, offset=start, count=(len(data) - 2 - start) // layout.itemsize)
    assert (rows["n"] == 5).all() and (rows["len_pk"] == 8).all(), "unexpected COPY layout"
    return [rows["pk"].astype(np.int64)] + [rows[f"v_{j}"].astype(np.float64) for j in range(4)]


def _fetch_state(store: Store, lid: int) -> int:
    """The same columns as one binary fetch (psycopg's C row parsing), for comparison."""
    with store.engine.connect() as conn:
        with conn.begin():
            with conn.connection.driver_connection.cursor(binary=True) as cur:
                cur.execute(_STATE_SQL.format(lid=int(lid)))
                return len(cur.fetchall())


def _best(f: Callable[[], object], k: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(k):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return min(times), out


def pg_load_vs_copy(n: int, url: str | None = None, sqlite: bool = True, name: str = "load_vs_copy") -> dict:
    """``Store.load`` of an ``n``-gem lattice on PostgreSQL against the binary-COPY floor (best of 3 each).

    ``url``: a PostgreSQL database to use (lattice ``name`` is built there unless it already
    exists); None: a fresh schema (:func:`database`), dropped afterwards. ``sqlite``: also time
    the load of the same lattice built in a temporary SQLite file (``sqlite_load_s``).
    Returns n, copy_s, load_s, ratio (load_s / copy_s), fetch_s and sqlite_load_s (seconds).
    """
    with tempfile.TemporaryDirectory(prefix="lattice-bench-") as tmp:
        with (database("postgresql", Path(tmp)) if url is None else _given(url)) as pg:
            with Store.open(pg) as store:
                if not store.exists(name):
                    build_synthetic_lattice(store, name, n)
                lid = _lattice_id(store, name)
                load_s, loaded = _best(lambda: store.load(name))
                copy_s, floor = _best(lambda: copy_state_floor(store, lid))
                fetch_s, _ = _best(lambda: _fetch_state(store, lid))
                lat = loaded.lattice  # type: ignore[attr-defined]
                read = [loaded._pks, lat.energy, lat.phase, lat.coherence, lat.uncertainty]  # type: ignore[attr-defined]
                assert all(a.tobytes() == b.tobytes() for a, b in zip(floor, read)), \
                    "the load and the COPY floor read different values"
        out = {"name": "pg_load_vs_copy", "n": len(lat), "copy_s": copy_s, "load_s": load_s,
               "ratio": load_s / copy_s, "fetch_s": fetch_s}
        if sqlite:
            with Store.open(f"sqlite:///{Path(tmp) / 'load.db'}") as store:
                build_synthetic_lattice(store, name, n)
                out["sqlite_load_s"] = _best(lambda: store.load(name))[0]
    out["target"] = "ratio <= 2"
    return out


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


def _lattice_id(store: Store, name: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(LatticeRow.id).where(LatticeRow.name == name)).scalar_one())


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


BENCHMARKS = ("import", "load_save", "import_memory", "pg_load_vs_copy")
# import_memory and pg_load_vs_copy take minutes: ``--only import_memory`` / ``--only pg_load_vs_copy``
DEFAULT_BENCHMARKS = ("import", "load_save")


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
    load_n = n or LOAD_SIZES[bool(quick)]  # pg_load_vs_copy's own default size
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
                if "pg_load_vs_copy" in wanted and kind == "postgresql":
                    res.append({"database": kind, **pg_load_vs_copy(load_n, sqlite="sqlite" in databases)})
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
