"""index entanglements by gem_b: a gem's edges found without scanning the lattice's

Revision ID: 0004
Revises: 0003
"""
from typing import Sequence, Union

from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("ix_entanglements_gem_b", "entanglements", ["gem_b"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_entanglements_gem_b", table_name="entanglements")
