"""A weekly per-person engagement roll-up, backfilled from the stored events and sent digests

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 01:20:00

The backfill is plain SQL frozen here (the code's rebuild may change with later schemas):
per timezone people have and per ISO week of that timezone, the week's settled signals by
kind, then the sent digests' weeks. ``NUDGE_TIMEZONE`` (else the service default) is the
week of people who gave no timezone, as in the service.
"""
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
import os
from zoneinfo import ZoneInfo

from alembic import op
import sqlalchemy as sa

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_ZONE = "America/Chicago"  # service.config.Settings.timezone as of this revision
HUMAN = "e.is_machine = false AND e.settled = true"
ENGAGING = f"{HUMAN} AND e.kind IN ('click', 'ack', 'canvas_read', 'answer')"


def _count(condition: str) -> str:
    return f"sum(CASE WHEN {condition} THEN 1 ELSE 0 END)"


WEEK_SUMS = f"""
    INSERT INTO engagement_weeks (person_id, week, delivered, human_opens, machine_opens, machine_signals, clicks,
                                  acks, canvas_reads, answers, last_human_at, engaged)
    SELECT e.person_id, :week, false, {_count(f"{HUMAN} AND e.kind = 'open'")},
           {_count("e.is_machine = true AND e.kind = 'open'")}, {_count("e.is_machine = true AND e.settled = true")},
           {_count(f"{ENGAGING} AND e.kind = 'click'")}, {_count(f"{ENGAGING} AND e.kind = 'ack'")},
           {_count(f"{ENGAGING} AND e.kind = 'canvas_read'")}, {_count(f"{ENGAGING} AND e.kind = 'answer'")},
           max(CASE WHEN {HUMAN} THEN e.at END), {_count(ENGAGING)} > 0
    FROM engagement_events e JOIN people p ON p.id = e.person_id
    WHERE e.at >= :start AND e.at < :end AND coalesce(p.timezone, :default_zone) = :zone
      AND e.kind IN ('open', 'click', 'ack', 'canvas_read', 'answer')
    GROUP BY e.person_id
"""
DELIVERED = """
    INSERT INTO engagement_weeks (person_id, week, delivered, human_opens, machine_opens, machine_signals, clicks,
                                  acks, canvas_reads, answers, engaged)
    SELECT DISTINCT d.person_id, d.period_key, true, 0, 0, 0, 0, 0, 0, 0, false
    FROM deliveries d WHERE d.kind = 'digest' AND d.status = 'sent' AND d.person_id IS NOT NULL
    ON CONFLICT (person_id, week) DO UPDATE SET delivered = true
"""


def _default_zone() -> str:
    name = os.environ.get("NUDGE_TIMEZONE", DEFAULT_ZONE)
    try:
        ZoneInfo(name)
    except Exception:  # noqa: BLE001 - the service refuses a bad zone itself; the backfill takes the default
        return DEFAULT_ZONE
    return name


def _mondays(first: date, last: date):
    monday = first - timedelta(days=first.weekday())
    while monday <= last:
        yield monday
        monday += timedelta(weeks=1)


def upgrade() -> None:
    op.create_table(
        'engagement_weeks',
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('week', sa.String(length=8), nullable=False),
        sa.Column('delivered', sa.Boolean(), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in (
            'human_opens', 'machine_opens', 'machine_signals', 'clicks', 'acks', 'canvas_reads', 'answers')],
        sa.Column('last_human_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('engaged', sa.Boolean(), nullable=False),
        sa.CheckConstraint('engaged = (clicks + acks + canvas_reads + answers > 0)',
                           name=op.f('ck_engagement_weeks_engaged_by_definition')),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_engagement_weeks_person_id_people')),
        sa.PrimaryKeyConstraint('person_id', 'week', name=op.f('pk_engagement_weeks')),
    )
    op.create_index('ix_engagement_weeks_week', 'engagement_weeks', ['week', 'person_id'], unique=False,
                    postgresql_include=['delivered', 'engaged'])
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    first, last = bind.execute(sa.text("SELECT min(at), max(at) FROM engagement_events")).one()
    default_zone = _default_zone()
    if first is not None:
        if isinstance(first, str):  # SQLite hands raw text back here
            first, last = datetime.fromisoformat(first), datetime.fromisoformat(last)
        first, last = (moment if moment.tzinfo else moment.replace(tzinfo=UTC) for moment in (first, last))
        zones = bind.execute(sa.text("SELECT DISTINCT coalesce(timezone, :z) FROM people"), {"z": default_zone})
        statement = sa.text(WEEK_SUMS).bindparams(sa.bindparam("start", type_=sa.DateTime(timezone=True)),
                                                  sa.bindparam("end", type_=sa.DateTime(timezone=True)))
        for (zone,) in zones.all():
            local = ZoneInfo(zone)
            for monday in _mondays(first.astimezone(local).date(), last.astimezone(local).date()):
                start = datetime.combine(monday, time(0), local).astimezone(UTC)
                end = datetime.combine(monday + timedelta(days=7), time(0), local).astimezone(UTC)
                year, week, _ = monday.isocalendar()
                bind.execute(statement, {
                    "week": f"{year}-W{week:02d}", "zone": zone, "default_zone": default_zone,
                    "start": start.replace(tzinfo=None) if sqlite else start,
                    "end": end.replace(tzinfo=None) if sqlite else end})
    bind.execute(sa.text(DELIVERED))


def downgrade() -> None:
    op.drop_index('ix_engagement_weeks_week', table_name='engagement_weeks')
    op.drop_table('engagement_weeks')
