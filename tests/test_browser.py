"""The web chat in a real headless Chromium, against the app served on localhost with the real models.

Needs Debian's `chromium` package (driven through Playwright's `executable_path`; `playwright install` is never
used). Without it these tests skip, or fail when RAG_REQUIRE_BROWSER=1 (as in CI). Screenshots go to
artifacts/screenshots/ (ignored by git).
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from rag.index import build_index
from rag.pipeline import Pipeline
from rag.settings import Settings
from tests.conftest import REPO, copy_seed
from tests.servers import serving

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOTS = REPO / "artifacts" / "screenshots"
# The background-networking flags keep Chromium from calling home, which a closed network refuses.
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOSTILE_ID = "2025-06-12-test-wire-garden-club-sign-up-sheet"
HOSTILE_ARTICLE = """---
title: Garden club sign-up sheet <script>window.__pwned=1</script>
source: Test Wire
published: '2025-06-12'
section: Local
byline: <img src=x onerror="window.__pwned=1">
---
The Riverside garden club planted 40 tulip bulbs along the river path on Saturday morning.

A prankster wrote <script>window.__pwned=1</script> on the club's sign-up sheet, and another drew \
<img src=x onerror="window.__pwned=1"> beside it; the club secretary said nobody was harmed.
"""
# The chat's behaviour is under test here, not the answerer's: a question it answers confidently (the wording
# "How long was the phone call between Ishiba and Lee?" is a known miss, xfail in tests/test_answering.py).
CALL_QUESTION = "How many minutes did the phone talks last?"
UNANSWERABLE_QUESTION = "What is the GDP of South Korea?"
NO_ANSWER_VERDICT = "The articles do not seem to answer this question."
CAVEAT = "Possible answer \u2014 not confident. The articles may not answer this; check the quote."


def find_chromium() -> str | None:
    return os.environ.get("RAG_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """Chromium's path, or a skip (a failure when RAG_REQUIRE_BROWSER=1) saying how to get it."""
    path = find_chromium()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "the playwright package is missing: pip install -e '.[test]'"
    else:
        problem = None if path else "Chromium is not installed: apt-get install chromium (or set RAG_CHROMIUM)"
    if problem:
        if os.environ.get("RAG_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required (RAG_REQUIRE_BROWSER=1) but {problem}")
        pytest.skip(f"browser tests skipped: {problem}")
    return path


@pytest.fixture(scope="module")
def server_url(chromium_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on a free localhost port, over the seed articles plus one whose text is hostile markup."""
    from web.app import create_app

    root = tmp_path_factory.mktemp("web")
    corpus = copy_seed(root / "corpus")
    (corpus / f"{HOSTILE_ID}.md").write_text(HOSTILE_ARTICLE, encoding="utf-8")
    build_index(corpus, root / "index", Settings(), progress=False)

    with serving(create_app(pipeline=Pipeline(Settings(), index_dir=root / "index"))) as url:
        yield url


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=LAUNCH_ARGS)
        yield browser
        browser.close()


def new_page(browser, server_url: str, javascript: bool = True, width: int = 1000, height: int = 800):
    context = browser.new_context(base_url=server_url, java_script_enabled=javascript,
                                  viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


@pytest.fixture
def page(browser, server_url: str) -> Iterator:
    page = new_page(browser, server_url)
    yield page
    assert page.errors == [], "scripts on the page failed"
    page.context.close()


@pytest.fixture
def page_without_js(browser, server_url: str) -> Iterator:
    page = new_page(browser, server_url, javascript=False)
    yield page
    page.context.close()


def screenshot(page, name: str, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=full_page)
    return path


def ask(page, question: str):
    """Type a question, send it with Enter, and return the new turn once its reply is in."""
    turns = page.locator("#conversation > li.turn")
    count = turns.count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    turn = turns.nth(count)
    turn.locator(".reply:not(.pending)").wait_for()
    return turn


def assert_answered(turn, question: str) -> None:
    """The reply is an answer, not "the articles do not answer" (a failure here is answer quality, not the UI)."""
    verdict = turn.locator(".verdict")
    assert verdict.count() == 0, f"answer quality: {question!r} got {turn.locator('.reply').inner_text()!r}"


def test_seed_question_shows_the_highlighted_answer_and_its_citation(page, server_url: str) -> None:
    from playwright.sync_api import expect

    page.goto("/")
    turn = ask(page, CALL_QUESTION)
    expect(page.locator("#question")).to_have_value("")
    expect(page.locator("#question")).to_be_focused()
    first = turn.locator(".answer").first
    expect(first.locator("mark.answer-span")).to_contain_text("25")
    citation = first.locator(".citation")
    assert any(outlet in citation.inner_text() for outlet in ("Asahi Shimbun", "Jiji Press")), citation.inner_text()
    assert citation.locator("a").get_attribute("href").startswith("/articles/")
    page.locator("#question").blur()
    screenshot(page, "chat-answer.png")
    assert_answered(turn, CALL_QUESTION)


def test_shift_enter_starts_a_new_line_instead_of_sending(page) -> None:
    from playwright.sync_api import expect

    page.goto("/")
    page.fill("#question", "First line")
    page.press("#question", "Shift+Enter")
    page.keyboard.type("second line")
    expect(page.locator("#question")).to_have_value("First line\nsecond line")
    expect(page.locator("#conversation > li")).to_have_count(0)


def test_busy_state_shows_while_waiting(page) -> None:
    from playwright.sync_api import expect

    held = []
    page.route("**/ask", lambda route: held.append(route))
    page.goto("/")
    page.fill("#question", CALL_QUESTION)
    page.press("#question", "Enter")
    expect(page.locator(".reply.pending")).to_contain_text("Searching the articles")
    expect(page.locator("#ask-button")).to_be_disabled()
    expect(page.locator("#ask-form")).to_have_attribute("aria-busy", "true")
    held[0].continue_()
    expect(page.locator(".reply.pending")).to_have_count(0)
    expect(page.locator("#ask-button")).to_be_enabled()


def test_citation_opens_the_article_with_the_quote_highlighted(page, server_url: str) -> None:
    from playwright.sync_api import expect

    page.goto("/")
    turn = ask(page, CALL_QUESTION)
    answer = turn.locator(".answer").first
    quote = answer.locator(".quote").inner_text().strip("\u201c\u201d")
    link = answer.locator(".citation a")
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url("**/articles/**")
    mark = page.locator("mark#quote")
    expect(mark).to_have_text(quote)
    expect(mark).to_be_in_viewport()
    url = urlsplit(href)
    article = json.loads(page.context.request.get(url.path).text())  # the API's JSON
    offsets = parse_qs(url.query)
    start, end = int(offsets["start"][0]), int(offsets["end"][0])
    assert article["text"][start:end] == quote
    screenshot(page, "article-highlight.png")

    page.go_back()  # the conversation is kept for the page session
    expect(page.locator("#conversation > li.turn")).to_have_count(1)
    expect(page.locator("#conversation .quote").first).to_have_text(f"\u201c{quote}\u201d")


def test_follow_up_question_goes_with_the_earlier_turn(page) -> None:
    from playwright.sync_api import expect

    page.goto("/")
    first = ask(page, "Who is the new president of South Korea?")
    assert_answered(first, "Who is the new president of South Korea?")
    expect(first.locator("mark.answer-span").first).to_contain_text("Lee")
    with page.expect_request("**/ask") as request:
        follow_up = ask(page, "When did he take office?")
    history = request.value.post_data_json["history"]
    assert [turn["question"] for turn in history] == ["Who is the new president of South Korea?"]
    assert "Lee" in history[0]["answer"]
    assert_answered(follow_up, "When did he take office?")
    expect(follow_up.locator("mark.answer-span").first).to_contain_text("June 4")


def test_question_the_articles_do_not_answer_says_so_and_offers_possible_answers(page) -> None:
    from playwright.sync_api import expect

    page.goto("/")
    turn = ask(page, UNANSWERABLE_QUESTION)
    expect(turn.locator(".verdict")).to_have_text(NO_ANSWER_VERDICT)
    expect(turn.locator(".possible-intro")).to_have_text("The closest quotes, as possible answers only:")
    answers = turn.locator(".answer")
    assert answers.count() >= 1
    for i in range(answers.count()):
        expect(answers.nth(i)).to_have_class("answer possible")
        expect(answers.nth(i).locator(".caveat")).to_be_visible()
        expect(answers.nth(i).locator(".caveat")).to_have_text(CAVEAT)
    page.locator("#question").blur()
    screenshot(page, "chat-possible-answer.png")


def look(answer) -> dict:
    """How an answer is set off: its left rule and the background of its highlighted span."""
    return answer.evaluate("""node => ({
        border: getComputedStyle(node).borderLeftStyle,
        mark: getComputedStyle(node.querySelector('mark')).backgroundColor,
    })""")


def test_a_confident_answer_has_no_caveat_and_looks_apart_from_a_possible_one(page) -> None:
    from playwright.sync_api import expect

    page.goto("/")
    turn = ask(page, CALL_QUESTION)
    assert_answered(turn, CALL_QUESTION)
    confident = turn.locator(".answer").first
    expect(confident).to_have_class("answer confident")
    expect(confident.locator(".caveat")).to_have_count(0)
    confident_look = look(confident)

    page.click("#new-conversation")  # the next question stands alone
    possible = ask(page, UNANSWERABLE_QUESTION).locator(".answer").first
    expect(possible).to_have_class("answer possible")
    expect(possible.locator(".caveat")).to_be_visible()
    assert look(possible)["border"] == "dashed"
    assert look(possible) != confident_look


def test_answer_from_an_article_field_shows_the_field_and_links_the_article_without_offsets(page) -> None:
    from playwright.sync_api import expect

    byline = '<img src=x onerror="window.__pwned=1"> Ann Lee'
    reply = {"question": "Who wrote it?", "no_answer": False, "took_ms": 1.0, "answers": [{
        "text": byline, "quote": byline, "score": 0.8, "weak": False, "confidence": "high", "field": "byline",
        "article": {"id": HOSTILE_ID, "title": "Garden club <b>sign-up</b>", "source": "Test Wire",
                    "published": "2025-06-12", "url": None},
        "quote_start": None, "quote_end": None, "answer_start": None, "answer_end": None, "also_reported_by": []}]}
    page.route("**/ask", lambda route: route.fulfill(json=reply))  # the API's reply, as a field answer gives it
    page.goto("/")
    answer = ask(page, "Who wrote it?").locator(".answer")
    expect(answer.locator(".field-quote")).to_have_text(f"Byline: {byline}")
    expect(answer.locator(".caveat")).to_have_count(0)
    assert answer.locator(".citation a").get_attribute("href") == f"/articles/{HOSTILE_ID}"
    expect(answer.locator(".citation a")).to_have_text("Garden club <b>sign-up</b>")
    assert page.locator("#conversation img, #conversation b").count() == 0
    page.reload()  # restored from session storage the same way
    expect(page.locator("#conversation .field-quote")).to_have_text(f"Byline: {byline}")
    assert page.locator("#conversation img, #conversation b").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_outlet_filter_limits_the_citations(page) -> None:
    page.goto("/")
    page.click(".filters summary")
    page.select_option("#source", "Jiji Press")
    with page.expect_request("**/ask") as request:
        turn = ask(page, CALL_QUESTION)
    assert request.value.post_data_json["filters"] == {"sources": ["Jiji Press"]}
    outlets = turn.locator(".citation .outlet").all_inner_texts()
    assert outlets and set(outlets) == {"Jiji Press"}


def test_error_is_shown_in_the_conversation_and_the_question_stays(page) -> None:
    from playwright.sync_api import expect

    page.goto("/")
    page.route("**/ask", lambda route: route.abort())  # as if the server were down
    page.fill("#question", CALL_QUESTION)
    page.click("#ask-button")
    expect(page.locator(".reply.error")).to_contain_text("could not be reached")
    expect(page.locator("#question")).to_have_value(CALL_QUESTION)

    page.unroute("**/ask")
    page.route("**/ask", lambda route: route.fulfill(status=422, json={"detail": "question: too long"}))
    page.click("#ask-button")
    expect(page.locator(".reply.error").nth(1)).to_contain_text("question: too long (422)")
    expect(page.locator("#question")).to_have_value(CALL_QUESTION)


def test_chat_works_without_javascript(page_without_js) -> None:
    from playwright.sync_api import expect

    page = page_without_js
    page.goto("/")
    page.fill("#question", CALL_QUESTION)
    with page.expect_navigation():
        page.click("#ask-button")
    turn = page.locator("#conversation > li.turn").first
    expect(turn.locator("mark.answer-span").first).to_contain_text("25")

    page.fill("#question", UNANSWERABLE_QUESTION)
    with page.expect_navigation():
        page.click("#ask-button")
    turns = page.locator("#conversation > li.turn")
    expect(turns).to_have_count(2)  # the earlier turn came back from the form's hidden fields
    expect(turns.nth(1)).to_be_in_viewport()  # the page opens at the newest reply
    expect(turns.nth(0).locator("mark.answer-span").first).to_contain_text("25")
    expect(turns.nth(1).locator(".verdict")).to_have_text(NO_ANSWER_VERDICT)
    expect(turns.nth(1).locator(".answer.possible .caveat").first).to_have_text(CAVEAT)
    assert_answered(turns.nth(0), CALL_QUESTION)


def test_article_with_markup_shows_it_as_text_and_runs_nothing(page) -> None:
    from playwright.sync_api import expect

    page.goto("/articles")
    expect(page.locator(".article-list")).to_contain_text("<script>window.__pwned=1</script>")
    page.goto(f"/articles/{HOSTILE_ID}")
    text = page.locator(".article-text")
    expect(text).to_contain_text('<script>window.__pwned=1</script> on the club\'s sign-up sheet')
    expect(text).to_contain_text('<img src=x onerror="window.__pwned=1">')
    expect(page.locator(".byline")).to_contain_text("<img src=x")
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.__pwned") is None

    page.goto("/")  # the chat renders quotes of it with text nodes too
    ask(page, "What did a prankster write on the garden club's sign-up sheet?")
    assert page.locator("#conversation img, #conversation script").count() == 0
    page.reload()  # and again when the conversation is restored from session storage
    page.locator("#conversation > li.turn").first.wait_for()
    assert page.locator("#conversation img, #conversation script").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_chat_fits_a_phone_screen(browser, server_url: str) -> None:
    page = new_page(browser, server_url, width=375, height=740)
    page.goto("/")
    turn = ask(page, CALL_QUESTION)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.locator("#question").blur()
    turn.locator(".question").scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "chat-phone.png", full_page=False)
    assert page.errors == []
    page.context.close()


def test_api_docs_work_offline_under_the_pages_policy(page, server_url: str) -> None:
    """Swagger UI at /docs loads nothing from elsewhere, breaks no Content-Security-Policy rule, and tries a call."""
    from playwright.sync_api import expect

    elsewhere, console_errors = [], []
    page.on("request", lambda request: None if request.url.startswith((server_url, "data:"))
            else elsewhere.append(request.url))
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    page.goto("/docs")
    operations = page.locator(".opblock-summary-path")
    operations.first.wait_for()
    assert {"/ask", "/articles", "/articles/{article_id}"} <= set(operations.all_inner_texts())
    page.locator(".opblock-get .opblock-summary-path", has_text="/articles").first.click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    responses = page.locator(".live-responses-table")
    expect(responses.locator("tbody .response-col_status")).to_have_text("200")
    expect(responses.locator("tbody .response-col_description")).to_contain_text("Jiji Press")
    screenshot(page, "api-docs.png", full_page=False)
    assert elsewhere == [] and console_errors == []
