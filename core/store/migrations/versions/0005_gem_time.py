"""gem time: lattices.epoch; gem_states.created_t, observed_at, observations

Every lattice gets ``epoch``, the UTC instant (epoch seconds) of its lattice time 0: a wall
lattice ``wall_anchor - t * unit_seconds`` (the invariant its clock keeps), a manual one its
``created_at``. Every gem state gets ``created_t`` (lattice time of creation; NULL = unknown
for the gems already there), ``observed_at`` (UTC of the last direct observation; NULL) and
``observations`` (direct observations counted from now on; 0). ``gems.created_at`` keeps
meaning the gem's own creation instant.

Revision ID: 0005
Revises: 0004
"""
from datetime import datetime, timezone
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Seconds per lattice time unit, as core.engine.durations.TIME_UNITS has them (a migration does
# not import application code, which may change after it); an unknown unit counts as an hour,
# the default unit.
_UNIT_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0,
                 "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def _seconds(value) -> float:
    """Epoch seconds of a stored ``created_at`` (a datetime, or SQLite's text); naive means UTC."""
    if value is None:
        return datetime.now(timezone.utc).timestamp()
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def upgrade() -> None:
    # plain ADD COLUMNs (no table rebuild on SQLite, which would drop the CHECK constraints it
    # does not reflect); epoch stays nullable in the schema, and every writer sets it
    op.add_column("lattices", sa.Column("epoch", sa.Double(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, clock, t, wall_anchor, time_unit, created_at FROM lattices")).all()
    for lid, clock, t, anchor, unit, created in rows:  # one row per lattice: a handful
        if clock == "wall" and anchor is not None:
            epoch = float(anchor) - float(t or 0.0) * _UNIT_SECONDS.get(unit, 3600.0)
        else:
            epoch = _seconds(created)
        bind.execute(sa.text("UPDATE lattices SET epoch = :e WHERE id = :i"), {"e": epoch, "i": lid})
    op.add_column("gem_states", sa.Column("created_t", sa.Double(), nullable=True))
    op.add_column("gem_states", sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("gem_states", sa.Column("observations", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    # DROP COLUMN (SQLite >= 3.35 and PostgreSQL): no rebuild, the constraints stay
    for column in ("observations", "observed_at", "created_t"):
        op.drop_column("gem_states", column)
    op.drop_column("lattices", "epoch")
