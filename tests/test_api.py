"""The HTTP API: replies, errors that name the field, and a rebuilt index picked up while serving."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.index import build_index
from rag.pipeline import Pipeline
from rag.settings import Settings
from web.app import create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(seed_index_dir: Path):
    with TestClient(create_app(Pipeline(index_dir=seed_index_dir))) as test_client:
        yield test_client


def test_ask_returns_quotes_whose_offsets_slice_the_article_text(client: TestClient) -> None:
    reply = client.post("/ask", json={"question": "How long was the phone call between Ishiba and Lee?"}).json()
    assert set(reply) == {"question", "no_answer", "took_ms", "answers"}
    assert reply["answers"]
    for answer in reply["answers"]:
        text = client.get(f"/articles/{answer['article']['id']}").json()["text"]
        assert text[answer["quote_start"]:answer["quote_end"]] == answer["quote"]
        assert text[answer["answer_start"]:answer["answer_end"]] == answer["text"]
        for other in answer["also_reported_by"]:
            other_text = client.get(f"/articles/{other['article']['id']}").json()["text"]
            assert other_text[other["quote_start"]:other["quote_end"]] == other["quote"]


@pytest.mark.parametrize("question", [
    "How long was the phone call between Ishiba and Lee?",
    "Who is the new president of South Korea?",
    "What is the capital of Australia?",
])
def test_every_answer_says_how_sure_it_is_and_what_it_quotes(client: TestClient, question: str) -> None:
    reply = client.post("/ask", json={"question": question}).json()
    assert reply["answers"]
    for answer in reply["answers"]:
        assert answer["confidence"] in {"high", "low"}
        assert (answer["confidence"] == "low") is answer["weak"]
        assert answer["field"] in {"text", "byline", "source", "published"}
        article = client.get(f"/articles/{answer['article']['id']}").json()
        if answer["field"] == "text":
            assert article["text"][answer["quote_start"]:answer["quote_end"]] == answer["quote"]
        else:
            assert answer["quote"] == answer["text"] == article[answer["field"]]
            assert [answer[k] for k in ("quote_start", "quote_end", "answer_start", "answer_end")] == [None] * 4
    assert reply["no_answer"] is all(a["confidence"] == "low" for a in reply["answers"])  # nothing clears it


def test_a_question_the_articles_do_not_answer_still_offers_low_confidence_answers(client: TestClient) -> None:
    reply = client.post("/ask", json={"question": "What is the capital of Australia?"}).json()
    assert reply["no_answer"] is True
    assert reply["answers"]
    assert {a["confidence"] for a in reply["answers"]} == {"low"}


def test_top_k_bounds_the_number_of_answers(client: TestClient) -> None:
    reply = client.post("/ask", json={"question": "What did Ishiba say?", "top_k": 1}).json()
    assert len(reply["answers"]) <= 1


def test_history_carries_a_follow_up(client: TestClient) -> None:
    reply = client.post("/ask", json={"question": "How long did it last?", "history": [
        {"question": "When did Ishiba and Lee first talk by phone?", "answer": "Monday"}]}).json()
    assert not reply["no_answer"] and "25" in reply["answers"][0]["text"]


@pytest.mark.parametrize("body, field", [
    ({}, "question"),
    ({"question": "   "}, "question"),
    ({"question": "x" * 501}, "question"),
    ({"question": 42}, "question"),
    ({"question": "ok", "top_k": 0}, "top_k"),
    ({"question": "ok", "top_k": 11}, "top_k"),
    ({"question": "ok", "top_k": "three"}, "top_k"),
    ({"question": "ok", "filters": {"since": "2025-02-30"}}, "filters.since"),
    ({"question": "ok", "filters": {"until": "yesterday"}}, "filters.until"),
    ({"question": "ok", "filters": {"sources": "Asahi"}}, "filters.sources"),
    ({"question": "ok", "history": [{"answer": "no question"}]}, "history.0.question"),
    ({"question": "ok", "history": [{"question": "q"}] * 21}, "history"),
    ({"question": "ok", "colour": "blue"}, "colour"),
    ({"question": "ok", "top_k": "3"}, "top_k"),  # no coercion at the edge: a number is a JSON integer
    ({"question": "ok", "top_k": 3.0}, "top_k"),
    ({"question": "ok", "top_k": True}, "top_k"),
    ({"question": "ok", "filters": {"since": 0}}, "filters.since"),  # a date is "YYYY-MM-DD" and nothing else
    ({"question": "ok", "filters": {"since": "2025-06-01T00:00:00"}}, "filters.since"),
    ({"question": "ok", "filters": {"until": "2025-06-01T00:00:00Z"}}, "filters.until"),
    ({"question": "ok", "filters": {"until": "20250601"}}, "filters.until"),
    ({"question": "ok", "filters": {"sources": [7]}}, "filters.sources.0"),
    ({"question": "ok", "history": [{"question": 7}]}, "history.0.question"),
])
def test_a_bad_request_gets_422_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/ask", json=body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]
    assert field in response.json()["detail"]


def test_a_body_that_is_not_json_gets_422(client: TestClient) -> None:
    response = client.post("/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "body", "message": "request body is not valid JSON"}]


@pytest.mark.parametrize(("body", "content_type", "status", "message"), [
    (b'{"question": "caf\xe9?"}', "application/json", 400, "request body is not valid UTF-8"),
    (b'{"question": "ok", "filters": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", 400,
     "request body is nested too deeply"),
    ('{"question": "caf\u00e9?"}'.encode("latin-1"), "application/json; charset=latin-1", 415,
     "request body must be UTF-8 JSON, not latin-1"),
    ('{"question": "ok"}'.encode("utf-16"), "application/json; charset=utf-16", 415,
     "request body must be UTF-8 JSON, not utf-16"),
])
def test_a_body_that_cannot_be_read_is_refused_naming_the_body(client: TestClient, body: bytes, content_type: str,
                                                               status: int, message: str) -> None:
    response = client.post("/ask", content=body, headers={"content-type": content_type})
    assert response.status_code == status
    assert response.json() == {"detail": f"body: {message}", "errors": [{"field": "body", "message": message}]}


def test_utf8_charset_is_accepted(client: TestClient) -> None:
    response = client.post("/ask", content=b'{"question": "Who is Lee?", "top_k": 1}',
                           headers={"content-type": "application/json; charset=UTF-8"})
    assert response.status_code == 200


def test_json_responses_tell_browsers_not_to_sniff(client: TestClient) -> None:
    for response in (client.get("/articles"), client.get("/articles/nope"), client.get("/healthz"),
                     client.post("/ask", json={"question": "When did Ishiba and Lee talk?", "top_k": 1}),
                     client.post("/ask", json={}), client.get("/openapi.json"), client.get("/no-such-page")):
        assert response.headers["x-content-type-options"] == "nosniff", response.url


def test_since_after_until_is_rejected(client: TestClient) -> None:
    response = client.post("/ask", json={"question": "ok", "filters": {"since": "2025-06-10", "until": "2025-06-01"}})
    assert response.status_code == 422 and "since" in response.json()["detail"]


def test_articles_list_and_detail(client: TestClient) -> None:
    articles = client.get("/articles").json()
    assert len(articles) == 5
    assert [a["published"] for a in articles] == sorted((a["published"] for a in articles), reverse=True)
    detail = client.get(f"/articles/{articles[0]['id']}").json()
    assert set(detail) == {"id", "title", "source", "published", "url", "duplicate_of", "section", "byline", "text"}
    missing = client.get("/articles/no-such-article")
    assert missing.status_code == 404 and "no-such-article" in missing.json()["detail"]


def test_healthz_reports_counts_and_build_time(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["articles"] == 5 and health["chunks"] > 5 and health["built"]


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/ask" in client.get("/openapi.json").json()["paths"]


def test_openapi_schema_documents_confidence_and_the_quoted_field(client: TestClient) -> None:
    answer = client.get("/openapi.json").json()["components"]["schemas"]["AnswerOut"]
    properties = answer["properties"]
    assert properties["confidence"]["enum"] == ["high", "low"]
    assert '"high"' in properties["confidence"]["description"] and '"low"' in properties["confidence"]["description"]
    assert properties["field"]["enum"] == ["text", "byline", "source", "published"]
    assert "byline" in properties["field"]["description"]
    assert "confidence" in properties["weak"]["description"]
    for offset in ("quote_start", "quote_end", "answer_start", "answer_end"):
        assert {"type": "null"} in properties[offset]["anyOf"], offset
        assert "Null when `field` is not" in properties[offset]["description"], offset
    assert {"confidence", "field"} <= set(answer["required"])


def test_without_an_index_ask_says_to_run_rag_index(tmp_path: Path) -> None:
    with TestClient(create_app(Pipeline(index_dir=tmp_path / "none"), warm_up=False)) as empty:
        response = empty.post("/ask", json={"question": "Anything?"})
        assert response.status_code == 503 and "rag index" in response.json()["detail"]


def test_a_rebuilt_index_is_picked_up_without_restart(seed_corpus: Path, seed_index_dir: Path, tmp_path: Path) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index_dir, index_dir)
    with TestClient(create_app(Pipeline(index_dir=index_dir))) as live:
        assert live.get("/healthz").json()["articles"] == 5
        errors: list[int] = []
        stop = threading.Event()

        def keep_asking() -> None:
            while not stop.is_set():
                status = live.post("/ask", json={"question": "Where will Ishiba and Lee meet?"}).status_code
                if status != 200:
                    errors.append(status)

        asker = threading.Thread(target=keep_asking)
        asker.start()
        try:
            (seed_corpus / "kyodo.md").write_text(
                "---\ntitle: Lee visits Tokyo\nsource: Kyodo News\npublished: 2025-06-20\n---\n"
                "South Korean President Lee Jae-myung arrived in Tokyo on a rainy Friday for a two-day visit.\n")
            build_index(seed_corpus, index_dir, Settings(), progress=False)
        finally:
            stop.set()
            asker.join()
        assert errors == []
        reply = live.post("/ask", json={"question": "When did Lee arrive in Tokyo?"}).json()
        assert reply["answers"][0]["article"]["source"] == "Kyodo News"
        assert live.get("/healthz").json()["articles"] == 6  # the health check reports what the request loaded
