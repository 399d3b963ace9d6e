"""The weekly trend's totals: triggers on engagement_weeks append how each write changed a week's
delivered cells and its delivered-and-engaged cells, whichever path wrote them, so a district's
trend adds up a few rows a week instead of counting 800,000 cells. Backfilled from the cells,
after the triggers exist: creating them locks the table against writers until this commits.
(SQLite loses a table's triggers when a batch migration copies it: such a migration of
engagement_weeks must create them again.)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 20:00:00
"""
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PostgreSQL: a statement's new cells as one row a week, from its transition table (a dispatched
# batch marks 500 new cells delivered in one statement); a changed cell as a row of its own, only
# when an update names delivered or engaged and changes what they count (an open that is added to
# a cell fires nothing; a recount that finds the cell as it was neither)
POSTGRESQL = [
    """
    CREATE FUNCTION engagement_week_totals_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO engagement_week_totals (week, delivered, engaged)
        SELECT week, count(*), count(*) FILTER (WHERE engaged) FROM new_cells WHERE delivered GROUP BY week;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION engagement_week_totals_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO engagement_week_totals (week, delivered, engaged) VALUES (OLD.week, -1, -OLD.engaged::int);
        ELSE
            INSERT INTO engagement_week_totals (week, delivered, engaged)
            VALUES (NEW.week, NEW.delivered::int - OLD.delivered::int,
                    (NEW.delivered AND NEW.engaged)::int - (OLD.delivered AND OLD.engaged)::int);
        END IF;
        RETURN NULL;
    END $$
    """,
    """CREATE TRIGGER engagement_week_totals_insert AFTER INSERT ON engagement_weeks
       REFERENCING NEW TABLE AS new_cells FOR EACH STATEMENT EXECUTE FUNCTION engagement_week_totals_insert()""",
    """CREATE TRIGGER engagement_week_totals_update AFTER UPDATE OF delivered, engaged ON engagement_weeks
       FOR EACH ROW WHEN (NEW.delivered <> OLD.delivered
                          OR (NEW.delivered AND NEW.engaged) <> (OLD.delivered AND OLD.engaged))
       EXECUTE FUNCTION engagement_week_totals_change()""",
    """CREATE TRIGGER engagement_week_totals_delete AFTER DELETE ON engagement_weeks
       FOR EACH ROW WHEN (OLD.delivered) EXECUTE FUNCTION engagement_week_totals_change()""",
]

# SQLite has row triggers only: a row per cell that changes (a school's few hundred people)
SQLITE = [
    """CREATE TRIGGER engagement_week_totals_insert AFTER INSERT ON engagement_weeks WHEN NEW.delivered
       BEGIN
           INSERT INTO engagement_week_totals (week, delivered, engaged) VALUES (NEW.week, 1, NEW.engaged);
       END""",
    """CREATE TRIGGER engagement_week_totals_update AFTER UPDATE OF delivered, engaged ON engagement_weeks
       WHEN NEW.delivered <> OLD.delivered OR (NEW.delivered AND NEW.engaged) <> (OLD.delivered AND OLD.engaged)
       BEGIN
           INSERT INTO engagement_week_totals (week, delivered, engaged)
           VALUES (NEW.week, NEW.delivered - OLD.delivered,
                   (NEW.delivered AND NEW.engaged) - (OLD.delivered AND OLD.engaged));
       END""",
    """CREATE TRIGGER engagement_week_totals_delete AFTER DELETE ON engagement_weeks WHEN OLD.delivered
       BEGIN
           INSERT INTO engagement_week_totals (week, delivered, engaged) VALUES (OLD.week, -1, -OLD.engaged);
       END""",
]

TRIGGERS = ("engagement_week_totals_insert", "engagement_week_totals_update", "engagement_week_totals_delete")


def upgrade() -> None:
    op.create_table(
        'engagement_week_totals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('week', sa.String(length=8), nullable=False),
        sa.Column('delivered', sa.Integer(), nullable=False),
        sa.Column('engaged', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_engagement_week_totals_week', 'engagement_week_totals', ['week'], unique=False)
    for statement in POSTGRESQL if op.get_bind().dialect.name == "postgresql" else SQLITE:
        op.execute(statement)
    op.execute("INSERT INTO engagement_week_totals (week, delivered, engaged) "
               "SELECT week, count(*), sum(CASE WHEN engaged THEN 1 ELSE 0 END) FROM engagement_weeks "
               "WHERE delivered GROUP BY week")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name}" + (" ON engagement_weeks" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION engagement_week_totals_insert()")
        op.execute("DROP FUNCTION engagement_week_totals_change()")
    op.drop_index('ix_engagement_week_totals_week', table_name='engagement_week_totals')
    op.drop_table('engagement_week_totals')
