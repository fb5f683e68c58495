"""The OpenAPI schema says what the API answers: every status of every operation, with its real body.

schemathesis checks it against the app served on localhost with the real models and the seed index: all its
checks, every phase, a fixed seed and a fixed number of examples per operation (about a minute on 2 cores).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.pipeline import Pipeline
from tests.servers import serving
from web.app import create_app

pytestmark = pytest.mark.slow

SEED = 20250611
MAX_EXAMPLES = 60
HOOKS = "tests.schemathesis_hooks"


@pytest.fixture(scope="module")
def server_url(seed_index_dir: Path) -> Iterator[str]:
    """The app on a free localhost port, over the session's seed index."""
    with serving(create_app(Pipeline(index_dir=seed_index_dir))) as url:
        yield url


@pytest.fixture(scope="module")
def schema(server_url: str) -> dict:
    return httpx.get(f"{server_url}/openapi.json").json()


def resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


@pytest.mark.parametrize(("method", "path", "statuses"), [
    ("post", "/ask", {"200", "400", "415", "422", "503"}),
    ("get", "/articles", {"200", "503"}),
    ("get", "/articles/{article_id}", {"200", "404", "422", "503"}),
])
def test_every_status_an_operation_returns_is_documented(schema: dict, method: str, path: str,
                                                         statuses: set[str]) -> None:
    responses = schema["paths"][path][method]["responses"]
    assert statuses <= set(responses)
    for status in statuses - {"200"}:
        body = resolve(schema, responses[status]["content"]["application/json"]["schema"])
        assert body["properties"]["detail"]["type"] == "string", (path, status)


def test_invalid_requests_are_documented_as_the_app_answers_them(schema: dict) -> None:
    for status in ("400", "415", "422"):
        body = resolve(schema, schema["paths"]["/ask"]["post"]["responses"][status]["content"]["application/json"]
                       ["schema"])
        assert set(body["required"]) == {"detail", "errors"}, status
        error = resolve(schema, body["properties"]["errors"]["items"])
        assert set(error["required"]) == {"field", "message"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # FastAPI's default, which it never sends


def test_documented_422_matches_a_real_one(server_url: str, schema: dict) -> None:
    response = httpx.post(f"{server_url}/ask", json={"question": "ok", "top_k": "3"})
    assert response.status_code == 422
    body = response.json()
    assert set(body) == set(resolve(schema, schema["paths"]["/ask"]["post"]["responses"]["422"]["content"]
                                    ["application/json"]["schema"])["properties"])
    assert body["errors"] == [{"field": "top_k", "message": "Input should be a valid integer"}]


def test_schemathesis_finds_nothing(server_url: str, tmp_path: Path) -> None:
    """Every check schemathesis has, on every operation, in every phase; bounded by seed and example count."""
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{server_url}/openapi.json", "--checks", "all",
               "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1",
               "--request-timeout", "30", "--no-color"]
    started = time.monotonic()
    env = {**os.environ, "SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-12_000:]
    selected, tested = re.search(r"Selected: (\d+)/\d+\s+Tested: (\d+)", output).groups()
    assert tested == selected, output[-3_000:]
    print(f"schemathesis took {time.monotonic() - started:.1f} s")
