"""The carriers' index holds only the rows a carrier bundles (a few a day): the rest, a
district's weekly digests among them, have no bundle, and each of their status changes wrote
an entry for it

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 17:20:00
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUNDLED = "bundle_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index('ix_deliveries_bundle_id', table_name='deliveries')
    op.create_index('ix_deliveries_bundle_id', 'deliveries', ['bundle_id'], unique=False,
                    postgresql_where=sa.text(BUNDLED), sqlite_where=sa.text(BUNDLED))


def downgrade() -> None:
    op.drop_index('ix_deliveries_bundle_id', table_name='deliveries')
    op.create_index('ix_deliveries_bundle_id', 'deliveries', ['bundle_id'], unique=False)
