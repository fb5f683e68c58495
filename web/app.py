"""The FastAPI app: the `/ask` API, article pages and the web chat. Routes validate, call the pipeline, render."""
from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import fastapi_offline
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Match

from rag.errors import ArticleNotFoundError, IndexNotBuiltError, IndexOutdatedError
from rag.pipeline import Pipeline
from rag.serialize import reply_to_dict
from rag.settings import get_settings
from rag.types import ARTICLE_FIELDS, Article
from web import admin
from web.admission import AdmissionLimits, AdmissionMiddleware
from web.bodies import BodyError, StrictJSONRoute
from web.headers import ResponseHeadersMiddleware
from web.schemas import (MAX_HISTORY, ArticleFull, ArticleMeta, AskRequest, AskResponse, ErrorMessage, Health,
                         HistoryTurn, InvalidRequest, Offset, Ready, web_address)

HERE = Path(__file__).parent
SWAGGER_UI = Path(fastapi_offline.__file__).parent / "static"  # Swagger UI's files, from a package: no CDN
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["segment"] = lambda value: quote(str(value), safe="")

# Pages load scripts and styles from /static only, so even a markup slip in a template could not run code.
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Vary": "Accept",
}
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
FIELD_LABELS = {name: name.capitalize() for name in ARTICLE_FIELDS}  # "Byline: Kei Kobayashi" in the chat
# The chat form's labels for what an AskRequest built from it names (`filters.sources.0` is the Outlet menu).
FORM_LABELS = {"question": "Your question", "filters.sources": "Outlet", "filters.since": "Published from",
               "filters.until": "Published until", "filters": "Filters"}
MAX_FORM_FIELDS = 1000

# What each operation answers besides 200, as the handlers below write it.
INVALID = {422: {"model": InvalidRequest, "description": "The request is invalid: each error names its field."}}
UNREADABLE_BODY = {
    400: {"model": InvalidRequest, "description": "The body is not valid UTF-8, or is nested too deeply."},
    415: {"model": InvalidRequest, "description": "The Content-Type names a charset other than UTF-8."}}
NO_INDEX = {503: {"model": ErrorMessage, "description": "There is no index to answer from yet (run `rag index`), "
                                                        "or the server is busy (see `Retry-After`)."}}
NOT_FOUND = {404: {"model": ErrorMessage, "description": "No article has this id (a page for a browser).",
                   "content": {"text/html": {"schema": {"type": "string"}}}}}
PAGE = {200: {"content": {"text/html": {"schema": {"type": "string"}}},
              "description": "JSON, or a page for a client that prefers text/html."}}


def get_pipeline(request: Request) -> Pipeline:
    return request.app.state.pipeline


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]


def _field_name(location: tuple) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _error_messages(errors: list[dict]) -> list[dict]:
    return [{"field": _field_name(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")} for e in errors]


def _invalid_request(errors: list[dict], status_code: int) -> JSONResponse:
    """An `InvalidRequest` reply: the errors, and all of them on one line in `detail`."""
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse({"detail": detail, "errors": errors}, status_code=status_code)


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 with one plain message per field, naming it (`question: String should have at least 1 character`)."""
    errors = _error_messages(error.errors())
    if any(e.get("type") == "json_invalid" for e in error.errors()):
        errors = [{"field": "body", "message": "request body is not valid JSON"}]
    return _invalid_request(errors, 422)


async def _unreadable_body(request: Request, error: BodyError) -> JSONResponse:
    return _invalid_request([{"field": "body", "message": error.message}], error.status_code)


async def _no_index(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=503)


async def _not_found(request: Request, error: ArticleNotFoundError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=404)


async def _method_not_allowed(request: Request, error: HTTPException) -> JSONResponse:
    """405 whose `Allow` names the methods of every route of the path (Starlette's names the first route's only:
    GET /articles and POST /articles are two routes)."""
    allowed = {method for route in request.app.router.routes if route.matches(request.scope)[0] != Match.NONE
               for method in getattr(route, "methods", None) or ()}
    return JSONResponse({"detail": error.detail}, status_code=405,
                        headers={"Allow": ", ".join(sorted(allowed)) or (error.headers or {}).get("Allow", "")})


def wants_html(request: Request) -> bool:
    """Whether the client prefers a page to JSON, by the Accept header's q-values (a browser's navigation does)."""
    html_weight = json_weight = 0.0
    for item in request.headers.get("accept", "").split(","):
        media, *params = [part.strip().lower() for part in item.split(";")]
        weight = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    weight = float(param[2:])
                except ValueError:
                    weight = 0.0
        if media in ("text/html", "application/xhtml+xml", "text/*"):
            html_weight = max(html_weight, weight)
        elif media in ("application/json", "application/*", "*/*"):
            json_weight = max(json_weight, weight)
    return html_weight > 0 and html_weight >= json_weight


@dataclass(frozen=True)
class Piece:
    """A run of article text, inside the highlighted quote or not; `anchor` marks the highlight's first piece."""

    text: str
    marked: bool = False
    anchor: bool = False


def valid_span(text: str, start: int | None, end: int | None) -> bool:
    return start is not None and end is not None and 0 <= start < end <= len(text)


def paragraph_bounds(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph (text between blank lines), as offsets into `text`."""
    bounds, position = [], 0
    for match in _PARAGRAPH_BREAK.finditer(text):
        bounds.append((position, match.start()))
        position = match.end()
    bounds.append((position, len(text)))
    return [(start, end) for start, end in bounds if text[start:end].strip()]


def highlighted_paragraphs(text: str, start: int | None, end: int | None) -> list[list[Piece]]:
    """The article's paragraphs cut into pieces so that `text[start:end]` is marked, across paragraphs if need be
    (nothing is marked when the span is not inside the text)."""
    if not valid_span(text, start, end):
        start = end = None
    paragraphs, anchored = [], False
    for p_start, p_end in paragraph_bounds(text):
        if start is None or end is None or end <= p_start or start >= p_end:
            paragraphs.append([Piece(text[p_start:p_end])])
            continue
        m_start, m_end = max(start, p_start), min(end, p_end)
        pieces = [Piece(text[p_start:m_start]), Piece(text[m_start:m_end], True, not anchored),
                  Piece(text[m_end:p_end])]
        anchored = True
        paragraphs.append([piece for piece in pieces if piece.text])
    return paragraphs


def safe_url(url: str | None) -> str | None:
    """The article's own URL if it is a web address; anything else (`javascript:`...) is not linked."""
    return web_address(url)


def quote_parts(answer: dict) -> tuple[str, str, str]:
    """The quote split around the answer span, by offsets (the span is highlighted, never re-typed)."""
    quote_text = answer["quote"]
    a = max(0, min(len(quote_text), answer["answer_start"] - answer["quote_start"]))
    b = max(a, min(len(quote_text), answer["answer_end"] - answer["quote_start"]))
    return quote_text[:a], quote_text[a:b], quote_text[b:]


def reply_answer_text(reply: dict) -> str:
    """What an earlier turn answered, as sent back in `history`."""
    return "" if reply["no_answer"] or not reply["answers"] else reply["answers"][0]["text"]


def turn_state(reply: dict) -> str:
    """A turn as the no-JS form carries it to the next post: the question and, for every answer, the article id
    and the offsets of its quote, or the metadata field it quotes (the words are read from the article again, so an
    edited field can only show the article's own words)."""
    def answer_state(a: dict) -> dict:
        where = ({"quote": [a["quote_start"], a["quote_end"]], "answer": [a["answer_start"], a["answer_end"]]}
                 if a.get("field", "text") == "text" else {"field": a["field"]})
        return {"id": a["article"]["id"], **where, "weak": a["weak"],
                "also": [[c["article"]["id"], c["quote_start"], c["quote_end"]] for c in a["also_reported_by"]],
                **({"carried": [[c["article"]["id"], c["quote_start"], c["quote_end"]] for c in a["carried_by"]]}
                   if a["carried_by"] else {})}

    return json.dumps({"question": reply["question"], "no_answer": reply["no_answer"],
                       "answers": [answer_state(a) for a in reply["answers"]]}, ensure_ascii=False)


def _cut(article: Article, start: object, end: object) -> tuple[int, int]:
    if not (type(start) is int and type(end) is int and 0 <= start <= end <= len(article.text)):
        raise ValueError(f"offsets {start}:{end} are outside article {article.id!r}")
    return start, end


def _other_from_state(pipeline: Pipeline, state: list) -> dict:
    """A corroborating article's quote from its [article id, start, end]."""
    other_id, start, end = state
    other = pipeline.article(str(other_id))
    start, end = _cut(other, start, end)
    return {"article": other.meta(), "quote": other.text[start:end], "quote_start": start, "quote_end": end}


def _answer_from_state(pipeline: Pipeline, state: dict) -> dict:
    article = pipeline.article(str(state["id"]))
    field = state.get("field", "text")
    if field == "text":
        quote_start, quote_end = _cut(article, *state["quote"])
        answer_start, answer_end = _cut(article, *state["answer"])
        if not quote_start <= answer_start <= answer_end <= quote_end:
            raise ValueError("the answer lies outside its quote")
        answer_text, quote_text = article.text[answer_start:answer_end], article.text[quote_start:quote_end]
    elif field in FIELD_LABELS:
        value = getattr(article, field)
        if not isinstance(value, str) or not value:
            raise ValueError(f"article {article.id!r} has no {field}")
        answer_text = quote_text = value
        quote_start = quote_end = answer_start = answer_end = None
    else:
        raise ValueError(f"unknown answer field {field!r}")
    also = [_other_from_state(pipeline, other) for other in state["also"]]
    carried = [_other_from_state(pipeline, other) for other in state.get("carried", [])]  # none before carried_by
    weak = bool(state["weak"])
    return {"text": answer_text, "quote": quote_text, "score": None, "weak": weak,
            "confidence": "low" if weak else "high", "field": field, "article": article.meta(),
            "quote_start": quote_start, "quote_end": quote_end, "answer_start": answer_start,
            "answer_end": answer_end, "also_reported_by": also, "carried_by": carried}


def earlier_reply(pipeline: Pipeline, state: str) -> dict | None:
    """An earlier turn of a no-JS conversation rebuilt from `turn_state`; None when the field was tampered with."""
    try:
        data = json.loads(state)
        if not isinstance(data["question"], str):
            raise TypeError("question must be a string")
        answers = [_answer_from_state(pipeline, a) for a in data["answers"]]
        reply = {"question": data["question"], "no_answer": bool(data["no_answer"]), "took_ms": 0.0,
                 "answers": answers}
        HistoryTurn(question=reply["question"], answer=reply_answer_text(reply))  # one the API would take
    except (ValueError, KeyError, TypeError, RecursionError, ArticleNotFoundError):  # ValidationError included
        return None
    return reply


templates.env.globals.update(quote_parts=quote_parts, turn_state=turn_state, field_labels=FIELD_LABELS)


def _render(request: Request, name: str, context: dict, status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code, headers=HTML_HEADERS)


def _outlets(pipeline: Pipeline) -> list[str]:
    return sorted({a.source for a in pipeline.articles()}, key=str.casefold)


def _newest_first(articles: list[Article]) -> list[Article]:
    return sorted(articles, key=lambda a: (a.published or "", a.title), reverse=True)


def _form_label(field: str) -> str:
    """What the chat form calls a field of the AskRequest made from it (`filters.sources.0` is "Outlet")."""
    return FORM_LABELS.get(re.sub(r"(\.[0-9]+)+$", "", field), field)


def _chat_page(request: Request, pipeline: Pipeline, question: str | None, history: list[str], source: str,
               since: str, until: str, unreadable: str | None = None) -> HTMLResponse:
    """The chat rendered on the server: earlier turns from the form's hidden fields, then the new reply (or why
    the form could not be read)."""
    context = {"question": question or "", "source": source, "since": since, "until": until,
               "turns": [], "error": None, "outlets": []}
    try:
        context["outlets"] = _outlets(pipeline)
        turns = [t for t in (earlier_reply(pipeline, state) for state in history[-MAX_HISTORY:]) if t]
    except (IndexNotBuiltError, IndexOutdatedError) as error:
        return _render(request, "chat.html", {**context, "error": str(error)}, status_code=503)
    context["turns"] = turns
    if unreadable:
        return _render(request, "chat.html", {**context, "error": unreadable}, status_code=400)
    if question is None:
        return _render(request, "chat.html", context)
    filters = {"sources": [source] if source else [], "since": since or None, "until": until or None}
    try:
        body = AskRequest(question=question, history=[{"question": t["question"], "answer": reply_answer_text(t)}
                                                      for t in turns], filters=filters)
    except ValidationError as error:
        message = "; ".join(f"{_form_label(e['field'])}: {e['message']}" for e in _error_messages(error.errors()))
        return _render(request, "chat.html", {**context, "error": message}, status_code=422)
    try:
        reply = pipeline.ask(body.question, body.turns(), body.top_k, body.filters.to_filters())
    except (IndexNotBuiltError, IndexOutdatedError) as error:
        return _render(request, "chat.html", {**context, "error": str(error)}, status_code=503)
    turns.append(reply_to_dict(reply))
    return _render(request, "chat.html", {**context, "question": ""})


def create_app(pipeline: Pipeline | None = None, warm_up: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.pipeline = pipeline or Pipeline()
        if warm_up:
            app.state.pipeline.warm_up()
            app.state.pipeline.watch()  # a new build is loaded, or a damaged one reported, between requests too
        yield
        admin.close_rebuilder(app.state)  # a build queued by POST /articles finishes its switch
        app.state.pipeline.close()

    # /docs is served below from local files; ReDoc (CDN script, inline styles) is not offered.
    app = FastAPI(title="News QA", summary="Answers from the articles' own words, with citations.",
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.router.route_class = StrictJSONRoute
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(BodyError, _unreadable_body)
    app.add_exception_handler(IndexNotBuiltError, _no_index)
    app.add_exception_handler(IndexOutdatedError, _no_index)
    app.add_exception_handler(ArticleNotFoundError, _not_found)
    app.add_exception_handler(405, _method_not_allowed)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(AdmissionMiddleware, limits=AdmissionLimits.from_settings(get_settings()))
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=get_settings().trusted_hosts)
    app.add_middleware(ResponseHeadersMiddleware)  # outermost: on every response, a refused Host's too
    app.mount("/docs-assets", StaticFiles(directory=SWAGGER_UI), name="docs-assets")
    admin.add_routes(app, enabled=get_settings().admin_token is not None)  # POST /articles, GET /rebuilds/{number}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def chat(request: Request, pipeline: PipelineDep, q: str | None = None, source: str = "", since: str = "",
             until: str = "") -> HTMLResponse:
        """The web chat; `?q=...` answers one question on the server (a shareable link)."""
        return _chat_page(request, pipeline, q, [], source, since, until)

    @app.post("/", response_class=HTMLResponse, include_in_schema=False)
    async def chat_post(request: Request, pipeline: PipelineDep) -> HTMLResponse:
        """The chat form posted without JavaScript: the conversation so far rides in hidden fields. Read here
        rather than by FastAPI, so that a form it cannot take (a file, too many fields) still gets the page."""
        try:
            form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
        except HTTPException as error:
            return await run_in_threadpool(_chat_page, request, pipeline, None, [], "", "", "",
                                           f"the form could not be read: {error.detail}")
        text = {name: str(form.get(name, "")) for name in ("question", "source", "since", "until")}  # no files
        return await run_in_threadpool(_chat_page, request, pipeline, text["question"],
                                       [str(state) for state in form.getlist("history")], text["source"],
                                       text["since"], text["until"])

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        """The API docs (Swagger UI): its files from this server, started from a script file, under the pages'
        Content-Security-Policy."""
        return _render(request, "docs.html", {"openapi_url": app.openapi_url})

    @app.post("/ask", response_model=AskResponse, responses={**UNREADABLE_BODY, **INVALID, **NO_INDEX})
    def ask(body: AskRequest, pipeline: PipelineDep) -> dict:
        """Answer a question with quotes from the articles (offsets index into `GET /articles/{id}` text)."""
        filters = body.filters.to_filters() if body.filters else None
        reply = pipeline.ask(body.question, body.turns(), body.top_k, filters)
        return reply_to_dict(reply)

    @app.get("/articles", response_model=list[ArticleMeta], responses={**PAGE, **NO_INDEX})
    def articles(request: Request, response: Response, pipeline: PipelineDep) -> list[dict] | HTMLResponse:
        """Every article, newest first (a page for a browser, JSON for anything else)."""
        items = _newest_first(pipeline.articles())
        if wants_html(request):
            return _render(request, "articles.html", {"articles": items})
        response.headers["Vary"] = "Accept"
        return [a.meta() for a in items]

    @app.get("/articles/{article_id}", response_model=ArticleFull,
             responses={**PAGE, **NOT_FOUND, **INVALID, **NO_INDEX})
    def article(request: Request, response: Response, article_id: str, pipeline: PipelineDep,
                start: Annotated[Offset | None, Query(description="Page only: highlight from here.")] = None,
                end: Annotated[Offset | None, Query(description="Page only: highlight up to here.")] = None,
                ) -> dict | HTMLResponse:
        """One article with its text; a browser gets a page with `text[start:end]` highlighted."""
        if not wants_html(request):
            a = pipeline.article(article_id)
            response.headers["Vary"] = "Accept"
            return {**a.meta(), "section": a.section, "byline": a.byline, "text": a.text}
        try:
            a = pipeline.article(article_id)
        except ArticleNotFoundError as error:
            return _render(request, "not_found.html", {"message": str(error)}, status_code=404)
        highlighted = valid_span(a.text, start, end)
        return _render(request, "article.html", {
            "article": a, "url": safe_url(a.url), "paragraphs": highlighted_paragraphs(a.text, start, end),
            "highlighted": highlighted, "span_missing": not highlighted and (start is not None or end is not None)})

    # The health checks read the pipeline's status from memory, on the event loop: they never load the index,
    # wait for a load or for a worker thread, so they answer at once under any load.
    @app.get("/healthz", response_model=Health)
    async def healthz(request: Request) -> dict:
        """Liveness: the process is up (always 200). `status` says whether the newest build is served."""
        status = get_pipeline(request).status()
        return {"status": status.state, "build": status.build, "built": status.built, "articles": status.articles,
                "chunks": status.chunks, "reason": status.problem}

    @app.get("/readyz", response_model=Ready, responses={503: {"model": Ready, "description": (
        "No index is loaded: none was built, or the only one is damaged or outdated (`reason` says which).")}})
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: 200 when an index is loaded and answering, 503 with the reason when none is."""
        status = get_pipeline(request).status()
        return JSONResponse({"status": "ready" if status.build else "unavailable", "build": status.build,
                             "reason": status.problem}, status_code=200 if status.build else 503)

    return app
