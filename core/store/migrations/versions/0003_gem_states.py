"""gem state in its own table; lz4 for embeddings on PostgreSQL

The evolving state (energy, phase, coherence, uncertainty, last observed) moves from
``gems`` to ``gem_states`` (one row per gem) with its own version: saving 100k states
then rewrites narrow rows instead of rows carrying the text and a 4 KB embedding, and an
evolution no longer moves a gem's content version. On PostgreSQL the embedding column
is compressed with lz4 where the server supports it (pglz made bulk imports CPU-bound).

Revision ID: 0003
Revises: 0002
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

STATE_COLUMNS = ("energy", "phase", "coherence", "uncertainty", "last_observed")
CHECKS = {"energy_positive": "energy > 0", "coherence_range": "coherence >= 0 AND coherence <= 1",
          "uncertainty_range": "uncertainty >= 0 AND uncertainty <= 1"}


def upgrade() -> None:
    op.create_table(
        "gem_states",
        sa.Column("gem_pk", sa.Integer(), nullable=False),
        *[sa.Column(c, sa.Double(), nullable=c == "last_observed") for c in STATE_COLUMNS],
        sa.Column("version", sa.Integer(), nullable=False),
        *[sa.CheckConstraint(sql, name=op.f(f"ck_gem_states_{name}")) for name, sql in CHECKS.items()],
        sa.ForeignKeyConstraint(["gem_pk"], ["gems.pk"], name=op.f("fk_gem_states_gem_pk_gems"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("gem_pk", name=op.f("pk_gem_states")),
        postgresql_with={"fillfactor": 50},  # room for HOT updates: see GemStateRow
    )
    cols = ", ".join(STATE_COLUMNS)
    op.execute(f"INSERT INTO gem_states (gem_pk, {cols}, version) SELECT pk, {cols}, version FROM gems")
    with op.batch_alter_table("gems") as batch:
        for name in CHECKS:
            batch.drop_constraint(op.f(f"ck_gems_{name}"), type_="check")
        for c in STATE_COLUMNS:
            batch.drop_column(c)
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        try:
            with bind.begin_nested():  # a server built without lz4 refuses it: keep pglz then
                op.execute("ALTER TABLE gems ALTER COLUMN embedding SET COMPRESSION lz4")
        except sa.exc.DBAPIError:
            pass


def downgrade() -> None:
    with op.batch_alter_table("gems") as batch:
        for c in STATE_COLUMNS:
            batch.add_column(sa.Column(c, sa.Double(), nullable=True))
    for c in STATE_COLUMNS:
        op.execute(f"UPDATE gems SET {c} = (SELECT s.{c} FROM gem_states s WHERE s.gem_pk = gems.pk)")
    with op.batch_alter_table("gems") as batch:
        for c in STATE_COLUMNS:
            if c != "last_observed":
                batch.alter_column(c, existing_type=sa.Double(), nullable=False)
        for name, sql in CHECKS.items():
            batch.create_check_constraint(op.f(f"ck_gems_{name}"), sql)
    op.drop_table("gem_states")
