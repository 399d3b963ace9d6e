"""One email per person per day: held rows, their carrier (bundle_id) and the day an email is for

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 22:15:00
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mail_day', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('bundle_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_deliveries_bundle_id_deliveries', 'deliveries', ['bundle_id'], ['id'])
        batch_op.create_index('ix_deliveries_bundle_id', ['bundle_id'], unique=False)
        batch_op.create_index('ix_deliveries_mail_day', ['person_id', 'mail_day'], unique=False)
        batch_op.create_index('ix_deliveries_held', ['person_id'], unique=False,
                              postgresql_where=sa.text("status = 'held'"), sqlite_where=sa.text("status = 'held'"))


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_held', postgresql_where=sa.text("status = 'held'"),
                            sqlite_where=sa.text("status = 'held'"))
        batch_op.drop_index('ix_deliveries_mail_day')
        batch_op.drop_index('ix_deliveries_bundle_id')
        batch_op.drop_constraint('fk_deliveries_bundle_id_deliveries', type_='foreignkey')
        batch_op.drop_column('bundle_id')
        batch_op.drop_column('mail_day')
