"""Machine or human? Every rule that marks a read-receipt signal as a machine's lives here.

A supervisor may be told that someone "never engaged", so a scanner's click or
a privacy proxy's open must never count as a person's. Machine signals are
stored and shown with the reason, but never count as engagement.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.config import Settings

# (pattern, reason), checked in order against the User-Agent, case-insensitively
USER_AGENT_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), reason)
    for pattern, reason in (
        (r"GoogleImageProxy|ggpht\.com", "Gmail image proxy"),
        (r"YahooMailProxy|Yahoo! Slurp", "Yahoo Mail image proxy"),
        (r"^Mozilla/5\.0$", "Apple Mail Privacy Protection proxy"),
        (r"Microsoft Office Existence Discovery|ms-office.*Existence|Microsoft Office Protocol Discovery",
         "Microsoft Office link preview"),
        (r"SafeLinks|Microsoft-?ATP|BingPreview", "Microsoft link protection"),
        (r"Proofpoint|urldefense", "Proofpoint link scanner"),
        (r"Mimecast", "Mimecast link scanner"),
        (r"Barracuda", "Barracuda link scanner"),
        (r"Symantec|MessageLabs|Broadcom", "Symantec link scanner"),
        (r"Trend ?Micro|IWSVA", "Trend Micro scanner"),
        (r"Zscaler|Forcepoint|Sophos|FireEye|Cisco|IronPort|Fortinet|Palo ?Alto", "security gateway scanner"),
        (r"Slackbot|facebookexternalhit|Twitterbot|LinkedInBot|WhatsApp|TelegramBot|Discordbot|Skype",
         "chat link preview"),
        (r"python-requests|python-urllib|aiohttp|httpx|curl/|Wget|Go-http-client|okhttp|Java/|Apache-HttpClient|"
         r"libwww-perl|node-fetch|axios|HeadlessChrome|PhantomJS|Puppeteer", "scripted HTTP client"),
        (r"bot\b|crawler|spider|scanner|preview|monitor|checker|validator", "bot"),
    )
)


@dataclass(frozen=True)
class Verdict:
    is_machine: bool
    reason: str | None = None


HUMAN = Verdict(False)


@dataclass(frozen=True)
class Rules:
    """Tunable thresholds (settings)."""

    min_seconds_after_delivery: float = 10.0
    burst_seconds: float = 2.0  # two clicks on one message this close together are a scanner's
    settle_seconds: float = 10.0  # a message's clicks are judged once it has had no click this long
    scanner_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    timezone: str = Settings.model_fields["timezone"].default  # a person's week, when they gave no timezone

    @classmethod
    def from_cidrs(cls, cidrs: list[str], **kwargs: float | str) -> Rules:
        return cls(scanner_networks=tuple(ipaddress.ip_network(c, strict=False) for c in cidrs), **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls.from_cidrs(settings.scanner_cidrs, min_seconds_after_delivery=settings.machine_seconds,
                              timezone=settings.timezone)


@lru_cache(maxsize=8192)
def by_user_agent(user_agent: str | None) -> Verdict:
    """Cached: a school's staff use a handful of mail clients, so the same strings recur."""
    agent = (user_agent or "").strip()
    if not agent:
        return Verdict(True, "no user agent")
    for pattern, reason in USER_AGENT_RULES:
        if pattern.search(agent):
            return Verdict(True, reason)
    return HUMAN


def classify(
    rules: Rules,
    *,
    method: str = "GET",
    user_agent: str | None,
    ip: str | None,
    at: datetime,
    delivered_at: datetime | None,
    machine_flag: bool = False,
    machine_flag_reason: str = "sg_machine_open",
) -> Verdict:
    """One signal's verdict from everything known when it arrives."""
    if machine_flag:
        return Verdict(True, machine_flag_reason)
    if method.upper() == "HEAD":
        return Verdict(True, "HEAD request")
    verdict = by_user_agent(user_agent)
    if verdict.is_machine:
        return verdict
    if ip and rules.scanner_networks:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            address = None
        if address is not None and any(address in net for net in rules.scanner_networks):
            return Verdict(True, "scanner IP range")
    if delivered_at is not None and at - delivered_at < timedelta(seconds=rules.min_seconds_after_delivery):
        return Verdict(True, f"within {rules.min_seconds_after_delivery:g}s of delivery")
    return HUMAN


# how a message's clicks are judged together, once they have settled (service.engagement.settling)
BROWSER = re.compile(r"^Mozilla/5\.0 \(.+\) (AppleWebKit|Gecko/|Trident/|Presto/)")
NOT_A_BROWSER = "a non-browser client, before any open"
BURST = "burst: "  # the start of a burst's reason, "burst: 3 clicks within 2s"


@dataclass(frozen=True)
class Click:
    id: int
    at: datetime
    user_agent: str | None
    verdict: Verdict  # the request's own verdict (user agent, address, timing)


def is_browser(user_agent: str | None) -> bool:
    return bool(user_agent and BROWSER.match(user_agent))


def judge(rules: Rules, clicks: list[Click], human_opens: list[datetime]) -> dict[int, Verdict]:
    """Every click of one message, judged together. Two or more clicks within ``burst_seconds`` —
    the same URL or not — are all a machine's; so is a click from a non-browser client before
    any human open of the message."""
    ordered = sorted(clicks, key=lambda c: (c.at, c.id))
    window = timedelta(seconds=rules.burst_seconds)
    first_open = min(human_opens, default=None)
    verdicts: dict[int, Verdict] = {}
    for click in ordered:
        burst = [other for other in ordered if other is not click and abs(other.at - click.at) <= window]
        if click.verdict.is_machine:
            verdicts[click.id] = click.verdict
        elif burst:
            size = 1 + len(burst)
            verdicts[click.id] = Verdict(True, f"{BURST}{size} clicks within {rules.burst_seconds:g}s")
        elif not is_browser(click.user_agent) and (first_open is None or first_open > click.at):
            verdicts[click.id] = Verdict(True, NOT_A_BROWSER)
        else:
            verdicts[click.id] = click.verdict
    return verdicts
