"""SQLAlchemy 2 typed ORM of the Crystal Lattice DB.

The ORM classes define the schema (Alembic migrations create it) and serve the small,
per-record operations (gem CRUD, runs, reflections). The hot paths, loading a lattice's
state into arrays and saving it back, use Core ``select``/``update`` on the same tables
with bulk parameter lists, never a per-row ORM loop.

Phase is stored unwrapped, as ``core.engine.lattice.Lattice`` keeps it. Floats are float64 (``Double``): state must round-trip bit for bit so that replaying the
log reproduces arrays exactly. Embeddings are float32 little-endian bytes (``LargeBinary``):
half the size, ample for cosine similarity.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import (JSON, Boolean, CheckConstraint, DateTime, Double, ForeignKey, Index, Integer,
                        LargeBinary, MetaData, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# Deterministic constraint names: Alembic and both backends then agree on them.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class LatticeRow(Base):
    """A named lattice: its parameters, embedder, clock and version."""

    __tablename__ = "lattices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    embedder: Mapped[str] = mapped_column(String(100))
    dim: Mapped[int] = mapped_column(Integer)
    time_unit: Mapped[str] = mapped_column(String(20))
    clock: Mapped[str] = mapped_column(String(10), default="manual")  # manual | wall
    t: Mapped[float] = mapped_column(Double, default=0.0)
    # Wall-clock lattices: the epoch second that lattice time ``t`` corresponds to.
    wall_anchor: Mapped[Optional[float]] = mapped_column(Double, nullable=True)
    # The epoch second (UTC) of lattice time 0 (migration 0005). Authoritative for manual
    # lattices; for wall lattices it is derived, ``wall_anchor - t * unit`` (records.epoch_seconds),
    # so the clock's catch-up never has to keep a second column in step: the stored value is
    # the one of the last clock change.
    epoch: Mapped[Optional[float]] = mapped_column(Double, nullable=True, default=lambda: utcnow().timestamp())
    version: Mapped[int] = mapped_column(Integer, default=1)  # +1 on every change
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (CheckConstraint("clock IN ('manual', 'wall')", name="clock"),)


class GemRow(Base):
    """One gem's content: text and embedding. ``seq`` is its stable position in the lattice.

    The state that evolves lives in :class:`GemStateRow` (one row per gem): evolving a
    lattice rewrites 100k narrow state rows, not 100k rows carrying a 4 KB embedding and
    the text, and an evolution does not move the content's row ``version`` (so editing a
    title never conflicts with the clock).
    """

    __tablename__ = "gems"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    lattice_id: Mapped[int] = mapped_column(ForeignKey("lattices.id", ondelete="CASCADE"))
    gem_id: Mapped[str] = mapped_column(String(200))  # stable external id
    seq: Mapped[int] = mapped_column(Integer)  # load order, kept by snapshots and replay
    title: Mapped[str] = mapped_column(String(500), default="")
    content: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(500), default="")
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32 little-endian, dim values
    # the gem's own creation instant (a timestamped import's created_at; else when it was added)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)  # content changes
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)  # content row version, +1 on every content change
    state: Mapped["GemStateRow"] = relationship(back_populates="gem", cascade="all, delete-orphan",
                                                passive_deletes=True)

    __table_args__ = (
        UniqueConstraint("lattice_id", "gem_id", name="uq_gems_lattice_gem_id"),
        UniqueConstraint("lattice_id", "seq", name="uq_gems_lattice_seq"),
    )


class GemStateRow(Base):
    """The quantum state of one gem (migration 0003 moved it out of ``gems``)."""

    __tablename__ = "gem_states"

    gem_pk: Mapped[int] = mapped_column(ForeignKey("gems.pk", ondelete="CASCADE"), primary_key=True)
    energy: Mapped[float] = mapped_column(Double)
    phase: Mapped[float] = mapped_column(Double)
    coherence: Mapped[float] = mapped_column(Double)
    uncertainty: Mapped[float] = mapped_column(Double)
    last_observed: Mapped[Optional[float]] = mapped_column(Double, nullable=True)  # lattice time
    # migration 0005: the gem's own time. created_t: lattice time of creation (NULL: unknown, a gem
    # from before the upgrade); observed_at: UTC of the last direct observation; observations:
    # direct observations counted since the upgrade
    created_t: Mapped[Optional[float]] = mapped_column(Double, nullable=True)
    observed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    observations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    version: Mapped[int] = mapped_column(Integer, default=1)  # state version, +1 on every state change
    gem: Mapped[GemRow] = relationship(back_populates="state")

    __table_args__ = (
        CheckConstraint("energy > 0", name="energy_positive"),
        CheckConstraint("coherence >= 0 AND coherence <= 1", name="coherence_range"),
        CheckConstraint("uncertainty >= 0 AND uncertainty <= 1", name="uncertainty_range"),
        # room on each page for a new version of its rows: state updates stay HOT
        # (no index entries to add), which made saving 100k states ~3x faster on PostgreSQL
        {"postgresql_with": {"fillfactor": 50}},
    )


class EntanglementRow(Base):
    """An undirected weighted edge; stored once with gem_a < gem_b (by pk)."""

    __tablename__ = "entanglements"

    lattice_id: Mapped[int] = mapped_column(ForeignKey("lattices.id", ondelete="CASCADE"), index=True)
    gem_a: Mapped[int] = mapped_column(ForeignKey("gems.pk", ondelete="CASCADE"), primary_key=True)
    gem_b: Mapped[int] = mapped_column(ForeignKey("gems.pk", ondelete="CASCADE"), primary_key=True)
    weight: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        CheckConstraint("gem_a < gem_b", name="ordered"),
        CheckConstraint("weight > 0 AND weight <= 1", name="weight_range"),
        # the primary key finds a gem's edges as gem_a; this finds them as gem_b (a reflection
        # reads the edges of the gems it used, not the whole lattice's)
        Index("ix_entanglements_gem_b", "gem_b"),
    )


class TransactionRow(Base):
    """One entry of the transaction log (append-only).

    ``before``/``after`` hold the changed values; an evolution holds only its steps and
    parameters (it is deterministic: replay recomputes it).
    """

    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lattice_id: Mapped[int] = mapped_column(ForeignKey("lattices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    gem_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    before: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON, nullable=True)
    after: Mapped[Optional[dict[str, Any]]] = mapped_column(JSON, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    lattice_t: Mapped[float] = mapped_column(Double)  # lattice time after the change
    lattice_version: Mapped[int] = mapped_column(Integer)  # lattice version after the change
    wall_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_transactions_lattice_id_id", "lattice_id", "id"),)


class ReflectionRow(Base):
    """A question answered from the lattice (the reflection issue fills the content)."""

    __tablename__ = "reflections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lattice_id: Mapped[int] = mapped_column(ForeignKey("lattices.id", ondelete="CASCADE"), index=True)
    query: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text, default="")
    provider_trace: Mapped[list[Any]] = mapped_column(JSON, default=list)
    gems_used: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{gem_id, score terms...}]
    latency_ms: Mapped[Optional[float]] = mapped_column(Double, nullable=True)
    tokens_in: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    tokens_out: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    lattice_t: Mapped[float] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RunRow(Base):
    """A saved experiment: parameters, metrics and a compact trajectory (npz bytes)."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lattice_id: Mapped[Optional[int]] = mapped_column(ForeignKey("lattices.id", ondelete="SET NULL"),
                                                      nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    trajectory: Mapped[Optional[bytes]] = mapped_column(LargeBinary, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SnapshotRow(Base):
    """Metadata of a snapshot written (backup) or read (restore)."""

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lattice_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(10))  # backup | restore
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))  # of the manifest
    lattice_t: Mapped[float] = mapped_column(Double)
    lattice_version: Mapped[int] = mapped_column(Integer)
    last_tx_id: Mapped[int] = mapped_column(Integer)
    gems: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditRow(Base):
    """One administrative action (append-only): user changes, backups, restores, deletions,
    key rotations, re-embeddings. Who, with which role, what, on what, when, details."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    wall_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(50))
    target: Mapped[str] = mapped_column(String(500), default="")
    outcome: Mapped[str] = mapped_column(String(20), default="ok")  # ok | started | denied | failed
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --------------------------------------------------------------- API auth (migration 0006)
# Times of these three tables are epoch seconds (UTC, ``Double``), like ``lattices.epoch``: the
# token service compares them with its own (injectable) clock, and JWT claims are epoch seconds too.
class SigningKeyRow(Base):
    """A JWT signing key of the API's token service (core.auth.signing_keys).

    ``active_slot`` is 1 for the one active key and NULL for every other: the unique constraint
    makes a second active key impossible, so two nodes creating or rotating at once cannot both
    win. ``private_key`` is the PKCS#8 PEM, encrypted (``fernet:``) when the store has keys.
    """

    __tablename__ = "jwt_signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(20))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_key: Mapped[str] = mapped_column(Text)
    active_slot: Mapped[Optional[int]] = mapped_column(Integer, nullable=True, unique=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Double)
    superseded_at: Mapped[Optional[float]] = mapped_column(Double, nullable=True)  # when a newer key took over
    retired_at: Mapped[Optional[float]] = mapped_column(Double, nullable=True)  # refused from then on

    __table_args__ = (CheckConstraint("active_slot IS NULL OR active_slot = 1", name="one_active"),)


class ApiKeyRow(Base):
    """A program's API key: only the SHA-256 of the secret is stored (core.auth.api_keys)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the public part of glk_<id>_<secret>
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Double)
    revoked_at: Mapped[Optional[float]] = mapped_column(Double, nullable=True)
    last_used_at: Mapped[Optional[float]] = mapped_column(Double, nullable=True)

    __table_args__ = (CheckConstraint("role IN ('admin', 'researcher', 'viewer')", name="role"),)


class RefreshTokenRow(Base):
    """One refresh token (its SHA-256), of a family that rotates on every use (core.auth.tokens)."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)  # user name, or key:<api key id>
    audience: Mapped[list[str]] = mapped_column(JSON)
    issued_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double)
    used_at: Mapped[Optional[float]] = mapped_column(Double, nullable=True)  # exchanged for a new pair
    revoked_at: Mapped[Optional[float]] = mapped_column(Double, nullable=True)  # reuse, key revoked, ...
