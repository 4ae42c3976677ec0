"""Import gems from files (JSONL, CSV, Markdown/text folders) and export a lattice to a file."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

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
        """
        require(actor, Permission.EDIT, "import gems")
        records, issues = gem_files.parse_path(path, split_headings=split_headings)
        p = Path(path)
        edge_file = Path(edges) if edges else (gem_files.edges_path_for(p) if p.is_file() else None)
        edge_recs: list[gem_records.EdgeRecord] = []
        if edge_file is not None and (edges or edge_file.exists()):
            edge_recs, edge_issues = gem_files.parse_edges(edge_file)
            issues += edge_issues
        existing: set[str] = set()
        lattice_exists = self.exists(name)
        if lattice_exists:
            info = self.info(name)
            emb = self._embedder_for(info)
            with self._read() as conn:
                existing = self._existing_ids(conn, self._lattice_row(conn, name)["id"], [r.id for r in records if r.id])
                known = {e.source for e in edge_recs} | {e.target for e in edge_recs}
                known_existing = self._existing_ids(conn, self._lattice_row(conn, name)["id"], sorted(known))
        else:
            emb = get_embedder(embedder)
            known_existing = set()
        good = []
        for r in records:
            if r.id in existing:
                issues.append(ImportIssue(r.file, r.line, "id", f"gem id {r.id!r} already exists in lattice {name!r}"))
            else:
                good.append(r)
        new_ids = {r.id for r in good if r.id}
        good_edges = []
        for e in edge_recs:
            bad = next((f for f, g in (("source", e.source), ("target", e.target))
                        if g not in new_ids and g not in known_existing), None)
            if bad:
                issues.append(ImportIssue(e.file, e.line, bad, f"unknown gem id {getattr(e, bad)!r}"))
            else:
                good_edges.append(e)
        if issues and not skip_bad:
            raise ImportFailed(sorted(issues, key=lambda i: (i.file, i.line)))
        if not good:
            raise LatticeError(f"{path}: no gems to import" + (f" ({len(issues)} bad rows skipped)" if issues else ""))
        # Embed before taking the write lock: a slow embedder must not block other writers.
        vectors = embed_in_batches(emb, [r.content for r in good], progress=progress)
        create = None if lattice_exists else self._lattice_values(params, embedder, "manual")
        with self._write(name, actor, Permission.EDIT, "import gems", create=create) as tx:
            ids = self._insert_gems(tx, name, actor, good, vectors, "import", good_edges)
            version = tx.version
        self._analyze_after_bulk(len(ids))
        return ImportReport(name, str(path), len(ids), ids, len(good_edges), issues, version)

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
