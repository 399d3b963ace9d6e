"""The dashboard and the summary email in a real browser: Debian's Chromium driven by Playwright.

Screenshots are saved under test-artifacts/ (CI keeps them). Skipped only when no Chromium is
installed (`.ci/run` installs it, so CI always runs this).
"""

import base64
import csv
import io
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from service.models import Delivery, EngagementEvent, Person
from service.rendering import LetterRenderer
from service.engagement import Links, Signer
from service.web.app import create_app
from tests.conftest import REPO, LiveServer
from tests.test_reports import WEEK, team  # noqa: F401 - the seeded team fixture
from tests.test_knowledge_checks import school  # noqa: F401 - six people, the policy and the pack

CHROMIUM = os.environ.get("NUDGE_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
# CI sets NUDGE_REQUIRE_BROWSER=1, so a missing browser fails there instead of skipping
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("NUDGE_REQUIRE_BROWSER"),
                                reason="Chromium is not installed (.ci/run installs it)")
TOKEN = "let-me-in-please-a-long-admin-token"


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


def test_dashboard_sign_in_overview_team_person_and_csv(browser, factory, settings, team, time_machine) -> None:
    time_machine.move_to("2026-12-02T18:00:00+00:00", tick=False)  # Wednesday of the seeded week
    admin = settings.model_copy(update={"admin_token": SecretStr(TOKEN), "secret_key": SecretStr("k")})
    with LiveServer(create_app(admin, factory)) as live:
        page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
        page.goto(f"{live.url}/admin")
        assert page.url.endswith("/admin/login")
        page.get_by_label("Admin token").fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        assert "That token is not right." in page.content()
        page.get_by_label("Admin token").fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live.url}/admin")
        cookie = next(c for c in page.context.cookies() if c["name"] == "nudge_admin")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        with factory() as s:
            active = s.scalar(select(func.count()).select_from(Person).where(Person.active.is_(True)))
        assert page.inner_text("#people-active") == str(active)
        assert page.inner_text("#engagement-rate") == "25%"  # ann, sam of the 8 reachable (bob only opened)
        assert (page.inner_text("#engaged"), page.inner_text("#reachable")) == ("2", "8")
        assert page.locator("svg[role=img] title").text_content().startswith("Engagement by week:")
        page.screenshot(path=ARTIFACTS / "dashboard-overview.png", full_page=True)

        page.get_by_role("link", name="Teams").click()
        page.get_by_role("link", name="Dev Division").click()
        assert page.inner_text("#team-rate") == "25%"
        assert (page.inner_text("#team-engaged"), page.inner_text("#team-reachable")) == ("1", "4")
        row = page.locator("tr", has_text="Cat Scanned")
        assert "machine signals only" in row.inner_text()
        page.screenshot(path=ARTIFACTS / "dashboard-team.png", full_page=True)

        page.get_by_role("link", name="Cat Scanned").click()
        with factory() as s:
            cat = s.scalar(select(Person).where(Person.email == "cat@x.org"))
            machine = s.scalar(select(func.count()).select_from(EngagementEvent)
                               .where(EngagementEvent.person_id == cat.id, EngagementEvent.is_machine.is_(True)))
            deliveries = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.person_id == cat.id))
        assert page.inner_text("#machine-count") == str(machine) and page.inner_text("#human-count") == "0"
        assert page.locator("tr.timeline-delivery").count() == deliveries
        assert page.locator("td.machine").count() == machine
        page.screenshot(path=ARTIFACTS / "dashboard-person.png", full_page=True)

        page.get_by_role("link", name="Overview").click()
        assert page.inner_text("#undeliverable") == "1"  # eve bounced; the overview links to who and what to do
        page.get_by_role("link", name="undeliverable addresses").click()
        assert page.locator("tr[data-undeliverable]").all_inner_texts() == ["eve@x.org\tbounce"]
        assert "nudge roster clear-undeliverable" in page.inner_text("main")
        page.get_by_role("link", name="Overview").click()
        with page.expect_download() as download:
            page.locator("#export-engagement").click()
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        assert len(rows) == 9 and {r["email"] for r in rows} >= {"ann@x.org", "cat@x.org"}
        assert next(r for r in rows if r["email"] == "ann@x.org")["clicks"] == "1"

        page.get_by_role("button", name="Sign out").click()
        page.goto(f"{live.url}/admin/teams")
        assert page.url.endswith("/admin/login")


def test_dashboard_is_disabled_without_a_token(browser, factory, settings) -> None:
    with LiveServer(create_app(settings.model_copy(update={"admin_token": None}), factory)) as live:
        page = browser.new_page()
        response = page.goto(f"{live.url}/admin")
        assert response.status == 503 and "NUDGE_ADMIN_TOKEN" in page.content()


def test_summary_email_renders_with_its_chart(browser, factory, settings, team) -> None:
    from service.reports import compose_summaries

    with factory() as s, s.begin():
        compose_summaries(s, settings, datetime(2026, 12, 4, 22, tzinfo=UTC))  # Friday evening
    with factory() as s:
        delivery = s.scalar(select(Delivery).join(Person, Person.id == Delivery.person_id)
                            .where(Person.email == "div@x.org", Delivery.kind == "summary"))
        message = LetterRenderer("http://n", "School", Links("http://n", Signer(["k"]))).render(delivery)
    [image] = message.skeleton.inline_images
    html = message.html.replace(f"cid:{image.content_id}",
                                "data:image/png;base64," + base64.b64encode(image.data).decode())
    page = browser.new_page(viewport={"width": 700, "height": 900})
    page.set_content(html)
    chart = page.locator("img[alt^='Engagement by week']")
    assert chart.evaluate("img => img.naturalWidth") > 300  # the PNG really decoded
    text = page.inner_text("body")
    assert "1 of the 4 reachable people" in text and "25%" in text  # the hand count in test_reports
    for name, status in (("Ann Clicks", "engaged"), ("Bob Opens", "opened only"),
                         ("Cat Scanned", "machine signals only"), ("Dan Silent", "escalated"),
                         ("Eve Bounced", "undeliverable")):
        assert status in page.locator("tr", has_text=name).last.inner_text()
    page.screenshot(path=ARTIFACTS / "summary-email.png", full_page=True)


def test_a_quick_check_answered_from_the_rendered_digest(browser, factory, school) -> None:  # noqa: F811
    """A reader taps an option in the digest as their mail client shows it, presses "Check my
    answer" and reads the explanation; the answer is recorded once."""
    import email
    import email.policy

    from service.models import Answer
    from tests.test_escalation import send_week
    from tests.test_knowledge_checks import asked, digest_of

    send_week(factory, school, 0)
    delivery = digest_of(factory, "ann@x.org", "2026-W37")
    question = asked(factory, delivery)
    raw = (Path(school.outbox_dir) / "digest" / f"{delivery:08d}.eml").read_bytes()
    html = email.message_from_bytes(raw, policy=email.policy.default).get_body(("html",)).get_content()
    with LiveServer(create_app(school, factory)) as live:
        page = browser.new_page(viewport={"width": 700, "height": 900})
        page.set_content(html.replace(school.base_url, live.url))
        page.get_by_role("link", name=question.options[question.correct]).click()
        page.wait_for_url(f"{live.url}/q/**")
        assert page.get_by_role("radio", name=question.options[question.correct]).is_checked()
        page.get_by_role("button", name="Check my answer").click()
        page.wait_for_selector(".explanation")
        assert page.locator("h1").inner_text() == "Right!"
        assert question.explanation in page.inner_text(".explanation")
        assert question.quotes[0] in page.inner_text(".evidence")
        page.screenshot(path=ARTIFACTS / "quick-check-answer.png", full_page=True)
    with factory() as s:
        assert [(a.choice, a.correct, a.scored) for a in s.scalars(select(Answer))] == [(question.correct, True, True)]
