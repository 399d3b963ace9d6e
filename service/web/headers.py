"""Security headers on every response the app makes (the open pixel answers before it, a GIF), and
the cross-origin check on every form POST."""

from __future__ import annotations

CSP = ("default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
HEADERS = {
    "content-security-policy": CSP,  # no script anywhere: the pages are server-rendered forms
    "x-frame-options": "DENY",  # the acknowledge button cannot be framed and clickjacked
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
ENCODED = [(name.encode(), value.encode()) for name, value in HEADERS.items()]


class SecurityHeaders:
    """ASGI middleware: adds :data:`HEADERS` unless a route set its own value."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in ENCODED if name not in present]
            await send(message)

        await self.app(scope, receive, with_headers)


FORMS = ("/ack/", "/admin/")  # every state-changing form; the webhook is server to server, signed


def cross_origin(headers: dict[bytes, bytes]) -> bool:
    """A browser says where a request comes from: Sec-Fetch-Site, else Origin against the Host the
    browser addressed (scheme left out: a TLS proxy may stand between). No header: not a browser form."""
    site = headers.get(b"sec-fetch-site")
    if site is not None:
        return site not in (b"same-origin", b"none")
    origin = headers.get(b"origin")
    if origin is None:
        return False
    return origin == b"null" or origin.split(b"://", 1)[-1] != headers.get(b"host", b"")


class CrossOriginForms:
    """ASGI middleware: a cross-origin POST to a form is refused (403) before any route reads it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith(FORMS)
                and cross_origin(dict(scope["headers"]))):
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"Cross-origin form posts are refused.\n"})
            return
        await self.app(scope, receive, send)
