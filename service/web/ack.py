"""The acknowledge page: a GET shows the button, only a POST records (link scanners follow GETs).

A shared page (a Canvas post) asks for the school email and answers the same whatever it is given;
an active person's address gets a personal confirmation link, and only that link acknowledges.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, selectinload

from service.engagement import ACK, ack_subject, record_ack, send_confirmation_link
from service.inputs import normalize_email
from service.models import Delivery, DeliveryItem, Notice, PolicyVersion, Tip
from service.rendering import safe_summary
from service.web.context import Web, current, page

router = APIRouter()


def ack_context(web: Web, session: Session, token: str) -> tuple[Delivery, str, dict[str, object]] | None:
    data = web.signer.verify(token)
    if data is None or data.kind != ACK:
        web.metrics.invalid_tokens.labels("ack").inc()
        return None
    delivery = session.scalar(
        select(Delivery).where(Delivery.id == data.delivery_id)
        .options(selectinload(Delivery.items).selectinload(DeliveryItem.tip).selectinload(Tip.policy))
    )
    if delivery is None:
        return None
    subject = ack_subject(delivery.id, data.target)
    what: dict[str, object] = {"titles": [i.tip.title for i in delivery.items if i.tip is not None]}
    if subject.startswith("notice:"):
        notice = session.get(Notice, int(subject.split(":")[1]))
        version = session.get(PolicyVersion, notice.policy_version_id) if notice else None
        if version is not None:
            what = {"notice": notice, "policy_title": version.policy.title, "version": version.label,
                    "summary": safe_summary(notice.summary), "policy_url": f"/policies/{version.policy.slug}"}
    return delivery, subject, what


@router.get("/ack/{token}", response_class=HTMLResponse)
def ack_page(token: str, web: Web = Depends(current)) -> HTMLResponse:
    with web.unit_of_work() as session:
        found = ack_context(web, session, token)
        if found is None:
            return page("not_found", 404)
        delivery, subject, what = found
        return page("ack", token=token, shared=delivery.person_id is None, **what)


@router.post("/ack/{token}", response_class=HTMLResponse)
def acknowledge(token: str, request: Request, email: str | None = Form(default=None),
                web: Web = Depends(current)) -> HTMLResponse:
    try:
        return _acknowledge(token, request, email, web)
    except OperationalError:  # locked or away: say so within two seconds; the person tries again
        return page("busy", 503)


def _acknowledge(token: str, request: Request, email: str | None, web: Web) -> HTMLResponse:
    with web.unit_of_work() as session:
        found = ack_context(web, session, token)
        if found is None:
            return page("not_found", 404)
        delivery, subject, what = found
        if delivery.person_id is None:  # a shared post (Canvas): only a personal link acknowledges
            described = (f"the updated {what['policy_title']} (version {what['version']})" if "notice" in what
                         else "this week's tip")
            web.deferred.add(partial(send_confirmation_link, email=normalize_email(email or ""), subject=subject,
                                     what=described, now=web.clock()))
            return page("ack_sent")  # the same answer, at once, whether the address is known or not
        result = record_ack(session, delivery, subject, delivery.person_id, web.signal_of(request),
                            default_zone=web.settings.timezone)
    if result.recorded:
        web.metrics.signals.labels("ack", "false").inc()
    return page("thanks", already=not result.recorded)
