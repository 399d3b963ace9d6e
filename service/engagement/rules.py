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
    burst_seconds: float = 2.0
    burst_links: int = 3
    scanner_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_cidrs(cls, cidrs: list[str], **kwargs: float) -> Rules:
        return cls(scanner_networks=tuple(ipaddress.ip_network(c, strict=False) for c in cidrs), **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        return cls.from_cidrs(settings.scanner_cidrs, min_seconds_after_delivery=settings.machine_seconds)


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


def is_click_burst(rules: Rules, recent_targets: list[tuple[datetime, str]], at: datetime, target: str) -> bool:
    """Clicks on (nearly) every link of a message within a couple of seconds are a scanner's."""
    window = [t for when, t in recent_targets if at - when <= timedelta(seconds=rules.burst_seconds)]
    return len(set(window) | {target}) >= rules.burst_links
