"""Tips carry their evidence (verbatim quotes) and a state: ok, held until their section exists,
or suspended when a version changes what they quote; notices keep a plain-text account of the change

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 20:10:00
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tips', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quotes', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('state', sa.String(length=16), server_default='ok', nullable=False))
        batch_op.add_column(sa.Column('state_reason', sa.String(length=500), nullable=True))
    op.execute("UPDATE tips SET quotes = '[]'")
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('summary_text', sa.Text(), nullable=True))
    with op.batch_alter_table('tips', schema=None) as batch_op:
        batch_op.alter_column('quotes', existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_column('summary_text')
    with op.batch_alter_table('tips', schema=None) as batch_op:
        batch_op.drop_column('state_reason')
        batch_op.drop_column('state')
        batch_op.drop_column('quotes')
