"""Engagement: signed tokens and links (:mod:`.tokens`), machine-or-human rules (:mod:`.rules`),
recording signals and aggregates (:mod:`.recording`), SendGrid's signed events (:mod:`.webhook`)."""

from service.engagement.tokens import (
    ACK, CLICK, OPEN, TEAM, Links, Signer, TokenData, hash_ip, make_links, signing_keys,
)
from service.engagement.rules import Rules, Verdict, classify, is_click_burst
from service.engagement.recording import (
    CONFIRM, HUMAN_KINDS, AckResult, Signal, ack_subject, note_digests_sent, note_human_signals, prune, record_ack,
    record_click, send_confirmation_link,
)

__all__ = [
    "CONFIRM", "send_confirmation_link",
    "ACK", "AckResult", "CLICK", "HUMAN_KINDS", "Links", "OPEN", "Rules", "Signal", "Signer", "TEAM",
    "TokenData", "Verdict", "ack_subject", "classify", "hash_ip", "is_click_burst", "make_links",
    "note_digests_sent", "note_human_signals", "prune", "record_ack", "record_click", "signing_keys",
]
