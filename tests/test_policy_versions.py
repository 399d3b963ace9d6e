"""Policy versions: editorial vs material changes, the diff, update notices and re-acknowledgement."""

import email
from datetime import UTC, date, datetime, timedelta
from email import policy as email_policy

import pytest
from sqlalchemy import func, select

from service.weeks import SchoolCalendar
from service.digests import compose
from service.usecases import dispatcher as make_dispatcher
from service.doubles.canvas import CanvasDouble
from service.config import WEEKDAYS
from service.models import Delivery, DeliveryItem, Notice, Person, Tip, utcnow
from service.policy import classify, compare, split_sections, summary_html, summary_text
from service.content import import_version
from service.notices import queue_notice
from tests.conftest import REPO
from tests.helpers import run_cli

V1 = REPO / "content" / "policies" / "social-media-v1.txt"
V2 = REPO / "content" / "policies" / "social-media-v2.txt"
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


@pytest.fixture
def with_v1(factory, loaded):
    with factory() as s, s.begin():
        import_version(s, V1, slug="social-media", label="1", now=NOW - timedelta(days=90))
    return factory


NOTICE_TEXT = """\
Changed: Professional and Personal Personae
  Before: Make it clear that you are speaking for yourself and not on behalf of the School.
  Now: Make it clear that you are speaking for yourself and not on behalf of the School, and do not use a \
personal account to message students or families about school matters.

New section: Generative AI and Student Images
  Do not upload photographs, video, voice recordings, written work or personal information of students to \
generative AI tools, such as chatbots and image generators, unless the tool has been approved by the School for \
that purpose. Never use AI to create or alter images of students or colleagues, and never share such images.
  (continues in the full guidelines)

Edited without changing what it asks: Employee-Student Relations (only punctuation changed)"""


def test_the_second_version_changes_two_sections_and_edits_one_with_the_reasons() -> None:
    changes = compare(split_sections(V1.read_text()), split_sections(V2.read_text()))
    assert {c.title: (c.status, c.reason) for c in changes if c.status != "unchanged"} == {
        "Employee-Student Relations": ("editorial", "only punctuation changed"),  # "i.e." -> "i.e.,"
        "Professional and Personal Personae": ("changed", "words changed: added “and do not use a personal "
                                                          "account to …”"),
        "Generative AI and Student Images": ("added", "a new section"),
    }
    assert summary_text(changes) == NOTICE_TEXT
    summary = summary_html(changes)
    assert "<li>Before: <del>Make it clear that you are speaking for yourself and not on behalf of the " \
           "School.</del></li>" in summary
    assert "<strong>New section: Generative AI and Student Images</strong>" in summary


@pytest.mark.parametrize(("old", "new", "status", "reason"), [
    ("Be certain your information is accurate.", "Be certain that your information is accurate.", "editorial",
     "only function words changed: added “that”"),
    ("Do not share it.", "Do not  share it.", "editorial", "only spacing changed"),
    ("Do not share it.", "Do not share it!", "editorial", "only punctuation changed"),
    ("Do not share it.", "do not share it.", "editorial", "only letter case changed"),
    ("You must report it.", "You must not report it.", "changed", "words changed: added “not”"),
    ("Report it to your supervisor.", "Report it to the office.", "changed",
     "words changed: added “the office”, removed “your supervisor”"),
])
def test_function_words_punctuation_case_and_spacing_are_editorial(old, new, status, reason) -> None:
    assert classify(old, new) == (status, reason)


def test_an_editorial_change_is_stored_without_a_notice(with_v1, tmp_path) -> None:
    text = V1.read_text().replace("Respect and Responsibility\n", "Respect And Responsibility\n")
    text = text.replace("even when you disagree.", "even  when you disagree!")
    path = tmp_path / "v1b.txt"
    path.write_text(text)
    with with_v1() as s, s.begin():
        result = import_version(s, path, slug="social-media", label="1.1", now=NOW)
        assert result.status == "created" and not result.material and result.notice is None
        assert result.version.editorial is True
        assert [c.status for c in result.changes if c.status != "unchanged"] == ["editorial"]
        assert s.scalar(select(func.count()).select_from(Notice)) == 0


def test_editorial_flag_forces_no_notice_for_a_real_edit(with_v1) -> None:
    with with_v1() as s, s.begin():
        result = import_version(s, V2, slug="social-media", label="2", editorial=True, now=NOW)
        assert result.notice is None and result.version.editorial
        assert any(c.status == "added" for c in result.changes)


def test_a_material_change_creates_one_notice_for_its_audience(with_v1, settings) -> None:
    with with_v1() as s, s.begin():
        result = import_version(s, V2, slug="social-media", label="2", audience=["teacher", "coach"], due_days=10,
                                now=NOW)
        assert result.material
        notice = result.notice
        assert notice.audience == ["teacher", "coach"] and notice.due_on.isoformat() == "2026-12-11"
        queued = queue_notice(s, settings, notice, NOW)
        roles = set(s.scalars(select(Person.role).join(Delivery, Delivery.person_id == Person.id)
                              .where(Delivery.kind == "notice")))
        assert roles == {"teacher", "coach"} and queued.emails == 18 + 6  # the sample roster's teachers and coaches
        again = queue_notice(s, settings, notice, NOW)
        assert again.emails == 0  # keyed by the notice: never twice


def test_importing_version_two_notifies_everyone_once_by_email_and_canvas(cli_env, capsys, monkeypatch) -> None:
    with CanvasDouble() as canvas:
        canvas.add_course(101)
        monkeypatch.setenv("CANVAS_API_URL", canvas.url)
        monkeypatch.setenv("CANVAS_API_KEY", canvas.token)
        monkeypatch.setenv("NUDGE_CANVAS_COURSE_IDS", "101")
        # nobody's digest day is today in any timezone: on a digest day, before the digest, the digest
        # carries the notice (one email a day), and this ran on the real clock (it failed on Monday mornings)
        monkeypatch.setenv("NUDGE_DIGEST_WEEKDAY", WEEKDAYS[(utcnow() - timedelta(days=2)).weekday()])
        for step in (("content", "import", str(REPO / "content" / "social_media.yaml")),
                     ("roster", "import", str(REPO / "content" / "sample_roster.csv")),
                     ("policy", "import", str(V1), "--policy", "social-media", "--version", "1")):
            assert run_cli(capsys, *step)[0] == 0
        code, out, err = run_cli(capsys, "policy", "import", str(V2), "--policy", "social-media", "--version", "2")
        assert code == 0, err
        assert "material change: notice #1 for all (40 people)" in out
        assert "queued 40 email(s) and 1 Canvas post(s)" in out and "sent 41" in out
        code, out, _ = run_cli(capsys, "policy", "import", str(V2), "--policy", "social-media", "--version", "3")
        assert code == 0 and "identical to version 2; nothing stored" in out
        assert len(canvas.announcements(101)) == 1
        topic = canvas.announcements(101)[0]
        assert "Generative AI and Student Images" in topic.message and "/ack/" in topic.message
    files = sorted((cli_env / "outbox" / "notice").glob("*.eml"))
    assert len(files) == 40
    recipients = set()
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email_policy.default)
        recipients.add(message["To"])
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert "Changed: Professional and Personal Personae" in html and "<del" in html and "<ins" in html
        assert "New section: Generative AI and Student Images" in html
        assert NOTICE_TEXT in text  # the text part reads cleanly: before and now, no markers
        assert "I've read the update" in html and "/ack/" in text
    assert len(recipients) == 40


def test_tips_of_changed_sections_go_first_in_the_next_digest(with_v1, settings) -> None:
    with with_v1() as s, s.begin():
        compose(s, settings, NOW - timedelta(days=14), SchoolCalendar(), week="2026-W47")
        import_version(s, V2, slug="social-media", label="2", now=NOW - timedelta(days=1))
    with with_v1() as s, s.begin():
        compose(s, settings, NOW, SchoolCalendar(), week="2026-W49")
        changed = {t.id: t.section for t in s.scalars(select(Tip))}
        leads = s.execute(select(Delivery.person_id, DeliveryItem.tip_id).join(DeliveryItem)
                          .where(Delivery.period_key == "2026-W49", DeliveryItem.position == 0)).all()
        seconds = s.execute(select(DeliveryItem.tip_id).join(Delivery)
                            .where(Delivery.period_key == "2026-W49", DeliveryItem.position == 1)).scalars().all()
    # only tips whose quotes are new text jump the queue: the added section's two; the changed
    # section's other tip quotes untouched sentences, and the one quoting the rewritten sentence is suspended
    sections = {"Generative AI and Student Images"}
    assert leads and all(changed[tip] in sections for _, tip in leads)
    assert all(changed[tip] in sections for tip in seconds)
    with with_v1() as s, s.begin():
        compose(s, settings, NOW + timedelta(days=7), SchoolCalendar(), week="2026-W50")
        firsts = s.execute(select(DeliveryItem.tip_id).join(Delivery)
                           .where(Delivery.period_key == "2026-W50", DeliveryItem.position == 0)).scalars().all()
        suspended = s.scalar(select(Tip.id).where(Tip.key == "speak-for-yourself"))
        sent_since = set(s.scalars(select(DeliveryItem.tip_id).join(Delivery).where(
            Delivery.period_key.in_(["2026-W49", "2026-W50"]))))
    assert not any(changed[tip] in sections for tip in firsts)  # once had, they do not jump the queue again
    assert suspended not in sent_since


def test_an_acknowledgement_of_the_old_version_does_not_count(factory, with_v1, web_settings) -> None:
    import httpx

    from service.models import Acknowledgement
    from service.engagement import Links, Signer
    from service.web.app import create_app
    from tests.conftest import LiveServer

    with factory() as s, s.begin():
        first = import_version(s, V2, slug="social-media", label="2", now=NOW).notice
        queue_notice(s, web_settings, first, NOW)
    text = V2.read_text() + "\nA closing paragraph about live streaming school events.\n"
    path = V2.with_name("tmp-v3.txt")
    try:
        path.write_text(text)
        with factory() as s, s.begin():
            second = import_version(s, path, slug="social-media", label="3", now=NOW + timedelta(days=1)).notice
            queue_notice(s, web_settings, second, NOW + timedelta(days=1))
    finally:
        path.unlink()
    make_dispatcher(factory, web_settings, clock=lambda: NOW + timedelta(days=1)).drain()
    links = Links(web_settings.base_url, Signer(web_settings.secret_keys))
    with factory() as s:
        ann = s.scalar(select(Person).where(Person.email == "chloe.martin@example.org"))
        old_delivery = s.scalar(select(Delivery.id).where(Delivery.person_id == ann.id,
                                                          Delivery.period_key == f"notice:{first.id}"))
    with LiveServer(create_app(web_settings, factory)) as live:
        url = links.ack(old_delivery, f"notice:{first.id}").replace(web_settings.base_url, live.url)
        page = httpx.get(url)
        assert "version 2" in page.text
        httpx.post(url, headers={"User-Agent": "Mozilla/5.0 (X11) Firefox/130"})
    with factory() as s:
        acked = set(s.scalars(select(Acknowledgement.notice_id).where(Acknowledgement.person_id == ann.id)))
    assert acked == {first.id}  # version 3's notice is still open for her
    assert second.id not in acked


def test_bad_cli_input(cli_env, capsys) -> None:
    assert run_cli(capsys, "content", "import", str(REPO / "content" / "social_media.yaml"))[0] == 0
    code, _, err = run_cli(capsys, "policy", "diff", "social-media", "1", "2")
    assert code == 1 and "no policy 'social-media' with a stored version" in err
    assert run_cli(capsys, "policy", "import", str(V1), "--policy", "social-media", "--version", "1")[0] == 0
    code, _, err = run_cli(capsys, "policy", "show", "social-media", "--version", "7")
    assert code == 1 and "has no version '7' (it has 1)" in err
    code, _, err = run_cli(capsys, "policy", "import", str(V2), "--policy", "social-media", "--version", "1")
    assert code == 1 and "already has a version '1'" in err
    code, _, _ = run_cli(capsys, "policy", "import", str(V2), "--policy", "social-media", "--version", "2",
                         "--due-days", "0")
    assert code == 2
    with_versions = run_cli(capsys, "policy", "show", "social-media")
    assert with_versions[0] == 0 and "version 1 of 1" in with_versions[1]


def test_the_acknowledge_page_shows_what_changed_and_links_to_the_policy(factory, with_v1, web_settings) -> None:
    from fastapi.testclient import TestClient

    from service.engagement import Links, Signer
    from service.web.app import create_app

    with factory() as s, s.begin():
        notice = import_version(s, V2, slug="social-media", label="2", now=NOW).notice
        queue_notice(s, web_settings, notice, NOW)
        delivery = s.scalar(select(Delivery.id).where(Delivery.kind == "notice"))
        notice_id = notice.id
    url = Links(web_settings.base_url, Signer(web_settings.secret_keys)).ack(delivery, f"notice:{notice_id}")
    page = TestClient(create_app(web_settings, factory)).get(url.replace(web_settings.base_url, "")).text
    assert "What changed" in page and "<del>Make it clear that you are speaking for yourself" in page
    assert "and do not use a personal account to message students or families about school matters.</ins>" in page
    assert 'href="/policies/social-media"' in page


def test_page_furniture_is_flagged_and_the_text_still_stored(cli_env, capsys, tmp_path) -> None:
    scraped = tmp_path / "v2-scraped.txt"
    scraped.write_text(V2.read_text() + "\n0 Comments\nShare\n")
    assert run_cli(capsys, "policy", "import", str(V1), "--policy", "social-media", "--version", "1",
                   "--title", "Social Media Best Practices")[0] == 0
    code, out, err = run_cli(capsys, "policy", "import", str(scraped), "--policy", "social-media", "--version", "2")
    assert code == 0 and "stored version 2" in out
    assert "line 35: '0 Comments' looks like page furniture, not policy text" in err
    assert "line 36: 'Share' looks like page furniture" in err
    that = tmp_path / "v3.txt"
    that.write_text(scraped.read_text().replace("Be certain your", "Be certain that your"))
    code, out, _ = run_cli(capsys, "policy", "import", str(that), "--policy", "social-media", "--version", "3")
    assert code == 0 and "editorial change: stored, no notice" in out
    assert "only function words changed: added “that”" in out
    that.write_text(that.read_text().replace("respect the privacy of others", "respect privacy of others"))
    code, out, _ = run_cli(capsys, "policy", "import", str(that), "--policy", "social-media", "--version", "4",
                           "--material")
    assert code == 0 and "material change: notice" in out  # --material overrides the classification


def test_a_due_date_on_a_weekend_or_in_a_break_moves_to_the_next_school_day(factory, loaded, settings) -> None:
    from service import usecases

    friday = datetime(2026, 12, 4, 15, tzinfo=UTC)
    first = usecases.publish_policy_version(factory, settings, V2, slug="social-media", label="2", now=friday,
                                            due_days=8)
    assert first.due_on.isoformat() == "2026-12-14"  # Saturday the 12th -> Monday the 14th
    text = V2.read_text() + "\nA closing paragraph about live streaming school events.\n"
    path = V2.with_name("tmp-v3b.txt")
    try:
        path.write_text(text)
        in_break = usecases.publish_policy_version(factory, settings, path, slug="social-media", label="3",
                                                   now=friday, due_days=18)  # 22 December: the winter break
    finally:
        path.unlink()
    assert in_break.due_on == date(2027, 1, 4)  # the first school day after content/calendar.yaml's break
