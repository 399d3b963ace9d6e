"""A person's own preferences, without an account: the signed link in every email's footer opens
them (the email reached its reader, so the link is theirs). The digest day, "on leave until" (no
digests and no reminders or escalations until then; the supervisor sees "on leave"), and, for
people in a configured Canvas course, tips in Canvas only (notices and reminders still email)."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Depends, Form
from fastapi.responses import HTMLResponse

from service import usecases
from service.config import WEEKDAYS
from service.engagement import PREFS
from service.models import Delivery, Person
from service.web.context import Web, current, page, private_page

router = APIRouter()
DIGEST_DAYS = WEEKDAYS[:5]
LONGEST_LEAVE = timedelta(days=400)


def _reader(web: Web, session, token: str) -> Person | None:
    data = web.signer.verify(token)
    if data is None or data.kind != PREFS:
        web.metrics.invalid_tokens.labels("prefs").inc()
        return None
    delivery = session.get(Delivery, data.delivery_id)
    person = session.get(Person, delivery.person_id) if delivery and delivery.person_id else None
    return person if person is not None and person.active else None


def _form(web: Web, person: Person, token: str, *, saved: bool = False, error: str | None = None) -> HTMLResponse:
    return private_page("preferences", token=token, person=person, days=DIGEST_DAYS,
                        day=person.digest_weekday or web.settings.digest_weekday, saved=saved, error=error,
                        canvas=bool(web.settings.canvas_enabled and person.canvas_user_id))


@router.get("/prefs/{token}", response_class=HTMLResponse)
def preferences(token: str, web: Web = Depends(current)) -> HTMLResponse:
    with web.unit_of_work() as session:
        person = _reader(web, session, token)
        if person is None:
            return page("not_found", 404)
        return _form(web, person, token)


@router.post("/prefs/{token}", response_class=HTMLResponse)
def save_preferences(token: str, digest_day: str = Form(default=""), leave_until: str = Form(default=""),
                     canvas_only: str = Form(default=""), web: Web = Depends(current)) -> HTMLResponse:
    today = web.clock().astimezone(web.zone).date()
    problem = None
    if digest_day not in DIGEST_DAYS:
        problem = "Choose a digest day from Monday to Friday."
    leave: date | None = None
    if leave_until.strip():
        try:
            leave = date.fromisoformat(leave_until.strip())
        except ValueError:
            problem = "Give the last day of your leave as a date, like 2027-03-01."
        else:
            if not today <= leave <= today + LONGEST_LEAVE:
                problem = "The last day of your leave must be between today and a little over a year from now."
    with web.unit_of_work() as session:
        person = _reader(web, session, token)
        if person is None:
            return page("not_found", 404)
        if problem:
            return _form(web, person, token, error=problem)
        person_id = person.id
    usecases.set_preferences(web.factory, person_id, digest_weekday=digest_day, leave_until=leave,
                             canvas_only=bool(canvas_only) and web.settings.canvas_enabled)
    with web.unit_of_work() as session:
        return _form(web, session.get(Person, person_id), token, saved=True)
