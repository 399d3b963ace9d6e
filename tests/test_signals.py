"""The machine-or-human rules, as a table of real-looking requests."""

from datetime import UTC, datetime, timedelta

import pytest

from service.engagement.rules import Rules, by_user_agent, classify, is_click_burst

T = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")

AGENTS = [
    # (user agent, machine?, reason)
    (CHROME, False, None),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
     False, None),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)", False, None),
    ("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)", False, None),
    ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", True,
     "Gmail image proxy"),
    ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", True, "Yahoo Mail image proxy"),
    ("Mozilla/5.0", True, "Apple Mail Privacy Protection proxy"),
    ("Microsoft Office Existence Discovery", True, "Microsoft Office link preview"),
    ("Mozilla/5.0 (compatible; SafeLinks/1.0)", True, "Microsoft link protection"),
    ("Mozilla/5.0 (Windows NT 10.0) Proofpoint URL Defense", True, "Proofpoint link scanner"),
    ("Mimecast URL Protect", True, "Mimecast link scanner"),
    ("Barracuda Sentinel (EE)", True, "Barracuda link scanner"),
    ("python-requests/2.32.3", True, "scripted HTTP client"),
    ("curl/8.5.0", True, "scripted HTTP client"),
    ("Wget/1.21.4", True, "scripted HTTP client"),
    ("Go-http-client/1.1", True, "scripted HTTP client"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36",
     True, "scripted HTTP client"),
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", True, "chat link preview"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True, "bot"),
    ("", True, "no user agent"),
    (None, True, "no user agent"),
]


@pytest.mark.parametrize("agent,machine,reason", AGENTS)
def test_user_agents(agent, machine, reason) -> None:
    verdict = by_user_agent(agent)
    assert (verdict.is_machine, verdict.reason) == (machine, reason)


RULES = Rules.from_cidrs(["40.92.0.0/15", "2a01:111::/32"])


@pytest.mark.parametrize(
    "kwargs,machine,reason",
    [
        ({}, False, None),
        ({"method": "HEAD"}, True, "HEAD request"),
        ({"ip": "40.93.4.5"}, True, "scanner IP range"),
        ({"ip": "2a01:111:f400::1"}, True, "scanner IP range"),
        ({"ip": "203.0.113.9"}, False, None),
        ({"ip": "not-an-ip"}, False, None),
        ({"delivered_at": T - timedelta(seconds=3)}, True, "within 10s of delivery"),
        ({"delivered_at": T - timedelta(minutes=5)}, False, None),
        ({"machine_flag": True}, True, "sg_machine_open"),
    ],
)
def test_request_rules(kwargs, machine, reason) -> None:
    args = {"user_agent": CHROME, "ip": "198.51.100.7", "at": T, "delivered_at": None} | kwargs
    verdict = classify(RULES, **args)
    assert (verdict.is_machine, verdict.reason) == (machine, reason)


def test_click_bursts() -> None:
    rules = Rules()
    recent = [(T - timedelta(seconds=1), "https://a"), (T - timedelta(seconds=0.5), "https://b")]
    assert is_click_burst(rules, recent, T, "https://c")
    assert not is_click_burst(rules, recent, T, "https://a")  # only two distinct links
    old = [(T - timedelta(seconds=30), "https://a"), (T - timedelta(seconds=29), "https://b")]
    assert not is_click_burst(rules, old, T, "https://c")
