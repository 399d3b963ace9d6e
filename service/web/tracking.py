"""Click redirects: a signed link records the click, then sends the reader on.

A forged or altered token is never recorded: it shows a plain 404 and redirects nowhere.
(The open pixel is answered in front of the framework: :mod:`service.web.opens`.)
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.exc import OperationalError

from service.engagement import CLICK, record_click
from service.web.context import Web, current, page
from service.web.opens import NO_STORE

router = APIRouter()
CLICK_WAIT_MS = 100  # a click waits this long for a locked SQLite database, then is written later


@router.get("/c/{token}")
@router.head("/c/{token}", include_in_schema=False)  # scanners' HEADs are recorded as machine clicks
def click(token: str, request: Request, web: Web = Depends(current)) -> Response:
    data = web.signer.verify(token)
    if data is None or data.kind != CLICK or not data.target.startswith(("https://", "http://")):
        web.metrics.invalid_tokens.labels("click").inc()
        return page("not_found", 404)
    signal = web.signal_of(request)
    try:
        with web.unit_of_work(wait_ms=CLICK_WAIT_MS) as session:
            event = record_click(session, web.rules, data.delivery_id, data.target, signal)
    except OperationalError:  # locked or away: the reader goes on at once, the click is written later
        web.deferred.add(partial(record_click, rules=web.rules, delivery_id=data.delivery_id, target=data.target,
                                 signal=signal))
        event = None
    if event is not None:
        web.metrics.signals.labels("click", str(event.is_machine).lower()).inc()
    return RedirectResponse(data.target, status_code=302, headers=NO_STORE)
