"""Outbox claim index ordered like the claim; drop the person index the unique key already covers

Every status change rewrites a delivery's index entries, so one index fewer
is a fifth less write work per send; the claim can now stop after one batch
instead of sorting every due row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:30:00
"""
from collections.abc import Sequence

from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_due')
        batch_op.drop_index('ix_deliveries_person_id')
        batch_op.create_index('ix_deliveries_due', ['status', 'next_attempt_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_due')
        batch_op.create_index('ix_deliveries_person_id', ['person_id'], unique=False)
        batch_op.create_index('ix_deliveries_due', ['status', 'next_attempt_at'], unique=False)
