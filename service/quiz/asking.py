"""What composing needs to ask a question: the sendable questions, who was asked what and how
they answered, and the tip each question brings back after a wrong answer."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, selectinload

from service.db import in_ids
from service.models import Answer, Delivery, DeliveryItem, Question, Tip
from service.quiz.schedule import Asked


def question_catalogue(session: Session) -> dict[int, Question]:
    """The questions that may be asked: in the pack and true to the current policy text."""
    questions = session.scalars(select(Question).where(Question.active.is_(True), Question.state == "ok")
                                .options(selectinload(Question.policy))).all()
    return {q.id: q for q in questions}


def asked_before(session: Session, person_ids: Sequence[int], before_week: Mapping[int, str]
                 ) -> dict[int, list[Asked]]:
    """Per person, the questions earlier emails asked (failed sends were never seen) and the
    answer given to each there."""
    found: dict[int, list[Asked]] = defaultdict(list)
    rows = session.execute(
        select(Delivery.person_id, Delivery.period_key, DeliveryItem.question_id, Answer.correct, Answer.at)
        .join(DeliveryItem, DeliveryItem.delivery_id == Delivery.id)
        .outerjoin(Answer, and_(Answer.delivery_id == Delivery.id, Answer.question_id == DeliveryItem.question_id))
        .where(in_ids(session, Delivery.person_id, person_ids), Delivery.status != "failed",
               DeliveryItem.question_id.is_not(None)))
    for person_id, week, question_id, correct, at in rows:
        if week < before_week[person_id]:
            found[person_id].append(Asked(question_id, week, correct, at))
    return found


def tips_of(questions: Mapping[int, Question], tips: Sequence[Tip]) -> dict[int, int]:
    """The tip a wrong answer brings back: the one the question names, else its section's first."""
    by_key = {t.key: t.id for t in tips}
    first_of_section: dict[tuple[int, str], int] = {}
    for tip in sorted(tips, key=lambda t: (t.position, t.id)):
        first_of_section.setdefault((tip.policy_id, tip.section.casefold()), tip.id)
    found = {}
    for question in questions.values():
        tip_id = by_key.get(question.tip_key or "") or first_of_section.get(
            (question.policy_id, question.section.casefold()))
        if tip_id is not None:
            found[question.id] = tip_id
    return found
