"""SendGrid's signed event webhook: verified before anything is read into the database."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from service.engagement import webhook
from service.web.context import Web, current

log = logging.getLogger(__name__)
router = APIRouter()


async def capped_body(request: Request, limit: int) -> bytes | None:
    """The body, read while it streams in; None as soon as it passes ``limit`` (memory stays flat)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            return None
    return bytes(received)


@router.post("/webhooks/sendgrid")
async def sendgrid_events(request: Request, web: Web = Depends(current)) -> JSONResponse:
    body = await capped_body(request, web.settings.webhook_max_bytes)
    if body is None:
        web.metrics.webhook_batches.labels("rejected").inc()
        return JSONResponse({"error": f"body larger than {web.settings.webhook_max_bytes} bytes"}, status_code=413)
    try:
        web.verifier.verify(body, request.headers.get("x-twilio-email-event-webhook-signature"),
                            request.headers.get("x-twilio-email-event-webhook-timestamp"), web.clock())
    except webhook.SignatureError as exc:
        web.metrics.webhook_batches.labels("rejected").inc()
        log.warning("SendGrid webhook rejected: %s", exc)
        return JSONResponse({"error": str(exc)}, status_code=403)
    with web.unit_of_work() as session:
        result = webhook.ingest(session, web.rules, body, web.clock())
    web.metrics.webhook_batches.labels("accepted").inc()
    for (kind, machine), count in result.by_type.items():
        web.metrics.webhook_events.labels(kind, str(machine).lower()).inc(count)
    return JSONResponse({"stored": result.stored, "duplicates": result.duplicates, "ignored": result.ignored,
                         "rejected": result.rejected})
