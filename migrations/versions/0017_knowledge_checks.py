"""Knowledge checks: questions (kept like tips), a digest's item may be a question, and answers
(one recorded per digest; a person's first answer to a question is the one scored)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-28 04:20:00
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TWO_REFERENCES = "(tip_id IS NULL) <> (notice_id IS NULL)"
ONE_REFERENCE = ("(CASE WHEN tip_id IS NULL THEN 0 ELSE 1 END + CASE WHEN notice_id IS NULL THEN 0 ELSE 1 END"
                 " + CASE WHEN question_id IS NULL THEN 0 ELSE 1 END) = 1")


def upgrade() -> None:
    op.create_table(
        'questions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('policy_id', sa.Integer(), nullable=False),
        sa.Column('section', sa.String(length=300), nullable=False),
        sa.Column('prompt', sa.String(length=300), nullable=False),
        sa.Column('options', sa.JSON(), nullable=False),
        sa.Column('correct', sa.Integer(), nullable=False),
        sa.Column('explanation', sa.String(length=300), nullable=False),
        sa.Column('quotes', sa.JSON(), nullable=False),
        sa.Column('tip_key', sa.String(length=100), nullable=True),
        sa.Column('audience', sa.JSON(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('source', sa.String(length=500), nullable=True),
        sa.Column('state', sa.String(length=16), server_default='ok', nullable=False),
        sa.Column('state_reason', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('correct >= 0', name=op.f('ck_questions_correct_is_an_option')),
        sa.ForeignKeyConstraint(['policy_id'], ['policies.id'], name=op.f('fk_questions_policy_id_policies')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_questions')),
        sa.UniqueConstraint('key', name=op.f('uq_questions_key')),
    )
    op.create_index('ix_questions_policy_id', 'questions', ['policy_id'], unique=False)
    with op.batch_alter_table('delivery_items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('question_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_delivery_items_question_id_questions'), 'questions',
                                    ['question_id'], ['id'])
        batch_op.create_index('ix_delivery_items_question_id', ['question_id'], unique=False)
        batch_op.drop_constraint('one_reference', type_='check')
        batch_op.create_check_constraint('one_reference', ONE_REFERENCE)
    op.create_table(
        'answers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('question_id', sa.Integer(), nullable=False),
        sa.Column('delivery_id', sa.Integer(), nullable=False),
        sa.Column('choice', sa.Integer(), nullable=False),
        sa.Column('correct', sa.Boolean(), nullable=False),
        sa.Column('scored', sa.Boolean(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_answers_delivery_id_deliveries')),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_answers_person_id_people')),
        sa.ForeignKeyConstraint(['question_id'], ['questions.id'], name=op.f('fk_answers_question_id_questions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_answers')),
        sa.UniqueConstraint('person_id', 'question_id', 'delivery_id',
                            name=op.f('uq_answers_person_id_question_id_delivery_id')),
    )
    op.create_index('ix_answers_question_id', 'answers', ['question_id'], unique=False)
    op.create_index('ix_answers_scored', 'answers', ['person_id', 'question_id'], unique=True,
                    postgresql_where=sa.text('scored'), sqlite_where=sa.text('scored'))


def downgrade() -> None:
    op.drop_index('ix_answers_scored', table_name='answers')
    op.drop_index('ix_answers_question_id', table_name='answers')
    op.drop_table('answers')
    op.execute("DELETE FROM delivery_items WHERE question_id IS NOT NULL")
    with op.batch_alter_table('delivery_items', schema=None) as batch_op:
        batch_op.drop_constraint('one_reference', type_='check')
        batch_op.create_check_constraint('one_reference', TWO_REFERENCES)
        batch_op.drop_index('ix_delivery_items_question_id')
        batch_op.drop_constraint(op.f('fk_delivery_items_question_id_questions'), type_='foreignkey')
        batch_op.drop_column('question_id')
    op.drop_index('ix_questions_policy_id', table_name='questions')
    op.drop_table('questions')
