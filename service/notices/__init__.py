"""Policy-update notices: who must confirm a new version, queued by email and in Canvas."""

from service.notices.queue import NoticeQueued, audience_of, queue_notice

__all__ = [
    "NoticeQueued", "audience_of", "queue_notice",
]
