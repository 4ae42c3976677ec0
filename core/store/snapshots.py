"""Snapshots of one lattice (backup, verify, restore, point-in-time replay) and an online copy
of a whole SQLite database. The snapshot file format is :mod:`core.store.snapshot_file`.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, insert, select, update

from core.access import Actor, Permission
from core.errors import LatticeError, ValidationError
from core.engine.lattice import Lattice
from core.engine.limits import MAX_TIME
from core.store import db, gem_records, snapshot_file, txlog
from core.store.errors import EncryptionError, SnapshotError
from core.store.kernel import StoreKernel, check_name, emb_bytes
from core.store.lattices import LatticesMixin
from core.store.models import utcnow
from core.store.records import as_utc, epoch_seconds
from core.store.tables import (ENTANGLEMENTS, GEM_COLUMNS, GEM_STATES, GEMS, GEMS_WITH_STATE, LATTICES, SNAPSHOTS,
                               STATE, TRANSACTIONS)


MAX_T = MAX_TIME  # the lattice clock's bound (core.engine.limits), also for last_observed
_MAX_INT = 2**31 - 2  # the versions and positions are 32-bit integer columns (a restore adds 1)
_LATTICE_REQUIRED = ("name", "params", "embedder", "dim", "time_unit", "clock", "t", "version")
_LATTICE_OPTIONAL = ("wall_anchor", "last_tx_id", "schema_revision", "epoch")
_GEM_REQUIRED = ("id", "seq", "title", "content", "tags", "source", *STATE, "archived")
_GEM_OPTIONAL = ("version", "state_version", "last_observed", "created_at", "updated_at",
                 "created_t", "observed_at", "observations")  # the last three: migration 0005
_TYPES = {"id": str, "title": str, "content": str, "tags": list, "source": str, "archived": bool,
          "created_at": str, "updated_at": str, "observed_at": (str, type(None))}


def _keys(where: str, value: Any, required: tuple[str, ...], optional: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise LatticeError(f"{where}: expected a JSON object, got {type(value).__name__}")
    missing = [k for k in required if value.get(k) is None]
    unknown = sorted(set(value) - set(required) - set(optional))
    if missing or unknown:
        raise ValidationError(missing[0] if missing else unknown[0],
                              f"{where}: {'missing' if missing else 'unknown field'}")
    return value


def _int(where: str, name: str, value: Any, minimum: int) -> int:
    if type(value) is not int or not minimum <= value <= _MAX_INT:
        raise ValidationError(name, f"{where}: got {value!r}; must be a whole number in [{minimum}, {_MAX_INT}]")
    return value


def _number(name: str, value: Any, minimum: float, maximum: float) -> float:
    try:
        v = gem_records.as_number(name, value, from_text=False)
    except gem_records.BadField as bad:
        raise ValidationError(bad.field, bad.message) from None
    if not minimum <= v <= maximum:
        raise ValidationError(name, f"got {v!r}; must be in [{minimum}, {maximum}]")
    return v


def _check_lattice(s: snapshot_file.Snapshot) -> None:
    lat = _keys("lattice.json", s.lattice, _LATTICE_REQUIRED, _LATTICE_OPTIONAL)
    check_name(lat["name"])
    if not isinstance(lat["params"], dict) or not isinstance(lat["embedder"], str):
        raise ValidationError("params" if not isinstance(lat["params"], dict) else "embedder", "malformed")
    # the checks of create_lattice: parameters, clock and the embedder by name (with its dimension)
    values = LatticesMixin._lattice_values(lat["params"], lat["embedder"], lat["clock"])
    if lat["time_unit"] != values["time_unit"]:
        raise ValidationError("time_unit", f"{lat['time_unit']!r} differs from the parameters' "
                                           f"{values['time_unit']!r}")
    if type(lat["dim"]) is not int or lat["dim"] != values["dim"]:
        raise ValidationError("dim", f"{lat['dim']!r} does not match embedder {lat['embedder']!r} "
                                     f"(dimension {values['dim']})")
    _number("t", lat["t"], 0.0, MAX_T)
    if lat.get("wall_anchor") is not None:
        _number("wall_anchor", lat["wall_anchor"], 0.0, 1e11)
    if lat.get("epoch") is not None:
        _number("epoch", lat["epoch"], -1e11, 1e11)
    _int("lattice.json", "version", lat["version"], 0)
    _int("lattice.json", "last_tx_id", lat.get("last_tx_id", 0), 0)
    if not isinstance(lat.get("schema_revision", ""), (str, type(None))):
        raise ValidationError("schema_revision", "expected text")
    if s.manifest.get("lattice", lat["name"]) != lat["name"] or s.manifest.get("gems", len(s.gems)) != len(s.gems):
        raise LatticeError("the manifest's lattice name or gem count does not match the content")
    if not np.isfinite(s.embeddings).all():
        raise ValidationError("embeddings", "hold NaN or infinite values")


def _check_gem(k: int, g: Any) -> None:
    where = f"gems.jsonl, gem {k + 1}"
    _keys(where, g, _GEM_REQUIRED, _GEM_OPTIONAL)
    for name, kind in _TYPES.items():
        if name in g and not isinstance(g[name], kind):
            expected = kind.__name__ if isinstance(kind, type) else "text or null"
            raise ValidationError(name, f"{where}: expected {expected}, got {type(g[name]).__name__}")
    try:  # the import's checks of every field (text, tags, state ranges; the times below)
        gem_records.record_or_error({f: g[f] for f in gem_records.FIELDS if f not in gem_records.TIME_FIELDS})
    except ValidationError as exc:
        raise ValidationError(exc.field, f"{where} ({g['id'][:80]!r}): {exc}") from None
    _int(where, "seq", g["seq"], 0)
    for name in ("version", "state_version"):
        _int(where, name, g.get(name, 1), 1)
    if g.get("last_observed") is not None:
        _number("last_observed", g["last_observed"], 0.0, MAX_T)
    if g.get("created_t") is not None:
        _number("created_t", g["created_t"], -MAX_T, MAX_T)
    if "observations" in g:
        _int(where, "observations", g["observations"], 0)
    for name in ("created_at", "observed_at"):
        if g.get(name) is not None:
            _instant(where, name, g[name])


def _instant(where: str, name: str, value: str) -> datetime:
    """A stored instant of a snapshot (``str(datetime)``; naive = UTC, as SQLite keeps them)."""
    try:
        return as_utc(value)
    except (ValueError, OverflowError):
        raise ValidationError(name, f"{where}: {value[:40]!r} is not a date and time") from None


def _check_edges(s: snapshot_file.Snapshot, ids: set[str]) -> None:
    pairs: set[tuple[str, str]] = set()
    for k, e in enumerate(s.edges):
        _keys(f"entanglements.jsonl, line {k + 1}", e, ("source", "target", "weight"), ())
        a, b = e["source"], e["target"]
        if not isinstance(a, str) or not isinstance(b, str) or a not in ids or b not in ids or a == b:
            raise LatticeError(f"entanglement {k + 1} ({a!r}, {b!r}) must join two different gems of the snapshot")
        w = _number("weight", e["weight"], 0.0, 1.0)
        pair = (min(a, b), max(a, b))
        if w <= 0 or pair in pairs:
            raise LatticeError(f"entanglement {k + 1} ({a!r}, {b!r}): weight must be in (0, 1], once per pair")
        pairs.add(pair)


def validated_snapshot(path: str | Path) -> tuple[snapshot_file.Snapshot, Lattice]:
    """Read, verify and validate a snapshot completely (before anything is written): every
    field as strictly as an import or create_lattice checks it, then the lattice it holds."""
    s = snapshot_file.read_snapshot(path)
    try:
        _check_lattice(s)
        for k, g in enumerate(s.gems):
            _check_gem(k, g)
        seqs = [g["seq"] for g in s.gems]
        ids = {g["id"] for g in s.gems}
        if len(set(seqs)) != len(seqs) or len(ids) != len(s.gems):
            raise LatticeError("duplicate gem ids or positions")
        _check_edges(s, ids)
        rs = txlog.replay_state(s)
        return s, rs.lattice()
    except (KeyError, TypeError, ValueError, LatticeError) as exc:
        raise SnapshotError(f"{path}: snapshot content is invalid ({_one_line(exc)}); nothing was restored") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


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
        lattice.update(last_tx_id=int(last_tx), schema_revision=db.head_revision(), epoch=epoch_seconds(row))
        gem_dicts = [{"id": g["gem_id"], "seq": g["seq"], "title": g["title"], "content": g["content"],
                      "tags": g["tags"], "source": g["source"], **{s: g[s] for s in STATE},
                      "last_observed": g["last_observed"], "archived": bool(g["archived"]), "version": g["version"],
                      "state_version": g["state_version"], "created_at": str(g["created_at"]),
                      "updated_at": str(g["updated_at"]), "created_t": g["created_t"],
                      "observed_at": None if g["observed_at"] is None else str(g["observed_at"]),
                      "observations": int(g["observations"] or 0)} for g in gems]
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

    def restore(self, path: str | Path, actor: Actor, name: str | None = None, *,
                overwrite: bool = False) -> dict[str, Any]:
        """Restore a snapshot as lattice ``name`` (default: the snapshot's), atomically (admin).

        An existing lattice of that name is replaced only with ``overwrite=True`` (the CLI's
        ``--force``); otherwise LatticeError, nothing written. The snapshot is verified
        (manifest checksums, content) before anything is written; a replaced lattice keeps its
        log (a ``restore`` entry is appended) and its version keeps rising. The gems' times
        (created_at, created_t, observed_at, observations) and the epoch come back as saved; a
        snapshot from before migration 0005 restores them as unknown (NULL, 0).
        """
        self._require_admin(actor, "restore a snapshot", "lattice.restore", name or str(path))
        s, _ = validated_snapshot(path)
        target = name or s.lattice["name"]
        if not overwrite and self.exists(target):
            raise LatticeError(f"lattice {target!r} already exists; restoring would replace it: pass --force "
                               "(Store.restore(..., overwrite=True)) to replace it, or restore under another name "
                               "with --lattice - nothing was written")
        # Content as this database stores it: decrypt what the snapshot holds (plain text or
        # a token under any configured key; an undecryptable one fails here, before any write)
        # and encrypt under the newest key if encryption is on.
        try:
            contents = [self.cipher.encrypt(self.cipher.decrypt(g["content"])) for g in s.gems]
        except EncryptionError as exc:
            raise SnapshotError(f"{path}: {exc}; nothing was restored") from None
        name = name or s.lattice["name"]
        lat = s.lattice
        create = {k: lat.get(k) for k in ("params", "embedder", "dim", "time_unit", "clock", "t", "wall_anchor")}
        create["epoch"] = lat.get("epoch")
        if create["epoch"] is None:  # a snapshot from before migration 0005: as the migration fills it
            create["epoch"] = epoch_seconds({**create, "created_at": utcnow()})
        with self._write(name, actor, Permission.ADMIN, "restore a snapshot", create=create) as tx:
            # Versions never go back (an edit form opened before the restore must conflict): the
            # lattice's above both its current and the snapshot's, every restored gem's above any
            # version a gem of this lattice had (a gem's version never exceeds its lattice's).
            version = max(tx.version, int(lat["version"]) + 1)
            cur_v, cur_sv = tx.conn.execute(
                select(func.max(GEMS.c.version), func.max(GEM_STATES.c.version))
                .select_from(GEMS.join(GEM_STATES, GEM_STATES.c.gem_pk == GEMS.c.pk))
                .where(GEMS.c.lattice_id == tx.lid)).one()
            floor = max(version, (cur_v or 0) + 1, (cur_sv or 0) + 1)
            tx.conn.execute(delete(GEMS).where(GEMS.c.lattice_id == tx.lid))  # edges cascade
            tx.conn.execute(update(LATTICES).where(LATTICES.c.id == tx.lid).values(**create, version=version))
            n, now = len(s.gems), utcnow()
            gems = {"lattice_id": [tx.lid] * n, **{k: [g[k] for g in s.gems] for k in ("title", "tags", "source")},
                    "gem_id": [g["id"] for g in s.gems], "seq": [int(g["seq"]) for g in s.gems], "content": contents,
                    "embedding": [emb_bytes(v) for v in s.embeddings],
                    "created_at": [now if g.get("created_at") is None else as_utc(g["created_at"]) for g in s.gems],
                    "updated_at": [now] * n, "archived": [bool(g["archived"]) for g in s.gems],
                    "version": [max(floor, int(g.get("version", 1))) for g in s.gems],
                    **{st: [float(g[st]) for g in s.gems] for st in STATE},
                    "last_observed": [g.get("last_observed") for g in s.gems],
                    "state_version": [max(floor, int(g.get("state_version", 1))) for g in s.gems],
                    "created_t": [g.get("created_t") for g in s.gems],
                    "observed_at": [None if g.get("observed_at") is None else as_utc(g["observed_at"])
                                    for g in s.gems],
                    "observations": [int(g.get("observations", 0)) for g in s.gems]}
            pks = self._insert_gem_rows(tx.conn, tx.lid, gems, "restore.batch")
            if s.edges:
                pk_of = dict(zip(gems["gem_id"], pks))
                tx.conn.execute(insert(ENTANGLEMENTS), [
                    {"lattice_id": tx.lid, "gem_a": min(pk_of[e["source"]], pk_of[e["target"]]),
                     "gem_b": max(pk_of[e["source"]], pk_of[e["target"]]), "weight": float(e["weight"])}
                    for e in s.edges])
            txlog.append(tx.conn, tx.lid, name, "restore", actor, float(lat["t"]), version, [],
                         after={"snapshot": str(path), "sha256": s.sha256, "snapshot_version": lat["version"]})
            self._audit(tx.conn, actor, "lattice.restore", name, {"path": str(path), "sha256": s.sha256,
                                                                   "gems": len(s.gems), "version": version})
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
        last = int(s.lattice.get("last_tx_id", 0))
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
