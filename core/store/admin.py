"""Administration: the audit log, encryption status and key rotation (every encrypted field:
see core.store.crypto), re-embedding a lattice."""
from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, func, select, update

from core.access import Actor, Permission, require
from core.errors import ValidationError
from core.knowledge.registry import get_embedder
from core.store import faults, txlog
from core.store.errors import ConflictError, EncryptionError
from core.store.kernel import StoreKernel, chunks, emb_bytes
from core.store.records import LatticeInfo
from core.store.tables import AUDIT, GEMS, LATTICES, REFLECTIONS, TRANSACTIONS

LOGGED_TEXT = ("content", "title")  # the log values that are encrypted (edit and delete entries)


class AdminMixin(StoreKernel):
    """Admin actions, audited (``_require_admin`` and ``_audit`` are the kernel's)."""

    # ------------------------------------------------------------- audit
    def audit(self, actor: Actor, action: str, target: str = "", details: dict[str, Any] | None = None,
              outcome: str = "ok") -> None:
        """Record an administrative action done outside the store (e.g. ``user.create``,
        ``user.role``, ``user.delete`` by core.auth.credentials). Admin only; never put secrets in ``details``."""
        self._require_admin(actor, "record an administrative action", action, target)
        if not isinstance(action, str) or not re.fullmatch(r"[a-z][a-z0-9_.-]{0,49}", action):
            raise ValidationError("action", f"{action!r}: use 1-50 lowercase letters, digits, . _ -")
        if outcome not in ("ok", "started", "denied", "failed"):
            raise ValidationError("outcome", f"{outcome!r}; allowed: ok, started, denied, failed")
        with self._tx() as conn:
            self._audit(conn, actor, action, target, details, outcome)

    def audit_log(self, *, limit: int | None = 100, action: str | None = None,
                  actor: str | None = None) -> pd.DataFrame:
        """The audit log, newest first: id, wall_time, actor, role, action, target, outcome, details."""
        with self._read() as conn:
            q = select(AUDIT).order_by(AUDIT.c.id.desc())
            if action:
                q = q.where(AUDIT.c.action == action)
            if actor:
                q = q.where(AUDIT.c.actor == actor)
            if limit:
                q = q.limit(int(limit))
            rows = conn.execute(q).mappings().all()
        return pd.DataFrame([dict(r) for r in rows],
                            columns=["id", "wall_time", "actor", "role", "action", "target", "outcome", "details"])

    # ------------------------------------------------------- encryption keys
    def _key_class(self, values: tuple[Any, ...]) -> str:
        """"plaintext" if any of a row's encrypted fields is plain text, "current_key" if all
        are under the newest key, else "older_key"."""
        if any(not self.cipher.is_encrypted(v) for v in values if v is not None):
            return "plaintext"
        return "current_key" if all(v is None or self.cipher.is_current(v) for v in values) else "older_key"

    def encryption_status(self) -> dict[str, int]:
        """How the encrypted fields are stored, per row: gems (content and title) and
        reflections (query and answer), each in plain text (any field), under the newest
        key (all fields) or under an older key. ``gems``/``plaintext``/``current_key``/
        ``older_key`` count gems; ``reflections``/``reflections_plaintext``/... reflections."""
        out = {"gems": 0, "plaintext": 0, "current_key": 0, "older_key": 0,
               "reflections": 0, "reflections_plaintext": 0, "reflections_current_key": 0,
               "reflections_older_key": 0}
        with self._read() as conn:
            for content, title in conn.execute(select(GEMS.c.content, GEMS.c.title)):
                out["gems"] += 1
                out[self._key_class((content, title))] += 1
            for query, answer in conn.execute(select(REFLECTIONS.c.query, REFLECTIONS.c.answer)):
                out["reflections"] += 1
                out["reflections_" + self._key_class((query, answer))] += 1
        return out

    def _rotate_json(self, value: Any) -> tuple[Any, bool]:
        """A log payload with its ``content`` and ``title`` value(s) re-encrypted under the newest key."""
        if not isinstance(value, dict):
            return value, False
        out, changed = dict(value), False
        for key in LOGGED_TEXT:
            if key not in value:
                continue
            c = value[key]
            items = c if isinstance(c, list) else [c]
            if all(not isinstance(x, str) or self.cipher.is_current(x) for x in items):
                continue
            new = [self.cipher.rotate(x) if isinstance(x, str) else x for x in items]
            out[key], changed = (new if isinstance(c, list) else new[0]), True
        return out, changed

    def _rotate_table(self, table: Any, key: Any, fields: tuple[str, ...], batch_size: int, *, total: int = 0,
                      progress: Callable[[int, int], None] | None = None,
                      checkpoint: str | None = None) -> tuple[int, int, int]:
        """Re-encrypt ``fields`` of every row of ``table`` in committed batches ordered by
        ``key``; a row changed concurrently is skipped (the update is guarded by its old
        values). Returns (rotated, skipped, batches)."""
        rotated = skipped = batches = done = 0
        last = 0
        cols = [table.c[f] for f in fields]
        guard = [table.c[f] == bindparam(f"b_old_{f}") for f in fields]
        stmt = (update(table).where(key == bindparam("b_key"), *guard)
                .values(**{f: bindparam(f"b_new_{f}") for f in fields}))
        while True:
            with self._tx() as conn:
                rows = conn.execute(select(key, *cols).where(key > last).order_by(key).limit(batch_size)).all()
                if not rows:
                    break
                todo = [r for r in rows if not all(v is None or self.cipher.is_current(v) for v in r[1:])]
                if todo:
                    res = conn.execute(stmt, [{"b_key": r[0], **{f"b_old_{f}": v for f, v in zip(fields, r[1:])},
                                               **{f"b_new_{f}": None if v is None else self.cipher.rotate(v)
                                                  for f, v in zip(fields, r[1:])}} for r in todo])
                    rotated += max(res.rowcount, 0)
                skipped += len(rows) - len(todo)
                last = rows[-1][0]
            done += len(rows)
            batches += 1
            if progress:
                progress(min(done, total), max(total, 1))
            if checkpoint:
                faults.checkpoint(checkpoint)
        return rotated, skipped, batches

    def rotate_keys(self, actor: Actor, *, batch_size: int = 500,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Re-encrypt every encrypted field under the newest key: gem content and titles, the
        titles and contents kept by the log, reflection queries and answers.

        Runs in committed batches (ordered by primary key), so an interrupted rotation loses
        nothing and a rerun finishes it: rows already under the newest key are skipped. Old
        keys must stay configured (second, third... in LATTICE_ENCRYPTION_KEYS) until it has
        completed. A row changed concurrently is skipped (its new value already uses the
        newest key). Plain-text rows are encrypted. Admin only; audited (never the keys).
        """
        self._require_admin(actor, "rotate the encryption keys", "keys.rotate")
        if not self.cipher.enabled:
            raise EncryptionError("no encryption keys configured; set LATTICE_ENCRYPTION_KEYS (newest first) first")
        if batch_size < 1:
            raise ValidationError("batch_size", f"must be >= 1, got {batch_size}")
        with self._read() as conn:
            total = conn.execute(select(func.count()).select_from(GEMS)).scalar_one()
        with self._tx() as conn:
            self._audit(conn, actor, "keys.rotate", "", {"keys": len(self.cipher.keys), "gems": total},
                        outcome="started")
        counts = {"gems": total, "rotated": 0, "skipped": 0, "log_entries": 0, "batches": 0, "reflections": 0}
        counts["rotated"], counts["skipped"], counts["batches"] = self._rotate_table(
            GEMS, GEMS.c.pk, ("content", "title"), batch_size, total=total, progress=progress,
            checkpoint="rotate.batch")
        counts["reflections"] = self._rotate_table(REFLECTIONS, REFLECTIONS.c.id, ("query", "answer"), batch_size)[0]
        last = 0
        while True:  # the titles and contents kept by the log (edit/delete entries)
            with self._tx() as conn:
                rows = conn.execute(select(TRANSACTIONS.c.id, TRANSACTIONS.c.before, TRANSACTIONS.c.after)
                                    .where(TRANSACTIONS.c.id > last, TRANSACTIONS.c.kind.in_(["edit", "delete"]))
                                    .order_by(TRANSACTIONS.c.id).limit(batch_size)).all()
                if not rows:
                    break
                for tid, before, after in rows:
                    nb, cb = self._rotate_json(before)
                    na, ca = self._rotate_json(after)
                    if cb or ca:
                        conn.execute(update(TRANSACTIONS).where(TRANSACTIONS.c.id == tid).values(before=nb, after=na))
                        counts["log_entries"] += 1
                last = rows[-1][0]
        with self._tx() as conn:
            self._audit(conn, actor, "keys.rotate", "", {"keys": len(self.cipher.keys), **counts})
        return counts

    # ------------------------------------------------------------- re-embed
    def reembed(self, name: str, embedder: str, actor: Actor, *,
                progress: Callable[[int, int], None] | None = None, batch_size: int = 256) -> LatticeInfo:
        """Re-embed every gem of lattice ``name`` (archived ones too) with ``embedder``.

        Embeds in batches (``progress(done, total)``) outside the write lock, then writes all
        embeddings, the lattice's embedder and dimension in one transaction (version bumped,
        a ``reembed`` log entry, an audit entry): all or nothing. If a gem's content changed
        meanwhile: ConflictError, nothing written; run it again.
        """
        require(actor, Permission.EDIT, "re-embed a lattice")
        emb = get_embedder(embedder)
        if batch_size < 1:
            raise ValidationError("batch_size", f"must be >= 1, got {batch_size}")
        with self._read() as conn:
            row = self._lattice_row(conn, name)
            gems = conn.execute(select(GEMS.c.pk, GEMS.c.content).where(GEMS.c.lattice_id == row["id"])
                                .order_by(GEMS.c.pk)).all()
        texts = [self.cipher.decrypt(c) or "" for _, c in gems]
        vectors = np.zeros((len(texts), emb.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            vectors[start:start + batch_size] = emb.embed(texts[start:start + batch_size])
            if progress:
                progress(min(start + batch_size, len(texts)), len(texts))
            faults.checkpoint("reembed.batch")
        if progress and not texts:
            progress(0, 0)
        with self._write(name, actor, Permission.EDIT, "re-embed a lattice") as tx:
            now = dict(tx.conn.execute(select(GEMS.c.pk, GEMS.c.content).where(GEMS.c.lattice_id == tx.lid)).all())
            if now != dict(gems):
                raise ConflictError(f"the gems of lattice {name!r} changed during the re-embedding; run it again "
                                    "- nothing was written")
            for chunk in chunks(list(range(len(gems))), 1000):
                tx.conn.execute(update(GEMS).where(GEMS.c.pk == bindparam("b_pk")).values(embedding=bindparam("b_emb")),
                                [{"b_pk": gems[k][0], "b_emb": emb_bytes(vectors[k])} for k in chunk])
            tx.conn.execute(update(LATTICES).where(LATTICES.c.id == tx.lid).values(embedder=emb.name, dim=emb.dim))
            before = {"embedder": tx.row["embedder"], "dim": tx.row["dim"]}
            after = {"embedder": emb.name, "dim": emb.dim, "gems": len(gems)}
            txlog.append(tx.conn, tx.lid, name, "reembed", actor, tx.t, tx.version, [], before=before, after=after)
            self._audit(tx.conn, actor, "lattice.reembed", name, {"before": before, "after": after})
        return self.info(name)
