"""Adding articles through the API: `POST /articles` and `GET /rebuilds/{number}`, which says when they are answerable.

Both are off unless RAG_ADMIN_TOKEN is set on the server: they answer 404 then, saying how to turn them on, and the
OpenAPI schema declares no token for them. When on, a request needs `Authorization: Bearer <token>` (declared as the
`adminToken` scheme): 401 without it, 403 with another token (compared in constant time). A body over
RAG_MAX_UPLOAD_BYTES gets 413. `add_routes` adds them to an app.

What was added is written into the corpus at once (rag.corpus_writer.save_articles: validated like any article file,
named stably, a newer version of a URL replacing the older) and an incremental rebuild is queued (rag.rebuilds); the
reply lists what was added and skipped, and the rebuild to follow. Like every route but the health checks, both pass
through the admission control (web/admission.py).
"""
from __future__ import annotations

import hmac
import json
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from rag.corpus_writer import SaveReport, summary_line
from rag.errors import ArticleFormatError
from rag.ingest import article_from_fields
from rag.news import convert_bytes, save_articles
from rag.rebuilds import Rebuild, Rebuilder
from rag.settings import Settings
from web.bodies import BodyError, strict_json
from web.schemas import (ArticleIn, ArticlesAdded, DateOnly, ErrorMessage, InvalidRequest, NothingAdded,
                         RebuildNumber, RebuildStatus, Source)

# Media types of a raw body holding a page or a feed (a multipart upload may hold either, or a WARC).
UPLOAD_TYPES = ("text/html", "application/xhtml+xml", "application/rss+xml", "application/atom+xml",
                "application/xml", "text/xml")
MAX_FORM_FIELDS = 10
SHUTDOWN_WAIT_SECONDS = 120.0  # a build in progress when the server stops is given this long to finish its switch

# Declares the bearer token in the OpenAPI schema (the check is require_admin's); only a server with the token set
# declares it, since one without answers 404 to every request, credentials or not.
bearer = HTTPBearer(auto_error=False, scheme_name="adminToken",
                    description="The server's RAG_ADMIN_TOKEN, as `Authorization: Bearer <token>`.")

ADMIN_ERRORS = {
    401: {"model": ErrorMessage, "description": "No `Authorization: Bearer <token>` header."},
    403: {"model": ErrorMessage, "description": "The token is not the server's RAG_ADMIN_TOKEN."},
    404: {"model": ErrorMessage, "description": "Adding articles through the API is off on this server "
                                                "(RAG_ADMIN_TOKEN is not set); for GET /rebuilds/{number}, also: no "
                                                "such rebuild."},
    503: {"model": ErrorMessage, "description": "The server is busy (see `Retry-After`)."},
}
ADD_ERRORS = {
    **ADMIN_ERRORS,
    400: {"model": InvalidRequest, "description": "The body is not valid UTF-8, is nested too deeply, or is a "
                                                  "form that cannot be read."},
    413: {"model": InvalidRequest, "description": "The body is over RAG_MAX_UPLOAD_BYTES (5 MB)."},
    415: {"model": InvalidRequest, "description": "The body is neither JSON, a page or feed, nor a form with a file; "
                                                  "or JSON in a charset other than UTF-8."},
    422: {"model": InvalidRequest, "description": "The article's fields are invalid (each error names its field)."},
    200: {"model": NothingAdded, "description": "Nothing sent could be added (`skipped` says why of each item), so "
                                                "no rebuild was queued."}}
# A raw page or feed is any bytes (what is not one is skipped with the reason), so its schema does not constrain it.
_PAGE_OR_FEED = {"schema": {"description": "The page or feed as it was served."}}
REQUEST_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": ArticleIn.model_json_schema(ref_template="#/components/schemas/{model}")},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "additionalProperties": False,
                                       "properties": {"file": {
        "type": "string", "format": "binary", "description": "A web page (HTML) or an RSS or Atom feed."}}}},
    **{media_type: _PAGE_OR_FEED for media_type in UPLOAD_TYPES}}}}


def require_admin(request: Request) -> Settings:
    """The server's settings, once the request may add articles: 404 when that is off, 401 or 403 for the token."""
    settings = request.app.state.pipeline.settings
    if settings.admin_token is None:
        raise HTTPException(404, "adding articles through the API is off on this server: set RAG_ADMIN_TOKEN (16 "
                                 "characters or more) where it runs to turn it on")
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "adding articles needs the header `Authorization: Bearer <RAG_ADMIN_TOKEN>`",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(token.encode(), settings.admin_token.get_secret_value().encode()):
        raise HTTPException(403, "the bearer token is not the server's RAG_ADMIN_TOKEN")
    return settings


AdminSettings = Annotated[Settings, Depends(require_admin)]


def rebuilder(request: Request) -> Rebuilder:
    """The app's rebuilder, made on first use (an app that never adds articles starts no thread)."""
    state = request.app.state
    if getattr(state, "rebuilder", None) is None:
        state.rebuilder = Rebuilder(state.pipeline.settings.corpus_dir, state.pipeline)
    return state.rebuilder


def close_rebuilder(state: object) -> None:
    """At shutdown: no more builds; one in progress finishes its switch (up to SHUTDOWN_WAIT_SECONDS)."""
    if getattr(state, "rebuilder", None) is not None:
        state.rebuilder.close(timeout=SHUTDOWN_WAIT_SECONDS)


def _status(ticket: Rebuild) -> dict:
    return {**vars(ticket), "status_url": f"/rebuilds/{ticket.number}"}


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be over `max_bytes` (by Content-Length, or while read)."""
    declared = request.headers.get("content-length", "")
    too_large = BodyError(413, f"request body is over the {max_bytes:,}-byte limit (RAG_MAX_UPLOAD_BYTES)")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise too_large
    return bytes(body)


def _invalid(messages: list[tuple[str, str]]) -> RequestValidationError:
    """422 in the API's error format: (field, message) pairs."""
    return RequestValidationError([{"loc": (field,), "msg": message, "type": "value_error"}
                                   for field, message in messages])


def _json_article(body: bytes, content_type: str | None, published: str | None, source: str | None) -> dict:
    """The JSON body as article fields, checked like an article file's (422 naming the field otherwise)."""
    try:
        data = strict_json(body, content_type)
    except json.JSONDecodeError:
        raise RequestValidationError([{"loc": ("body",), "msg": "invalid", "type": "json_invalid"}]) from None
    try:
        fields = ArticleIn.model_validate(data).fields()
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None
    fields["source"] = source or fields["source"]
    fields["published"] = fields["published"] or published
    try:
        article_from_fields({k: v for k, v in fields.items() if k != "text"}, fields["text"], "draft", "body")
    except ArticleFormatError as error:
        raise _invalid([("body", error.reason)]) from None
    return fields


async def _upload(request: Request, body: bytes, media_type: str) -> tuple[bytes, str, str | None]:
    """The page or feed sent: (data, name, content type), from a raw body or the `file` part of a form."""
    if media_type != "multipart/form-data":
        return body, "the request body", media_type

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=MAX_FORM_FIELDS,
                                                         max_part_size=len(body) + 1)
    except HTTPException as error:
        raise BodyError(400, f"the form could not be read: {error.detail}") from None
    unknown = sorted(set(form.keys()) - {"file"})
    if unknown:
        raise _invalid([(name, "unknown form field: only `file` is taken") for name in unknown])
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise _invalid([("file", "a file part named `file` with the page or feed is required")])
    return await upload.read(), upload.filename or "the uploaded file", upload.content_type


def _skipped(skipped: list[tuple[str, str]]) -> list[dict]:
    return [{"item": item, "reason": reason} for item, reason in skipped]


def _reply(saved: SaveReport, counts: str, skipped: list[tuple[str, str]], ticket: Rebuild) -> dict:
    changes = [(article_id, change) for change, ids in (("added", saved.added), ("updated", saved.updated),
                                                        ("unchanged", saved.unchanged)) for article_id in ids]
    return {
        "detail": f"{counts}; answerable once rebuild {ticket.number} is done: GET /rebuilds/{ticket.number}",
        "added": [{"id": article_id, "change": change, "article_url": f"/articles/{article_id}"}
                  for article_id, change in changes],
        "skipped": _skipped(skipped),
        "rebuild": _status(ticket),
    }


async def add_articles(
        request: Request, response: Response, settings: AdminSettings,
        published: Annotated[DateOnly | None, Query(description=(
            "YYYY-MM-DD: the date of an article that does not give one (a page without a date is skipped without "
            "it)."))] = None,
        source: Annotated[Source | None, Query(description="The outlet of every article sent, instead of the "
                                                           "page's site name or the feed's title.")] = None,
) -> dict | JSONResponse:
    """Add an article: as JSON with the usual fields, or a web page or an RSS or Atom feed (the raw body with its
    content type, or a form's `file` part). It is written into the corpus at once and an incremental rebuild is
    queued (202); the reply lists what was added and what was skipped and why (200, and no rebuild, when nothing
    could be added). The articles are answerable once the rebuild named in the reply is `done`
    (`GET /rebuilds/{number}`); `GET /articles/{id}` answers 404 until then for a new article."""
    body = await _read_body(request, settings.max_upload_bytes)
    content_type = request.headers.get("content-type")
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    date = published.isoformat() if published else None
    if media_type == "application/json":
        articles, skipped = [_json_article(body, content_type, date, source)], []
    elif media_type in UPLOAD_TYPES or media_type == "multipart/form-data":
        data, name, kind = await _upload(request, body, media_type)
        converted = await run_in_threadpool(convert_bytes, data, name, kind, published=date, source=source,
                                            settings=settings)
        articles, skipped = converted.articles, list(converted.skipped)
    else:
        raise BodyError(415, "the body must be an article as application/json, a page or feed "
                             f"({', '.join(UPLOAD_TYPES)}) or multipart/form-data with a file; got "
                             f"{media_type or 'no content type'}")
    saved = await run_in_threadpool(save_articles, articles, settings.corpus_dir, settings=settings)
    skipped += saved.skipped
    counts = summary_line(len(saved.added), len(saved.updated), len(saved.unchanged), skipped)
    if not (saved.added or saved.updated or saved.unchanged):  # nothing to index: no rebuild
        return JSONResponse({"detail": f"nothing could be added: {counts}",
                             "skipped": _skipped(skipped)})
    ticket = rebuilder(request).request()
    response.headers["Location"] = f"/rebuilds/{ticket.number}"
    return _reply(saved, counts, skipped, ticket)


async def rebuild_status(request: Request, number: RebuildNumber, settings: AdminSettings) -> dict:
    """A rebuild queued by POST /articles: `done` once the server serves it, so the articles added before it was
    requested are answerable."""
    ticket = rebuilder(request).get(number)
    if ticket is None:
        raise HTTPException(404, f"no rebuild {number} on this server (numbered from 1 since it started; the last "
                                 "100 are kept)")
    return _status(ticket)


def add_routes(app: FastAPI, enabled: bool) -> None:
    """Add the routes to `app`; `enabled` (RAG_ADMIN_TOKEN set) declares their bearer token in the OpenAPI schema."""
    token = [Depends(bearer)] if enabled else []
    app.add_api_route("/articles", add_articles, methods=["POST"], status_code=202, response_model=ArticlesAdded,
                      openapi_extra=REQUEST_BODY, responses=ADD_ERRORS, dependencies=token,
                      response_description="Written into the corpus; the rebuild that makes it answerable is "
                                           "queued (`Location` is its status).")
    app.add_api_route("/rebuilds/{number}", rebuild_status, methods=["GET"], response_model=RebuildStatus,
                      dependencies=token, responses={**ADMIN_ERRORS, 422: {
                          "model": InvalidRequest, "description": "The number is not a whole number >= 1."}})
