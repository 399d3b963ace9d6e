"""Who is below whom, every level (people_ancestors), rebuilt by each roster import, backfilled here;
people by name (the pages list them by name, 200 at a time)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-28 01:45:00
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'people_ancestors',
        sa.Column('ancestor_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['ancestor_id'], ['people.id'], name=op.f('fk_people_ancestors_ancestor_id_people')),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_people_ancestors_person_id_people')),
        sa.PrimaryKeyConstraint('ancestor_id', 'person_id', name=op.f('pk_people_ancestors')),
    )
    op.create_index('ix_people_ancestors_person_id', 'people_ancestors', ['person_id'], unique=False)
    op.create_index('ix_people_name', 'people', ['name', 'id'], unique=False)
    op.execute("""
        INSERT INTO people_ancestors (ancestor_id, person_id)
        WITH RECURSIVE below(ancestor_id, person_id) AS (
            SELECT supervisor_id, id FROM people WHERE supervisor_id IS NOT NULL
            UNION
            SELECT below.ancestor_id, p.id FROM below JOIN people p ON p.supervisor_id = below.person_id)
        SELECT ancestor_id, person_id FROM below""")


def downgrade() -> None:
    op.drop_index('ix_people_name', table_name='people')
    op.drop_index('ix_people_ancestors_person_id', table_name='people_ancestors')
    op.drop_table('people_ancestors')
