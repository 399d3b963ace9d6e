"""The machine-or-human rules, as a table of real-looking requests."""

from datetime import UTC, datetime, timedelta

import pytest

from service.engagement.rules import HUMAN, Click, Rules, Verdict, by_user_agent, classify, judge

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


def clicks(*offsets: float, agent: str = CHROME, verdict: Verdict = HUMAN) -> list[Click]:
    return [Click(i, T + timedelta(seconds=o), agent, verdict) for i, o in enumerate(offsets)]


def test_two_clicks_of_one_message_within_two_seconds_are_a_burst_whatever_the_urls() -> None:
    verdicts = judge(Rules(), clicks(0, 0.009, 0.018, 30), human_opens=[])
    assert [verdicts[i].is_machine for i in range(4)] == [True, True, True, False]  # the first click too
    assert verdicts[0].reason == "burst: 3 clicks within 2s"
    assert not any(v.is_machine for v in judge(Rules(), clicks(0, 2.5, 5.0), human_opens=[]).values())


def test_a_non_browser_client_before_any_open_is_a_machine() -> None:
    gateway = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)"
    assert judge(Rules(), clicks(60, agent=gateway), human_opens=[])[0].reason == "a non-browser client, before any open"
    assert judge(Rules(), clicks(60, agent=gateway), human_opens=[T])[0] == HUMAN  # opened first: a person
    assert judge(Rules(), clicks(60), human_opens=[])[0] == HUMAN  # a browser may click without an open


def test_a_request_verdict_stays() -> None:
    proxy = Verdict(True, "Microsoft link protection")
    assert judge(Rules(), clicks(0, verdict=proxy), human_opens=[T])[0] == proxy
