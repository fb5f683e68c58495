"""The HTML side of the web app: content negotiation, escaping, highlighting by offsets and the no-JS chat.

Plumbing tests: a deterministic fake pipeline stands in for the models (the browser tests use the real ones).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape

import pytest
from fastapi.testclient import TestClient

from rag.errors import ArticleNotFoundError, IndexNotBuiltError
from rag.types import Answer, Article, Corroboration, Filters, Reply, Turn
from web.app import HTML_HEADERS, create_app, highlighted_paragraphs, paragraph_bounds, wants_html

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
MARKUP = '<script>window.__pwned=1</script> and <img src=x onerror="window.__pwned=1">'
CALL = "They talked on the telephone on June 9. The call lasted 25 minutes, officials said."
HOSTILE = Article(
    id="2025-06-10-asahi", title="Ishiba & Lee <b>talk</b>", source="Asahi Shimbun",
    text=f"{CALL}\n\nA reader wrote {MARKUP} in the comments.", published="2025-06-10",
    section="Politics", byline="Kei Kobayashi", url="javascript:alert(1)")
JIJI = Article(id="2025-06-09-jiji", title="Ishiba, Lee agree to develop stable ties", source="Jiji Press",
               text="During their 25-minute phone talks, Ishiba and Lee affirmed cooperation.",
               published="2025-06-09", url="https://example.org/jiji")
OLDER = Article(id="2025-06-05-mainichi", title="Editorial", source="The Mainichi", text="Lee won the election.",
                published="2025-06-05")
BYLINE = 'Ann Lee <img src=x onerror="window.__pwned=1">'
BYLINED = Article(id="2025-06-11-wire", title="Talks <b>resume</b>", source="Test Wire",
                  text="Talks resumed on June 11.", published="2025-06-11", byline=BYLINE)
CAVEAT = "Possible answer — not confident. The articles may not answer this; check the quote."


def span(article: Article, text: str) -> tuple[int, int]:
    start = article.text.index(text)
    return start, start + len(text)


def call_answer() -> Answer:
    quote_start, quote_end = span(HOSTILE, "The call lasted 25 minutes, officials said.")
    answer_start, answer_end = span(HOSTILE, "25 minutes")
    other_start, other_end = span(JIJI, JIJI.text)
    return Answer(text="25 minutes", quote=HOSTILE.text[quote_start:quote_end], score=0.9, article=HOSTILE,
                  quote_start=quote_start, quote_end=quote_end, answer_start=answer_start, answer_end=answer_end,
                  also_reported_by=(Corroboration(JIJI, JIJI.text, other_start, other_end),))


def markup_answer() -> Answer:
    quote_start, quote_end = span(HOSTILE, f"A reader wrote {MARKUP} in the comments.")
    answer_start, answer_end = span(HOSTILE, MARKUP)
    return Answer(text=MARKUP, quote=HOSTILE.text[quote_start:quote_end], score=0.2, article=HOSTILE,
                  quote_start=quote_start, quote_end=quote_end, answer_start=answer_start, answer_end=answer_end,
                  weak=True)


def byline_answer() -> Answer:
    """An answer from the article's byline, not its text: no offsets."""
    return Answer(text=BYLINE, quote=BYLINE, score=0.8, article=BYLINED, quote_start=None, quote_end=None,
                  answer_start=None, answer_end=None, field="byline")


class FakePipeline:
    """Answers about the phone call; anything mentioning GDP is not answered, "maybe" adds a low answer, "wrote"
    is answered from a byline. Records what it was asked."""

    def __init__(self, articles: tuple[Article, ...] = (OLDER, HOSTILE, JIJI)) -> None:
        self._articles = {a.id: a for a in articles}
        self.calls: list[tuple[str, list[Turn], int | None, Filters | None]] = []

    def warm_up(self) -> None:
        pass

    def close(self) -> None:
        pass

    def articles(self) -> list[Article]:
        return list(self._articles.values())

    def article(self, article_id: str) -> Article:
        if article_id not in self._articles:
            raise ArticleNotFoundError(article_id)
        return self._articles[article_id]

    def ask(self, question: str, history: list[Turn] | None = None, top_k: int | None = None,
            filters: Filters | None = None) -> Reply:
        self.calls.append((question, list(history or []), top_k, filters))
        if "GDP" in question:
            return Reply(question, no_answer=True, answers=[markup_answer()])
        if "maybe" in question:
            return Reply(question, no_answer=False, answers=[call_answer(), markup_answer()])
        if "wrote" in question:
            return Reply(question, no_answer=False, answers=[byline_answer()])
        return Reply(question, no_answer=False, answers=[call_answer()], took_ms=1.0)


class NoIndexPipeline(FakePipeline):
    def articles(self) -> list[Article]:
        raise IndexNotBuiltError("/tmp/nowhere")

    def ask(self, *args: object, **kwargs: object) -> Reply:
        raise IndexNotBuiltError("/tmp/nowhere")


@pytest.fixture
def pipeline() -> FakePipeline:
    return FakePipeline()


@pytest.fixture
def client(pipeline: FakePipeline) -> Iterator[TestClient]:
    with TestClient(create_app(pipeline=pipeline, warm_up=False)) as client:
        yield client


def page(client: TestClient, url: str) -> str:
    response = client.get(url, headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def marks(html: str, css_class: str) -> list[str]:
    return [unescape(m) for m in re.findall(rf'<mark class="{css_class}"[^>]*>(.*?)</mark>', html, re.S)]


def article_text(html: str) -> str:
    return html.split('class="article-text"')[1].split("</div>")[0]


def assert_no_live_markup(html: str) -> None:
    """The hostile article's markup only ever appears escaped."""
    assert "<script>window" not in html
    assert "<img" not in html
    assert "<b>" not in html


# Content negotiation

def test_article_list_is_json_for_api_clients_and_a_page_for_browsers(client: TestClient) -> None:
    as_json = client.get("/articles")
    assert as_json.headers["content-type"] == "application/json"
    assert [a["id"] for a in as_json.json()] == [HOSTILE.id, JIJI.id, OLDER.id]
    assert as_json.headers["vary"] == "Accept"

    html = page(client, "/articles")
    titles = [unescape(t) for t in re.findall(r'<a href="/articles/[^"]+">(.*?)</a>', html)]
    assert titles == [HOSTILE.title, JIJI.title, OLDER.title]  # newest first
    assert "Jiji Press" in html and "2025-06-09" in html
    assert_no_live_markup(html)


def test_article_is_json_for_api_clients_and_a_page_for_browsers(client: TestClient) -> None:
    for accept in ("*/*", "application/json", "text/html;q=0.5, application/json"):
        response = client.get(f"/articles/{JIJI.id}", headers={"Accept": accept})
        assert response.json() == {**JIJI.meta(), "section": None, "byline": None, "text": JIJI.text}, accept
    html = page(client, f"/articles/{JIJI.id}")
    assert "<h1>Ishiba, Lee agree to develop stable ties</h1>" in html
    assert 'href="https://example.org/jiji"' in html


def test_unknown_article_is_a_404_page_for_browsers_and_json_for_api_clients(client: TestClient) -> None:
    response = client.get("/articles/nope", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 404
    assert "Article not found" in response.text
    response = client.get("/articles/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "no article with id 'nope'"}


# The article page

def test_article_page_shows_every_field_and_the_text_in_paragraphs(client: TestClient) -> None:
    html = page(client, f"/articles/{HOSTILE.id}")
    for field in ("Asahi Shimbun", "2025-06-10", "Politics", "By Kei Kobayashi"):
        assert field in html
    paragraphs = [unescape(p) for p in re.findall(r"<p>(.*?)</p>", article_text(html), re.S)]
    assert paragraphs == HOSTILE.text.split("\n\n")


def test_article_text_and_title_are_escaped(client: TestClient) -> None:
    html = page(client, f"/articles/{HOSTILE.id}")
    assert_no_live_markup(html)
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "onerror=&#34;window.__pwned=1&#34;" in html
    assert "Ishiba &amp; Lee &lt;b&gt;talk&lt;/b&gt;" in html


def test_article_url_that_is_not_a_web_address_is_not_linked(client: TestClient) -> None:
    html = page(client, f"/articles/{HOSTILE.id}")
    assert "javascript:" not in html
    assert "Original article" not in html


def test_cited_span_is_highlighted_from_its_offsets(client: TestClient) -> None:
    start, end = span(HOSTILE, "The call lasted 25 minutes, officials said.")
    html = page(client, f"/articles/{HOSTILE.id}?start={start}&end={end}")
    assert marks(html, "quote-span") == [HOSTILE.text[start:end]]
    assert '<mark class="quote-span" id="quote" tabindex="-1">' in html  # the #quote fragment scrolls to it


def test_highlight_of_markup_stays_text(client: TestClient) -> None:
    start, end = span(HOSTILE, MARKUP)
    html = page(client, f"/articles/{HOSTILE.id}?start={start}&end={end}")
    assert marks(html, "quote-span") == [MARKUP]
    assert_no_live_markup(html)


def test_span_outside_the_article_is_not_highlighted_and_says_so(client: TestClient) -> None:
    html = page(client, f"/articles/{JIJI.id}?start=5&end=100000")
    assert marks(html, "quote-span") == []
    assert "not in this version of the article" in html


def test_highlight_across_a_paragraph_break_marks_both_parts() -> None:
    text = "One two.\n\nThree four."
    start, end = text.index("two"), text.index("four") + 4
    paragraphs = highlighted_paragraphs(text, start, end)
    assert ["".join(piece.text for piece in p) for p in paragraphs] == ["One two.", "Three four."]
    assert [piece.text for p in paragraphs for piece in p if piece.marked] == ["two.", "Three four"]
    assert [piece.anchor for p in paragraphs for piece in p if piece.marked] == [True, False]


def test_paragraph_bounds_are_offsets_into_the_text() -> None:
    text = "First line\nstill first.\n\n \n\nSecond."
    assert [text[a:b] for a, b in paragraph_bounds(text)] == ["First line\nstill first.", "Second."]


# The chat page

@pytest.mark.parametrize(("accept", "html"), [
    (BROWSER_ACCEPT, True),
    ("text/html", True),
    ("*/*", False),
    ("", False),
    ("application/json", False),
    ("application/json, text/html;q=0.9", False),
    ("text/html;q=0", False),
])
def test_pages_go_to_clients_that_prefer_html(accept: str, html: bool) -> None:
    from starlette.requests import Request

    request = Request({"type": "http", "headers": [(b"accept", accept.encode())] if accept else []})
    assert wants_html(request) is html


def test_chat_page_has_labelled_controls_and_a_live_conversation(client: TestClient) -> None:
    html = page(client, "/")
    assert re.search(r'<ol id="conversation"[^>]*aria-live="polite"', html)
    for control in re.findall(r'<(?:textarea|select|input)[^>]*\bid="([^"]+)"', html):
        assert f'<label for="{control}"' in html, control
    assert re.findall(r'<option value="([^"]*)"', html) == ["", "Asahi Shimbun", "Jiji Press", "The Mainichi"]
    assert '<form id="ask-form" class="ask-form" method="post" action="/#latest">' in html
    assert '<script src="/static/chat.js" defer></script>' in html


def test_pages_forbid_inline_scripts(client: TestClient) -> None:
    for url in ("/", "/articles", f"/articles/{HOSTILE.id}"):
        policy = client.get(url, headers={"Accept": BROWSER_ACCEPT}).headers["content-security-policy"]
        assert "script-src 'self'" in policy, url


def test_static_files_are_served(client: TestClient) -> None:
    for name in ("chat.js", "article.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200


def test_chat_scripts_never_put_text_in_as_html() -> None:
    from web.app import HERE

    for name in ("chat.js", "article.js"):
        script = (HERE / "static" / name).read_text()
        assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script


def hidden_history(html: str) -> list[str]:
    return [unescape(v) for v in re.findall(r'<input type="hidden" name="history" value="([^"]*)">', html)]


def test_form_post_without_javascript_renders_the_reply(client: TestClient, pipeline: FakePipeline) -> None:
    response = client.post("/", data={"question": "How long was the call?"})
    assert response.status_code == 200
    html = response.text
    assert marks(html, "answer-span") == ["25 minutes"]
    start, end = span(HOSTILE, "The call lasted 25 minutes, officials said.")
    assert f'href="/articles/{HOSTILE.id}?start={start}&amp;end={end}#quote"' in html
    assert "Also reported by" in html and ">Jiji Press</a>" in html
    assert re.search(r"<textarea[^>]*>\s*</textarea>", html)  # the box is ready for the next question
    assert [json.loads(state)["question"] for state in hidden_history(html)] == ["How long was the call?"]
    assert pipeline.calls == [("How long was the call?", [], 3, Filters())]


def test_follow_up_without_javascript_sends_the_earlier_turns_as_history(
        client: TestClient, pipeline: FakePipeline) -> None:
    first = client.post("/", data={"question": "How long was the call?"}).text
    second = client.post("/", data={"history": hidden_history(first), "question": "What is the GDP?"}).text
    response = client.post("/", data={"history": hidden_history(second), "question": "When did they talk?"})
    assert pipeline.calls[-1][1] == [Turn("How long was the call?", "25 minutes"), Turn("What is the GDP?", "")]
    html = response.text
    assert html.index("How long was the call?") < html.index("What is the GDP?") < html.index("When did they talk?")
    assert html.index('id="latest"') < html.index("When did they talk?")  # the form posts to /#latest
    assert html.count('id="latest"') == 1
    # Earlier turns are shown again whole: quotes, corroborations, the weaker related passages.
    assert marks(html, "answer-span") == ["25 minutes", MARKUP, "25 minutes"]
    assert html.count("Also reported by") == 2
    assert html.count("The closest quotes, as possible answers only:") == 1 and text_of(html).count(CAVEAT) == 1
    assert_no_live_markup(html)


@pytest.mark.parametrize("tampered", [
    "not json",
    "[" * 100_000,
    json.dumps({"question": "Earlier?", "no_answer": False, "answers": [
        {"id": HOSTILE.id, "quote": [0, 999999], "answer": [1, 2], "weak": False, "also": []}]}),
    json.dumps({"question": "Earlier?", "no_answer": False, "answers": [
        {"id": "no-such-article", "quote": [0, 5], "answer": [1, 2], "weak": False, "also": []}]}),
    json.dumps({"question": "Earlier?", "no_answer": False, "answers": [
        {"id": HOSTILE.id, "quote": [0, 5], "answer": [4, 9], "weak": False, "also": []}]}),
    json.dumps({"question": ["Earlier?"], "no_answer": True, "answers": []}),
    json.dumps({"question": "Earlier?", "no_answer": False, "answers": [
        {"id": HOSTILE.id, "field": "text", "quote": [None, None], "answer": [None, None], "weak": False,
         "also": []}]}),
    json.dumps({"question": "Earlier?", "no_answer": False, "answers": [
        {"id": HOSTILE.id, "field": "text", "weak": False, "also": []}]}),
    json.dumps({"question": "Earlier?", "no_answer": False, "answers": [
        {"id": HOSTILE.id, "field": "url", "weak": False, "also": []}]}),
    json.dumps({"question": "Earlier?", "no_answer": False, "answers": [
        {"id": JIJI.id, "field": "byline", "weak": False, "also": []}]}),  # Jiji's article has no byline
])
def test_tampered_history_field_is_dropped(client: TestClient, pipeline: FakePipeline, tampered: str) -> None:
    response = client.post("/", data={"question": "And then?", "history": [tampered]})
    assert response.status_code == 200
    assert pipeline.calls[-1][1] == []
    assert marks(response.text, "answer-span") == ["25 minutes"]


def text_of(html: str) -> str:
    """The page's words without tags, whitespace collapsed, as a reader sees them."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def answer_items(html: str) -> list[str]:
    return re.findall(r'<li class="answer[^"]*">.*?</li>', html, re.S)


def test_no_answer_says_so_and_offers_possible_answers_with_a_caveat(client: TestClient) -> None:
    html = client.post("/", data={"question": "What is the GDP?"}).text
    assert "The articles do not seem to answer this question." in html
    assert html.index("do not seem to answer") < html.index("The closest quotes, as possible answers only:")
    [item] = answer_items(html)
    assert item.startswith('<li class="answer possible">')
    assert CAVEAT in text_of(item)
    assert marks(html, "answer-span") == [MARKUP]
    assert_no_live_markup(html)


def test_low_answer_is_set_apart_from_a_confident_one(client: TestClient) -> None:
    html = client.post("/", data={"question": "How long was the call, maybe?"}).text
    assert "do not seem to answer" not in html
    confident, possible = answer_items(html)
    assert confident.startswith('<li class="answer confident">') and "caveat" not in confident
    assert possible.startswith('<li class="answer possible">')
    assert '<strong class="caveat-label">Possible answer — not confident.</strong>' in possible
    assert CAVEAT in text_of(possible)
    assert_no_live_markup(html)


@pytest.fixture
def bylined_client() -> Iterator[TestClient]:
    with TestClient(create_app(pipeline=FakePipeline((OLDER, HOSTILE, JIJI, BYLINED)), warm_up=False)) as client:
        yield client


def test_field_answer_names_the_field_and_cites_the_article_without_offsets(bylined_client: TestClient) -> None:
    html = bylined_client.post("/", data={"question": "Who wrote the article on the talks?"}).text
    [item] = answer_items(html)
    assert '<span class="field-name">Byline:</span>' in item
    assert marks(item, "answer-span") == [BYLINE]
    assert f'<a href="/articles/{BYLINED.id}">Talks &lt;b&gt;resume&lt;/b&gt;</a>' in item  # no offsets, no #quote
    assert "start=" not in item and "None" not in item and "<blockquote" not in item
    assert_no_live_markup(html)
    data = html.split('<script type="application/json" id="conversation-data">')[1].split("</script>")[0]
    [answer] = json.loads(data)[0]["answers"]
    assert (answer["field"], answer["quote"], answer["quote_start"], answer["answer_end"]) == (
        "byline", BYLINE, None, None)


def test_field_answer_goes_through_the_api_with_null_offsets(bylined_client: TestClient) -> None:
    [answer] = bylined_client.post("/ask", json={"question": "Who wrote it?"}).json()["answers"]
    assert answer["field"] == "byline" and answer["confidence"] == "high" and answer["weak"] is False
    assert answer["text"] == answer["quote"] == BYLINE
    assert [answer[k] for k in ("quote_start", "quote_end", "answer_start", "answer_end")] == [None] * 4


def test_field_answer_survives_the_no_javascript_round_trip(bylined_client: TestClient) -> None:
    first = bylined_client.post("/", data={"question": "Who wrote it?"}).text
    [state] = hidden_history(first)
    assert json.loads(state)["answers"] == [{"id": BYLINED.id, "field": "byline", "weak": False, "also": []}]
    second = bylined_client.post("/", data={"history": [state], "question": "How long was the call, maybe?"})
    pipeline = bylined_client.app.state.pipeline
    assert pipeline.calls[-1][1] == [Turn("Who wrote it?", BYLINE)]
    html = second.text
    assert marks(html, "answer-span") == [BYLINE, "25 minutes", MARKUP]
    assert html.count('<span class="field-name">Byline:</span>') == 1
    assert [json.loads(s)["answers"][0].get("field") for s in hidden_history(html)] == ["byline", None]
    assert [a["weak"] for a in json.loads(hidden_history(html)[1])["answers"]] == [False, True]
    assert_no_live_markup(html)


def test_low_answer_keeps_its_caveat_through_the_no_javascript_round_trip(client: TestClient) -> None:
    first = client.post("/", data={"question": "What is the GDP?"}).text
    html = client.post("/", data={"history": hidden_history(first), "question": "How long was the call?"}).text
    items = answer_items(html)
    assert [item.split('"')[1] for item in items] == ["answer possible", "answer confident"]
    assert CAVEAT in text_of(items[0]) and "caveat" not in items[1]


def test_question_is_escaped_in_the_conversation_and_its_data(client: TestClient) -> None:
    question = '</script><img src=x onerror="alert(1)">'
    html = client.post("/", data={"question": question}).text
    assert "<img" not in html
    assert "&lt;/script&gt;&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert html.count("</script>") == 2  # chat.js and the conversation's JSON, which the script picks up
    data = html.split('<script type="application/json" id="conversation-data">')[1].split("</script>")[0]
    assert [turn["question"] for turn in json.loads(data)] == [question]


def test_filters_from_the_form_reach_the_pipeline_and_stay_selected(
        client: TestClient, pipeline: FakePipeline) -> None:
    html = client.post("/", data={"question": "How long?", "source": "Jiji Press", "since": "2025-06-01",
                                  "until": ""}).text
    assert pipeline.calls[-1][3] == Filters(("Jiji Press",), "2025-06-01", None)
    assert '<option value="Jiji Press" selected>' in html
    assert 'name="since" value="2025-06-01"' in html


def test_invalid_form_keeps_the_question_and_explains(client: TestClient, pipeline: FakePipeline) -> None:
    response = client.post("/", data={"question": "How long?", "since": "2025-06-10", "until": "2025-06-01"})
    assert response.status_code == 422
    assert "since must not be after until" in response.text
    assert re.search(r"<textarea[^>]*>How long\?</textarea>", response.text)
    assert pipeline.calls == []


def test_question_in_the_query_string_is_answered_on_the_server(client: TestClient) -> None:
    html = page(client, "/?q=How+long+was+the+call%3F")
    assert marks(html, "answer-span") == ["25 minutes"]


def test_chat_without_an_index_says_how_to_build_one() -> None:
    with TestClient(create_app(pipeline=NoIndexPipeline(), warm_up=False)) as client:
        response = client.get("/", headers={"Accept": BROWSER_ACCEPT})
        assert response.status_code == 503
        assert "run `rag index` first" in unescape(response.text)
        assert client.get("/articles").status_code == 503
        assert client.post("/ask", json={"question": "Who?"}).json() == {
            "detail": "no index in /tmp/nowhere: run `rag index` first"}


# Strict query parameters

@pytest.mark.parametrize("start", ["0.0", "1_000", "+5", " 5", "5e0", "true"])
def test_highlight_offsets_must_be_plain_digits(client: TestClient, start: str) -> None:
    response = client.get(f"/articles/{HOSTILE.id}", params={"start": start, "end": "10"},
                          headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "start"


# The no-JS form's errors

@pytest.mark.parametrize(("form", "label"), [
    ({"source": "x" * 201}, "Outlet"),
    ({"since": "2025-02-30"}, "Published from"),
    ({"until": "2025-06-01T00:00"}, "Published until"),
    ({"question": "x" * 501}, "Your question"),
])
def test_form_errors_name_the_form_fields(client: TestClient, pipeline: FakePipeline, form: dict,
                                          label: str) -> None:
    response = client.post("/", data={"question": "How long?", **form})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    error = text_of(response.text).split("Sorry, that did not work: ")[1]
    assert error.startswith(f"{label}: ")
    assert "filters" not in error and "sources" not in error
    assert pipeline.calls == []


def history_state(question: str) -> str:
    return json.dumps({"question": question, "no_answer": True, "answers": []})


def test_history_field_too_long_for_the_api_is_dropped_like_any_tampered_turn(
        client: TestClient, pipeline: FakePipeline) -> None:
    response = client.post("/", data={"question": "And then?",
                                      "history": [history_state("Earlier?"), history_state("x" * 2001)]})
    assert response.status_code == 200
    assert pipeline.calls[-1][1] == [Turn("Earlier?", "")]


def test_form_with_too_many_fields_gets_a_page(client: TestClient, pipeline: FakePipeline) -> None:
    body = "question=Hi&" + "&".join(f"history=x{i}" for i in range(1001))
    response = client.post("/", content=body, headers={"content-type": "application/x-www-form-urlencoded",
                                                       "accept": BROWSER_ACCEPT})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "too many fields" in text_of(response.text).lower()
    assert pipeline.calls == []


def test_multipart_form_is_answered_with_a_page(client: TestClient, pipeline: FakePipeline) -> None:
    response = client.post("/", files={"question": (None, "How long was the call?"), "source": (None, "")})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert marks(response.text, "answer-span") == ["25 minutes"]


def test_multipart_form_with_a_file_gets_a_page(client: TestClient, pipeline: FakePipeline) -> None:
    response = client.post("/", files={"question": ("question.txt", b"How long was the call?")})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "Sorry, that did not work" in response.text
    assert pipeline.calls == []


# Headers, hosts and URLs

def test_static_files_tell_browsers_not_to_sniff(client: TestClient) -> None:
    for name in ("chat.js", "article.js", "style.css"):
        assert client.get(f"/static/{name}").headers["x-content-type-options"] == "nosniff"


def test_json_api_returns_only_web_addresses(client: TestClient) -> None:
    listed = {a["id"]: a["url"] for a in client.get("/articles").json()}
    assert listed == {HOSTILE.id: None, JIJI.id: JIJI.url, OLDER.id: None}
    assert client.get(f"/articles/{HOSTILE.id}").json()["url"] is None
    [answer] = client.post("/ask", json={"question": "How long was the call?"}).json()["answers"]
    assert answer["article"]["url"] is None
    assert answer["also_reported_by"][0]["article"]["url"] == JIJI.url


def test_trailing_slash_redirect_stays_on_a_trusted_host(client: TestClient) -> None:
    redirect = client.get("/articles/", headers={"host": "localhost:8000"}, follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"] == "http://localhost:8000/articles"
    refused = client.get("/articles/", headers={"host": "evil.example"}, follow_redirects=False)
    assert refused.status_code == 400
    assert "location" not in refused.headers and "evil.example" not in refused.text


def test_trusted_hosts_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_TRUSTED_HOSTS", "news.example.org, *.example.net")
    from rag.settings import get_settings

    get_settings.cache_clear()
    with TestClient(create_app(pipeline=FakePipeline(), warm_up=False)) as client:
        for host, status in (("news.example.org", 200), ("a.example.net", 200), ("localhost", 400)):
            assert client.get("/articles", headers={"host": host}).status_code == status, host


# The API docs, offline

def test_api_docs_load_everything_from_this_server_under_the_pages_policy(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == HTML_HEADERS["Content-Security-Policy"]
    html = response.text
    assert "cdn" not in html.lower() and "https://" not in html
    scripts = re.findall(r"<script\b([^>]*)>", html)
    assert scripts and all('src="/' in attributes for attributes in scripts)  # no inline script
    assets = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        if asset.startswith("data:"):
            continue
        assert asset.startswith("/"), asset
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert served.headers["x-content-type-options"] == "nosniff"
    assert client.get("/docs/oauth2-redirect").status_code == 404  # an inline-script page nothing here needs
