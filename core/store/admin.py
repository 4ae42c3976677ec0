"""Administration: the audit log, encryption status and key rotation, re-embedding a lattice."""
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
from core.store.tables import AUDIT, GEMS, LATTICES, TRANSACTIONS


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
    def encryption_status(self) -> dict[str, int]:
        """How gem content is stored: rows in plain text, under the newest key, under an older key."""
        out = {"gems": 0, "plaintext": 0, "current_key": 0, "older_key": 0}
        with self._read() as conn:
            for (content,) in conn.execute(select(GEMS.c.content)):
                out["gems"] += 1
                if not self.cipher.is_encrypted(content):
                    out["plaintext"] += 1
                elif self.cipher.is_current(content):
                    out["current_key"] += 1
                else:
                    out["older_key"] += 1
        return out

    def _rotate_json(self, value: Any) -> tuple[Any, bool]:
        """A log payload with its ``content`` value(s) re-encrypted under the newest key."""
        if not isinstance(value, dict) or "content" not in value:
            return value, False
        c = value["content"]
        items = c if isinstance(c, list) else [c]
        if all(not isinstance(x, str) or self.cipher.is_current(x) for x in items):
            return value, False
        new = [self.cipher.rotate(x) if isinstance(x, str) else x for x in items]
        return {**value, "content": new if isinstance(c, list) else new[0]}, True

    def rotate_keys(self, actor: Actor, *, batch_size: int = 500,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Re-encrypt every gem's content (and the content kept by the log) under the newest key.

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
        counts = {"gems": total, "rotated": 0, "skipped": 0, "log_entries": 0, "batches": 0}
        last, done = 0, 0
        while True:
            with self._tx() as conn:
                rows = conn.execute(select(GEMS.c.pk, GEMS.c.content).where(GEMS.c.pk > last).order_by(GEMS.c.pk)
                                    .limit(batch_size)).all()
                if not rows:
                    break
                todo = [(pk, c) for pk, c in rows if not self.cipher.is_current(c)]
                if todo:
                    res = conn.execute(update(GEMS).where(GEMS.c.pk == bindparam("b_pk"),
                                                          GEMS.c.content == bindparam("b_old"))
                                       .values(content=bindparam("b_new")),
                                       [{"b_pk": pk, "b_old": c, "b_new": self.cipher.rotate(c)} for pk, c in todo])
                    counts["rotated"] += max(res.rowcount, 0)
                counts["skipped"] += len(rows) - len(todo)
                last = rows[-1][0]
            done += len(rows)
            counts["batches"] += 1
            if progress:
                progress(min(done, total), max(total, 1))
            faults.checkpoint("rotate.batch")
        last = 0
        while True:  # the content values kept by the log (edit/delete entries)
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
