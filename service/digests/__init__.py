"""The weekly tip digest: the choice of tips (:mod:`.selection`, pure) and composing (:mod:`.compose`)."""

from service.digests.selection import rotation_order, select_tips
from service.digests.sending import DigestBatch
from service.digests.compose import (
    CHANNEL, KIND, PRIORITY_WINDOW, ComposeResult, History, Plan, Preview, StaffRow, compose, expected_later_today,
    plan_digests,
    preview, subject_for, tip_catalogue,
)

__all__ = [
    "DigestBatch",
    "CHANNEL", "ComposeResult", "History", "KIND", "expected_later_today", "PRIORITY_WINDOW", "Plan", "Preview", "StaffRow", "compose",
    "plan_digests", "preview", "rotation_order", "select_tips", "subject_for", "tip_catalogue",
]
