"""Partial index of notice deliveries by person

The daily escalation pass asks who got each notice and has not confirmed it;
without this index that meant reading every digest ever sent. Digest rows
are not in the index, so sending digests costs nothing more.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 11:50:00
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_notice_person', ['person_id'], unique=False,
                              postgresql_where=sa.text("kind = 'notice'"), sqlite_where=sa.text("kind = 'notice'"))


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_notice_person', postgresql_where=sa.text("kind = 'notice'"),
                            sqlite_where=sa.text("kind = 'notice'"))
