"""Canvas announcements: what to post (:mod:`.posts`), how it reads (:mod:`.render`), and read
receipts, roster matching and the settings check (:mod:`.reads`). The channel module talks to Canvas."""

from service.canvas.posts import CHANNEL, CanvasCompose, add_post, compose_weekly, featured_tip, marker_for
from service.canvas.render import CanvasRenderer
from service.canvas.reads import ReadSync, RosterMatch, check_and_resume, match_roster, sync_reads

__all__ = [
    "CHANNEL", "CanvasCompose", "CanvasRenderer", "ReadSync", "RosterMatch", "add_post", "check_and_resume",
    "compose_weekly", "featured_tip", "marker_for", "match_roster", "sync_reads",
]
