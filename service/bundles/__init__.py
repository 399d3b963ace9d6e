"""One email per person per day: a person's notices, reminders, nudges, escalations and
summaries wait (held) until their email of the day; a digest carries them, or one
"for your attention" email bundles them (rules: :mod:`.decide`, pure)."""

from service.bundles.decide import Action, Day, decide
from service.bundles.fold import FoldResult, fold

__all__ = ["Action", "Day", "FoldResult", "decide", "fold"]
