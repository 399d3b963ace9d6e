"""Incremental engagement aggregates on people: last human signal, digests sent since

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:01:18.254906
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_human_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('silent_digests', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('silent_since', sa.DateTime(timezone=True), nullable=True))
    # backfill from what is stored: the last human signal, then the digests sent since
    op.execute("""
        UPDATE people SET last_human_at = (
            SELECT max(at) FROM engagement_events e
            WHERE e.person_id = people.id AND e.is_machine = false
              AND e.kind IN ('open', 'click', 'ack', 'canvas_read'))""")
    op.execute("""
        UPDATE people SET
          silent_digests = (SELECT count(*) FROM deliveries d WHERE d.person_id = people.id AND d.kind = 'digest'
                            AND d.status = 'sent' AND (people.last_human_at IS NULL OR d.sent_at > people.last_human_at)),
          silent_since = (SELECT min(d.sent_at) FROM deliveries d WHERE d.person_id = people.id AND d.kind = 'digest'
                          AND d.status = 'sent' AND (people.last_human_at IS NULL OR d.sent_at > people.last_human_at))""")



def downgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('silent_since')
        batch_op.drop_column('silent_digests')
        batch_op.drop_column('last_human_at')

