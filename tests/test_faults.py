"""A damaged index never takes a live server down: it keeps serving its good build and says why in /healthz."""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag import index as index_module
from rag.index import build_index
from rag.pipeline import Pipeline
from rag.settings import Settings
from web.app import create_app

pytestmark = pytest.mark.slow

QUESTION = "How many minutes did the phone talks last?"


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def scramble(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


# Each damages a copy of the served build, which CURRENT then names, as a failed disk or a bad copy would.
DAMAGES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "truncated manifest": ("manifest.json", truncate),
    "short chunks.npy": ("chunks.npy", lambda path: truncate(path, keep=0.9)),
    "random chunks.faiss": ("chunks.faiss", scramble),
    "truncated texts.bin": ("texts.bin", truncate),
    "truncated chunk_vectors.npy": ("chunk_vectors.npy", truncate),
}


def current_name(index_dir: Path) -> str:
    return (index_dir / "CURRENT").read_text().strip()


def switch_to_damaged_copy(index_dir: Path, damage: str) -> str:
    """A copy of the served build with one file damaged, switched to like a new build; returns its name."""
    name = "29991231T000000000000Z-damage"
    shutil.copytree(index_dir / "builds" / current_name(index_dir), index_dir / "builds" / name)
    file_name, damage_file = DAMAGES[damage]
    damage_file(index_dir / "builds" / name / file_name)
    (index_dir / ".CURRENT.tmp").write_text(name + "\n")
    os.replace(index_dir / ".CURRENT.tmp", index_dir / "CURRENT")
    return name


def garbage_current(index_dir: Path) -> str:
    (index_dir / "CURRENT").write_bytes(b"\x8b\x00\xffnot a build\x00" * 3)
    return "CURRENT"


@pytest.fixture
def index_dir(seed_index_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(seed_index_dir, target)
    return target


@pytest.fixture
def live(index_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Pipeline(index_dir=index_dir))) as client:
        yield client


def inject(index_dir: Path, fault: str) -> str:
    """Apply a fault; returns the file (or CURRENT) the server's report should name."""
    if fault == "garbage CURRENT":
        return garbage_current(index_dir)
    switch_to_damaged_copy(index_dir, fault)
    return DAMAGES[fault][0]


FAULTS = ["garbage CURRENT", *DAMAGES]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_damaged_newest_index_leaves_the_good_build_serving(index_dir: Path, live: TestClient, fault: str) -> None:
    good = live.get("/healthz").json()
    assert good["status"] == "ok" and good["build"] == current_name(index_dir)
    named = inject(index_dir, fault)
    for _ in range(3):
        reply = live.post("/ask", json={"question": QUESTION})
        assert reply.status_code == 200, reply.text
        assert reply.json()["answers"][0]["quote"].strip()
    article_id = reply.json()["answers"][0]["article"]["id"]
    assert live.get(f"/articles/{article_id}").json()["text"]
    health = live.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded" and health.json()["build"] == good["build"]
    assert named in health.json()["reason"]
    ready = live.get("/readyz")
    assert ready.status_code == 200 and ready.json()["build"] == good["build"]


def test_a_failed_load_is_logged_once_and_tried_again_only_when_the_index_changes(
        index_dir: Path, live: TestClient, seed_corpus: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    loads = []
    real = index_module.IndexData

    def counting(directory: Path) -> index_module.IndexData:
        loads.append(directory.name)
        return real(directory)

    monkeypatch.setattr(index_module, "IndexData", counting)
    inject(index_dir, "truncated chunk_vectors.npy")
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            assert live.post("/ask", json={"question": QUESTION}).status_code == 200
            assert live.get("/articles").status_code == 200
    assert len(loads) == 1
    assert len([r for r in caplog.records if "chunk_vectors.npy" in r.getMessage()]) == 1
    build_index(seed_corpus, index_dir, Settings(), progress=False)  # a good build, from the corpus
    assert live.post("/ask", json={"question": QUESTION}).status_code == 200
    health = live.get("/healthz").json()
    assert health["status"] == "ok" and health["build"] == current_name(index_dir) and health["reason"] is None


@pytest.mark.parametrize("fault", ["garbage CURRENT", "truncated texts.bin"])
def test_without_a_good_build_requests_get_503_with_the_reason(index_dir: Path, fault: str) -> None:
    named = inject(index_dir, fault)
    with TestClient(create_app(Pipeline(index_dir=index_dir))) as client:
        for _ in range(2):
            reply = client.post("/ask", json={"question": QUESTION})
            assert reply.status_code == 503 and named in reply.json()["detail"]
            assert "rag index" in reply.json()["detail"]
        assert client.get("/articles").status_code == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503 and named in ready.json()["reason"] and ready.json()["build"] is None
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "unavailable"


def test_readyz_is_200_only_with_an_index_and_healthz_always_200(live: TestClient, tmp_path: Path) -> None:
    ready = live.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready" and ready.json()["build"]
    with TestClient(create_app(Pipeline(index_dir=tmp_path / "none"))) as empty:
        ready = empty.get("/readyz")
        assert ready.status_code == 503 and "rag index" in ready.json()["reason"]
        health = empty.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "unavailable"


def test_health_checks_never_load_the_index(index_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("a health check loaded the index")

    with TestClient(create_app(Pipeline(index_dir=index_dir), warm_up=False)) as client:
        monkeypatch.setattr(index_module, "IndexData", refuse)
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503  # nothing loaded yet, and the check will not load it


def test_health_checks_are_documented(live: TestClient) -> None:
    paths = live.get("/openapi.json").json()["paths"]
    assert set(paths["/readyz"]["get"]["responses"]) >= {"200", "503"}
    assert "200" in paths["/healthz"]["get"]["responses"]
