"""Deliveries to recipients outside the roster (a Canvas course, the admin address)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 08:05:36.935724
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipient', sa.String(length=320), nullable=True))
    # Canvas posts made before this revision: their recipient is their course
    op.execute(
        "UPDATE deliveries SET recipient = 'course:' || "
        "(SELECT course_id FROM canvas_announcements WHERE canvas_announcements.delivery_id = deliveries.id) "
        "WHERE channel = 'canvas'"
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_deliveries_recipient_kind_period_key_channel'), ['recipient', 'kind', 'period_key', 'channel'])



def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_deliveries_recipient_kind_period_key_channel'), type_='unique')
        batch_op.drop_column('recipient')

