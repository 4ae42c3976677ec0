"""Snapshots of one lattice (backup, verify, restore, point-in-time replay) and an online copy
of a whole SQLite database. The snapshot file format is :mod:`core.store.snapshot_file`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, insert, select, update

from core.access import Actor, Permission
from core.errors import LatticeError, ValidationError
from core.engine.lattice import Lattice
from core.engine.params import LatticeParams
from core.knowledge.registry import get_embedder
from core.store import db, gem_records, snapshot_file, txlog
from core.store.errors import EncryptionError, SnapshotError
from core.store.kernel import StoreKernel, emb_bytes
from core.store.models import utcnow
from core.store.tables import (ENTANGLEMENTS, GEM_COLUMNS, GEMS, GEMS_WITH_STATE, LATTICES, SNAPSHOTS, STATE,
                               TRANSACTIONS)


def validated_snapshot(path: str | Path) -> tuple[snapshot_file.Snapshot, Lattice]:
    """Read, verify and validate a snapshot completely (before anything is written)."""
    s = snapshot_file.read_snapshot(path)
    try:
        LatticeParams.from_dict(s.lattice["params"])
        for k, g in enumerate(s.gems):
            gem_records.record_or_error({f: g.get(f) for f in gem_records.FIELDS})
        seqs = [int(g["seq"]) for g in s.gems]
        if len(set(seqs)) != len(seqs) or len({g["id"] for g in s.gems}) != len(s.gems):
            raise LatticeError("duplicate gem ids or positions")
        ids = {g["id"] for g in s.gems}
        for e in s.edges:
            if e["source"] not in ids or e["target"] not in ids or not 0 < float(e["weight"]) <= 1:
                raise LatticeError(f"invalid entanglement {e}")
        rs = txlog.replay_state(s)
        return s, rs.lattice()
    except (KeyError, TypeError, ValueError, LatticeError) as exc:
        raise SnapshotError(f"{path}: snapshot content is invalid ({exc}); nothing was restored") from None


class SnapshotsMixin(StoreKernel):
    """Backup and restore (uses ``list_lattices``, ``_insert_gem_rows``, ``_analyze_after_bulk``
    and ``transactions`` of the other parts)."""

    def backup(self, name: str, out: str | Path, actor: Actor) -> dict[str, Any]:
        """Write a consistent snapshot of lattice ``name`` (admin). ``out``: a file or a folder."""
        self._require_admin(actor, "back up a lattice", "lattice.backup", name)
        with self._read() as conn:  # one read transaction: a consistent snapshot
            row = self._lattice_row(conn, name)
            gems = conn.execute(select(*GEM_COLUMNS.values()).select_from(GEMS_WITH_STATE)
                                .where(GEMS.c.lattice_id == row["id"])
                                .order_by(GEMS.c.seq)).mappings().all()
            ga, gb = GEMS.alias("ga"), GEMS.alias("gb")
            edges = conn.execute(select(ga.c.gem_id, gb.c.gem_id, ENTANGLEMENTS.c.weight)
                                 .join(ga, ga.c.pk == ENTANGLEMENTS.c.gem_a).join(gb, gb.c.pk == ENTANGLEMENTS.c.gem_b)
                                 .where(ENTANGLEMENTS.c.lattice_id == row["id"]).order_by(ga.c.seq, gb.c.seq)).all()
            last_tx = conn.execute(select(func.max(TRANSACTIONS.c.id))
                                   .where(TRANSACTIONS.c.lattice_id == row["id"])).scalar() or 0
        lattice = {k: row[k] for k in ("name", "params", "embedder", "dim", "time_unit", "clock", "t",
                                       "wall_anchor", "version")}
        lattice.update(last_tx_id=int(last_tx), schema_revision=db.head_revision())
        gem_dicts = [{"id": g["gem_id"], "seq": g["seq"], "title": g["title"], "content": g["content"],
                      "tags": g["tags"], "source": g["source"], **{s: g[s] for s in STATE},
                      "last_observed": g["last_observed"], "archived": bool(g["archived"]), "version": g["version"],
                      "state_version": g["state_version"], "created_at": str(g["created_at"]),
                      "updated_at": str(g["updated_at"])} for g in gems]
        emb = (np.frombuffer(b"".join(g["embedding"] for g in gems), dtype="<f4").reshape(len(gems), row["dim"])
               if gems else np.zeros((0, row["dim"]), dtype=np.float32))
        path, digest = snapshot_file.write_snapshot(out, lattice, gem_dicts, emb,
                                                    [{"source": a, "target": b, "weight": w} for a, b, w in edges],
                                                    utcnow().isoformat())
        self._record_snapshot(name, "backup", path, digest, lattice, len(gems), actor)
        return {"lattice": name, "path": str(path), "sha256": digest, "gems": len(gems), "t": row["t"],
                "version": row["version"], "last_tx_id": int(last_tx)}

    def backup_database(self, out: str | Path, actor: Actor) -> dict[str, Any]:
        """Copy the whole SQLite database while it is in use (admin): every lattice, the
        log, runs, reflections, audit. ``out``: a file or a folder. On PostgreSQL use
        ``pg_dump`` (README, "Backup and restore"); this raises a LatticeError saying so."""
        self._require_admin(actor, "back up the database", "db.backup")
        if self.engine.dialect.name != "sqlite" or not self.engine.url.database:
            raise LatticeError("a whole-database backup here is for SQLite files; for PostgreSQL use pg_dump, e.g. "
                               "`pg_dump -Fc -d lattice -f lattice.dump` (see README, Backup and restore)")
        path, size, digest = snapshot_file.sqlite_online_copy(self.engine.url.database, out,
                                                              utcnow().strftime("%Y%m%d-%H%M%S"))
        lattices = [i.name for i in self.list_lattices()]
        with self._tx() as conn:
            self._audit(conn, actor, "db.backup", str(path), {"bytes": size, "sha256": digest, "lattices": lattices})
        return {"path": str(path), "bytes": size, "sha256": digest, "lattices": lattices,
                "schema_revision": db.head_revision()}

    def _record_snapshot(self, name: str, action: str, path: Path | str, digest: str, lattice: dict, n: int,
                         actor: Actor) -> None:
        with self._tx() as conn:
            conn.execute(insert(SNAPSHOTS).values(
                lattice_name=name, action=action, path=str(path), sha256=digest, lattice_t=lattice["t"],
                lattice_version=lattice["version"], last_tx_id=lattice.get("last_tx_id", 0), gems=n,
                actor=actor.name, created_at=utcnow()))
            if action == "backup":  # a restore is audited inside its own transaction
                self._audit(conn, actor, "lattice.backup", name, {"path": str(path), "sha256": digest, "gems": n})

    def snapshots(self) -> pd.DataFrame:
        with self._read() as conn:
            rows = conn.execute(select(SNAPSHOTS).order_by(SNAPSHOTS.c.id)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows])

    @staticmethod
    def verify_snapshot(path: str | Path) -> tuple[snapshot_file.Snapshot, Lattice]:
        """The checks :meth:`restore` runs before writing, without writing: the snapshot's
        contents and the lattice it holds, or SnapshotError (for a preview and confirm step)."""
        return validated_snapshot(path)

    def restore(self, path: str | Path, actor: Actor, name: str | None = None) -> dict[str, Any]:
        """Replace lattice ``name`` (default: the snapshot's) with a snapshot, atomically (admin).

        The snapshot is verified (manifest checksums, content) before anything is written;
        the lattice keeps its log (a ``restore`` entry is appended) and its version keeps rising.
        """
        self._require_admin(actor, "restore a snapshot", "lattice.restore", name or str(path))
        s, _ = validated_snapshot(path)
        # Content as this database stores it: decrypt what the snapshot holds (plain text or
        # a token under any configured key; an undecryptable one fails here, before any write)
        # and encrypt under the newest key if encryption is on.
        try:
            contents = [self.cipher.encrypt(self.cipher.decrypt(g["content"])) for g in s.gems]
        except EncryptionError as exc:
            raise SnapshotError(f"{path}: {exc}; nothing was restored") from None
        name = name or s.lattice["name"]
        lat = s.lattice
        emb = get_embedder(lat["embedder"]) if lat["embedder"] else None
        if emb is not None and emb.dim != lat["dim"]:
            raise SnapshotError(f"{path}: snapshot embedder {lat['embedder']!r} has dimension {emb.dim}, "
                                f"the snapshot {lat['dim']}")
        create = {k: lat[k] for k in ("params", "embedder", "dim", "time_unit", "clock", "t", "wall_anchor")}
        with self._write(name, actor, Permission.ADMIN, "restore a snapshot", create=create) as tx:
            tx.conn.execute(delete(GEMS).where(GEMS.c.lattice_id == tx.lid))  # edges cascade
            tx.conn.execute(update(LATTICES).where(LATTICES.c.id == tx.lid).values(**create))
            n, now = len(s.gems), utcnow()
            gems = {"lattice_id": [tx.lid] * n, **{k: [g[k] for g in s.gems] for k in ("title", "tags", "source")},
                    "gem_id": [g["id"] for g in s.gems], "seq": [int(g["seq"]) for g in s.gems], "content": contents,
                    "embedding": [emb_bytes(v) for v in s.embeddings], "created_at": [now] * n,
                    "updated_at": [now] * n, "archived": [bool(g["archived"]) for g in s.gems],
                    "version": [int(g.get("version", 1)) for g in s.gems],
                    **{st: [float(g[st]) for g in s.gems] for st in STATE},
                    "last_observed": [g.get("last_observed") for g in s.gems],
                    "state_version": [int(g.get("state_version", 1)) for g in s.gems]}
            pks = self._insert_gem_rows(tx.conn, tx.lid, gems, "restore.batch")
            if s.edges:
                pk_of = dict(zip(gems["gem_id"], pks))
                tx.conn.execute(insert(ENTANGLEMENTS), [
                    {"lattice_id": tx.lid, "gem_a": min(pk_of[e["source"]], pk_of[e["target"]]),
                     "gem_b": max(pk_of[e["source"]], pk_of[e["target"]]), "weight": float(e["weight"])}
                    for e in s.edges])
            txlog.append(tx.conn, tx.lid, name, "restore", actor, float(lat["t"]), tx.version, [],
                         after={"snapshot": str(path), "sha256": s.sha256, "snapshot_version": lat["version"]})
            self._audit(tx.conn, actor, "lattice.restore", name, {"path": str(path), "sha256": s.sha256,
                                                                   "gems": len(s.gems), "version": tx.version})
            version = tx.version
        self._analyze_after_bulk(len(s.gems))
        self._record_snapshot(name, "restore", path, s.sha256, lat, len(s.gems), actor)
        return {"lattice": name, "path": str(path), "sha256": s.sha256, "gems": len(s.gems), "t": lat["t"],
                "version": version}

    def replay_to(self, name: str, snapshot: str | Path, t: float) -> Lattice:
        """Point-in-time recovery: the state of lattice ``name`` at lattice time ``t``.

        Starts from the (verified) snapshot and replays the log entries written after it
        whose lattice time is <= ``t``; an evolution that spans ``t`` is replayed up to its
        last step at or before ``t`` (a simulation with steps passed through those states;
        its clock then reads that step's time). Returns the Lattice (active gems, seq
        order, edges), equal to what :meth:`load` returned at that time. Writes nothing.
        """
        s, _ = validated_snapshot(snapshot)
        rs = txlog.replay_state(s)
        if t < rs.t:
            raise ValidationError("t", f"{t} is before the snapshot's lattice time {rs.t}; use an older snapshot")
        last = int(s.lattice["last_tx_id"])
        if last:
            with self._read() as conn:
                lid = self._lattice_row(conn, name)["id"]
                logged = conn.execute(select(TRANSACTIONS.c.id).where(TRANSACTIONS.c.id == last,
                                                                      TRANSACTIONS.c.lattice_id == lid)).first()
                if logged is None:
                    raise SnapshotError(
                        f"{snapshot}: its log position ({last}) is not in the log of lattice {name!r} here "
                        "(snapshot from another database, or the lattice was deleted and recreated)")
        log = self.transactions(name, since_id=last)
        for entry in log.itertuples(index=False):
            if entry.lattice_t > t:
                if entry.kind == "evolve" and float(entry.after["t0"]) < t:
                    rs.apply(entry.kind, [], None, entry.after, float(entry.lattice_t), until=t)
                break
            rs.apply(entry.kind, list(entry.gem_ids or []), entry.before, entry.after, float(entry.lattice_t))
        return rs.lattice()
