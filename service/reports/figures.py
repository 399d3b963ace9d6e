"""Read-only summaries of what is stored, computed in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, case, false, func, literal, or_, select, text, true, union_all
from sqlalchemy.orm import Session, aliased

from service.db import NOTICE_ROWS, count_where, in_ids, is_postgres
from service.weeks import week_bounds, week_key
from service.models import DELIVERY_PROBLEM as PROBLEM_SQL
from service.models import OPEN_ABOVE
from service.models import (
    PersonAncestor,
    Acknowledgement,
    Delivery,
    DeliveryItem,
    EngagementEvent,
    EngagementWeek,
    Escalation,
    Notice,
    Person,
    Policy,
    PolicyVersion,
    Question,
    Tip,
    UTCDateTime,
)
from service.engagement import Rate, weekly


@dataclass
class Status:
    people_by_role: list[tuple[str, int, int]]  # role, active, inactive
    teams: list[tuple[str, str, int]]  # supervisor name, email, active reports
    tips_by_section: list[tuple[str, str, int, int, int]]  # policy slug, section, active, inactive, questions
    policies: list[tuple[str, str, int, str | None]]  # slug, title, versions, latest label
    deliveries: list[tuple[str, str, int]]  # kind, status, count
    engagement: list[tuple[str, bool, int]]  # kind, is_machine, count
    undeliverable: list[tuple[str, str | None]]  # email, reason


def status_summary(session: Session) -> Status:
    people_by_role = [
        (role, int(active or 0), int(total - (active or 0)))
        for role, active, total in session.execute(
            select(
                Person.role,
                func.sum(case((Person.active.is_(True), 1), else_=0)),
                func.count(),
            )
            .group_by(Person.role)
            .order_by(Person.role)
        )
    ]
    report = aliased(Person)
    teams = list(
        session.execute(
            select(Person.name, Person.email, func.count(report.id))
            .join(report, report.supervisor_id == Person.id)
            .where(report.active.is_(True))
            .group_by(Person.id, Person.name, Person.email)
            .order_by(Person.name)
        ).tuples()
    )
    questions = {(slug, section): n for slug, section, n in session.execute(
        select(Policy.slug, Question.section, func.count()).join(Policy, Question.policy_id == Policy.id)
        .where(Question.active.is_(True)).group_by(Policy.slug, Question.section))}
    tips_by_section = [
        (slug, section, int(active or 0), int(total - (active or 0)), questions.get((slug, section), 0))
        for slug, section, active, total in session.execute(
            select(
                Policy.slug,
                Tip.section,
                func.sum(case((Tip.active.is_(True), 1), else_=0)),
                func.count(),
            )
            .join(Policy, Tip.policy_id == Policy.id)
            .group_by(Policy.slug, Tip.section)
            .order_by(Policy.slug, func.min(Tip.position))
        )
    ]
    latest_label = (
        select(PolicyVersion.label)
        .where(PolicyVersion.policy_id == Policy.id)
        .order_by(PolicyVersion.sequence.desc())
        .limit(1)
        .correlate(Policy)
        .scalar_subquery()
    )
    version_count = (
        select(func.count(PolicyVersion.id)).where(PolicyVersion.policy_id == Policy.id).scalar_subquery()
    )
    policies = list(
        session.execute(
            select(Policy.slug, Policy.title, version_count, latest_label).order_by(Policy.slug)
        ).tuples()
    )
    deliveries = list(
        session.execute(
            select(Delivery.kind, Delivery.status, func.count())
            .group_by(Delivery.kind, Delivery.status)
            .order_by(Delivery.kind, Delivery.status)
        ).tuples()
    )
    engagement = list(
        session.execute(
            select(EngagementEvent.kind, EngagementEvent.is_machine, func.count())
            .group_by(EngagementEvent.kind, EngagementEvent.is_machine)
            .order_by(EngagementEvent.kind, EngagementEvent.is_machine)
        ).tuples()
    )
    return Status(people_by_role, teams, tips_by_section, policies, deliveries, engagement,
                  undeliverable_people(session))


def undeliverable_people(session: Session) -> list[tuple[str, str | None]]:
    """Active people whose address takes no email: (email, reason), by email."""
    return list(session.execute(
        select(Person.email, Person.undeliverable_reason)
        .where(Person.active.is_(True), Person.undeliverable_since.is_not(None))
        .order_by(Person.email)
    ).tuples())


# a row's status, the first that holds: the first three are the active people no rate counts (OUTSIDE_RATES),
# "engaged" the reachable who engaged
STATUS_ORDER = ("undeliverable", "on leave", "new hire", "engaged", "escalated", "opened only", "machine signals only",
                "no signal")


@dataclass
class PersonEngagement:
    id: int
    email: str
    name: str
    role: str
    supervisor_id: int | None
    human_opens: int
    machine_opens: int
    machine_signals: int
    clicks: int  # settled human clicks only, like every count here
    acks: int
    canvas_reads: int
    answers: int  # knowledge-check answers
    last_human_signal: datetime | None  # in the window, of any kind (an open too)
    last_engaged: datetime | None  # ever (kept on the person)
    undeliverable: bool
    escalated: bool
    silent_digests: int  # digests since the last engagement
    reachable: bool  # active, deliverable, not on leave, past the new-hire grace: every rate's denominator
    on_leave: bool
    engaged: bool  # the one definition (service.engagement.definition), judged in SQL
    status: str  # one of STATUS_ORDER


def _status(*, undeliverable, on_leave, reachable, engaged, escalated, human_opens, machine_signals):
    """A row's status in SQL: the first that holds, in the order of STATUS_ORDER."""
    return case((undeliverable, "undeliverable"), (on_leave, "on leave"), (~reachable, "new hire"),
                (engaged, "engaged"), (escalated, "escalated"), (human_opens > 0, "opened only"),
                (machine_signals > 0, "machine signals only"), else_="no signal")


@dataclass(frozen=True)
class AllBut:
    """Everyone but one person: the team of the head of the whole organisation."""

    person_id: int


def _below(root_id: int):
    return select(PersonAncestor.person_id).where(PersonAncestor.ancestor_id == root_id)


def team_of(session: Session, root_id: int):
    """Everyone below ``root_id`` (not the root), every level, as reports filter by it. When that
    is everyone else (the head of a whole district), it says so: reports then read everyone but
    the head rather than matching 100,000 ids. Everyone else is below the root exactly when the
    root is the only person at the top of a chain: the roster refuses chains that loop."""
    tops = session.scalars(select(Person.id).where(Person.supervisor_id.is_(None)).limit(2)).all()
    return AllBut(root_id) if tops == [root_id] else _below(root_id)


def subtree(session: Session, root_id: int) -> list[int]:
    """Everyone below ``root_id`` (not the root)."""
    return list(session.scalars(_below(root_id)))


def has_managers(session: Session, root_id: int, scope) -> bool:
    """Whether anyone active below ``root_id`` (``scope``) reports to someone other than them:
    a manager of managers, whose reports roll up."""
    return bool(session.scalar(select(select(Person.id).where(
        Person.active.is_(True), Person.supervisor_id != root_id, *scoped(session, Person.id, scope)).exists())))


@dataclass(frozen=True)
class Window:
    """Whole ISO weeks, ``first`` to ``last``, and the moments they span in a report's timezone:
    reports read the weekly roll-up, so a window is made of weeks."""

    first: str
    last: str
    start: datetime
    end: datetime

    @classmethod
    def week(cls, key: str, zone: ZoneInfo) -> Window:
        return cls(key, key, *week_bounds(key, zone))

    @classmethod
    def since(cls, day: date, zone: ZoneInfo) -> Window:
        """From the week of ``day`` on (its Monday), with no end."""
        key = week_key(day)
        return cls(key, LAST_WEEK, week_bounds(key, zone)[0], datetime.max.replace(tzinfo=UTC))


LAST_WEEK = "9999-W52"


def _people(session: Session, window: Window, person_ids, *, new_hire_days: int, active_only: bool,
            as_of: datetime | None):
    """One row per person: the window's sums from the weekly roll-up, and the one definition's
    verdicts (engaged, reachable, status) judged in SQL, so a rate or a count over a district
    never loads the district."""
    w = EngagementWeek
    if window.first == window.last:  # one week: its rows as they are, joined by the primary key
        sums = select(w.person_id, w.human_opens, w.machine_opens, w.machine_signals, w.clicks, w.acks,
                      w.canvas_reads, w.answers, w.last_human_at.label("last_human_signal")).where(
            w.week == window.first).subquery()
    else:
        sums = (
            select(w.person_id.label("person_id"), func.sum(w.human_opens).label("human_opens"),
                   func.sum(w.machine_opens).label("machine_opens"),
                   func.sum(w.machine_signals).label("machine_signals"), func.sum(w.clicks).label("clicks"),
                   func.sum(w.acks).label("acks"), func.sum(w.canvas_reads).label("canvas_reads"),
                   func.sum(w.answers).label("answers"), func.max(w.last_human_at).label("last_human_signal"))
            .where(w.week.between(window.first, window.last), *scoped(session, w.person_id, person_ids))
            .group_by(w.person_id)
            .subquery()
        )
    escalated_ids = select(Escalation.person_id).where(text(OPEN_ABOVE))  # the index's own predicate
    moment = min(window.end, as_of or window.end)
    leave_from = (as_of or window.start).date()  # on leave at some point in the window (or at ``as_of``)
    counts = {name: func.coalesce(getattr(sums.c, name), 0) for name in (
        "human_opens", "machine_opens", "machine_signals", "clicks", "acks", "canvas_reads", "answers")}
    undeliverable = Person.undeliverable_since.is_not(None)
    on_leave = func.coalesce(Person.leave_until >= leave_from, false())
    reachable = (Person.active.is_(True) & ~undeliverable & ~on_leave
                 & (Person.joined_at <= moment - timedelta(days=new_hire_days)))
    engaged = (counts["clicks"] + counts["acks"] + counts["canvas_reads"] + counts["answers"]) > 0
    escalated = Person.id.in_(escalated_ids)
    query = (
        select(
            Person.id, Person.email, Person.name, Person.role, Person.supervisor_id,
            counts["human_opens"].label("human_opens"), counts["machine_opens"].label("machine_opens"),
            counts["machine_signals"].label("machine_signals"), counts["clicks"].label("clicks"),
            counts["acks"].label("acks"), counts["canvas_reads"].label("canvas_reads"),
            counts["answers"].label("answers"), sums.c.last_human_signal, Person.last_engaged_at.label("last_engaged"),
            undeliverable.label("undeliverable"), escalated.label("escalated"), Person.silent_digests,
            reachable.label("reachable"), on_leave.label("on_leave"), engaged.label("engaged"),
            _status(undeliverable=undeliverable, on_leave=on_leave, reachable=reachable, engaged=engaged,
                    escalated=escalated, human_opens=counts["human_opens"],
                    machine_signals=counts["machine_signals"]).label("status"),
        )
        .outerjoin(sums, sums.c.person_id == Person.id)
        .where(*scoped(session, Person.id, person_ids))
    )
    if active_only:
        query = query.where(Person.active.is_(True))
    return query.subquery("people_in_window")


def engagement(
    session: Session, window: Window, person_ids=None, *, new_hire_days: int, active_only: bool = True,
    as_of: datetime | None = None, statuses: tuple[str, ...] | None = None, offset: int = 0,
    limit: int | None = None, pressing: bool = False,
) -> list[PersonEngagement]:
    """Per person, by name (``pressing``: escalated first, then the longest silent): the window's
    signals by kind and machine/human, the last engagement ever (kept on the person), whether they
    are reachable at the window's end or ``as_of`` if sooner (new hires are not yet), the status;
    only ``statuses`` if given, ``limit`` from ``offset``."""
    people = _people(session, window, person_ids, new_hire_days=new_hire_days, active_only=active_only,
                     as_of=as_of)
    first = [(people.c.status == "escalated").desc(), people.c.silent_digests.desc()] if pressing else []
    query = select(people).order_by(*first, people.c.name, people.c.id).offset(offset).limit(limit)
    if statuses is not None:
        query = query.where(people.c.status.in_(statuses))
    return [PersonEngagement(*row) for row in session.execute(query)]


OUTSIDE_RATES = STATUS_ORDER[:3]  # of the active, exactly the unreachable: no rate counts them


@dataclass(frozen=True)
class Tally:
    """How many active people have each status, counted in SQL; the rate follows from them."""

    counts: dict[str, int]

    @property
    def people(self) -> int:
        return sum(self.counts.values())

    @property
    def rate(self) -> Rate:
        """Engaged of the reachable: an active person is reachable unless their status is one of
        OUTSIDE_RATES, and "engaged" is a reachable person's status exactly when they engaged."""
        return Rate(self.counts["engaged"], self.people - sum(self.counts[s] for s in OUTSIDE_RATES))


def tally(session: Session, window: Window, person_ids=None, *, new_hire_days: int,
          as_of: datetime | None = None) -> Tally:
    """The count of each status of the active people (and so their rate)."""
    people = _people(session, window, person_ids, new_hire_days=new_hire_days, active_only=True, as_of=as_of)
    counts = dict.fromkeys(STATUS_ORDER, 0)
    counts.update(session.execute(select(people.c.status, func.count()).group_by(people.c.status)).tuples().all())
    return Tally(counts)


def _by_manager(people, *, statuses: bool = False):
    """Per manager, their direct reports' rate in parts (how many, engaged, reachable) and, if
    ``statuses``, how many have each status (in STATUS_ORDER): a CTE keyed ``manager_id``, one
    row a manager. With the statuses, grouped by manager and status first, so each person's
    status is judged once: a column per status judged it again in every column (94 of a district
    head's roll-up's 177 ms). Without, the rate's two verdicts are counted directly: grouping by
    status made the teams page's tallies 83 -> 122 ms."""
    c = people.c
    if not statuses:
        return select(c.supervisor_id.label("manager_id"), func.count().label("people"),
                      count_where(c.engaged & c.reachable).label("engaged"),
                      count_where(c.reachable).label("reachable")).group_by(c.supervisor_id).cte("direct")
    groups = select(c.supervisor_id, c.status, func.count().label("n")).group_by(
        c.supervisor_id, c.status).subquery("groups")

    def having(condition):
        return func.sum(case((condition, groups.c.n), else_=0))

    columns = [func.sum(groups.c.n).label("people"), having(groups.c.status == "engaged").label("engaged"),
               having(groups.c.status.not_in(OUTSIDE_RATES)).label("reachable")]
    columns += [having(groups.c.status == status).label(f"status_{index}") for index, status in enumerate(STATUS_ORDER)]
    return select(groups.c.supervisor_id.label("manager_id"), *columns).group_by(groups.c.supervisor_id).cte("direct")


def _up_the_chain(session: Session, direct):
    """Per manager: the rate's parts of their direct reports (``direct``, from :func:`_by_manager`)
    added up over them and every manager below them, in the database: going up a district's
    5,000 chains in Python made a head's roll-up 409-439 ms, this 313-326 (joining every person
    to all their ancestors instead read twice the rows)."""
    rate = (direct.c.people, direct.c.engaged, direct.c.reachable)
    own = select(direct.c.manager_id.label("head"), *rate).where(direct.c.manager_id.is_not(None))
    if is_postgres(session):  # each manager's ancestors through the index (OFFSET 0: not flattened into a
        # join that hashed all 200,000 pairs, 90 ms, because a CTE has no statistics for the planner)
        up = select(PersonAncestor.ancestor_id).where(PersonAncestor.person_id == direct.c.manager_id).offset(0)
        up = up.lateral("up")
        below = select(up.c.ancestor_id, *rate).select_from(direct).join(up, true())
    else:
        below = select(PersonAncestor.ancestor_id, *rate).join(
            PersonAncestor, PersonAncestor.person_id == direct.c.manager_id)
    chain = union_all(own, below).subquery("chain")
    return select(chain.c.head, *(func.sum(chain.c[column.key]).label(column.key) for column in rate)
                  ).group_by(chain.c.head)


def _team(people: int, engaged: int, reachable: int) -> tuple[int, Rate]:
    return int(people), Rate(int(engaged), int(reachable))


def team_tallies(session: Session, window: Window, person_ids=None, *, new_hire_days: int
                 ) -> dict[int, tuple[int, Rate]]:
    """Per manager with active people below them (of ``person_ids`` if given), every level: how
    many, and their rate. A manager may have left: whoever shows the teams picks the active."""
    people = _people(session, window, person_ids, new_hire_days=new_hire_days, active_only=True, as_of=None)
    rows = session.execute(_up_the_chain(session, _by_manager(people))).all()
    return {head: _team(*rate) for head, *rate in rows}


@dataclass(frozen=True)
class RollUp:
    """A manager of managers' team in figures: everyone below them, their direct reports, and
    each manager's people below them (as :func:`team_tallies`)."""

    everyone: Tally
    direct_reports: Tally
    teams: dict[int, tuple[int, Rate]]


def roll_up(session: Session, window: Window, root_id: int, person_ids, *, new_hire_days: int) -> RollUp:
    """The figures of ``root_id``'s summary from one reading of their people (``person_ids``),
    in one statement: a district's head is 100,000 people, and reading them once for each
    figure was three times the work. Rows: everyone's tally, the direct reports' tally, then
    each team's rate (its status columns NULL)."""
    people = _people(session, window, person_ids, new_hire_days=new_hire_days, active_only=True, as_of=None)
    direct = _by_manager(people, statuses=True)
    counts = [column for column in direct.c if column.key != "manager_id"]
    everyone = select(literal("everyone"), literal(None, Integer), *(func.sum(column) for column in counts))
    own = select(literal("own"), direct.c.manager_id, *counts).where(direct.c.manager_id == root_id)
    teams = _up_the_chain(session, direct).subquery("teams")
    statuses = [literal(None, Integer)] * len(STATUS_ORDER)
    rows = session.execute(union_all(everyone, own, select(literal("team"), *teams.c, *statuses))).all()
    tallies = {part: _tally_of(row) for part, _, *row in rows if part != "team"}
    nobody = _tally_of([None] * len(counts))
    return RollUp(tallies.get("everyone", nobody), tallies.get("own", nobody),
                  {head: _team(*rest[:3]) for part, head, *rest in rows if part == "team"})


def _tally_of(counts) -> Tally:
    """A tally from a row of :func:`_by_manager` with the status counts (NULL when none)."""
    by_status = counts[3:]  # after how many, engaged and reachable: the status columns
    return Tally({status: int(count or 0) for status, count in zip(STATUS_ORDER, by_status)})


def scoped(session: Session, column, person_ids) -> list:
    """``column`` among ``person_ids``: a list of ids (any number: an array parameter on PostgreSQL),
    or a query of them; None is everyone. Applied to the weeks too, so a team's week is not summed
    for everyone."""
    if person_ids is None:
        return []
    if isinstance(person_ids, AllBut):
        return [column != person_ids.person_id]
    if isinstance(person_ids, list):
        return [in_ids(session, column, person_ids)] if person_ids else [false()]
    return [column.in_(person_ids)]


@dataclass(frozen=True)
class TrendPoint:
    week: str
    engaged: int
    reached: int

    @property
    def rate(self) -> float | None:
        return self.engaged / self.reached if self.reached else None

    @property
    def label(self) -> str:
        """The week's Monday, as a reader says it: "Jan 11"."""
        monday = date.fromisocalendar(int(self.week[:4]), int(self.week[6:]), 1)
        return f"{monday:%b} {monday.day}"


def since_first_digest(points: list[TrendPoint]) -> list[TrendPoint]:
    """The trend from the first week anyone got a digest; later weeks without one (breaks) stay, as gaps."""
    first = next((i for i, p in enumerate(points) if p.reached), len(points))
    return points[first:]


def weekly_trend(session: Session, weeks: list[tuple[str, datetime, datetime]], person_ids=None, *,
                 new_hire_days: int) -> list[TrendPoint]:
    """Per week: the reachable people who got that week's digest (active and deliverable now, past
    the new-hire grace that week), and how many of them engaged that week (from the roll-up).

    Counted as everyone who got it, less the few who are not counted: the first count is the
    week's totals for a whole district (its 800,000 person-weeks were counted from the week
    index in 50-60 ms), else reads the week index alone; the second starts from the people
    (joining a district's people to its person-weeks took most of the time)."""
    if not weeks:
        return []
    w = EngagementWeek
    keys = [key for key, _, _ in weeks]
    hired_by = case({key: literal(end - timedelta(days=new_hire_days), UTCDateTime()) for key, _, end in weeks},
                    value=w.week)  # joined by then: past the grace at the week's end
    got_it = [w.week.in_(keys), w.delivered.is_(True), *scoped(session, w.person_id, person_ids)]
    counts = select(w.week, func.count(), count_where(w.engaged)).group_by(w.week)
    everyone = (_everyones(session, keys, person_ids, counts) if person_ids is None or isinstance(person_ids, AllBut)
                else session.execute(counts.where(*got_it)).tuples().all())
    newest = max(end for _, _, end in weeks) - timedelta(days=new_hire_days)
    left_out = session.execute(counts.join(Person, Person.id == w.person_id).where(
        *got_it, or_(Person.active.is_(False), Person.undeliverable_since.is_not(None), Person.joined_at > newest),
        or_(Person.active.is_(False), Person.undeliverable_since.is_not(None), Person.joined_at > hired_by))
    ).tuples().all()
    reached = {week: n for week, n, _ in everyone}
    engaged = {week: int(n or 0) for week, _, n in everyone}
    for week, n, e in left_out:
        reached[week] -= n
        engaged[week] -= int(e or 0)
    return [TrendPoint(key, engaged.get(key, 0), reached.get(key, 0)) for key, _, _ in weeks]


def _everyones(session: Session, weeks: list[str], person_ids: AllBut | None, counts) -> list[tuple[str, int, int]]:
    """Per week: how many got its digest and of them engaged, whatever their status now, from the
    week's totals; less one person's own week for everyone but them."""
    found = weekly.totals(session, weeks)
    if person_ids is not None:
        w = EngagementWeek
        for week, n, engaged in session.execute(counts.where(
                w.person_id == person_ids.person_id, w.week.in_(weeks), w.delivered.is_(True))).tuples():
            found[week] = (found[week][0] - n, found[week][1] - int(engaged or 0))
    return [(week, n, engaged) for week, (n, engaged) in found.items()]


def last_weeks(week: str, count: int, zone: ZoneInfo) -> list[tuple[str, datetime, datetime]]:
    monday = date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    out = []
    for back in range(count - 1, -1, -1):
        key = week_key(monday - timedelta(weeks=back))
        out.append((key, *week_bounds(key, zone)))
    return out


def overdue_notices(session: Session, person_ids, today: date) -> dict[int, list[tuple[str, date]]]:
    """Per person: the notices they got, have not confirmed, and whose due date has passed."""
    confirmed = select(Acknowledgement.id).where(Acknowledgement.person_id == Delivery.person_id,
                                                 Acknowledgement.notice_id == Notice.id).exists()
    found: dict[int, list[tuple[str, date]]] = {}
    for person_id, title, due_on in session.execute(
        select(Delivery.person_id, Policy.title, Notice.due_on).distinct()
        .join(DeliveryItem, DeliveryItem.delivery_id == Delivery.id).join(Notice, Notice.id == DeliveryItem.notice_id)
        .join(PolicyVersion, PolicyVersion.id == Notice.policy_version_id).join(Policy)
        .where(Delivery.kind == "notice", *scoped(session, Delivery.person_id, person_ids), Notice.due_on < today,
               ~confirmed)
        .order_by(Notice.due_on)
    ):
        found.setdefault(person_id, []).append((title, due_on))
    return found


@dataclass(frozen=True)
class NoticeProgress:
    id: int
    policy: str
    version: str
    due_on: date
    acknowledged: int
    audience: int


def notice_progress(session: Session, person_ids, today: date) -> list[NoticeProgress]:
    """Open notices (not past due by more than a month) with acknowledged / sent counts, in SQL.

    A person's notice email is one row keyed ``notice:<id>`` (the outbox key), so the sent are
    counted from the outbox rows alone, without joining their items or sorting for distinct people."""
    notices = session.execute(
        select(Notice.id, Policy.title, PolicyVersion.label, Notice.due_on)
        .join(PolicyVersion, PolicyVersion.id == Notice.policy_version_id)
        .join(Policy, Policy.id == PolicyVersion.policy_id)
        .where(Notice.due_on >= today - timedelta(days=30)).order_by(Notice.due_on, Notice.id)
    ).all()
    if not notices:
        return []
    sent = dict(session.execute(
        select(Delivery.period_key, func.count(Delivery.person_id))
        .where(NOTICE_ROWS, Delivery.period_key.in_([f"notice:{n.id}" for n in notices]),
               *scoped(session, Delivery.person_id, person_ids))
        .group_by(Delivery.period_key)).tuples().all())
    acked = dict(session.execute(
        select(Acknowledgement.notice_id, func.count())
        .where(Acknowledgement.notice_id.in_([n.id for n in notices]),
               *scoped(session, Acknowledgement.person_id, person_ids))
        .group_by(Acknowledgement.notice_id)).tuples().all())
    return [NoticeProgress(n.id, n.title, n.label, n.due_on, int(acked.get(n.id, 0)), int(sent[f"notice:{n.id}"]))
            for n in notices if sent.get(f"notice:{n.id}")]


ATTENTION = ("escalated", "no signal", "machine signals only", "undeliverable")
DELIVERY_PROBLEM = text(f"({PROBLEM_SQL})")  # what the delivery-problems page lists (its partial index)
