"""Headers every response carries, whichever part of the app (route, static file, error, middleware) made it."""
from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A browser must take a JSON reply or a static file for what its Content-Type says, never sniff it into a script.
EVERY_RESPONSE = {"X-Content-Type-Options": "nosniff"}


class ResponseHeadersMiddleware:
    """Adds `EVERY_RESPONSE`'s headers to each HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in EVERY_RESPONSE.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
