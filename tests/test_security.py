"""Security by default (issue [3 of 8], the parts done so far): short admin tokens, security headers,
no Host reflection, formula cells in CSV exports, the metrics token, the kept generated key."""

import csv
import logging

import httpx
import pytest
from pydantic import SecretStr

from service.web.app import create_app
from tests.conftest import LiveServer
from tests.helpers import run_cli

LONG = "an-admin-token-of-enough-characters"


@pytest.mark.parametrize("token", ["", "short-token"])
def test_an_empty_or_short_admin_token_turns_the_dashboard_off(factory, settings, token, caplog) -> None:
    with caplog.at_level(logging.WARNING), \
            LiveServer(create_app(settings.model_copy(update={"admin_token": SecretStr(token)}), factory)) as live:
        answer = httpx.post(f"{live.url}/admin/login", data={"token": token}, follow_redirects=False)
        assert answer.status_code == 503 and "nudge_admin" not in answer.headers.get("set-cookie", "")
        assert httpx.get(f"{live.url}/admin/export/deliveries.csv").status_code == 503
    assert "shorter than 24 characters" in caplog.text


def test_html_pages_carry_security_headers_and_redirects_ignore_the_host(factory, settings) -> None:
    admin = settings.model_copy(update={"admin_token": SecretStr(LONG)})
    with LiveServer(create_app(admin, factory)) as live:
        page = httpx.get(f"{live.url}/admin/login")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "script-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        moved = httpx.get(f"{live.url}/admin/", headers={"Host": "evil.example"}, follow_redirects=False)
        assert moved.status_code in (301, 302, 303, 307, 308) and moved.headers["location"] == "/admin"
        assert httpx.get(f"{live.url}/c/forged", headers={"Host": "evil.example"}).status_code == 404


def test_csv_exports_escape_cells_a_spreadsheet_would_run(cli_env, capsys, factory) -> None:
    roster = cli_env / "roster.csv"
    roster.write_text("email,name,role,department,supervisor_email,timezone,canvas_user_id\n"
                      'a@school.example,"=HYPERLINK(""http://evil.example"")",teacher,,,,\n'
                      "b@school.example,+cmd|' /C calc'!A0,@staff,,,,\n"
                      "c@school.example,-2+3,teacher,,,,\n", encoding="utf-8")
    assert run_cli(capsys, "roster", "import", str(roster))[0] == 0
    out = cli_env / "engagement.csv"
    assert run_cli(capsys, "report", "engagement", "--csv", str(out))[0] == 0
    rows = {r["email"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert rows["a@school.example"]["name"] == "'=HYPERLINK(\"http://evil.example\")"
    assert rows["b@school.example"]["name"].startswith("'+cmd") and rows["b@school.example"]["role"] == "'@staff"
    assert rows["c@school.example"]["name"] == "'-2+3"


def test_metrics_need_the_bearer_token_when_one_is_set(factory, settings) -> None:
    with LiveServer(create_app(settings.model_copy(update={"metrics_token": SecretStr("m-token")}), factory)) as live:
        assert httpx.get(f"{live.url}/metrics").status_code == 401
        assert httpx.get(f"{live.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        answer = httpx.get(f"{live.url}/metrics", headers={"Authorization": "Bearer m-token"})
        assert answer.status_code == 200 and "nudge_" in answer.text


def test_links_sent_before_a_secret_key_was_set_keep_working(factory, settings) -> None:
    from service.engagement import CLICK, Signer, TokenData, signing_keys

    with factory() as s, s.begin():
        generated = signing_keys(s, settings)  # the first run: no NUDGE_SECRET_KEY, a key is generated
    old_link = Signer(generated).sign(TokenData(CLICK, 1, "https://example.org/"))
    configured = settings.model_copy(update={"secret_key": SecretStr("a-new-configured-secret-key-of-32-bytes")})
    with factory() as s, s.begin():
        keys = signing_keys(s, configured)
    assert keys[0] == "a-new-configured-secret-key-of-32-bytes" and generated[0] in keys
    assert Signer(keys).verify(old_link) is not None  # still verifies
    assert Signer(keys).sign(TokenData(CLICK, 1, "x")) != Signer(generated).sign(TokenData(CLICK, 1, "x"))


def test_login_attempts_are_throttled_per_client(factory, settings) -> None:
    with LiveServer(create_app(settings.model_copy(update={"admin_token": SecretStr(LONG)}), factory)) as live:
        answers = [httpx.post(f"{live.url}/admin/login", data={"token": "wrong"}) for _ in range(12)]
        assert [a.status_code for a in answers[:10]] == [401] * 10
        assert answers[10].status_code == 429 and int(answers[10].headers["retry-after"]) > 0
        assert httpx.post(f"{live.url}/admin/login", data={"token": LONG}).status_code == 429  # even the right one


@pytest.mark.parametrize("headers", [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"},
                                     {"Origin": "null"}])
def test_cross_origin_form_posts_are_refused(factory, live, sendgrid_double, delivered, headers) -> None:  # noqa: F811
    import re

    from sqlalchemy import func, select

    from service.models import Acknowledgement

    ack = re.search(r'href="([^"]*/ack/[^"]+)"', sendgrid_double.emails[0].html).group(1)
    ack = ack.replace("http://nudge.test", live.url)
    assert httpx.post(ack, headers=headers).status_code == 403
    assert httpx.post(f"{live.url}/admin/login", data={"token": "x"}, headers=headers).status_code == 403
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Acknowledgement)) == 0
    same_origin = {"Sec-Fetch-Site": "same-origin", "Origin": live.url}
    assert httpx.post(ack, headers=same_origin).status_code == 200


from tests.test_webhook import delivered  # noqa: E402,F401 - digests sent through SendGrid's double


def test_an_oversize_webhook_body_is_refused_while_it_streams(factory, web_settings) -> None:
    """413 for a body over the cap, declared or not, before the signature or any JSON is read; the
    server's memory stays flat under concurrent oversize posts (measured on this process: it serves)."""
    import resource
    import threading

    small = web_settings.model_copy(update={"webhook_max_bytes": 100_000})
    with LiveServer(create_app(small, factory)) as live:
        url = f"{live.url}/webhooks/sendgrid"
        assert httpx.post(url, content=b"[" + b" " * 200_000 + b"]").status_code == 413

        def chunks():
            for _ in range(300):  # 30 MB, never declared
                yield b" " * 100_000

        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        answers: list[int] = []
        posts = [threading.Thread(target=lambda: answers.append(httpx.post(url, content=chunks()).status_code))
                 for _ in range(4)]
        for post in posts:
            post.start()
        for post in posts:
            post.join(60)
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(f"\nfour concurrent 30 MB posts with a 100 kB cap: answers {answers}, peak memory grew {grown_mb:.0f} MB")
        assert answers == [413] * 4 and grown_mb < 50


def test_logout_revokes_the_session_everywhere(factory, settings) -> None:
    with LiveServer(create_app(settings.model_copy(update={"admin_token": SecretStr(LONG)}), factory)) as live:
        with httpx.Client(base_url=live.url) as browser:
            assert browser.post("/admin/login", data={"token": LONG}).status_code == 303
            cookie = browser.cookies.get("nudge_admin")
            assert browser.get("/admin").status_code == 200
            copy = httpx.Client(base_url=live.url, cookies={"nudge_admin": cookie})
            assert copy.get("/admin").status_code == 200
            assert browser.post("/admin/logout").status_code == 303
            assert copy.get("/admin", follow_redirects=False).status_code == 303  # the kept copy is dead
            copy.close()


@pytest.mark.parametrize(("env", "says"), [
    ({"NUDGE_SECRET_KEY": "short-key"}, "at least 32 bytes"),
    ({"NUDGE_SECRET_KEY": "change-me-in-production"}, "at least 32 bytes"),
    ({"NUDGE_SECRET_KEY": "k" * 40, "NUDGE_ADMIN_TOKEN": "change-me-too"}, "placeholder"),
])
def test_a_deployment_refuses_weak_or_placeholder_secrets(capsys, monkeypatch, env, says) -> None:
    monkeypatch.setenv("NUDGE_BASE_URL", "https://nudge.school.example")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_cli(capsys, "status")
    assert code == 1 and says in err and len(err.strip().splitlines()) == 1
    assert "short-key" not in err and "change-me" not in err  # secrets are never printed
