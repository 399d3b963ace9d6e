"""Engagement: signed tokens and links (:mod:`.tokens`), what counts (:mod:`.definition`),
machine-or-human rules (:mod:`.rules`), recording signals (:mod:`.recording`), settling clicks
(:mod:`.settling`), people's derived aggregates (:mod:`.aggregates`) and weeks (:mod:`.weekly`), SendGrid's signed events
(:mod:`.webhook`)."""

from service.engagement.tokens import (
    ACK, ANSWER, CLICK, OPEN, PREFS, TEAM, Links, Signer, TokenData, hash_ip, make_links, signing_keys,
)
from service.engagement.definition import (
    ENGAGING_KINDS, SIGNAL_KINDS, Rate, is_engaged, is_on_leave, is_reachable,
)
from service.engagement.rules import Rules, Verdict, classify
from service.engagement.aggregates import engaging, human_open, note_digests_sent, refresh, snapshot
from service.engagement.settling import Settled, settle
from service.engagement import weekly
from service.engagement.weekly import note_delivered
from service.engagement.recording import (
    CONFIRM, AckResult, Signal, ack_subject, prune, record_ack, record_click, send_confirmation_link,
)

__all__ = [
    "ACK", "ANSWER", "AckResult", "CLICK", "CONFIRM", "ENGAGING_KINDS", "Links", "OPEN", "PREFS", "Rate", "Rules", "SIGNAL_KINDS",
    "Settled", "Signal", "Signer", "TEAM", "TokenData", "Verdict", "ack_subject", "classify", "engaging", "hash_ip",
    "human_open", "is_engaged", "is_on_leave", "is_reachable", "make_links", "note_delivered", "note_digests_sent", "prune", "record_ack",
    "record_click", "refresh", "send_confirmation_link", "settle", "signing_keys", "snapshot", "weekly",
]
