"""The data model. Times are stored in UTC and always come back timezone-aware."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


MAX_ROW_ID = 2**31 - 1  # ids are 32-bit integer columns: a larger number from outside names no row


ONE_REFERENCE = ("(CASE WHEN tip_id IS NULL THEN 0 ELSE 1 END + CASE WHEN notice_id IS NULL THEN 0 ELSE 1 END"
                 " + CASE WHEN question_id IS NULL THEN 0 ELSE 1 END) = 1")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC; SQLite's naive values come back as aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use timezone-aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        """None on PostgreSQL: psycopg hands back aware UTC values itself (connections are opened in
        UTC, service.db.make_engine), and a district's pass reads 640,000 of them."""
        return None if dialect.name == "postgresql" else super().result_processor(dialect, coltype)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class Person(Base):
    """An employee. Never deleted: a person missing from the roster is deactivated."""

    __tablename__ = "people"
    __table_args__ = (Index("ix_people_name", "name", "id"),)  # pages list people by name, 200 at a time

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-cased
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(64), index=True)
    department: Mapped[str | None] = mapped_column(String(200))
    supervisor_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    timezone: Mapped[str | None] = mapped_column(String(64))  # None: the service default
    canvas_user_id: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    deactivated_at: Mapped[datetime | None]
    undeliverable_since: Mapped[datetime | None]
    undeliverable_reason: Mapped[str | None] = mapped_column(String(200))
    # preferences, set by the person through the signed link in every email's footer
    digest_weekday: Mapped[str | None] = mapped_column(String(9))  # None: NUDGE_DIGEST_WEEKDAY
    leave_until: Mapped[date | None] = mapped_column(Date)  # on leave through this day: no digest, no ladder
    canvas_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # aggregates derived from the events (`nudge engagement rebuild` recomputes them), kept current by
    # every path that settles a signal or sends a digest, so the daily escalation pass reads one row
    # per person instead of scanning millions of events
    last_engaged_at: Mapped[datetime | None]  # the last settled engaging signal (service.engagement.definition)
    silent_digests: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    silent_since: Mapped[datetime | None]  # when the first digest after the last engagement went out
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    supervisor: Mapped[Person | None] = relationship(remote_side=[id], back_populates="reports")
    reports: Mapped[list[Person]] = relationship(back_populates="supervisor")


class PersonAncestor(Base):
    """Who is below whom, every level: a team of any size is one indexed lookup for the reports
    (the planner misjudged a recursive query by 100x). Rebuilt by each roster import, the only
    writer of ``supervisor_id`` (:func:`service.roster.rebuild_lineage`)."""

    __tablename__ = "people_ancestors"

    ancestor_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True, index=True)


class Policy(Base):
    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[PolicyVersion]] = relationship(
        back_populates="policy", order_by="PolicyVersion.sequence"
    )


class PolicyVersion(Base):
    """One imported text of a policy; ``sequence`` orders versions, ``label`` names them."""

    __tablename__ = "policy_versions"
    __table_args__ = (
        UniqueConstraint("policy_id", "label"),
        UniqueConstraint("policy_id", "sequence"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    editorial: Mapped[bool] = mapped_column(Boolean, default=False)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)

    policy: Mapped[Policy] = relationship(back_populates="versions")
    sections: Mapped[list[PolicySection]] = relationship(
        back_populates="version", order_by="PolicySection.position", cascade="all, delete-orphan"
    )


class PolicySection(Base):
    __tablename__ = "policy_sections"
    __table_args__ = (UniqueConstraint("version_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))

    version: Mapped[PolicyVersion] = relationship(back_populates="sections")


class Tip(Base):
    """A bite-sized tip. ``key`` is the pack's stable id; ``position`` is its rotation order."""

    __tablename__ = "tips"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"), index=True)
    section: Mapped[str] = mapped_column(String(300))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    audience: Mapped[list[str]] = mapped_column(default=list)
    refs: Mapped[list[str]] = mapped_column(default=list)
    position: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str | None] = mapped_column(String(500))  # the pack file it came from
    quotes: Mapped[list[str]] = mapped_column(default=list)  # its evidence: verbatim sentences of its section
    # ok (sendable), held (its section is not in the policy yet) or suspended (its quotes are not in the
    # current text): kept by service.content.review whenever a pack or a version is imported
    state: Mapped[str] = mapped_column(String(16), default="ok", server_default="ok")
    state_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    policy: Mapped[Policy] = relationship()

    def is_for(self, role: str) -> bool:
        return "all" in self.audience or role in self.audience


class Question(Base):
    """A knowledge check on one section: the question, its options, the right one and why, with
    its evidence (verbatim quotes of the section) kept like a tip's. ``tip_key``: the tip a wrong
    answer brings back (else the section's first)."""

    __tablename__ = "questions"
    __table_args__ = (CheckConstraint("correct >= 0", name="correct_is_an_option"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id"), index=True)
    section: Mapped[str] = mapped_column(String(300))
    prompt: Mapped[str] = mapped_column(String(300))
    options: Mapped[list[str]] = mapped_column(default=list)
    correct: Mapped[int] = mapped_column(Integer)  # index into options
    explanation: Mapped[str] = mapped_column(String(300))
    quotes: Mapped[list[str]] = mapped_column(default=list)
    tip_key: Mapped[str | None] = mapped_column(String(100))
    audience: Mapped[list[str]] = mapped_column(default=list)
    position: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str | None] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16), default="ok", server_default="ok")  # as a tip's
    state_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    policy: Mapped[Policy] = relationship()

    def is_for(self, role: str) -> bool:
        return "all" in self.audience or role in self.audience


class Notice(Base):
    """A policy-update notice: who must acknowledge a version, and by when."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_version_id: Mapped[int] = mapped_column(
        ForeignKey("policy_versions.id", ondelete="CASCADE"), unique=True
    )
    audience: Mapped[list[str]] = mapped_column(default=lambda: ["all"])
    summary: Mapped[str] = mapped_column(Text, default="")  # what changed, as safe HTML
    summary_text: Mapped[str | None] = mapped_column(Text)  # the same, as plain text
    due_days: Mapped[int] = mapped_column(Integer, default=14)
    due_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    policy_version: Mapped[PolicyVersion] = relationship()


# a delivery the problems page lists: given up, in doubt, retried or with an error; literal SQL so
# PostgreSQL matches the query to its partial index (a district's millions of rows have few problems)
DELIVERY_PROBLEM = "status IN ('failed', 'unconfirmed') OR attempts > 1 OR last_error IS NOT NULL"
SENT_DIGEST = "kind = 'digest' AND status = 'sent'"
OPEN_ABOVE = "resolved_at IS NULL AND level >= 1"  # an open rung above the person: they are escalated


class Delivery(Base):
    """The outbox: one row per person, kind, period and channel, so nothing is sent twice.

    ``status`` moves pending -> sending (leased) -> sent | failed | skipped. A person's email
    of a kind that waits for their one email of the day starts ``held``; it is then released
    (pending) or ``bundled`` into a carrier (``bundle_id``: a digest or an "attention" email),
    whose outcome it shares. ``mail_day`` is the local day a person's email is theirs for.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("person_id", "kind", "period_key", "channel"),
        UniqueConstraint("recipient", "kind", "period_key", "channel"),
        # claims walk this index in order and stop after a batch; id breaks ties (a run's rows share a time)
        Index("ix_deliveries_due", "status", "next_attempt_at", "id"),
        # who got which notice, without reading millions of digests (digest rows are not in it)
        Index("ix_deliveries_notice_person", "person_id", postgresql_where=text("kind = 'notice'"),
              sqlite_where=text("kind = 'notice'")),
        # how many got each notice (its outbox key), counted from the index alone
        Index("ix_deliveries_notice_key", "period_key", "person_id", postgresql_where=text("kind = 'notice'"),
              sqlite_where=text("kind = 'notice'")),
        # a person's sent digests by time: the digests since a nudge or since someone last engaged
        # (a district's year is 52 rows a person, each in a different page of the table)
        Index("ix_deliveries_digests_sent", "person_id", "sent_at",
              postgresql_where=text(SENT_DIGEST), sqlite_where=text(SENT_DIGEST)),
        # the held rows, few at any time; and whether a person already has their email of a day
        Index("ix_deliveries_held", "person_id", postgresql_where=text("status = 'held'"),
              sqlite_where=text("status = 'held'")),
        Index("ix_deliveries_mail_day", "person_id", "mail_day"),
        Index("ix_deliveries_problems", "id", postgresql_where=text(DELIVERY_PROBLEM),
              sqlite_where=text(DELIVERY_PROBLEM)),
        Index("ix_deliveries_created_at", "created_at"),  # the overview's week of outbox rows
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # a delivery goes to a person, or (person None) to a ``recipient`` outside the roster:
    # "course:101" (a Canvas post) or "admin:it@example.org" (the admin address)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))  # indexed by the unique key
    recipient: Mapped[str | None] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(32))  # digest, notice, reminder, nudge, escalation, summary
    period_key: Mapped[str] = mapped_column(String(64))  # e.g. 2026-W48, notice:7:d-2
    channel: Mapped[str] = mapped_column(String(32))  # email (backend chosen by settings) or canvas
    status: Mapped[str] = mapped_column(String(16), default="pending")
    subject: Mapped[str] = mapped_column(String(300), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # what the renderer needs
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    mail_day: Mapped[date | None]
    bundle_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id"), index=True)

    person: Mapped[Person | None] = relationship()
    items: Mapped[list[DeliveryItem]] = relationship(
        back_populates="delivery", order_by="DeliveryItem.position", cascade="all, delete-orphan"
    )
    carried: Mapped[list[Delivery]] = relationship(order_by="Delivery.id")  # the held emails it bundles


class DeliveryItem(Base):
    """What a delivery carried: the tips (in order), a question, or the notice; each item exactly one."""

    __tablename__ = "delivery_items"
    __table_args__ = (
        UniqueConstraint("delivery_id", "position"),
        CheckConstraint(ONE_REFERENCE, name="one_reference"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    tip_id: Mapped[int | None] = mapped_column(ForeignKey("tips.id"), index=True)
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"), index=True)
    question_id: Mapped[int | None] = mapped_column(ForeignKey("questions.id"), index=True)

    delivery: Mapped[Delivery] = relationship(back_populates="items")
    tip: Mapped[Tip | None] = relationship()
    notice: Mapped[Notice | None] = relationship()
    question: Mapped[Question | None] = relationship()


class Answer(Base):
    """A person's answer to a question one digest asked. The first POST per digest records (the
    unique key); their first answer to a question ever is the one scored (a partial unique index)."""

    __tablename__ = "answers"
    __table_args__ = (
        UniqueConstraint("person_id", "question_id", "delivery_id"),
        Index("ix_answers_scored", "person_id", "question_id", unique=True,
              postgresql_where=text("scored"), sqlite_where=text("scored")),
        Index("ix_answers_question_id", "question_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id"))
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"))
    choice: Mapped[int] = mapped_column(Integer)
    correct: Mapped[bool] = mapped_column(Boolean)
    scored: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class EngagementEvent(Base):
    """A read receipt or delivery event. Machine events are kept but never count as engagement.

    A click is stored unsettled: its verdict may still change (a burst over the message's links
    makes it a scanner's) until :func:`service.engagement.settling.settle` has judged its message.
    """

    __tablename__ = "engagement_events"
    __table_args__ = (
        Index("ix_engagement_events_person_at", "person_id", "at"),
        Index("ix_engagement_events_unsettled", "delivery_id", postgresql_where=text("NOT settled"),
              sqlite_where=text("NOT settled")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), index=True
    )
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(32))  # open, click, ack, canvas_read, delivered, bounce...
    source: Mapped[str] = mapped_column(String(32))  # pixel, link, ack_page, sendgrid, canvas
    is_machine: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(String(200))
    provider_event_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    target: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(String(500))
    ip_hash: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    settled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class EngagementArchive(Base):
    """Monthly sums of raw engagement events that passed the retention window (they are deleted)."""

    __tablename__ = "engagement_archive"
    __table_args__ = (UniqueConstraint("person_id", "month", "kind", "is_machine"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    month: Mapped[str] = mapped_column(String(7))  # 2026-09
    kind: Mapped[str] = mapped_column(String(32))
    is_machine: Mapped[bool] = mapped_column(Boolean)
    count: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime | None]  # the latest pruned event's time: a rebuild still finds old engagement


class EngagementWeek(Base):
    """One person's ISO week (in their own timezone, like their digest's key), rolled up from the
    events: what every report reads instead of millions of events. Derived: each cell is recounted
    from the events whenever a signal of it is stored or settled (:mod:`service.engagement.weekly`).
    The rows outlive the events' retention: for pruned weeks they are the record."""

    __tablename__ = "engagement_weeks"
    __table_args__ = (
        # a week's trend reads this index alone (PostgreSQL), not 100,000 rows of the table
        Index("ix_engagement_weeks_week", "week", "person_id", postgresql_include=["delivered", "engaged"]),
        CheckConstraint("engaged = (clicks + acks + canvas_reads + answers > 0)", name="engaged_by_definition"),
    )

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    week: Mapped[str] = mapped_column(String(8), primary_key=True)  # 2026-W48
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)  # that week's digest was sent
    human_opens: Mapped[int] = mapped_column(Integer, default=0)
    machine_opens: Mapped[int] = mapped_column(Integer, default=0)
    machine_signals: Mapped[int] = mapped_column(Integer, default=0)  # settled machine signals of any kind
    clicks: Mapped[int] = mapped_column(Integer, default=0)  # settled human clicks
    acks: Mapped[int] = mapped_column(Integer, default=0)
    canvas_reads: Mapped[int] = mapped_column(Integer, default=0)
    answers: Mapped[int] = mapped_column(Integer, default=0)
    last_human_at: Mapped[datetime | None]  # the week's last settled human signal (an open too)
    engaged: Mapped[bool] = mapped_column(Boolean, default=False)  # service.engagement.definition


class EngagementWeekTotal(Base):
    """How many cells of a week are delivered, and of those engaged, as changes the database's
    triggers on ``engagement_weeks`` append whatever path writes a cell (migration 0020), folded
    into a row a week by the hourly summary job: a district head's trend counted 800,000 cells.
    Appended, not updated, so concurrent writers of cells never wait for each other here."""

    __tablename__ = "engagement_week_totals"

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[str] = mapped_column(String(8), index=True)
    delivered: Mapped[int] = mapped_column(Integer)  # a change in the week's delivered cells
    engaged: Mapped[int] = mapped_column(Integer)  # a change in its cells both delivered and engaged


class Acknowledgement(Base):
    """An explicit "I have read this". ``subject`` is what was acknowledged (a delivery or notice)."""

    __tablename__ = "acknowledgements"
    __table_args__ = (UniqueConstraint("person_id", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    subject: Mapped[str] = mapped_column(String(100))  # "delivery:12" or "notice:3"
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Escalation(Base):
    """One rung of the ladder: why a person needs attention, who was told, and when it ended."""

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("person_id", "reason", "subject", "level"),
        # who is escalated now, which every report's status reads: a district's open rungs are
        # mostly the person's own reminders (level 0), read whole 10-13 ms each time a status asked
        Index("ix_escalations_open_above", "person_id", postgresql_where=text(OPEN_ABOVE),
              sqlite_where=text(OPEN_ABOVE)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))  # never_engaged, notice_overdue
    subject: Mapped[str] = mapped_column(String(100))  # e.g. "notice:3" or the episode start week
    level: Mapped[int] = mapped_column(Integer)  # 0 the person, 1 supervisor, 2 theirs, 3 admin
    notified_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    notified_email: Mapped[str | None] = mapped_column(String(320))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    notified_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(String(100))


class CanvasAnnouncement(Base):
    """Exactly-once key of a Canvas post: (course, kind, period) -> its outbox row.

    The topic id Canvas gave the post is the delivery's ``provider_message_id``.
    """

    __tablename__ = "canvas_announcements"
    __table_args__ = (UniqueConstraint("course_id", "kind", "period_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))  # tip, tip-<role>, notice
    period_key: Mapped[str] = mapped_column(String(64))
    marker: Mapped[str] = mapped_column(String(100))  # written into the post; found again after a crash
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), unique=True)
    section_ids: Mapped[list[str]] = mapped_column(default=list)
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"))
    tip_id: Mapped[int | None] = mapped_column(ForeignKey("tips.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    delivery: Mapped[Delivery] = relationship()


class ChannelPause(Base):
    """A channel stopped by a configuration error (bad token, wrong course); email is unaffected."""

    __tablename__ = "channel_pauses"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    paused_at: Mapped[datetime] = mapped_column(default=utcnow)


class AppSecret(Base):
    """Small generated values the service keeps, such as the signing key when none is configured."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AdminSession(Base):
    """A dashboard sign-in: the cookie names it (signed), logout revokes it here, on every process."""

    __tablename__ = "admin_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # random, also in the signed cookie
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
