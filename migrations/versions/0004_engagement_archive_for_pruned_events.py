"""Monthly sums of engagement events pruned after the retention window

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 08:25:45.310268
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('engagement_archive',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('is_machine', sa.Boolean(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_engagement_archive_person_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_engagement_archive')),
    sa.UniqueConstraint('person_id', 'month', 'kind', 'is_machine', name=op.f('uq_engagement_archive_person_id_month_kind_is_machine'))
    )


def downgrade() -> None:
    op.drop_table('engagement_archive')
