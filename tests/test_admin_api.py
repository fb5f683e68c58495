"""POST /articles and GET /rebuilds/{number}: off without RAG_ADMIN_TOKEN, a bearer token checked when on, the body
capped, what was added or skipped listed at once, and the articles answerable once the rebuild is done."""
from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.index import BuildReport
from rag.pipeline import Pipeline
from rag.rebuilds import Rebuilder
from rag.settings import Settings, get_settings
from web.admission import always_admitted
from tests.conftest import copy_seed
from tests.servers import serving
from web.app import create_app

pytestmark = pytest.mark.slow

TOKEN = "test-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NEWS = Path(__file__).parent / "data" / "news"  # pages and feeds written for the project (see tests/test_news.py)
ARTICLE = {
    "title": "Harbour town opens a glass footbridge",
    "source": "Coastal Courier",
    "published": "2025-06-12",
    "byline": "Ada Lind",
    "url": "https://courier.example/news/glass-footbridge",
    "text": "The town of Marrowby opened a glass footbridge across its harbour on Thursday.\n\nThe footbridge is "
            "212 metres long and took four years to build. Mayor Elin Varga said that 3,000 people crossed it on "
            "the first day.",
}


def make_client(tmp_path: Path, seed_index_dir: Path, monkeypatch: pytest.MonkeyPatch,
                **environment: str) -> Iterator[TestClient]:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    copy_seed(tmp_path / "corpus")  # where RAG_CORPUS_DIR points (tests/conftest.py)
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index_dir, index_dir)
    with TestClient(create_app(Pipeline(index_dir=index_dir), warm_up=False)) as client:
        yield client


@pytest.fixture
def client(tmp_path: Path, seed_index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app with adding articles on, over a copy of the seed corpus and its index."""
    yield from make_client(tmp_path, seed_index_dir, monkeypatch, RAG_ADMIN_TOKEN=TOKEN)


@pytest.fixture
def disabled_client(tmp_path: Path, seed_index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.delenv("RAG_ADMIN_TOKEN", raising=False)
    yield from make_client(tmp_path, seed_index_dir, monkeypatch)


def done(client: TestClient, reply: dict, timeout: float = 180.0) -> dict:
    """Poll the rebuild a POST /articles reply names until it is done or failed."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(reply["rebuild"]["status_url"], headers=AUTH).json()
        if status["state"] in ("done", "failed") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def top_answer(client: TestClient, question: str) -> tuple[str, str]:
    answers = client.post("/ask", json={"question": question}).json()["answers"]
    assert answers, question
    return answers[0]["article"]["id"], answers[0]["quote"]


def test_off_without_a_token_on_the_server_whatever_the_request_says(disabled_client: TestClient) -> None:
    for headers in ({}, AUTH):
        response = disabled_client.post("/articles", json=ARTICLE, headers=headers)
        assert response.status_code == 404
        assert "off on this server: set RAG_ADMIN_TOKEN" in response.json()["detail"]
        assert disabled_client.get("/rebuilds/1", headers=headers).status_code == 404
    assert not list((disabled_client.app.state.pipeline.settings.corpus_dir).glob("*glass*"))


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
    ({"Authorization": "Bearer"}, 401),
    ({"Authorization": "Bearer not-the-token-0123456789"}, 403),
    ({"Authorization": f"Bearer {TOKEN}x"}, 403),
    ({"Authorization": "Bearer t\u00e9st-admin-token-012345678".encode("latin-1")}, 403),  # not ASCII
])
def test_a_request_without_the_token_is_401_and_with_another_403(client: TestClient, headers: dict,
                                                                  status: int) -> None:
    response = client.post("/articles", json=ARTICLE, headers=headers)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"detail"}
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/rebuilds/1", headers=headers).status_code == status
    assert not list(client.app.state.pipeline.settings.corpus_dir.glob("*glass*"))  # nothing written


def test_a_token_too_short_to_be_safe_is_refused_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_ADMIN_TOKEN", "short")
    with pytest.raises(ValueError, match="at least 16 characters"):
        Settings()
    monkeypatch.setenv("RAG_ADMIN_TOKEN", "  ")
    assert Settings().admin_token is None  # empty: off


def test_a_json_article_is_added_at_once_and_answerable_after_the_rebuild(client: TestClient) -> None:
    response = client.post("/articles", json=ARTICLE, headers=AUTH)
    assert response.status_code == 202, response.text
    reply = response.json()
    [added] = reply["added"]
    assert added["change"] == "added" and added["article_url"] == f"/articles/{added['id']}"
    assert reply["skipped"] == []
    assert reply["rebuild"]["state"] in ("queued", "running", "done")
    assert response.headers["location"] == reply["rebuild"]["status_url"] == f"/rebuilds/{reply['rebuild']['number']}"
    assert "1 added, 0 updated, 0 unchanged, 0 skipped; answerable once rebuild" in reply["detail"]
    corpus = client.app.state.pipeline.settings.corpus_dir
    assert (corpus / f"{added['id']}.md").read_text(encoding="utf-8").startswith("---\ntitle: Harbour town opens")

    status = done(client, reply)
    assert status["state"] == "done", status
    assert status["summary"] == "1 added, 0 changed, 0 removed, 5 unchanged"
    assert status["build"] == client.app.state.pipeline.status().build
    article = client.get(added["article_url"]).json()
    assert article["title"] == ARTICLE["title"] and article["byline"] == "Ada Lind"
    article_id, quote = top_answer(client, "How long is the glass footbridge in Marrowby?")
    assert article_id == added["id"] and "212 metres" in quote


def test_the_same_url_again_is_unchanged_and_a_newer_version_updates_it_under_its_id(client: TestClient) -> None:
    first = client.post("/articles", json=ARTICLE, headers=AUTH).json()
    article_id = first["added"][0]["id"]
    again = client.post("/articles", json=ARTICLE, headers=AUTH).json()
    assert again["added"] == [{"id": article_id, "change": "unchanged", "article_url": f"/articles/{article_id}"}]
    newer = {**ARTICLE, "published": "2025-06-13", "text": ARTICLE["text"].replace("212", "214")}
    reply = client.post("/articles", json=newer, headers=AUTH).json()
    assert reply["added"] == [{"id": article_id, "change": "updated", "article_url": f"/articles/{article_id}"}]
    assert done(client, reply)["state"] == "done"
    assert "214 metres" in client.get(f"/articles/{article_id}").json()["text"]


def test_an_uploaded_news_page_becomes_its_article(client: TestClient) -> None:
    page = (NEWS / "article.html").read_bytes()
    response = client.post("/articles", content=page, headers={**AUTH, "Content-Type": "text/html; charset=utf-8"})
    assert response.status_code == 202, response.text
    reply = response.json()
    [added] = reply["added"]
    assert added["change"] == "added" and "floating-solar" in added["id"]
    assert done(client, reply)["state"] == "done"
    article = client.get(added["article_url"]).json()
    assert article["source"] == "Northshore Gazette" and article["published"] == "2025-06-12"
    article_id, quote = top_answer(client, "How many panels make up the floating solar array on Merrow reservoir?")
    assert article_id == added["id"] and "12,400 panels" in quote


def test_an_uploaded_feed_adds_its_entries_and_lists_the_one_skipped(client: TestClient) -> None:
    feed = (NEWS / "feed.rss").read_bytes()
    response = client.post("/articles", files={"file": ("feed.rss", feed, "application/rss+xml")}, headers=AUTH)
    assert response.status_code == 202, response.text
    reply = response.json()
    assert [a["change"] for a in reply["added"]] == ["added", "added"]
    assert reply["skipped"] == [{"item": "feed.rss entry 3 (Ferry company promises new timetable)",
                                 "reason": "the entry has no date (give one with --published YYYY-MM-DD)"}]
    assert "2 added, 0 updated, 0 unchanged, 1 skipped" in reply["detail"]
    assert done(client, reply)["state"] == "done"
    assert client.get(reply["added"][0]["article_url"]).json()["source"] == "Coastal Wire"


def test_a_date_and_an_outlet_can_be_given_for_an_upload(client: TestClient) -> None:
    feed = (NEWS / "feed.rss").read_bytes()
    reply = client.post("/articles?published=2025-06-11&source=Coastal%20Wire%20Agency", content=feed,
                        headers={**AUTH, "Content-Type": "application/rss+xml"}).json()
    assert len(reply["added"]) == 3 and reply["skipped"] == []


def test_nothing_that_can_be_added_is_200_with_each_reason_and_no_rebuild(client: TestClient) -> None:
    response = client.post("/articles", content=(NEWS / "home.html").read_bytes(),
                           headers={**AUTH, "Content-Type": "text/html"})
    assert response.status_code == 200
    reply = response.json()
    assert set(reply) == {"detail", "skipped"} and "location" not in response.headers
    [skipped] = reply["skipped"]
    assert skipped["item"] == "the request body" and skipped["reason"].startswith("no article on the page")
    assert reply["detail"].startswith("nothing could be added: 0 added, 0 updated, 0 unchanged, 1 skipped")
    assert getattr(client.app.state, "rebuilder", None) is None  # no rebuild queued


@pytest.mark.parametrize(("article", "field"), [
    ({k: v for k, v in ARTICLE.items() if k != "title"}, "title"),
    ({**ARTICLE, "published": "12 June 2025"}, "published"),
    ({**ARTICLE, "title": "x" * 501}, "title"),
    ({**ARTICLE, "text": "   "}, "text"),
    ({**ARTICLE, "url": "javascript:alert(1)"}, "url"),
    ({**ARTICLE, "author": "Ada Lind"}, "author"),
])
def test_invalid_article_fields_are_422_naming_the_field(client: TestClient, article: dict, field: str) -> None:
    response = client.post("/articles", json=article, headers=AUTH)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_a_body_that_is_not_an_article_page_or_feed_is_refused(client: TestClient) -> None:
    response = client.post("/articles", content=b"%PDF-1.7", headers={**AUTH, "Content-Type": "application/pdf"})
    assert response.status_code == 415
    assert response.json()["errors"][0]["field"] == "body"
    response = client.post("/articles", content=b'{"title": ', headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["errors"][0]["message"] == "request body is not valid JSON"
    response = client.post("/articles", content=b'{"title": "\xff"}', headers={**AUTH,
                                                                             "Content-Type": "application/json"})
    assert response.status_code == 400
    response = client.post("/articles", files={"file": ("feed.rss", b"<rss/>", "application/rss+xml")},
                           data={"source": "x"}, headers=AUTH)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "source"
    response = client.post("/articles", files={"file": (None, "a text field, not a file")}, headers=AUTH)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "file"
    response = client.post("/articles", data={"title": "x"}, headers=AUTH)  # a form without a file
    assert response.status_code == 415


def test_a_body_over_the_cap_is_413(tmp_path: Path, seed_index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for client in make_client(tmp_path, seed_index_dir, monkeypatch, RAG_ADMIN_TOKEN=TOKEN,
                              RAG_MAX_UPLOAD_BYTES="2000"):
        big = {**ARTICLE, "text": "Words of the article. " * 100}
        response = client.post("/articles", json=big, headers=AUTH)
        assert response.status_code == 413
        assert response.json()["errors"] == [{"field": "body", "message": "request body is over the 2,000-byte "
                                                                          "limit (RAG_MAX_UPLOAD_BYTES)"}]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
            yield b'{"title": "A title", "text": "'
            for _ in range(50):
                yield b"x" * 100
            yield b'"}'

        response = client.post("/articles", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
        assert response.status_code == 413
        assert client.post("/articles", json=ARTICLE, headers=AUTH).status_code == 202  # under the cap


def test_an_unknown_rebuild_is_404_and_a_bad_number_422(client: TestClient) -> None:
    assert client.get("/rebuilds/99", headers=AUTH).status_code == 404
    assert client.get("/rebuilds/0", headers=AUTH).status_code == 422
    assert client.get("/rebuilds/1.0", headers=AUTH).status_code == 422


def test_adding_articles_passes_through_admission_control() -> None:
    assert not always_admitted({"path": "/articles", "root_path": ""})
    assert not always_admitted({"path": "/rebuilds/1", "root_path": ""})


def test_one_build_at_a_time_and_requests_meanwhile_share_the_one_queued(tmp_path: Path, seed_index_dir: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Plumbing, with a build that waits to be let go: the real one is tested above."""
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index_dir, index_dir)
    started, release, running = threading.Semaphore(0), threading.Semaphore(0), []

    def build(*args: object, **kwargs: object) -> BuildReport:
        running.append(1)
        assert len(running) == 1, "two builds at once"
        started.release()
        release.acquire()
        running.pop()
        return BuildReport(unchanged=["a"])

    monkeypatch.setattr("rag.rebuilds.build_index", build)
    rebuilder = Rebuilder(tmp_path / "corpus", Pipeline(index_dir=index_dir))
    first = rebuilder.request()
    assert started.acquire(timeout=10)
    assert rebuilder.get(first.number).state == "running"
    second, third = rebuilder.request(), rebuilder.request()
    assert second.number == third.number == first.number + 1 and second.state == "queued"
    release.release()
    assert started.acquire(timeout=10)  # the queued one starts once the first is done
    assert rebuilder.get(first.number).state == "done"
    fourth = rebuilder.request()
    assert fourth.number == second.number + 1
    release.release()
    release.release()
    assert rebuilder.wait(fourth.number, timeout=10).state == "done"
    assert rebuilder.get(second.number).state == "done"
    rebuilder.close(timeout=10)
    with pytest.raises(RuntimeError, match="stopping"):
        rebuilder.request()


def test_schemathesis_finds_nothing_with_adding_articles_on(tmp_path: Path, seed_index_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/test_schema.py checks the schema of a server with adding articles off (every request 404); this checks
    both operations on one with it on and the token given, writing into a copy of the seed corpus."""
    import subprocess
    import sys

    from tests.test_schema import HOOKS, MAX_EXAMPLES, SEED

    monkeypatch.setenv("RAG_ADMIN_TOKEN", TOKEN)
    get_settings.cache_clear()
    copy_seed(tmp_path / "corpus")
    shutil.copytree(seed_index_dir, tmp_path / "index")
    # A rebuild queued by the run may still be switching when it ends: the server waits for it on stopping.
    with serving(create_app(Pipeline(index_dir=tmp_path / "index")), stop_timeout_s=150) as base:
        url = f"{base}/openapi.json"
        command = [sys.executable, "-m", "schemathesis.cli", "run", url, "--checks", "all", "--max-examples",
                   str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1", "--request-timeout", "30", "--no-color",
                   "--include-path-regex", "^/(articles|rebuilds)", "-H", f"Authorization: Bearer {TOKEN}"]
        environment = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS,
                       "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        result = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12_000:]
    assert "Selected: 4/" in output  # POST /articles, GET /rebuilds/{number}, GET /articles and /articles/{id}


def test_stopping_the_server_lets_the_running_build_finish_and_fails_the_queued_one(
        tmp_path: Path, seed_index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plumbing, with a build that waits to be let go: the running build is waited for (its switch is never cut
    off by the process's exit), the one queued behind it says why it never ran."""
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index_dir, index_dir)
    started, release = threading.Event(), threading.Event()

    def build(*args: object, **kwargs: object) -> BuildReport:
        started.set()
        release.wait(30)
        return BuildReport(unchanged=["a"])

    monkeypatch.setattr("rag.rebuilds.build_index", build)
    rebuilder = Rebuilder(tmp_path / "corpus", Pipeline(index_dir=index_dir))
    running = rebuilder.request()
    assert started.wait(10)
    queued = rebuilder.request()
    closing = threading.Thread(target=rebuilder.close, kwargs={"timeout": 30})
    closing.start()
    time.sleep(0.3)
    assert closing.is_alive()  # waiting for the running build
    release.set()
    closing.join(timeout=30)
    assert not closing.is_alive()
    assert rebuilder.get(running.number).state == "done"
    stopped = rebuilder.get(queued.number)
    assert stopped.state == "failed" and "the server stopped before this build started" in stopped.error
