"""Canvas posts go through the outbox: person-less deliveries, channel pauses.

No code wrote canvas_announcements before this revision, so its new NOT NULL
columns need no backfill.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 07:44:53.236035
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('channel_pauses',
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('paused_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('channel', name=op.f('pk_channel_pauses'))
    )
    with op.batch_alter_table('canvas_announcements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delivery_id', sa.Integer(), nullable=False))
        batch_op.add_column(sa.Column('section_ids', sa.JSON(), nullable=False))
        batch_op.create_unique_constraint(batch_op.f('uq_canvas_announcements_delivery_id'), ['delivery_id'])
        batch_op.create_foreign_key(batch_op.f('fk_canvas_announcements_delivery_id_deliveries'), 'deliveries', ['delivery_id'], ['id'], ondelete='CASCADE')
        batch_op.drop_column('last_error')
        batch_op.drop_column('status')
        batch_op.drop_column('topic_id')
        batch_op.drop_column('posted_at')

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.alter_column('person_id',
               existing_type=sa.INTEGER(),
               nullable=True)



def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.alter_column('person_id',
               existing_type=sa.INTEGER(),
               nullable=False)

    with op.batch_alter_table('canvas_announcements', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.VARCHAR(length=16), nullable=False, server_default='pending'))
        batch_op.add_column(sa.Column('last_error', sa.TEXT(), nullable=True))
        batch_op.add_column(sa.Column('topic_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('posted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(batch_op.f('fk_canvas_announcements_delivery_id_deliveries'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_canvas_announcements_delivery_id'), type_='unique')
        batch_op.drop_column('section_ids')
        batch_op.drop_column('delivery_id')

    op.drop_table('channel_pauses')
