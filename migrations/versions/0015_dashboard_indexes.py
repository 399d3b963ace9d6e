"""Indexes the dashboard needs at district scale: a partial index of the deliveries the problems page
lists (a district has millions, few with problems) and the rows' creation time (the overview's week)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 01:10:00
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROBLEM = "status IN ('failed', 'unconfirmed') OR attempts > 1 OR last_error IS NOT NULL"


def upgrade() -> None:
    op.create_index('ix_deliveries_problems', 'deliveries', ['id'], unique=False,
                    postgresql_where=sa.text(PROBLEM), sqlite_where=sa.text(PROBLEM))
    op.create_index('ix_deliveries_created_at', 'deliveries', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_deliveries_created_at', table_name='deliveries')
    op.drop_index('ix_deliveries_problems', table_name='deliveries')
