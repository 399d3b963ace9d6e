"""The answer page of a knowledge check: a GET shows the question with the tapped option chosen
and a "Check my answer" button; only the POST records (link scanners follow GETs)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from service.engagement import ANSWER
from service.quiz import Asking, find_asking, kept_answer, record_answer
from service.rendering import section_anchor
from service.web.context import Web, current, page

router = APIRouter()


def _asking(web: Web, session: Session, token: str) -> tuple[Asking, int] | None:
    """The digest's question and the option the link names, if the token is ours and names one."""
    data = web.signer.verify(token)
    question_id, _, choice = (data.target if data else "").partition(":")
    if data is None or data.kind != ANSWER or not question_id.isdigit() or not choice.isdigit():
        web.metrics.invalid_tokens.labels("answer").inc()
        return None
    asking = find_asking(session, data.delivery_id, int(question_id))
    if asking is None or int(choice) >= len(asking.question.options):
        return None
    return asking, int(choice)


def _choice(value: str | None, asking: Asking) -> int | None:
    if value is None or not value.isdigit() or int(value) >= len(asking.question.options):
        return None
    return int(value)


def _shown(asking: Asking) -> dict[str, object]:
    question = asking.question
    return {"question": question, "section_url": f"/policies/{question.policy.slug}#{section_anchor(question.section)}"}


@router.get("/q/{token}", response_class=HTMLResponse)
def question_page(token: str, web: Web = Depends(current)) -> HTMLResponse:
    with web.unit_of_work() as session:
        found = _asking(web, session, token)
        if found is None:
            return page("not_found", 404)
        asking, choice = found
        kept = kept_answer(session, asking)
        return page("question", token=token, chosen=choice, kept=kept, **_shown(asking))


@router.post("/q/{token}", response_class=HTMLResponse)
def check_answer(token: str, request: Request, choice: str | None = Form(default=None),
                 web: Web = Depends(current)) -> HTMLResponse:
    try:
        return _check_answer(token, request, choice, web)
    except (OperationalError, IntegrityError):  # locked, away, or a second tab at the same instant
        return page("busy", 503)


def _check_answer(token: str, request: Request, value: str | None, web: Web) -> HTMLResponse:
    with web.unit_of_work() as session:
        found = _asking(web, session, token)
        if found is None:
            return page("not_found", 404)
        asking, _ = found
        choice = _choice(value, asking)
        if choice is None:
            return page("question", 400, token=token, chosen=None, kept=kept_answer(session, asking),
                        error="Choose one of the answers, then check it.", **_shown(asking))
        result = record_answer(session, asking, choice, web.signal_of(request), default_zone=web.settings.timezone)
        shown = _shown(asking)
    if result.recorded:
        web.metrics.signals.labels("answer", "false").inc()
    return page("answer", choice=choice, right=choice == asking.question.correct, result=result, **shown)
