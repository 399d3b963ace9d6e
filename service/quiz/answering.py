"""Recording an answer (a POST from the answer page: link scanners follow GETs and never answer).

One answer is kept per question a digest asked: the first POST; a later one is shown, not kept.
A person's first answer to a question ever is the one scored ("right first time"). An answer
is engagement (:mod:`service.engagement.definition`): it is an event like an acknowledgement.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from service.db import insert_ignore
from service.engagement import Signal
from service.engagement.aggregates import refresh
from service.engagement.weekly import recount
from service.models import Answer, Delivery, DeliveryItem, EngagementEvent, Question

EVENT_KIND = "answer"  # the engagement event's (service.engagement.ANSWER is the link token's kind)


@dataclass(frozen=True)
class Asking:
    """A question as one digest asked it: what the answer page shows and records against."""

    delivery_id: int
    person_id: int
    question: Question


def find_asking(session: Session, delivery_id: int, question_id: int) -> Asking | None:
    """The question if that personal digest asked it, else None."""
    found = session.execute(
        select(Delivery.person_id, Question)
        .join(DeliveryItem, DeliveryItem.delivery_id == Delivery.id)
        .join(Question, Question.id == DeliveryItem.question_id)
        .where(Delivery.id == delivery_id, Question.id == question_id, Delivery.person_id.is_not(None))
    ).first()
    return None if found is None else Asking(delivery_id, found[0], found[1])


def kept_answer(session: Session, asking: Asking) -> Answer | None:
    return session.scalar(select(Answer).where(Answer.person_id == asking.person_id,
                                               Answer.question_id == asking.question.id,
                                               Answer.delivery_id == asking.delivery_id))


@dataclass(frozen=True)
class AnswerResult:
    recorded: bool  # False: this digest's question was answered already (that answer is kept)
    kept: Answer  # the answer kept for this digest's question (``scored``: the person's first to it)


def record_answer(session: Session, asking: Asking, choice: int, signal: Signal, *, default_zone: str
                  ) -> AnswerResult:
    """Keep ``choice`` as the answer to the digest's question unless one is kept already
    (idempotent: the unique key). ``default_zone``: the week of someone who gave no timezone."""
    question = asking.question
    if not 0 <= choice < len(question.options):
        raise ValueError("no such option")
    answered_before = session.scalar(select(exists().where(
        Answer.person_id == asking.person_id, Answer.question_id == question.id, Answer.scored.is_(True))))
    inserted = insert_ignore(session, Answer, [{
        "person_id": asking.person_id, "question_id": question.id, "delivery_id": asking.delivery_id,
        "choice": choice, "correct": choice == question.correct, "scored": not answered_before, "at": signal.at,
    }], ["person_id", "question_id", "delivery_id"])
    if inserted:
        session.add(EngagementEvent(
            delivery_id=asking.delivery_id, person_id=asking.person_id, kind=EVENT_KIND, source="quiz",
            is_machine=False, target=f"question:{question.id}", user_agent=(signal.user_agent or "")[:500] or None,
            ip_hash=signal.ip_hash, at=signal.at))
        session.flush()
        refresh(session, [asking.person_id])
        recount(session, [(asking.person_id, signal.at)], default_zone)
    kept = kept_answer(session, asking)  # inserted now, or kept before
    return AnswerResult(bool(inserted), kept)
