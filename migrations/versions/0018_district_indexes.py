"""Two partial indexes for a district: a person's sent digests by time (the escalation pass counts
the digests since each open nudge, refreshing the aggregates those since someone last engaged;
a year of digests puts each of a person's 52 rows in a different page of the table), and who got
each notice by its outbox key (a notice's progress is counted from the index alone)

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-28 10:20:00
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SENT_DIGEST = "kind = 'digest' AND status = 'sent'"


NOTICE = "kind = 'notice'"


def upgrade() -> None:
    op.create_index('ix_deliveries_notice_key', 'deliveries', ['period_key', 'person_id'], unique=False,
                    postgresql_where=sa.text(NOTICE), sqlite_where=sa.text(NOTICE))
    op.create_index('ix_deliveries_digests_sent', 'deliveries', ['person_id', 'sent_at'], unique=False,
                    postgresql_where=sa.text(SENT_DIGEST), sqlite_where=sa.text(SENT_DIGEST))


def downgrade() -> None:
    op.drop_index('ix_deliveries_digests_sent', table_name='deliveries')
    op.drop_index('ix_deliveries_notice_key', table_name='deliveries')
