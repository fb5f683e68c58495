"""JSON request bodies read strictly: UTF-8 only, and a body that cannot be read is refused naming the body.

FastAPI reads a JSON body with `json.loads(bytes)`, which guesses UTF-16 and UTF-32, ignores the Content-Type's
charset, and turns invalid UTF-8 or nesting too deep for the parser into a bare 400. Routes of `StrictJSONRoute`
read it through `StrictJSONRequest` instead (FastAPI's documented custom Request and APIRoute hook).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

UTF8_NAMES = {"utf-8", "utf8"}


class BodyError(HTTPException):
    """A request body that cannot be read as UTF-8 JSON; FastAPI lets an HTTPException through as it is."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code=status_code, detail=message)
        self.message = message


def content_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type header, lower-cased, or None when it names none."""
    if not content_type:
        return None
    header = Message()
    header["content-type"] = content_type
    charset = header.get_param("charset")
    return charset.strip().lower() if isinstance(charset, str) else None


def strict_json(body: bytes, content_type: str | None) -> Any:
    """The body as JSON: BodyError for a charset other than UTF-8 (415), invalid UTF-8 or nesting too deep (400);
    a json.JSONDecodeError goes on to the caller (FastAPI's 422)."""
    charset = content_charset(content_type)
    if charset is not None and charset not in UTF8_NAMES:
        raise BodyError(415, f"request body must be UTF-8 JSON, not {charset}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyError(400, "request body is not valid UTF-8") from error
    try:
        return json.loads(text)
    except RecursionError as error:
        raise BodyError(400, "request body is nested too deeply") from error


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body(), self.headers.get("content-type"))
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
