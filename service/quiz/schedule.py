"""Which question a person is asked next, and which tip a wrong answer brings back (pure).

Spaced repetition counted in digest weeks: a question answered wrong comes back three weeks
after the digest that asked it (so within four weeks of the answer), and its tip comes back in
the next digest; a right answer sends it eight weeks on, doubling with each right answer in a
row; a question left unanswered comes back after four weeks. A question due again goes before
one never asked only when its last answer was wrong.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.weeks import parse_week, week_key

WRONG_AGAIN_WEEKS = 3
UNANSWERED_AGAIN_WEEKS = 4
RIGHT_AGAIN_WEEKS = 8
MOST_WEEKS = 52  # a question well known still comes back once a year


@dataclass(frozen=True)
class Asked:
    """A question one digest asked, and the answer given to it there (None: no answer)."""

    question_id: int
    week: str
    right: bool | None
    answered_at: datetime | None = None


def _plus(week: str, weeks: int) -> str:
    return week_key(parse_week(week) + timedelta(weeks=weeks))


def due(asks: Sequence[Asked]) -> tuple[int, str]:
    """When a question asked before is due again, oldest ask first: (rank, week). Rank 0 goes
    before questions never asked (a wrong answer to repair), rank 2 after them."""
    last = asks[-1]
    answers = [a.right for a in asks if a.right is not None]
    if last.right is None:
        return (0 if answers and not answers[-1] else 2), _plus(last.week, UNANSWERED_AGAIN_WEEKS)
    if not last.right:
        return 0, _plus(last.week, WRONG_AGAIN_WEEKS)
    streak = len(answers) - max((i + 1 for i, right in enumerate(answers) if not right), default=0)
    return 2, _plus(last.week, min(RIGHT_AGAIN_WEEKS * 2 ** (streak - 1), MOST_WEEKS))


def next_question(eligible: Sequence[int], asked: Sequence[Asked], week: str) -> int | None:
    """The question for ``week``'s digest: of ``eligible`` (in rotation order), a wrong answer's
    question once due, else the next never asked, else the one longest due; None if none is due."""
    by_question: dict[int, list[Asked]] = defaultdict(list)
    for ask in sorted(asked, key=lambda a: a.week):
        if ask.week < week:
            by_question[ask.question_id].append(ask)
    candidates = []
    for order, question_id in enumerate(eligible):
        asks = by_question.get(question_id)
        if not asks:
            candidates.append((1, "", order, question_id))
            continue
        rank, when = due(asks)
        if when <= week:
            candidates.append((rank, when, order, question_id))
    return min(candidates)[3] if candidates else None


def tips_to_revisit(asked: Sequence[Asked], tip_of: Mapping[int, int]) -> dict[int, datetime]:
    """The tips a wrong answer brings back: for each question whose last answer was wrong, its
    tip (``tip_of``) and when the answer came; the tip goes first in the next digest after it."""
    last: dict[int, Asked] = {}
    for ask in sorted((a for a in asked if a.right is not None), key=lambda a: (a.week, a.answered_at)):
        last[ask.question_id] = ask
    return {tip_of[q]: ask.answered_at for q, ask in last.items()
            if not ask.right and q in tip_of and ask.answered_at is not None}
