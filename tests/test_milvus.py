"""The index in Milvus (Milvus Lite in a temporary directory): the same answers as the local FAISS build, filters
inside the search, incremental and atomic updates under a running server, and one-line errors."""
from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from rag.cli import main
from rag.errors import IndexBusyError, IndexOutdatedError, StoreUnavailableError
from rag.index import analyze, build_index
from rag.ingest import read_article_file
from rag.milvus import Milvus, MilvusStore, describe_error, filter_expression
from rag.pipeline import Pipeline
from rag.retrieval import retrieve
from rag.settings import Settings
from rag.types import Filters
from tests.conftest import SEED_CORPUS, copy_seed
from web.app import create_app

# A copy of ../shared/eval/dev_questions.jsonl, so a clone without ../shared tests the same (it compares the two
# stores' quotes, not their quality).
DEV_QUESTIONS = Path(__file__).resolve().parent / "data" / "dev_questions.jsonl"
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _no_milvus_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--milvus` sets RAG_MILVUS_URI for the process; each test starts (and ends) without it."""
    monkeypatch.setenv("RAG_MILVUS_URI", "")


def milvus_settings(db: Path) -> Settings:
    return Settings(milvus_uri=str(db))


def build_into_milvus(corpus: Path, db: Path) -> object:
    settings = milvus_settings(db)
    return build_index(corpus, db.parent / "unused-index", settings, progress=False,
                       store=MilvusStore(Milvus.from_settings(settings)))


@pytest.fixture(scope="module")
def milvus_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed corpus indexed once into a Milvus Lite file (read-only for the tests)."""
    root = tmp_path_factory.mktemp("milvus-seed")
    build_into_milvus(copy_seed(root / "corpus"), root / "seed.db")
    return root / "seed.db"


# Pure parts: no Milvus, no models.

def test_filter_expression_says_what_filters_admit() -> None:
    assert filter_expression(None) is None
    assert filter_expression(Filters()) is None
    assert filter_expression(Filters(sources=("Jiji Press", "the MAINICHI"))) == \
        'source in ["jiji press", "the mainichi"]'
    assert filter_expression(Filters(since="2025-06-05", until="2025-06-09")) == \
        "published >= 20250605 and published > 0 and published <= 20250609"


def test_milvus_errors_are_one_line_a_user_can_act_on() -> None:
    from pymilvus.exceptions import MilvusException

    refused = describe_error(MilvusException(code=1800, message="auth check failure, please check username and "
                                                                 "password"), "http://milvus:19530")
    assert isinstance(refused, StoreUnavailableError)
    assert "refused the credentials" in str(refused) and "RAG_MILVUS_TOKEN" in str(refused)
    unreachable = describe_error(MilvusException(message="Fail connecting to server on milvus:19530"),
                                 "http://milvus:19530")
    assert "cannot reach Milvus at http://milvus:19530" in str(unreachable)
    for error in (refused, unreachable):
        assert "\n" not in str(error)


def test_milvus_uri_must_be_a_db_file_or_a_server() -> None:
    with pytest.raises(ValueError, match="ending in .db"):
        Settings(milvus_uri="milvus.sqlite")
    assert Settings(milvus_uri="  ").milvus_uri is None
    result = CliRunner().invoke(main, ["ask", "Who?", "--milvus", "nowhere"])
    assert result.exit_code == 2 and "--milvus" in result.output


# With Milvus Lite and the real models.

def test_dev_questions_give_the_same_top_quote_as_faiss(milvus_seed: Path, seed_index_dir: Path,
                                                        settings: Settings) -> None:
    local = Pipeline(settings=settings, index_dir=seed_index_dir)
    milvus = Pipeline(settings=milvus_settings(milvus_seed))
    rows = [json.loads(line) for line in DEV_QUESTIONS.read_text().splitlines() if line.strip()]
    same = []
    for row in rows:
        a, b = local.ask(row["question"]), milvus.ask(row["question"])
        top_a = (a.answers[0].article.id, a.answers[0].quote_start, a.answers[0].quote_end) if a.answers else None
        top_b = (b.answers[0].article.id, b.answers[0].quote_start, b.answers[0].quote_end) if b.answers else None
        same.append(top_a == top_b)
        for answer in (a for a in b.answers if a.field == "text"):  # offsets are the source of truth in Milvus too
            assert answer.quote == answer.article.text[answer.quote_start:answer.quote_end]
    assert sum(same) >= 13, [row["id"] for row, s in zip(rows, same) if not s]


def test_milvus_bm25_scores_the_terms_the_local_bm25_scores(milvus_seed: Path, seed_index) -> None:
    """Chunks hold rag's tokens for Milvus's BM25, which is given bm25s's k1 and b: the same chunks score, each
    (k1 + 1) times bm25s's score (bm25s's Lucene variant leaves that factor out)."""
    from rag import lexical
    from rag.milvus import bm25_text
    from rag.retrieval import lexical_candidates

    index = Milvus(str(milvus_seed)).open()
    questions = [json.loads(line)["question"] for line in DEV_QUESTIONS.read_text().splitlines() if line.strip()]
    irregular = ["Who told reporters the leaders had spoken?", "What did the children's ministries say?"]
    for question in questions + irregular:
        terms = lexical.tokenize([question])[0]
        hits = index.milvus.client.search(index.names["chunks"], [bm25_text(terms)], anns_field="sparse", limit=10,
                                          search_params={"metric_type": "BM25"}, output_fields=["id"])[0]
        local = lexical_candidates(seed_index, question, 10)
        remote = {int(h["id"]): abs(float(h["distance"])) for h in hits}
        assert set(remote) == set(local), question
        for chunk, score in remote.items():
            assert score == pytest.approx((lexical.K1 + 1) * local[chunk], rel=1e-3), question


@pytest.mark.parametrize("filters", [Filters(sources=("jiji press",)), Filters(sources=("Yomiuri Shimbun",)),
                                     Filters(since="2025-06-10"), Filters(until="2025-06-05"),
                                     Filters(sources=("Yomiuri Shimbun",), since="2025-06-06"),
                                     Filters(sources=("No Such Outlet",))])
def test_filters_agree_with_the_local_path(milvus_seed: Path, seed_index, filters: Filters) -> None:
    from rag import embedding

    index = Milvus(str(milvus_seed)).open()
    question = "Ishiba and Lee agreed on stable relations"
    vector = embedding.embed_query(question)
    local = retrieve(seed_index, question, vector, 50, filters, 200)
    remote = retrieve(index, question, vector, 50, filters, 200)
    assert all(filters.admits(index.article(p.chunk.article_id)) for p in remote)
    # Every admitted chunk is a candidate in both (the seed corpus is small), so both return the same chunks.
    assert {(p.chunk.article_id, p.chunk.start) for p in remote} == {(p.chunk.article_id, p.chunk.start) for p in local}


def test_rag_add_embeds_only_the_new_article_and_keeps_one_older_build(tmp_path: Path) -> None:
    corpus, db = tmp_path / "corpus", tmp_path / "news.db"
    corpus.mkdir()
    files = sorted(SEED_CORPUS.glob("2025-*.md"))
    for path in files[:3]:
        shutil.copy(path, corpus)
    runner = CliRunner()
    first = runner.invoke(main, ["index", "--corpus", str(corpus), "--milvus", str(db), "-q"])
    assert first.exit_code == 0, first.output
    assert "3 added" in first.output and f"in Milvus at {db}" in first.output
    new = files[3]
    new_chunks = len(analyze(read_article_file(new)[0], Settings())[1])
    added = runner.invoke(main, ["add", str(new), "--corpus", str(corpus), "--milvus", str(db), "-q"])
    assert added.exit_code == 0, added.output
    assert "1 added, 0 changed, 0 removed, 3 unchanged" in added.output
    assert f"{new_chunks} embedded" in added.output
    third = runner.invoke(main, ["add", str(files[4]), "--corpus", str(corpus), "--milvus", str(db), "-q"])
    assert "1 added, 0 changed, 0 removed, 4 unchanged" in third.output
    milvus = Milvus(str(db))
    builds = sorted(milvus.builds())
    assert len(builds) == 2 and builds[-1] == milvus.served_build()  # the served one and the one before
    asked = runner.invoke(main, ["ask", "Where are Ishiba and Lee scheduled to meet in mid-June?", "--json",
                                 "--milvus", str(db)])
    assert asked.exit_code == 0, asked.output
    reply = json.loads(asked.output)
    assert reply["answers"] and "Canada" in reply["answers"][0]["quote"]


def test_a_rebuild_under_a_running_server_loses_no_request(tmp_path: Path) -> None:
    corpus, db = tmp_path / "corpus", tmp_path / "serve.db"
    corpus.mkdir()
    files = sorted(SEED_CORPUS.glob("2025-*.md"))
    shutil.copy(files[2], corpus)  # Jiji Press
    build_into_milvus(corpus, db)
    statuses: list[int] = []
    stop = threading.Event()
    with TestClient(create_app(Pipeline(settings=milvus_settings(db)))) as client:
        first = client.get("/healthz").json()["build"]
        assert client.get("/readyz").status_code == 200

        def ask() -> None:
            while not stop.is_set():
                statuses.append(client.post("/ask", json={"question": "How long did the phone talks last?"})
                                .status_code)

        asker = threading.Thread(target=ask)
        asker.start()
        try:
            shutil.copy(files[3], corpus)  # Asahi Shimbun
            report = build_into_milvus(corpus, db)
            deadline = time.monotonic() + 15
            while client.get("/healthz").json()["build"] != report.build and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(0.5)
        finally:
            stop.set()
            asker.join()
        health = client.get("/healthz").json()
        assert health["build"] == report.build != first and health["articles"] == 2
        outlets = {a["source"] for a in client.get("/articles").json()}
        assert outlets == {"Jiji Press", "Asahi Shimbun"}
    assert statuses and set(statuses) == {200}, statuses


def test_an_unreachable_milvus_is_one_line_and_readyz_says_why(tmp_path: Path) -> None:
    uri = "http://127.0.0.1:9"
    result = CliRunner().invoke(main, ["ask", "Who met?", "--milvus", uri])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot reach Milvus at {uri}") and result.output.count("\n") == 1
    assert "Traceback" not in result.output
    index = CliRunner().invoke(main, ["index", "--corpus", str(copy_seed(tmp_path / "corpus")), "--milvus", uri])
    assert index.exit_code == 1 and index.output.startswith(f"Error: cannot reach Milvus at {uri}")
    with TestClient(create_app(Pipeline(settings=milvus_settings(Path("unused.db")).model_copy(
            update={"milvus_uri": uri})), warm_up=False)) as client:
        assert client.post("/ask", json={"question": "Who met?"}).status_code == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["reason"].startswith(f"cannot reach Milvus at {uri}")


def test_a_collection_of_another_layout_is_refused_with_a_message(tmp_path: Path) -> None:
    from pymilvus import DataType

    db = tmp_path / "old.db"
    milvus = Milvus(str(db))
    client = milvus.client
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
    index_params = client.prepare_index_params()
    index_params.add_index("vector", index_type="FLAT", metric_type="IP")
    client.create_collection("rag_chunks_v0", schema=schema, index_params=index_params)
    client.create_alias("rag_chunks_v0", milvus.alias)
    with pytest.raises(IndexOutdatedError, match="not a build of this layout: run `rag index --milvus"):
        milvus.open()
    with TestClient(create_app(Pipeline(settings=milvus_settings(db)), warm_up=False)) as client:
        assert client.post("/ask", json={"question": "Who met?"}).status_code == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "rag index --milvus" in ready.json()["reason"]


def refusing_milvus():
    """A gRPC server on a free port that answers every call as a Milvus server with authentication enabled answers
    a wrong token (UNAUTHENTICATED, its message): a stand-in for the server these machines cannot run."""
    import grpc

    def refuse(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.UNAUTHENTICATED,
                      "auth check failure, please check username and password are correct")

    class Refuse(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(refuse)

    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[Refuse()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"http://127.0.0.1:{port}"


def test_a_wrong_token_is_one_line_and_readyz_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    server, uri = refusing_milvus()
    try:
        monkeypatch.setenv("RAG_MILVUS_TOKEN", "root:wrong")
        result = CliRunner().invoke(main, ["ask", "Who met?", "--milvus", uri])
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"Error: Milvus at {uri} refused the credentials") and "RAG_MILVUS_TOKEN" in \
            result.output and result.output.count("\n") == 1
        with TestClient(create_app(Pipeline(settings=Settings(milvus_uri=uri)), warm_up=False)) as client:
            assert client.post("/ask", json={"question": "Who met?"}).status_code == 503
            ready = client.get("/readyz")
            assert ready.status_code == 503 and "refused the credentials" in ready.json()["reason"]
    finally:
        server.stop(0)


def test_a_build_of_an_older_layout_or_with_a_dropped_collection_says_rebuild_and_rag_index_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.milvus

    corpus, db = copy_seed(tmp_path / "corpus"), tmp_path / "layouts.db"
    with monkeypatch.context() as older:
        older.setattr(rag.milvus, "LAYOUT", rag.milvus.LAYOUT - 1)
        build_into_milvus(corpus, db)
    milvus = Milvus(str(db))
    with pytest.raises(IndexOutdatedError, match=f"has collection layout {rag.milvus.LAYOUT - 1}, this version reads "
                                                 f"layout {rag.milvus.LAYOUT}: run `rag index --milvus"):
        milvus.open()
    asked = CliRunner().invoke(main, ["ask", "Who met?", "--milvus", str(db)])
    assert asked.exit_code == 1 and "rag index --milvus" in asked.output and asked.output.count("\n") == 1
    rebuilt = CliRunner().invoke(main, ["index", "--corpus", str(corpus), "--milvus", str(db)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt from the corpus" in rebuilt.output
    served = milvus.open()
    assert served.manifest["layout"] == rag.milvus.LAYOUT
    milvus.client.drop_collection(served.names["chunks"])
    with pytest.raises(IndexOutdatedError, match=f"lacks collections {served.names['chunks']}"):
        milvus.open()
    with TestClient(create_app(Pipeline(settings=milvus_settings(db)), warm_up=False)) as client:
        assert client.post("/ask", json={"question": "Who met?"}).status_code == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "rag index --milvus" in ready.json()["reason"]
    assert CliRunner().invoke(main, ["index", "--corpus", str(corpus), "--milvus", str(db)]).exit_code == 0
    assert len(milvus.open().chunk_table) == len(served.chunk_table)


def test_one_build_at_a_time_into_a_milvus_and_a_dead_builders_lock_is_taken_over(tmp_path: Path) -> None:
    import datetime as dt
    import os
    import socket

    store = MilvusStore(Milvus(str(tmp_path / "lock.db")))
    with store.lock():
        with pytest.raises(IndexBusyError, match=f"another build into Milvus at .* is running \\(pid {os.getpid()} "):
            with store.lock():
                pass
    with store.lock():  # released
        pass
    # A lock left by a process that is gone (a build killed with -9): taken over.
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:60]
    dead = 2 ** 22 + 1  # above Linux's largest pid_max: no process has it
    left = f"rag_lock_{host}_{dead}_{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}_0a1b2c"  # recent: not stale by age
    store._create_small(left)
    store.milvus.client.create_alias(left, "rag_building")
    with store.lock():
        assert left not in store.milvus.client.list_collections()
    assert [c for c in store.milvus.client.list_collections() if "_lock_" in c] == []


def test_a_server_shutting_down_stops_asking_milvus_for_new_builds(milvus_seed: Path) -> None:
    """A watcher still asking an in-process Milvus Lite while the interpreter exits made `rag serve` print a gRPC
    traceback on Ctrl-C."""
    pipeline = Pipeline(settings=milvus_settings(milvus_seed))
    with TestClient(create_app(pipeline)) as client:
        assert client.get("/readyz").status_code == 200
        watcher = pipeline._watcher
        assert watcher is not None and watcher.is_alive()
    watcher.join(timeout=5)
    assert not watcher.is_alive()
