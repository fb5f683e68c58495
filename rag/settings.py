"""One settings object for paths, models and thresholds, read from `RAG_*` environment variables."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_")

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")

    # Chunking: about 600 characters of news prose is ~130 word pieces, which MiniLM (trained on 128,
    # truncating at 256) sees whole. Measured on TIME (bench/chunk_size.py): hybrid nDCG@10 0.665 at 300
    # characters, 0.702 at 600, 0.691 at 1000.
    chunk_max_chars: int = Field(600, ge=100)
    chunk_overlap_sentences: int = Field(1, ge=0)

    # Ingest: larger files are rejected as not being a single article (the longest news features run to ~100 kB).
    max_article_bytes: int = Field(2_000_000, ge=1_000)

    embed_batch_size: int = Field(32, ge=1)

    # Near-duplicates (rag/dedup.py): two articles whose sets of 3-word shingles have an estimated Jaccard
    # similarity of 0.4 or more are one story. Measured by bench/near_duplicates.py: wire copies edited by a
    # paper score 0.64 or more, different stories (on the same event too) 0.07 at most.
    near_duplicate_threshold: float = Field(0.4, gt=0, le=1)
    near_duplicate_shingle_words: int = Field(3, ge=1)

    # The index in Milvus instead of index_dir (rag/milvus.py): a path ending in .db is Milvus Lite (a file, one process
    # at a time), http(s)://host:port a Milvus server or cluster, with `milvus_token` ("user:password" or an API key)
    # when it needs one. Unset: the local FAISS build. Collections are named "<prefix>_<build>_<table>".
    milvus_uri: str | None = None
    milvus_token: SecretStr | None = None
    milvus_prefix: str = Field("rag", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")

    @field_validator("milvus_uri", mode="before")
    @classmethod
    def _milvus_uri(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip() or None
            if value and not (value.endswith(".db") or value.lower().startswith(("http://", "https://"))):
                raise ValueError(f"RAG_MILVUS_URI must be a file path ending in .db (Milvus Lite) or "
                                 f"http(s)://host:port (a Milvus server), got {value!r}")
        return value

    # Retrieval and answering.
    top_k: int = Field(3, ge=1, le=10)
    no_answer_threshold: float | None = Field(None, ge=0, le=1)  # None: the measured default in AnswerSettings

    # Serving: the Host names the server answers to (comma-separated in RAG_TRUSTED_HOSTS; "*.example.org" for
    # subdomains, "*" for any). Any other Host gets 400, so nothing (a redirect's Location) echoes a forged one.
    trusted_hosts: Annotated[list[str], NoDecode] = ["localhost", "127.0.0.1", "[::1]", "testserver"]

    @field_validator("trusted_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return [host.strip() for host in value.split(",") if host.strip()] if isinstance(value, str) else value

    @field_validator("trusted_hosts")
    @classmethod
    def _host_patterns(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if "*" in host[1:] or host.startswith("*") and host != "*" and not host.startswith("*."):
                raise ValueError(f"a trusted host is a name, '*.domain' or '*', got {host!r}")
        return hosts

    # Keeping the index current. POST /articles is off unless `admin_token` is set (RAG_ADMIN_TOKEN, at least 16
    # characters); a request then needs `Authorization: Bearer <token>`, and a body over `max_upload_bytes` gets
    # 413. `rag watch` updates the index once files have stopped changing for `watch_delay_s`.
    admin_token: SecretStr | None = None
    max_upload_bytes: int = Field(5_000_000, ge=1_000)
    watch_delay_s: float = Field(2.0, gt=0)

    @field_validator("admin_token", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < 16:
            raise ValueError("RAG_ADMIN_TOKEN must be at least 16 characters (for one: python -c 'import secrets; "
                             "print(secrets.token_urlsafe())')")
        return token

    # Serving under load (web/admission.py): `max_active_requests` are worked on at once and
    # `max_waiting_requests` more wait; past them a request gets 503 at once. Unset: the CPU count, and the
    # line those CPUs work through in `target_wait_s` (also the Retry-After). A request must arrive whole within
    # `read_timeout_s` of its first byte; an idle connection is closed after `keep_alive_s`.
    max_active_requests: int | None = Field(None, ge=1)
    max_waiting_requests: int | None = Field(None, ge=0)
    target_wait_s: float = Field(2.0, gt=0)
    read_timeout_s: float = Field(10.0, gt=0)
    keep_alive_s: int = Field(5, ge=1)

    # Fetching news from the web (rag/fetch.py): each URL gets `fetch_timeout_s` in all, at most
    # `fetch_max_bytes` of body (reading stops past it) and `fetch_max_redirects` redirects.
    fetch_timeout_s: float = Field(10.0, gt=0)
    fetch_max_bytes: int = Field(5_000_000, ge=1_000)
    fetch_max_redirects: int = Field(5, ge=0)


@lru_cache
def get_settings() -> Settings:
    return Settings()
