"""A partial index of the open rungs above the person (level 1 and up): every report's status
asks whether a person is escalated, and a district's open rungs are mostly the people's own
reminders (level 0), so reading them all for it cost a read of the whole table each time

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29 03:05:00
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_ABOVE = "resolved_at IS NULL AND level >= 1"


def upgrade() -> None:
    op.create_index('ix_escalations_open_above', 'escalations', ['person_id'], unique=False,
                    postgresql_where=sa.text(OPEN_ABOVE), sqlite_where=sa.text(OPEN_ABOVE))


def downgrade() -> None:
    op.drop_index('ix_escalations_open_above', table_name='escalations')
