"""Shared fixtures: the real models on the seed corpus, each test with its own directories."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.index import IndexData, build_index, load_index
from rag.settings import Settings, get_settings

REPO = Path(__file__).resolve().parents[1]
SEED_CORPUS = REPO / "corpus"
SEED_DIGEST = REPO / "tests" / "data" / "seed_digest.txt"  # a copy of ../shared/seed/000_61a9e09eb2a5f23a.txt


@pytest.fixture(autouse=True)
def _no_writes_into_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default corpus and index paths point into the test's temp dir, never at the repo's."""
    monkeypatch.setenv("RAG_CORPUS_DIR", str(tmp_path / "corpus"))
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path / "index"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def settings() -> Settings:
    return Settings()


def copy_seed(target: Path) -> Path:
    shutil.copytree(SEED_CORPUS, target, ignore=shutil.ignore_patterns("README*", ".*"))
    return target


@pytest.fixture
def seed_corpus(tmp_path: Path) -> Path:
    return copy_seed(tmp_path / "corpus")


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed corpus indexed once per session with the real model (read-only for tests)."""
    root = tmp_path_factory.mktemp("seed")
    corpus = copy_seed(root / "corpus")
    build_index(corpus, root / "index", Settings(), progress=False)
    return root / "index"


@pytest.fixture(scope="session")
def seed_index(seed_index_dir: Path) -> IndexData:
    return load_index(seed_index_dir)
