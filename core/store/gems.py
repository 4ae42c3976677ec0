"""Gems: create, read, edit, archive and delete them; list, filter and page them; their texts,
embeddings and times.

Long file: the gem CRUD, the listing and the bulk reads (texts, embeddings, times) share the
encryption at rest and the chunked id look-ups.

Content and titles are encrypted at rest when the store has keys (see
core.store.crypto): written through :meth:`GemsMixin._stored_title` / ``cipher.encrypt``,
read back through :meth:`GemsMixin._gem_dict` / :meth:`GemsMixin.gem_texts`.
"""
from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Connection, String, and_, bindparam, cast, delete, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError

from core.access import Actor, Permission, require
from core.engine.params import STATE_DEFAULTS, LatticeParams
from core.errors import LatticeError, ValidationError
from core.knowledge.base import Embedder
from core.knowledge.registry import get_embedder
from core.store import bulk, gem_records, present, txlog
from core.store.errors import ConflictError, NotFoundError
from core.store.crypto import MAX_ENCRYPTED_TITLE_BYTES
from core.store.kernel import CHUNK, StoreKernel, Tx, chunks, emb_bytes
from core.store.models import utcnow
from core.store.tables import (ENTANGLEMENTS, GEM_COLUMNS, GEM_FIELDS, GEM_STATES, GEM_TIME, GEMS, GEMS_WITH_STATE,
                               STATE)

EDITABLE = ("title", "content", "tags", "source") + STATE


class GemsMixin(StoreKernel):
    """The gems of a lattice (uses ``info`` of :class:`LatticesMixin`, ``_catch_up_tx`` and ``_load_state`` of
    :class:`StateMixin`)."""

    # ---------------------------------------------------------- inserting
    def _embedder_for(self, row_or_info: Any) -> Embedder:
        name = row_or_info["embedder"] if isinstance(row_or_info, dict) else row_or_info.embedder
        dim = row_or_info["dim"] if isinstance(row_or_info, dict) else row_or_info.dim
        emb = get_embedder(name)
        if emb.dim != dim:
            raise LatticeError(f"embedder {name!r} now has dimension {emb.dim}, the lattice was built with {dim}; "
                               "mixing embeddings is an error")
        return emb

    def _existing_ids(self, conn: Connection, lid: int, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the lattice already has."""
        if len(ids) <= CHUNK:
            return set(conn.execute(select(GEMS.c.gem_id).where(GEMS.c.lattice_id == lid, GEMS.c.gem_id.in_(list(ids))))
                       .scalars()) if ids else set()
        # many ids (an import): one pass over the lattice's ids beats hundreds of IN lists
        stored = bulk.select_columns(conn, f"SELECT gem_id FROM {GEMS.name} WHERE lattice_id = {int(lid)}", [object])[0]
        return set(ids).intersection(stored.tolist())

    def _insert_gems(self, tx: Tx, name: str, actor: Actor, records: list[gem_records.GemRecord], vectors: np.ndarray,
                     kind: str, edges: Sequence[gem_records.EdgeRecord] = ()) -> list[str]:
        dup = self._existing_ids(tx.conn, tx.lid, [r.id for r in records if r.id])
        if dup:
            raise ConflictError(f"gem id {sorted(dup)[0]!r} already exists in lattice {name!r}; nothing was written")
        for r in records:
            if r.id is None:
                r.id = f"g-{uuid.uuid4().hex[:12]}"
        start = (tx.conn.execute(select(func.max(GEMS.c.seq)).where(GEMS.c.lattice_id == tx.lid)).scalar() or 0) + 1
        n, now = len(records), utcnow()
        gems = {"lattice_id": [tx.lid] * n, "gem_id": [r.id for r in records], "seq": list(range(start, start + n)),
                "title": [self._stored_title(r.title, r.content, r.id) for r in records],
                "content": [self.cipher.encrypt(r.content) for r in records],
                "tags": [r.tags for r in records], "source": [r.source for r in records],
                "embedding": [emb_bytes(v) for v in vectors],
                # a timestamped row keeps its own instant and lattice time; others are created now
                "created_at": [now if r.created_at is None else r.created_at for r in records],
                "updated_at": [now] * n, "archived": [False] * n, "version": [1] * n,
                **{s: np.array([getattr(r, s) for r in records], dtype=np.float64) for s in STATE},
                "last_observed": [None] * n, "state_version": [1] * n,
                "created_t": [float(tx.t) if r.created_t is None else float(r.created_t) for r in records]}
        self._insert_gem_rows(tx.conn, tx.lid, gems, "import.batch", titles_stored=True)
        edge_rows = []
        if edges:
            ids = {e.source for e in edges} | {e.target for e in edges}
            pk_of: dict[str, int] = {}
            for chunk in chunks(sorted(ids)):
                pk_of.update(dict(tx.conn.execute(select(GEMS.c.gem_id, GEMS.c.pk).where(
                    GEMS.c.lattice_id == tx.lid, GEMS.c.gem_id.in_(chunk))).all()))
            best: dict[tuple[int, int], tuple[float, str, str]] = {}
            for e in edges:
                a, b = pk_of[e.source], pk_of[e.target]
                best[(min(a, b), max(a, b))] = (e.weight, e.source, e.target)
            tx.conn.execute(delete(ENTANGLEMENTS).where(ENTANGLEMENTS.c.gem_a == bindparam("a"),
                                                        ENTANGLEMENTS.c.gem_b == bindparam("b")),
                            [{"a": a, "b": b} for a, b in best])
            tx.conn.execute(insert(ENTANGLEMENTS), [{"lattice_id": tx.lid, "gem_a": a, "gem_b": b, "weight": w}
                                                    for (a, b), (w, _, _) in best.items()])
            edge_rows = [[s, d, w] for (w, s, d) in best.values()]
        txlog.append(tx.conn, tx.lid, name, kind, actor, tx.t, tx.version, gems["gem_id"], after={
            "gems": {"id": gems["gem_id"], "seq": np.array(gems["seq"], dtype=np.int64), **{s: gems[s] for s in STATE}},
            "edges": edge_rows})
        return [r.id for r in records]

    def _stored_title(self, title: str, content: str, gem_id: Any = None, content_is_token: bool = False) -> str:
        """A (plain) title as the gems.title column stores it: encrypted when the store has
        keys. The token must fit the column: a title derived from the content (its first
        line) is shortened until it does; a longer explicit title is refused."""
        if not self.cipher.enabled:
            return title
        if len(title.encode("utf-8")) > MAX_ENCRYPTED_TITLE_BYTES:
            if content_is_token:
                content = self.cipher.decrypt(content) or ""
            first = next((line for line in content.splitlines() if line.strip()), "").strip().lstrip("#").strip()
            if not first.startswith(title):
                raise ValidationError("title", f"{len(title.encode('utf-8'))} bytes is too long for an encrypted title "
                                      f"(gem {gem_id!r}): with encryption at rest a title is at most "
                                      f"{MAX_ENCRYPTED_TITLE_BYTES} bytes of UTF-8; shorten it")
            while len(title.encode("utf-8")) > MAX_ENCRYPTED_TITLE_BYTES:
                title = title[:-1]
        return self.cipher.encrypt(title)  # <= TITLE_COLUMN_CHARS characters (MAX_ENCRYPTED_TITLE_BYTES)

    def _insert_gem_rows(self, conn: Connection, lid: int, gems: dict[str, Sequence[Any]], checkpoint: str,
                         titles_stored: bool = False) -> list[int]:
        """Insert gems of lattice ``lid`` in bulk from columns (every gems column but ``pk``,
        the state columns and ``state_version``; optionally the gem-time columns ``created_t``,
        ``observed_at``, ``observations``, default NULL, NULL, 0): content rows first, then
        their state rows, linked through ``seq``. Returns the new rows' primary keys in order.

        ``titles_stored``: the titles are already as the column stores them; otherwise
        (a restore) each is plain text or a token under any configured key, and is
        re-encrypted under the newest key when the store has keys."""
        if not len(gems["seq"]):
            return []
        if not titles_stored and self.cipher.enabled:
            gems = {**gems, "title": [t if self.cipher.is_current(t) else
                                      self._stored_title(self.cipher.decrypt(t) or "", c, g, content_is_token=True)
                                      for t, c, g in zip(gems["title"], gems["content"], gems["gem_id"])]}
        content = [c.name for c in GEMS.c if c.name != "pk"]
        bulk.insert_rows(conn, GEMS, content, zip(*(gems[k] for k in content)), checkpoint)
        first = min(gems["seq"])
        pk_of = dict(conn.execute(select(GEMS.c.seq, GEMS.c.pk)
                                  .where(GEMS.c.lattice_id == lid, GEMS.c.seq >= first)).all())
        pks = [pk_of[q] for q in gems["seq"]]
        n = len(pks)
        state = [*(np.asarray(gems[s], dtype=np.float64).tolist() for s in STATE), gems["last_observed"],
                 gems["state_version"], gems.get("created_t", [None] * n), gems.get("observed_at", [None] * n),
                 gems.get("observations", [0] * n)]
        bulk.insert_rows(conn, GEM_STATES, ["gem_pk", *STATE, "last_observed", "version", *GEM_TIME],
                         zip(pks, *state), checkpoint)
        return pks

    def _analyze_after_bulk(self, rows: int) -> None:
        """Refresh PostgreSQL's planner statistics after a bulk write (as after any bulk load):
        with stale ones the next load of a fresh 100k-gem lattice took a nested-loop plan."""
        if rows < 10_000 or self.engine.dialect.name != "postgresql":
            return
        try:
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    f"ANALYZE {GEMS.name}, {GEM_STATES.name}")
        except DBAPIError:
            pass  # statistics are an optimisation; autovacuum refreshes them later anyway

    def add_gem(self, name: str, actor: Actor, content: str, *, id: str | None = None, title: str = "",
                tags: Sequence[str] | None = None, source: str = "", energy: float = STATE_DEFAULTS["energy"],
                phase: float = STATE_DEFAULTS["phase"], coherence: float = STATE_DEFAULTS["coherence"],
                uncertainty: float = STATE_DEFAULTS["uncertainty"]) -> str:
        """Create a gem (embedded with the lattice's embedder); returns its id."""
        require(actor, Permission.EDIT, "add a gem")
        rec = gem_records.record_or_error({"id": id, "title": title, "content": content, "tags": list(tags or []),
                                           "source": source, "energy": energy, "phase": phase,
                                           "coherence": coherence, "uncertainty": uncertainty})
        emb = self._embedder_for(self.info(name))
        vec = emb.embed([rec.content])
        with self._write(name, actor, Permission.EDIT, "add a gem") as tx:
            self._catch_up_tx(tx, name)  # type: ignore[attr-defined]  (StateMixin) a wall lattice's new gem starts now
            return self._insert_gems(tx, name, actor, [rec], vec, "create")[0]

    # ------------------------------------------------- reading and editing
    def _gem_dict(self, r: Any) -> dict[str, Any]:
        d = {k: r[k] for k in GEM_FIELDS}
        d["id"] = d.pop("gem_id")
        d["content"] = self.cipher.decrypt(d["content"])
        d["title"] = self.cipher.decrypt(d["title"])
        return d

    def get_gem(self, name: str, gem_id: str, *, now: float | None = None) -> dict[str, Any]:
        """One gem's fields and state (no embedding), as of ``now`` (UTC epoch seconds, default
        the current time), read only: a wall-clock lattice's state is computed to now in memory
        (what its next write's catch-up stores), ``state_version`` is the stored one."""
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            r = conn.execute(select(GEMS.c.pk, *[GEM_COLUMNS[k] for k in GEM_FIELDS]).select_from(GEMS_WITH_STATE)
                             .where(GEMS.c.lattice_id == row["id"], GEMS.c.gem_id == gem_id)).mappings().first()
            if r is None:
                raise NotFoundError(f"no gem {gem_id!r} in lattice {name!r}")
            return self._gem_dicts_now(conn, row, [r], now)[0]

    def _gem_dicts_now(self, conn: Connection, row: dict[str, Any], rows: Sequence[Any],
                       now: float | None) -> list[dict[str, Any]]:
        """Gem rows (GEM_FIELDS and ``pk``) as dicts, their state as of ``now`` (core.store.present)."""
        dicts = [self._gem_dict(r) for r in rows]
        if row["clock"] != "wall" or not dicts:
            return dicts
        values = present.state_now(conn, row, [r["pk"] for r in rows], [d["id"] for d in dicts],
                                   {s: [d[s] for d in dicts] for s in STATE}, [bool(d["archived"]) for d in dicts],
                                   now, self._load_state)  # type: ignore[attr-defined]  (StateMixin)
        for k, d in enumerate(dicts):
            d.update({s: float(values[s][k]) for s in STATE})
        return dicts

    def _gem_for_update(self, tx: Tx, name: str, gem_id: str, expected_version: int | None) -> dict[str, Any]:
        r = tx.conn.execute(select(*GEM_COLUMNS.values()).select_from(GEMS_WITH_STATE)
                            .where(GEMS.c.lattice_id == tx.lid, GEMS.c.gem_id == gem_id)).mappings().first()
        if r is None:
            raise NotFoundError(f"no gem {gem_id!r} in lattice {name!r}")
        if expected_version is not None and r["version"] != int(expected_version):
            raise ConflictError(f"gem {gem_id!r} changed since you read it (your version {expected_version}, now "
                                f"{r['version']}); reload it and apply your change again - nothing was written")
        return dict(r)

    def update_gem(self, name: str, gem_id: str, actor: Actor, *, expected_version: int | None = None,
                   expected_state_version: int | None = None, **changes: Any) -> dict[str, Any]:
        """Edit a gem's fields (title, content, tags, source, energy, phase, coherence, uncertainty).

        ``expected_version``: the content row version (``version``) you read;
        ``expected_state_version``: the ``state_version`` you read. ConflictError (nothing
        written) if the one given changed. Evolutions move only the state version, so a
        title edit does not conflict with the clock. Changing content re-embeds it.
        A field given as None is *not given* (left unchanged), for every field alike: what
        a form with untouched fields sends. (No editable field has None as a meaningful
        value: an empty title is ``""``, no tags is ``[]``; the state values are numbers.)
        Returns the updated gem.
        """
        require(actor, Permission.EDIT, "edit a gem")
        unknown = sorted(set(changes) - set(EDITABLE))
        if unknown:
            raise ValidationError(unknown[0], f"not an editable gem field; editable: {', '.join(EDITABLE)}")
        changes = {k: v for k, v in changes.items() if v is not None}
        current = self.get_gem(name, gem_id)
        if not changes:
            return current  # nothing to change: nothing written, no version bump
        merged = {k: current[k] for k in EDITABLE}
        merged.update(changes)
        rec = gem_records.record_or_error({**merged, "id": gem_id})
        values = {k: getattr(rec, k) for k in changes}
        if "content" in values:
            values["embedding"] = emb_bytes(self._embedder_for(self.info(name)).embed([rec.content])[0])
            values["content"] = self.cipher.encrypt(rec.content)  # the log keeps it encrypted too
        if "title" in values:
            values["title"] = self._stored_title(rec.title, rec.content, gem_id)  # so does the title
        with self._write(name, actor, Permission.EDIT, "edit a gem") as tx:
            r = self._gem_for_update(tx, name, gem_id, expected_version)
            if expected_state_version is not None and r["state_version"] != int(expected_state_version):
                raise ConflictError(f"the state of gem {gem_id!r} changed since you read it (your state version "
                                    f"{expected_state_version}, now {r['state_version']}); reload it and apply your "
                                    "change again - nothing was written")
            # after the version checks (a catch-up bumps every gem's state version): edited values are values now
            self._catch_up_tx(tx, name)  # type: ignore[attr-defined]  (StateMixin)
            content = {k: v for k, v in values.items() if k not in STATE}
            state = {k: v for k, v in values.items() if k in STATE}
            if content:
                tx.conn.execute(update(GEMS).where(GEMS.c.pk == r["pk"]).values(
                    **content, version=GEMS.c.version + 1, updated_at=utcnow()))
            if state:
                tx.conn.execute(update(GEM_STATES).where(GEM_STATES.c.gem_pk == r["pk"])
                                .values(**state, version=GEM_STATES.c.version + 1))
            keys = [k for k in EDITABLE if k in changes]
            txlog.append(tx.conn, tx.lid, name, "edit", actor, tx.t, tx.version, [gem_id],
                         before={k: [r[k]] for k in keys}, after={k: [values[k]] for k in keys})
        return self.get_gem(name, gem_id)

    def archive_gem(self, name: str, gem_id: str, actor: Actor) -> None:
        """Take a gem out of the lattice (kept, frozen; :meth:`restore_gem` brings it back)."""
        self._set_archived(name, gem_id, actor, True)

    def restore_gem(self, name: str, gem_id: str, actor: Actor) -> None:
        """Bring an archived gem back into the lattice with the state it was archived with."""
        self._set_archived(name, gem_id, actor, False)

    def _set_archived(self, name: str, gem_id: str, actor: Actor, archived: bool) -> None:
        verb = "archive" if archived else "unarchive"
        with self._write(name, actor, Permission.EDIT, f"{verb} a gem") as tx:
            r = self._gem_for_update(tx, name, gem_id, None)
            if r["archived"] == archived:
                raise LatticeError(f"gem {gem_id!r} is {'already' if archived else 'not'} archived")
            tx.conn.execute(update(GEMS).where(GEMS.c.pk == r["pk"]).values(
                archived=archived, version=GEMS.c.version + 1, updated_at=utcnow()))
            state = {s: [r[s]] for s in STATE}
            txlog.append(tx.conn, tx.lid, name, verb, actor, tx.t, tx.version, [gem_id],
                         before=state if archived else None, after=None if archived else state)

    def delete_gem(self, name: str, gem_id: str, actor: Actor) -> None:
        """Delete a gem and its entanglements for good (the log keeps its last values)."""
        with self._write(name, actor, Permission.EDIT, "delete a gem") as tx:
            r = self._gem_for_update(tx, name, gem_id, None)
            tx.conn.execute(delete(GEMS).where(GEMS.c.pk == r["pk"]))
            txlog.append(tx.conn, tx.lid, name, "delete", actor, tx.t, tx.version, [gem_id],
                         before={k: r[k] for k in ("title", "content", "tags", "source") + STATE + ("seq",)})

    # ------------------------------------------------------------ listing
    def list_gems(self, name: str, *, tag: str | None = None, text: str | None = None,
                  coherence_min: float | None = None, coherence_max: float | None = None,
                  archived: bool | None = False, page: int = 1, page_size: int = 50,
                  now: float | None = None) -> tuple[pd.DataFrame, int]:
        """A page of gems (seq order) matching the filters, and the total number matching, as of
        ``now`` (UTC epoch seconds, default the current time), read only: a wall-clock lattice's
        state, and the coherence filters, are its values at now computed in memory.

        ``archived``: False = active only, True = archived only, None = both. ``text``
        matches title or content, case-insensitively. ``page`` starts at 1.
        """
        if (isinstance(page, bool) or isinstance(page_size, bool) or not isinstance(page, (int, np.integer))
                or not isinstance(page_size, (int, np.integer)) or page < 1 or not 1 <= page_size <= 10_000):
            raise ValidationError("page", f"page must be a whole number >= 1 and page_size one in [1, 10000], "
                                  f"got {page!r}, {page_size!r}")
        for field_name, value in (("tag", tag), ("text", text)):
            if value is not None and not isinstance(value, str):
                raise ValidationError(field_name, f"must be text, got {type(value).__name__}")
        bounds = {}
        for field_name, value in (("coherence_min", coherence_min), ("coherence_max", coherence_max)):
            if value is None:
                continue
            try:
                bounds[field_name] = float(value)
            except (TypeError, ValueError, OverflowError):
                bounds[field_name] = math.nan
            if isinstance(value, bool) or not math.isfinite(bounds[field_name]):
                raise ValidationError(field_name, f"must be a finite number (coherence is in [0, 1]), got {value!r}")
        coherence_min, coherence_max = bounds.get("coherence_min"), bounds.get("coherence_max")
        if archived is not None and not isinstance(archived, (bool, np.bool_)):
            raise ValidationError("archived", f"must be True, False or None (both), got {archived!r}")
        page_size = int(page_size)
        lo, hi = (page - 1) * page_size, page * page_size
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            cond = [GEMS.c.lattice_id == row["id"]]
            if archived is not None:
                cond.append(GEMS.c.archived.is_(bool(archived)))
            if tag:
                pattern = json.dumps(tag).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                cond.append(cast(GEMS.c.tags, String).like(f"%{pattern}%", escape="\\"))
            in_python = bool(text) and self.cipher.enabled  # encrypted content: match after decryption
            if text and not in_python:
                pat = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                cond.append(or_(GEMS.c.title.ilike(pat, escape="\\"), GEMS.c.content.ilike(pat, escape="\\")))
            # a wall lattice's coherence moves with the clock: its filters compare the values as of
            # now (computed here, nothing written), not the stored ones
            now = time.time() if now is None else float(now)  # one instant for the filter and the values
            step = present.catch_up_step(row, now)
            filtered = coherence_min is not None or coherence_max is not None
            if step is None:
                if coherence_min is not None:
                    cond.append(GEM_STATES.c.coherence >= float(coherence_min))
                if coherence_max is not None:
                    cond.append(GEM_STATES.c.coherence <= float(coherence_max))
            where = and_(*cond)
            cols = (select(GEMS.c.pk, *[GEM_COLUMNS[k] for k in GEM_FIELDS]).select_from(GEMS_WITH_STATE).where(where)
                    .order_by(GEMS.c.seq))
            if in_python:
                needle = str(text).casefold()
                rows = [r for r in conn.execute(cols).mappings()
                        if needle in (self.cipher.decrypt(r["title"]) or "").casefold()
                        or needle in (self.cipher.decrypt(r["content"]) or "").casefold()]
                if step is not None and filtered:
                    keep = self._coherence_kept(row, [r["energy"] for r in rows], [r["coherence"] for r in rows],
                                                [r["archived"] for r in rows], step, coherence_min, coherence_max)
                    rows = [r for r, k in zip(rows, keep) if k]
                total, rows = len(rows), rows[lo:hi]
            elif step is not None and filtered:
                # the filter's columns of every candidate, evolved in numpy; then only the page's rows
                found = conn.execute(select(GEMS.c.pk, GEMS.c.archived, GEM_STATES.c.energy, GEM_STATES.c.coherence)
                                     .select_from(GEMS_WITH_STATE).where(where).order_by(GEMS.c.seq)).all()
                pks, arch, energy, coherence = (list(c) for c in zip(*found)) if found else ([], [], [], [])
                keep = self._coherence_kept(row, energy, coherence, arch, step, coherence_min, coherence_max)
                chosen = np.asarray(pks, dtype=np.int64)[keep]
                total, wanted = len(chosen), chosen[lo:hi].tolist()
                rows = []
                for part in chunks(wanted):
                    rows += conn.execute(cols.where(GEMS.c.pk.in_(part))).mappings().all()
                order = {pk: k for k, pk in enumerate(wanted)}
                rows.sort(key=lambda r: order[r["pk"]])
            else:
                total = conn.execute(select(func.count()).select_from(GEMS_WITH_STATE).where(where)).scalar_one()
                rows = conn.execute(cols.limit(page_size).offset(lo)).mappings().all()
            dicts = self._gem_dicts_now(conn, row, rows, now)
        df = pd.DataFrame(dicts, columns=["id"] + [k for k in GEM_FIELDS if k != "gem_id"])
        return df, int(total)

    @staticmethod
    def _coherence_kept(row: dict[str, Any], energy: Sequence[float], coherence: Sequence[float],
                        archived: Sequence[bool], step: float, lo: float | None, hi: float | None) -> np.ndarray:
        """Which gems' coherence as of now (``step`` time units on) is within [lo, hi]."""
        c = present.coherence_now(LatticeParams.from_dict(row["params"]), np.asarray(energy, dtype=np.float64),
                                  np.asarray(coherence, dtype=np.float64), np.asarray(archived, dtype=bool), step)
        keep = np.ones(len(c), dtype=bool)
        if lo is not None:
            keep &= c >= float(lo)
        if hi is not None:
            keep &= c <= float(hi)
        return keep

    def list_tags(self, name: str) -> list[str]:
        """Every tag used by the lattice's active gems, sorted (reads only the tags column)."""
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"]
            rows = conn.execute(select(GEMS.c.tags).where(GEMS.c.lattice_id == lid,
                                                          GEMS.c.archived.is_(False))).scalars()
            return sorted({str(t) for tags in rows if isinstance(tags, list) for t in tags})

    def gem_texts(self, name: str, ids: Sequence[str] | None = None) -> pd.DataFrame:
        """id, title, content, tags, source for ``ids`` in that order (default: active gems, seq order)."""
        with self._read() as conn:
            lid = self._lattice_row(conn, name)["id"]
            q = (select(GEMS.c.gem_id, GEMS.c.title, GEMS.c.content, GEMS.c.tags, GEMS.c.source)
                 .where(GEMS.c.lattice_id == lid))
            if ids is None:
                rows = conn.execute(q.where(GEMS.c.archived.is_(False)).order_by(GEMS.c.seq)).all()
            else:
                rows = []
                for chunk in chunks(list(ids)):
                    rows += conn.execute(q.where(GEMS.c.gem_id.in_(chunk))).all()
        df = pd.DataFrame(rows, columns=["id", "title", "content", "tags", "source"])
        if len(df):
            df["content"] = [self.cipher.decrypt(c) for c in df["content"]]
            df["title"] = [self.cipher.decrypt(t) for t in df["title"]]
        if ids is not None:
            df = df.set_index("id").reindex(list(ids)).reset_index()
        return df

    def embeddings(self, name: str, ids: Sequence[str] | None = None) -> np.ndarray:
        """(N, dim) float32 embeddings of ``ids`` in that order (default: active gems, seq order)."""
        if ids is None:  # decoded as they stream in (core.store.sync): no list of blobs plus a joined copy
            return self.content_rows(name)[2]
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            q = select(GEMS.c.gem_id, GEMS.c.embedding).where(GEMS.c.lattice_id == row["id"])
            found: dict[str, bytes] = {}
            for chunk in chunks(list(ids)):
                found.update(dict(conn.execute(q.where(GEMS.c.gem_id.in_(chunk))).all()))
            missing = [g for g in ids if g not in found]
            if missing:
                raise NotFoundError(f"no gem {missing[0]!r} in lattice {name!r}")
            blobs = [found[g] for g in ids]
        if not blobs:
            return np.zeros((0, row["dim"]), dtype=np.float32)
        return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), row["dim"]).astype(np.float32)

    def gem_times(self, name: str, gem_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """The gems' own times, column-wise (one query, no row objects): ``gem_id``, ``created_t``
        (lattice time units of creation; NaN = unknown, a gem from before migration 0005),
        ``created_at`` (its creation instant, UTC), ``last_observed_t`` (lattice time of the last
        observation; NaN = never), ``observed_at`` (UTC of the last direct observation; NaT =
        never or before the upgrade), ``observations`` (direct observations counted since then).

        ``gem_ids``: those gems in that order (NotFoundError naming an unknown one); default:
        the active gems in lattice (seq) order. No wall-clock catch-up: times are facts, not state.
        """
        with self._read() as conn:
            lid = int(self._lattice_row(conn, name)["id"])
            cols = ("g.gem_id, s.created_t, g.created_at, s.last_observed, s.observed_at, "
                    "CAST(s.observations AS BIGINT)")
            sql = (f"SELECT {cols} FROM {GEMS.name} g JOIN {GEM_STATES.name} s ON s.gem_pk = g.pk "
                   f"WHERE g.lattice_id = {lid}")
            dtypes = [object, "f8", object, "f8", object, "i8"]
            if gem_ids is None:
                sql += " AND NOT g.archived ORDER BY g.seq"
            if gem_ids is not None and len(gem_ids) <= CHUNK:
                # a few gems (a gem card): filtered in SQL, not 1e5 rows read and dropped (0.5 s)
                rows = conn.execute(
                    select(GEMS.c.gem_id, GEM_STATES.c.created_t, GEMS.c.created_at, GEM_STATES.c.last_observed,
                           GEM_STATES.c.observed_at, GEM_STATES.c.observations)
                    .join(GEM_STATES, GEM_STATES.c.gem_pk == GEMS.c.pk)
                    .where(GEMS.c.lattice_id == lid, GEMS.c.gem_id.in_([str(g) for g in gem_ids]))).all()
                ids, created_t, created_at, last_t, observed_at, count = bulk.rows_to_columns(
                    [tuple(r) for r in rows], dtypes)
            else:
                ids, created_t, created_at, last_t, observed_at, count = bulk.select_columns(conn, sql, dtypes)
        def instants(values: np.ndarray) -> pd.Series:  # SQLite: ISO text, naive = UTC; PostgreSQL: datetimes
            return pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")

        df = pd.DataFrame({"gem_id": ids, "created_t": created_t, "created_at": instants(created_at),
                           "last_observed_t": last_t, "observed_at": instants(observed_at), "observations": count})
        if gem_ids is not None:
            wanted = list(gem_ids)
            df = df.set_index("gem_id")
            missing = [g for g in wanted if g not in df.index]
            if missing:
                raise NotFoundError(f"no gem {missing[0]!r} in lattice {name!r}")
            df = df.loc[wanted].reset_index()
        return df
