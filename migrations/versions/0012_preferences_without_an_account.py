"""Preferences without an account: a digest day, on leave until a date, tips in Canvas only

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 20:40:00
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest_weekday', sa.String(length=9), nullable=True))
        batch_op.add_column(sa.Column('leave_until', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('canvas_only', sa.Boolean(), server_default=sa.text('false'), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('canvas_only')
        batch_op.drop_column('leave_until')
        batch_op.drop_column('digest_weekday')
