"""Security headers on every response the app makes (the open pixel answers before it, a GIF)."""

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
