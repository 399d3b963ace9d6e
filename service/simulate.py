"""`nudge simulate`: the whole lifecycle, fast-forwarded, on a throwaway SQLite database.

A sample roster (or N generated people in a hierarchy), the default content and
the seed policy, the SendGrid and Canvas doubles in-process, the real web app
on localhost, and a clock that jumps from moment to moment (no sleeping).
Simulated readers act through the real paths — the open pixel, tracked links,
the acknowledge page's button, the quick check's answer page, and SendGrid's
signed webhook — each with a persona: engaged (answers most quick checks, some
wrong), skimmer (opens only), scanner-protected inbox (machine opens, and GETs
of every link, the quick check's too), never engages, bouncing address.
Version 2 of the policy arrives in week 3. Deterministic for a given seed.
"""

from __future__ import annotations

import base64
import random
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time as day_time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select

from service.channels import InlineImage, Message, Skeleton
from service.channels.mime import Sender, build_mime
from service.config import Settings
from service.db import make_engine, make_sessionmaker
from service.doubles.canvas import CanvasDouble
from service.doubles.sendgrid import ReceivedEmail, SendGridDouble
from service.db.migrate import upgrade
from service.models import Answer, Delivery, EngagementEvent, Person, Question
from service.paths import CONTENT_DIR
from service.web.app import create_app
from service import reports, usecases

DEMO_TOKEN = "demo-dashboard-token-0123456789"  # the throwaway simulation's dashboard
START = date(2026, 9, 7)  # a Monday: the simulated term starts here, whatever today is
PERSONAS = ("engaged", "skimmer", "scanner", "never", "bouncing")
WEIGHTS = (0.45, 0.25, 0.15, 0.10, 0.05)
HUMAN_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
)
BROWSER_AGENT = HUMAN_AGENTS[0]
PROXY_AGENT = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
SCANNER_AGENT = "Mozilla/5.0 (compatible; SafeLinks/1.0)"
COLUMNS = ("week", "digests", "canvas posts", "human opens", "machine opens", "clicks", "acks", "answers",
           "right", "notices", "reminders", "nudges", "escalations", "summaries")
KNOWS_THE_ANSWER = 0.7  # an engaged reader's chance of picking the right option (else any other)
SENT_KINDS = ("digest", "notice", "reminder", "nudge", "escalation", "summary")  # columns counting sent emails


@dataclass
class WeekRow:
    week: str
    digests: int = 0
    canvas_posts: int = 0
    human_opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    acks: int = 0
    answers: int = 0  # quick checks answered (recorded answers)
    right: int = 0  # of them, right
    notices: int = 0
    reminders: int = 0
    nudges: int = 0
    escalations: int = 0  # emails to supervisors (and the admin address)
    summaries: int = 0

    def cells(self) -> list[str]:
        return [self.week] + [str(getattr(self, name.replace(" ", "_"))) for name in COLUMNS[1:]]


@dataclass
class Simulation:
    rows: list[WeekRow] = field(default_factory=list)
    personas: dict[str, int] = field(default_factory=dict)
    misunderstood: str | None = None  # the guideline least often right the first time, with its figures
    outbox_files: int = 0
    database_url: str = ""
    base_url: str = ""
    seconds: float = 0.0
    settings: Settings | None = None  # the simulation's, to serve its database afterwards


def serve(result: Simulation, port: int) -> None:
    """The finished simulation's dashboard and links on 127.0.0.1:``port``, until Ctrl-C."""
    import uvicorn

    factory = make_sessionmaker(make_engine(result.database_url))
    app = create_app(result.settings, factory)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, log_config=None)


class Clock:
    """The simulated now; everything that asks the time asks this."""

    def __init__(self, moment: datetime):
        self.now = moment

    def __call__(self) -> datetime:
        return self.now


def generated_roster(path: Path, people: int, rng: random.Random) -> None:
    """N fictional people: a head, division heads for every ~15 staff, a mix of roles and timezones."""
    first = ["Ana", "Ben", "Chloé", "Dev", "Elif", "Femi", "Grace", "Hugo", "Ines", "Jun", "Kofi", "Lena", "Mateo",
             "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tomás", "Uma", "Viktor", "Wen", "Yara", "Zoë"]
    last = ["Abara", "Berg", "Castillo", "Dubois", "Eriksen", "Fischer", "García", "Haddad", "Ito", "Jensen",
            "Kowalski", "López", "Mensah", "Nakamura", "Okafor", "Petrov", "Quispe", "Rossi", "Sørensen", "Tanaka"]
    zones = ["America/Chicago"] * 6 + ["America/New_York", "America/Denver", "America/Los_Angeles"]
    lines = ["email,name,role,department,supervisor_email,timezone,canvas_user_id"]
    heads = max(1, (people - 1) // 15)
    lines.append("head@sim.example.org,Pat Principal,administrator,Head of School,,America/Chicago,5000")
    for d in range(heads):
        lines.append(f"division{d}@sim.example.org,{rng.choice(first)} {rng.choice(last)},administrator,"
                     f"Division {d + 1},head@sim.example.org,America/Chicago,{5001 + d}")
    for i in range(people - 1 - heads):
        role = rng.choices(["teacher", "staff", "coach"], weights=[6, 3, 1])[0]
        canvas = "" if rng.random() < 0.1 else str(6000 + i)
        lines.append(f"person{i}@sim.example.org,{rng.choice(first)} {rng.choice(last)},{role},Division "
                     f"{i % heads + 1},division{i % heads}@sim.example.org,{rng.choice(zones)},{canvas}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


class _Web:
    """The real web app, served by uvicorn in a thread."""

    def __init__(self, app, port: int):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(
    weeks: int,
    *,
    people: int | None = None,
    seed: int = 7,
    outbox_dir: Path,
    public_port: int | None = None,
    on_week: Callable[[WeekRow], None] | None = None,
) -> Simulation:
    """Play ``weeks`` school weeks. The web app runs on a free port for the simulated readers;
    the emails' links name ``public_port`` (default: that same port), where :func:`serve` can
    show the finished simulation afterwards."""
    started = time.perf_counter()
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="nudge-simulate-"))
    url = f"sqlite:///{workdir / 'simulation.db'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    zone = ZoneInfo("America/Chicago")
    clock = Clock(datetime.combine(START - timedelta(days=3), day_time(9), zone).astimezone(UTC))
    port = free_port()
    web_url = f"http://127.0.0.1:{port}"
    result = Simulation(database_url=url, base_url=f"http://127.0.0.1:{public_port or port}")

    roster = CONTENT_DIR / "sample_roster.csv"
    if people is not None and people != 40:
        roster = workdir / "roster.csv"
        generated_roster(roster, people, rng)
    sendgrid, canvas = SendGridDouble(), CanvasDouble()
    sendgrid.start()
    canvas.start()
    canvas.add_course(101, "Faculty & Staff")
    settings = Settings(
        database_url=url, email_backend="sendgrid", sendgrid_host=sendgrid.url,
        sendgrid_api_key=SecretStr(sendgrid.api_key), sendgrid_webhook_public_key=sendgrid.public_key,
        canvas_api_url=canvas.url, canvas_api_key=SecretStr(canvas.token), canvas_course_ids=[101],
        secret_key=SecretStr(f"simulation-{seed}"), base_url=result.base_url, admin_token=SecretStr(DEMO_TOKEN),
        admin_email="admin@example.org", outbox_dir=str(outbox_dir), organisation="The Blake School (simulated)",
    )
    usecases.import_content(factory, [CONTENT_DIR / "social_media.yaml"])
    usecases.publish_policy_version(factory, settings, CONTENT_DIR / "policies" / "social-media-v1.txt",
                                    slug="social-media", label="1", now=clock() - timedelta(days=200))
    usecases.import_people(factory, roster, now=clock() - timedelta(days=60))
    with factory() as session:
        staff = list(session.execute(select(Person.id, Person.email).order_by(Person.email)))
    order = list(range(len(staff)))
    rng.shuffle(order)
    persona: dict[int, str] = {}
    for rank, index in enumerate(order):
        persona[staff[index].id] = PERSONAS[rank] if rank < len(PERSONAS) else rng.choices(PERSONAS, WEIGHTS)[0]
    result.personas = {p: sum(1 for v in persona.values() if v == p) for p in PERSONAS}
    email_to_id = {p.email: p.id for p in staff}

    web = _Web(create_app(settings, factory, clock=clock), port)
    app_opens = web.server.config.app.state.opens
    dispatcher = usecases.dispatcher(factory, settings, clock=clock)
    http = httpx.Client(timeout=30)
    seen = 0
    sent_on: list[datetime] = []  # when each email the double received was sent, by the simulated clock

    def dispatch_and_read() -> None:
        """Send what is due, then let each reader do what their persona does with what arrived."""
        nonlocal seen
        dispatcher.drain()
        fresh = sendgrid.emails[seen:]
        seen = len(sendgrid.emails)
        sent_on.extend(clock() for _ in fresh)
        if not fresh:
            return
        base = clock()
        bounced = [e for e in fresh if persona.get(email_to_id.get(e.to_email)) == "bouncing"]
        delivered = [e for e in fresh if e not in bounced]
        events = sendgrid.events("delivered", delivered, at=base.timestamp() + 30)
        events += sendgrid.events("bounce", bounced, at=base.timestamp() + 30, type="bounce",
                                  reason="550 5.1.1 The email account does not exist")
        sendgrid.post_events(f"{web_url}/webhooks/sendgrid", events, timestamp=int(base.timestamp()) + 60)
        for received in delivered:
            read(received, base)
        clock.now = base
        app_opens.flush()

    def read(received: ReceivedEmail, base: datetime) -> None:
        kind = persona.get(email_to_id.get(received.to_email), "never")
        html = received.html.replace(result.base_url, web_url)  # the links, to where the app runs now
        pixel = re.search(r'src="([^"]*/o/[^"]+\.gif)"', html)
        links = re.findall(r'href="([^"]*/c/[^"]+)"', html)
        ack = re.search(r'href="([^"]*/ack/[^"]+)"', html)
        options = re.findall(r'href="([^"]*/q/[^"]+)"', html)
        agent = rng.choice(HUMAN_AGENTS)
        if kind == "scanner":
            clock.now = base + timedelta(seconds=5)
            if pixel:
                http.get(pixel.group(1), headers={"User-Agent": PROXY_AGENT})
            for link in links + options:  # a scanner follows every link; a GET never answers
                http.get(link, headers={"User-Agent": SCANNER_AGENT}, follow_redirects=False)
            if rng.random() < 0.1 and pixel:  # once in a while the person reads it after all
                clock.now = base + timedelta(hours=5)
                http.get(pixel.group(1), headers={"User-Agent": agent})
        elif kind == "skimmer":
            if pixel and rng.random() < 0.8:
                clock.now = base + timedelta(hours=rng.randint(1, 30))
                http.get(pixel.group(1), headers={"User-Agent": agent})
        elif kind == "engaged":
            clock.now = base + timedelta(hours=rng.randint(1, 48))
            if pixel and rng.random() < 0.9:
                http.get(pixel.group(1), headers={"User-Agent": agent})
            if links and rng.random() < 0.5:  # a link opens in a browser, whatever the mail client
                clock.now += timedelta(minutes=2)
                http.get(rng.choice(links), headers={"User-Agent": BROWSER_AGENT}, follow_redirects=False)
            wants_ack = 0.9 if received.custom_args.get("kind") in ("notice", "reminder", "attention") else 0.3
            if ack and rng.random() < wants_ack:
                clock.now += timedelta(minutes=1)
                http.post(ack.group(1), headers={"User-Agent": agent})
            if options and rng.random() < 0.8:
                clock.now += timedelta(minutes=1)
                answer(options, agent)

    def answer(options: list[str], agent: str) -> None:
        """Tap an option (the right one if the reader knows it), then press "Check my answer"."""
        right = right_option(options[0])
        wrong = [i for i in range(len(options)) if i != right]
        choice = right if rng.random() < KNOWS_THE_ANSWER or not wrong else rng.choice(wrong)
        http.get(options[choice], headers={"User-Agent": BROWSER_AGENT})
        http.post(options[choice], data={"choice": str(choice)}, headers={"User-Agent": BROWSER_AGENT})

    def right_option(option_link: str) -> int:
        """What a reader who knows the guideline picks: read off the question the link names."""
        body = option_link.rsplit("/", 1)[1].split(".")[0]
        question_id = int(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().split("|")[1].split(":")[0])
        with factory() as s:
            return s.scalar(select(Question.correct).where(Question.id == question_id))

    def counts(start: datetime, end: datetime) -> WeekRow:
        # the week's clicks judged as of its end, whenever the web process's settler (real time,
        # reading a clock the readers move) happened to look: the table is the same every run
        usecases.settle_signals(factory, settings, end)
        row = WeekRow(week="")
        with factory() as s:
            sent = dict(s.execute(
                select(Delivery.kind, func.count()).where(Delivery.sent_at >= start, Delivery.sent_at < end,
                                                          Delivery.channel == "email").group_by(Delivery.kind)
            ).tuples().all())
            row.digests, row.notices, row.reminders = sent.get("digest", 0), sent.get("notice", 0), sent.get("reminder", 0)
            row.nudges, row.escalations = sent.get("nudge", 0), sent.get("escalation", 0)
            row.summaries = sent.get("summary", 0)
            row.canvas_posts = s.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.channel == "canvas", Delivery.sent_at >= start, Delivery.sent_at < end)) or 0
            by_kind = dict(((k, m), n) for k, m, n in s.execute(
                select(EngagementEvent.kind, EngagementEvent.is_machine, func.count())
                .where(EngagementEvent.at >= start, EngagementEvent.at < end, EngagementEvent.settled.is_(True),
                       EngagementEvent.source.in_(("pixel", "link", "ack_page")))
                .group_by(EngagementEvent.kind, EngagementEvent.is_machine)))
            row.human_opens, row.machine_opens = by_kind.get(("open", False), 0), by_kind.get(("open", True), 0)
            row.clicks, row.acks = by_kind.get(("click", False), 0), by_kind.get(("ack", False), 0)
            row.answers, row.right = s.execute(select(func.count(), func.count().filter(Answer.correct))
                                               .where(Answer.at >= start, Answer.at < end)).one()
        return row

    try:
        for week in range(weeks):
            monday = START + timedelta(weeks=week)
            start = datetime.combine(monday, day_time(0), zone).astimezone(UTC)
            for day in range(7):
                today = monday + timedelta(days=day)
                clock.now = datetime.combine(today, day_time(8), zone).astimezone(UTC)
                usecases.send_week(factory, settings, clock())  # the hourly tick; Monday's digests and Canvas post
                dispatch_and_read()
                if week == 2 and day == 1:  # the policy changes in week 3
                    clock.now = datetime.combine(today, day_time(10), zone).astimezone(UTC)
                    usecases.publish_policy_version(factory, settings, CONTENT_DIR / "policies" / "social-media-v2.txt",
                                                    slug="social-media", label="2", now=clock())
                    dispatch_and_read()
                clock.now = datetime.combine(today, day_time(12), zone).astimezone(UTC)
                usecases.daily_pass(factory, settings, clock())
                dispatch_and_read()
                if today.weekday() == 4:
                    clock.now = datetime.combine(today, day_time(16), zone).astimezone(UTC)
                    usecases.weekly_summaries(factory, settings, clock())
                    dispatch_and_read()
            row = counts(start, start + timedelta(days=7))
            row.week = f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}"
            result.rows.append(row)
            if on_week is not None:
                on_week(row)
        with factory() as s:
            worst = reports.most_misunderstood(reports.sections_of(s))
            result.misunderstood = f"{worst.section}: {worst}" if worst else None
        result.outbox_files = write_outbox(sendgrid.emails, sent_on, outbox_dir, Sender.from_settings(settings))
        result.seconds = time.perf_counter() - started
        result.settings = settings
    finally:
        http.close()
        dispatcher.close()
        web.stop()
        sendgrid.stop()
        canvas.stop()
        engine.dispose()
    return result


def write_outbox(received: list[ReceivedEmail], dates: list[datetime], outbox_dir: Path, sender: Sender) -> int:
    """Every email the SendGrid double accepted, as it was delivered (dated by the simulated clock),
    into outbox/<kind>/*.eml."""
    for index, (item, sent_at) in enumerate(zip(received, dates, strict=True), start=1):
        kind = item.custom_args.get("kind", "email")
        folder = outbox_dir / kind
        folder.mkdir(parents=True, exist_ok=True)
        images = tuple(
            InlineImage(a["content_id"], base64.b64decode(a["content"]), a["type"].split("/")[-1], a["filename"])
            for a in item.attachments if a.get("disposition") == "inline"
        )
        message = Message(int(item.custom_args.get("delivery_id", index)), kind, item.to_email, item.to_name or "",
                          Skeleton(subject=item.subject, html=item.html, text=item.text, inline_images=images),
                          date=sent_at)
        (folder / f"{index:06d}.eml").write_bytes(bytes(build_mime(message, sender)))
    return len(received)



