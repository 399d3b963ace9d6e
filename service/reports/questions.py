"""Knowledge-check figures: per question, how many were asked, answered, and right the first
time; per section, the share of first answers that were right (school-wide or a team's)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from service.db import count_where
from service.models import Answer, Delivery, DeliveryItem, Question
from service.reports.figures import scoped


@dataclass(frozen=True)
class QuestionFigures:
    section: str
    key: str
    prompt: str
    asked: int  # people a sent email asked it
    answered: int  # people who answered it (their first answer is the scored one)
    right_first: int  # people whose first answer was right


@dataclass(frozen=True)
class SectionFigures:
    section: str
    answered: int  # first answers to the section's questions
    right_first: int

    @property
    def share(self) -> float | None:
        return self.right_first / self.answered if self.answered else None

    def less(self, other: SectionFigures | None) -> SectionFigures:
        """These figures without ``other``'s (one person's, say)."""
        if other is None:
            return self
        return SectionFigures(self.section, self.answered - other.answered, self.right_first - other.right_first)

    def __str__(self) -> str:
        if not self.answered:
            return "– (no answers yet)"
        return f"{self.share:.0%} right first time ({self.right_first} of {self.answered} first answers)"


def question_figures(session: Session, person_ids=None, *, asked: bool = True) -> list[QuestionFigures]:
    """Every question ever answered or in the pack, in pack order; ``person_ids`` as reports scope
    (None: everyone). ``asked=False`` leaves "asked" at 0: counting it reads every question a
    digest carried (a district's year is five million), which only the CSV export needs."""
    asked_by = dict(session.execute(
        select(DeliveryItem.question_id, func.count(distinct(Delivery.person_id)))
        .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
        .where(DeliveryItem.question_id.is_not(None), Delivery.status == "sent",
               *scoped(session, Delivery.person_id, person_ids))
        .group_by(DeliveryItem.question_id)).tuples().all()) if asked else {}
    answers = {q: (n, right) for q, n, right in session.execute(
        select(Answer.question_id, func.count(), count_where(Answer.correct))
        .where(Answer.scored.is_(True), *scoped(session, Answer.person_id, person_ids))
        .group_by(Answer.question_id))}
    questions = session.scalars(select(Question).where(
        Question.active.is_(True) | Question.id.in_(list(asked_by) + list(answers)))
        .order_by(Question.policy_id, Question.position, Question.id))
    return [QuestionFigures(q.section, q.key, q.prompt, asked_by.get(q.id, 0), *answers.get(q.id, (0, 0)))
            for q in questions]


def sections_of(session: Session, person_ids=None) -> list[SectionFigures]:
    """Right first time per section (what the pages and the summary show), from the first answers."""
    return section_figures(question_figures(session, person_ids, asked=False))


def section_figures(questions: list[QuestionFigures]) -> list[SectionFigures]:
    """Per section, in the order its first question comes."""
    sums: dict[str, tuple[int, int]] = {}
    for q in questions:
        answered, right = sums.get(q.section, (0, 0))
        sums[q.section] = (answered + q.answered, right + q.right_first)
    return [SectionFigures(section, answered, right) for section, (answered, right) in sums.items()]


def most_misunderstood(sections: list[SectionFigures]) -> SectionFigures | None:
    """The section whose questions were least often right the first time (of those answered;
    on a tie, the one with more answers)."""
    answered = [s for s in sections if s.answered]
    return min(answered, key=lambda s: (s.share, -s.answered)) if answered else None


QUESTION_COLUMNS = ("section", "question", "asked", "answered", "right_first_time", "right_first_time_percent",
                    "question_id")


def question_rows(questions: list[QuestionFigures]) -> list[dict[str, object]]:
    """`nudge report questions --csv`: one row per question; percentages of those who answered."""
    return [{"section": q.section, "question": q.prompt, "asked": q.asked, "answered": q.answered,
             "right_first_time": q.right_first,
             "right_first_time_percent": f"{q.right_first / q.answered:.0%}" if q.answered else "",
             "question_id": q.key} for q in questions]
