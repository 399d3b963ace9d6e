"""WCAG 2.1 AA, checked by axe-core (from npm, `package.json`) in Chromium: every dashboard page, the
acknowledge, team and policy pages, and one email of each kind a six-week simulation sends. No
serious or critical violation; the counts are printed. Emails are also read with images off and
at 200% zoom (a 320-pixel-wide window): all their text is there and nothing scrolls sideways.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
from pathlib import Path

import pytest

from service import simulate
from service.db import make_engine, make_sessionmaker
from service.web.app import create_app
from tests.conftest import REPO, LiveServer
from tests.test_browser import browser, pytestmark  # noqa: F401 - the Chromium fixture and its skip rule

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
WCAG = "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']"
RUN_AXE = f"""async () => {{
  const result = await axe.run(document, {{runOnly: {{type: 'tag', values: {WCAG}}}}});
  return result.violations.map(v => ({{id: v.id, impact: v.impact, nodes: v.nodes.length,
                                       where: v.nodes.slice(0, 2).map(n => n.target.join(' '))}}));
}}"""


def violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate(RUN_AXE)


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    """Six simulated weeks: a database with every kind of row, and every kind of email on disk."""
    outbox = tmp_path_factory.mktemp("a11y") / "outbox"
    return simulate.run(6, outbox_dir=outbox), outbox


def test_every_page_and_email_kind_has_no_serious_or_critical_violation(played, browser, capsys) -> None:
    if not AXE.exists():
        if os.environ.get("NUDGE_REQUIRE_BROWSER"):
            pytest.fail("axe-core is missing: `make test` runs `npm ci` when npm is installed")
        pytest.skip("axe-core is not installed (npm ci)")
    result, outbox = played
    found: dict[str, list[dict]] = {}
    emails = {folder.name: sorted(folder.glob("*.eml"))[0] for folder in sorted(outbox.iterdir())}
    assert "attention" in emails  # a day's held emails, bundled in one
    emails["digest carrying the day's emails"] = next(p for p in sorted((outbox / "digest").glob("*.eml"))
                                                      if b"Also for you today" in p.read_bytes())
    # the service's pages forbid every script (CSP): the test's own injection of axe bypasses that
    page = browser.new_context(bypass_csp=True, viewport={"width": 1024, "height": 900}).new_page()
    for kind, path in emails.items():
        html = email.message_from_bytes(path.read_bytes(), policy=email.policy.default) \
            .get_body(("html",)).get_content()
        page.set_content(html)
        found[f"email: {kind}"] = violations(page)
    factory = make_sessionmaker(make_engine(result.database_url))
    with LiveServer(create_app(result.settings, factory)) as live:
        digest = email.message_from_bytes(emails["digest"].read_bytes(), policy=email.policy.default)
        summary = email.message_from_bytes(emails["summary"].read_bytes(), policy=email.policy.default)
        ack = re.search(r"(http://\S+/ack/\S+)", digest.get_body(("plain",)).get_content()).group(1)
        team = re.search(r"(http://\S+/team/\S+)", summary.get_body(("plain",)).get_content()).group(1)
        option = re.search(r"(http://\S+/q/\S+)", digest.get_body(("plain",)).get_content()).group(1)
        local = {"acknowledge page": ack.replace(result.base_url, live.url),
                 "quick check page": option.replace(result.base_url, live.url),
                 "team page": team.replace(result.base_url, live.url),
                 "policy page": f"{live.url}/policies/social-media",
                 "sign-in page": f"{live.url}/admin/login"}
        for name, url in local.items():
            page.goto(url)
            found[name] = violations(page)
            if name == "quick check page":
                page.get_by_role("button", name="Check my answer").click()
                page.wait_for_selector(".explanation")
                found["answer page"] = violations(page)
        page.get_by_label("Admin token").fill(simulate.DEMO_TOKEN)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live.url}/admin")
        page.goto(f"{live.url}/admin/teams/1")
        person = page.locator("a[href^='/admin/people/']").first.get_attribute("href")
        pages = ["/admin", "/admin/teams", "/admin/teams/1", "/admin/notices", "/admin/notices/1",
                 "/admin/deliveries", person]
        for path in pages:
            page.goto(live.url + path)
            found[f"dashboard {path}"] = violations(page)
    with capsys.disabled():
        print("\naxe-core (WCAG 2.1 A/AA) violations by page: serious+critical / all")
        for name, items in found.items():
            severe = sum(1 for v in items if v["impact"] in ("serious", "critical"))
            print(f"  {name}: {severe} / {len(items)}" + (f"  {items}" if items else ""))
    severe = {name: [v for v in items if v["impact"] in ("serious", "critical")] for name, items in found.items()}
    assert not any(severe.values()), {k: v for k, v in severe.items() if v}


def test_emails_read_with_images_off_and_at_200_percent_zoom(played, browser) -> None:
    _, outbox = played
    page = browser.new_page(viewport={"width": 320, "height": 800})  # a 640-pixel window at 200%
    page.route("**/*", lambda route: route.abort())  # no image (nor anything else) loads
    for folder in sorted(outbox.iterdir()):
        message = email.message_from_bytes(sorted(folder.glob("*.eml"))[0].read_bytes(), policy=email.policy.default)
        page.set_content(message.get_body(("html",)).get_content())
        text = " ".join(page.inner_text("body").split()).casefold()
        greeting = re.search(r"^(Hi[^,\n]*,)", message.get_body(("plain",)).get_content(), re.MULTILINE)
        assert greeting and greeting.group(1).casefold() in text, folder.name  # reads without its images
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{folder.name}: scrolls {overflow}px sideways at 200%"
