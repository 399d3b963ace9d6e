"""Every delivery item carries exactly one reference: a tip or a notice

Before, an item could name both or neither, and a writer that mixed the two
kinds in one statement wrote rows the schema accepted. Items that name
nothing carry nothing and are removed first.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 17:00:00
"""
from collections.abc import Sequence

from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ONE_REFERENCE = "(tip_id IS NULL) <> (notice_id IS NULL)"


def upgrade() -> None:
    op.execute("DELETE FROM delivery_items WHERE tip_id IS NULL AND notice_id IS NULL")
    with op.batch_alter_table('delivery_items', schema=None) as batch_op:
        batch_op.create_check_constraint('one_reference', ONE_REFERENCE)


def downgrade() -> None:
    with op.batch_alter_table('delivery_items', schema=None) as batch_op:
        batch_op.drop_constraint('one_reference', type_='check')
