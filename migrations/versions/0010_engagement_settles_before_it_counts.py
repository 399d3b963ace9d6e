"""Engagement settles before it counts: unsettled clicks, last engagement (not any human signal),
and the latest time of pruned events

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 19:45:00
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# what counted before: any human signal; now only a settled engaging one (an open is not engagement)
ENGAGING = "('click', 'ack', 'canvas_read', 'answer')"


def upgrade() -> None:
    with op.batch_alter_table('engagement_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('settled', sa.Boolean(), server_default=sa.text('true'), nullable=False))
        batch_op.create_index('ix_engagement_events_unsettled', ['delivery_id'], unique=False,
                              postgresql_where=sa.text('NOT settled'), sqlite_where=sa.text('NOT settled'))
    with op.batch_alter_table('engagement_archive', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.alter_column('last_human_at', new_column_name='last_engaged_at')
    # the stored events keep their verdicts; the aggregates follow the one definition of engaged
    op.execute(f"""
        UPDATE people SET last_engaged_at = (
            SELECT max(at) FROM engagement_events e
            WHERE e.person_id = people.id AND e.is_machine = false AND e.kind IN {ENGAGING})""")
    op.execute("""
        UPDATE people SET
          silent_digests = (SELECT count(*) FROM deliveries d WHERE d.person_id = people.id AND d.kind = 'digest'
                            AND d.status = 'sent'
                            AND (people.last_engaged_at IS NULL OR d.sent_at >= people.last_engaged_at)),
          silent_since = (SELECT min(d.sent_at) FROM deliveries d WHERE d.person_id = people.id
                          AND d.kind = 'digest' AND d.status = 'sent'
                          AND (people.last_engaged_at IS NULL OR d.sent_at >= people.last_engaged_at))""")


def downgrade() -> None:
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.alter_column('last_engaged_at', new_column_name='last_human_at')
    with op.batch_alter_table('engagement_archive', schema=None) as batch_op:
        batch_op.drop_column('last_at')
    with op.batch_alter_table('engagement_events', schema=None) as batch_op:
        batch_op.drop_index('ix_engagement_events_unsettled',
                            postgresql_where=sa.text('NOT settled'), sqlite_where=sa.text('NOT settled'))
        batch_op.drop_column('settled')
