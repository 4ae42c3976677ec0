"""Import gems from files (JSONL, CSV, Markdown/text folders) and export a lattice to a file."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from sqlalchemy import select

from core.access import Actor, Permission, require
from core.errors import LatticeError
from core.engine.params import LatticeParams
from core.knowledge.base import embed_in_batches
from core.knowledge.registry import DEFAULT_EMBEDDER, get_embedder
from core.store import gem_files, gem_records
from core.store.errors import ImportFailed, ImportIssue
from core.store.kernel import StoreKernel
from core.store.records import ImportReport
from core.store.tables import GEM_STATES, GEMS, GEMS_WITH_STATE, STATE


IMPORT_BATCH_ROWS = 500  # gems parsed, embedded and written at a time (at most kernel.CHUNK: one IN list)
IMPORT_BATCH_BYTES = 8 * 2**20  # ... or fewer, once their contents reach this many characters
MAX_IMPORT_ROWS_ENV = "LATTICE_MAX_IMPORT_ROWS"
DEFAULT_MAX_IMPORT_ROWS = 2_000_000


def max_import_rows() -> int:
    """The most gems one import may write (``LATTICE_MAX_IMPORT_ROWS``, default 2,000,000)."""
    raw = os.environ.get(MAX_IMPORT_ROWS_ENV, "").strip()
    try:
        value = int(raw) if raw else DEFAULT_MAX_IMPORT_ROWS
    except ValueError:
        raise LatticeError(f"{MAX_IMPORT_ROWS_ENV} must be a whole number, got {raw!r}") from None
    return max(1, value)


def _batches(records: Iterable[gem_records.GemRecord]) -> Iterator[list[gem_records.GemRecord]]:
    batch: list[gem_records.GemRecord] = []
    size = 0
    for r in records:
        batch.append(r)
        size += len(r.content)
        if len(batch) >= IMPORT_BATCH_ROWS or size >= IMPORT_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _id_hash(gid: str) -> int:
    return int.from_bytes(hashlib.blake2b(gid.encode("utf-8"), digest_size=8).digest(), "little")


class TransferMixin(StoreKernel):
    """Files in and out (uses the lattice, gem and state parts of the Store)."""

    def import_path(self, name: str, path: str | Path, actor: Actor, *, split_headings: bool = False,
                    skip_bad: bool = False, edges: str | Path | None = None, embedder: str = DEFAULT_EMBEDDER,
                    params: LatticeParams | dict | None = None,
                    progress: Callable[[int, int], None] | None = None) -> ImportReport:
        """Import gems from a JSONL/CSV file or a folder of Markdown/text files into lattice ``name``.

        Creates the lattice (with ``embedder``, ``params``) if it does not exist. All or
        nothing unless ``skip_bad``: any bad row fails with ImportFailed naming file, line and
        field, and nothing is written. Entanglements come from ``edges`` or, if present, the
        side file ``<stem>.entanglements.csv``. ``progress(done, total)`` follows the embedding.

        Memory does not grow with the file: a first pass validates the rows in batches
        (keeping 8 bytes per gem id to find duplicates), a second parses, embeds and writes
        them a batch at a time, all inside one transaction (so still all or nothing).
        """
        require(actor, Permission.EDIT, "import gems")
        gem_files.check_path(path)
        p = Path(path)
        edge_file = Path(edges) if edges else (gem_files.edges_path_for(p) if p.is_file() else None)
        edge_recs: list[gem_records.EdgeRecord] = []
        issues: list[ImportIssue] = []
        if edge_file is not None and (edges or edge_file.exists()):
            edge_recs, issues = gem_files.parse_edges(edge_file)
        lattice_exists = self.exists(name)
        emb = self._embedder_for(self.info(name)) if lattice_exists else get_embedder(embedder)
        skip, new_ids, good = self._check_rows(name, path, split_headings, lattice_exists, issues)
        known_existing: set[str] = set()
        if lattice_exists and edge_recs:
            with self._read() as conn:
                known = {e.source for e in edge_recs} | {e.target for e in edge_recs}
                known_existing = self._existing_ids(conn, self._lattice_row(conn, name)["id"], sorted(known))

        def is_new(gid: str) -> bool:
            k = int(np.searchsorted(new_ids, np.uint64(_id_hash(gid))))
            return k < len(new_ids) and int(new_ids[k]) == _id_hash(gid)

        good_edges = []
        for e in edge_recs:
            bad = next((f for f, g in (("source", e.source), ("target", e.target))
                        if g not in known_existing and not is_new(g)), None)
            if bad:
                issues.append(ImportIssue(e.file, e.line, bad, f"unknown gem id {getattr(e, bad)!r}"))
            else:
                good_edges.append(e)
        issues.sort(key=lambda i: (i.file, i.line))
        if issues and not skip_bad:
            raise ImportFailed(issues)
        if not good:
            raise LatticeError(f"{path}: no gems to import" + (f" ({len(issues)} bad rows skipped)" if issues else ""))
        create = None if lattice_exists else self._lattice_values(params, embedder, "manual")
        ids: list[str] = []
        with self._write(name, actor, Permission.EDIT, "import gems", create=create) as tx:
            def write(batch: list[gem_records.GemRecord], edges: list[gem_records.EdgeRecord]) -> None:
                done = len(ids)
                step = None if progress is None else (lambda d, _t: progress(done + d, good))
                vectors = embed_in_batches(emb, [r.content for r in batch], progress=step)
                ids.extend(self._insert_gems(tx, name, actor, batch, vectors, "import", edges))

            again: list[ImportIssue] = []
            rows = (r for r in gem_files.iter_records(path, again, split_headings=split_headings)
                    if (r.file, r.line) not in skip)
            pending = None
            for batch in _batches(rows):  # the last batch carries the entanglements
                if pending is not None:
                    write(pending, [])
                pending = batch
            if pending is None or len(ids) + len(pending) != good or (again and not skip_bad):
                raise LatticeError(f"{path} changed while it was being imported; nothing was written - import again")
            write(pending, good_edges)
            version = tx.version
        self._analyze_after_bulk(len(ids))
        return ImportReport(name, str(path), len(ids), ids, len(good_edges), issues, version)

    def _check_rows(self, name: str, path: str | Path, split_headings: bool, lattice_exists: bool,
                    issues: list[ImportIssue]) -> tuple[set[tuple[str, int]], np.ndarray, int]:
        """The validation pass of an import, streamed in batches: adds every bad row to ``issues``.

        Returns the (file, line) of the valid rows to skip all the same (an id that the lattice
        already has or that an earlier row took), the sorted hashes of the new ids, and the
        number of gems to write.
        """
        skip: set[tuple[str, int]] = set()
        hashes: list[np.ndarray] = []
        good, limit = 0, max_import_rows()
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"] if lattice_exists else None
            for batch in _batches(gem_files.iter_records(path, issues, split_headings=split_headings)):
                existing = self._existing_ids(conn, lid, [r.id for r in batch if r.id]) if lid is not None else set()
                for r in batch:
                    if r.id in existing:
                        issues.append(ImportIssue(r.file, r.line, "id", f"gem id {r.id!r} already exists in lattice {name!r}"))
                        skip.add((r.file, r.line))
                kept = [r for r in batch if r.id not in existing]
                good += len(kept)
                if good > limit:
                    raise LatticeError(f"{path}: more than {limit} gems in one import (the limit, "
                                       f"{MAX_IMPORT_ROWS_ENV}); split the file - nothing was written")
                hashes.append(np.fromiter((_id_hash(r.id) for r in kept if r.id), dtype=np.uint64))
        all_ids = np.sort(np.concatenate(hashes)) if hashes else np.zeros(0, dtype=np.uint64)
        repeated = all_ids[1:][all_ids[1:] == all_ids[:-1]]
        if len(repeated):  # a rare case: find the rows by a second pass
            repeated_set = set(repeated.tolist())
            first: dict[str, int] = {}
            for r in gem_files.iter_records(path, [], split_headings=split_headings):
                if not r.id or (r.file, r.line) in skip or _id_hash(r.id) not in repeated_set:
                    continue
                if r.id in first:
                    issues.append(ImportIssue(r.file, r.line, "id", f"duplicate id {r.id!r} (first at line {first[r.id]})"))
                    skip.add((r.file, r.line))
                    good -= 1
                else:
                    first[r.id] = r.line
        return skip, np.unique(all_ids), good

    def export(self, name: str, out: str | Path, *, include_archived: bool = False) -> dict[str, Any]:
        """Write the lattice's gems to ``out`` (.jsonl or .csv) and its entanglements to
        ``<stem>.entanglements.csv``: everything needed to re-import the same lattice."""
        self._catch_up(name)
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"]
            q = (select(GEMS.c.gem_id.label("id"), GEMS.c.title, GEMS.c.content, GEMS.c.tags, GEMS.c.source,
                        *[GEM_STATES.c[s] for s in STATE]).select_from(GEMS_WITH_STATE)
                 .where(GEMS.c.lattice_id == lid).order_by(GEMS.c.seq))
            if not include_archived:
                q = q.where(GEMS.c.archived.is_(False))
            rows = [dict(r) for r in conn.execute(q).mappings()]
        for r in rows:
            r["content"] = self.cipher.decrypt(r["content"])
            r["title"] = self.cipher.decrypt(r["title"])  # titles are encrypted at rest too (core.store.crypto)
        keep = {r["id"] for r in rows}
        edges = [(a, b, w) for a, b, w in self.entanglements(name).itertuples(index=False) if a in keep and b in keep]
        n = gem_files.write_gems(out, rows)
        edge_path = gem_files.edges_path_for(out)
        if edges:
            gem_files.write_edges(edge_path, edges)
        elif edge_path.exists():
            edge_path.unlink()  # a stale side file would re-import old edges
        return {"lattice": name, "path": str(out), "gems": n, "entanglements": len(edges),
                "entanglements_path": str(edge_path) if edges else None}
