"""Serving under load: a bounded line of requests, 503 with Retry-After past it at once, health checks that
always answer, and stalled connections timed out.

Plumbing tests: a stand-in answerer that blocks until released keeps requests busy; the app runs in a real
uvicorn server on a free localhost port, as `rag serve` runs it.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from rag.cli import main
from rag.pipeline import Pipeline
from rag.settings import Settings, get_settings
from rag.types import Filters, Reply, Turn
from tests import servers
from web.app import create_app

AT_ONCE_S = 1.0  # "at once": well under the stand-in's wait, with room for a busy shared machine
SETTINGS = ("RAG_MAX_ACTIVE_REQUESTS", "RAG_MAX_WAITING_REQUESTS", "RAG_TARGET_WAIT_S", "RAG_READ_TIMEOUT_S",
            "RAG_KEEP_ALIVE_S")


class SlowPipeline(Pipeline):
    """Answers only once `release` is set (or after `delay_s`), as a busy answerer would; counts who got in."""

    def __init__(self, index_dir: Path, delay_s: float | None = None) -> None:
        super().__init__(Settings(), index_dir=index_dir)
        self.release = threading.Event()
        self.delay_s = delay_s
        self.entered = 0
        self._count_lock = threading.Lock()

    def ask(self, question: str, history: list[Turn] | None = None, top_k: int | None = None,
            filters: Filters | None = None) -> Reply:
        with self._count_lock:
            self.entered += 1
        if self.delay_s is not None:
            time.sleep(self.delay_s)
        else:
            self.release.wait(timeout=30)
        return Reply(question=question, no_answer=True)


@pytest.fixture(autouse=True)
def _limits_from_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the limits it needs; none leak in from the environment or out of `rag serve`."""
    for name in SETTINGS:
        monkeypatch.setenv(name, "0")  # recorded, so anything `rag serve` writes is undone after the test
        monkeypatch.delenv(name)
    get_settings.cache_clear()


def limits(monkeypatch: pytest.MonkeyPatch, **values: object) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"RAG_{name.upper()}", str(value))
    get_settings.cache_clear()


# These apps start in no time (no models to load): a server not up within 30 s is a failure.
serving = partial(servers.serving, start_timeout_s=30, stop_timeout_s=10)


def wait_until(condition, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def timed(call, *args, **kwargs) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call(*args, **kwargs)
    return response, time.monotonic() - started


def test_requests_past_the_bound_get_503_with_retry_after_at_once_while_healthz_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limits(monkeypatch, max_active_requests=1, max_waiting_requests=1)
    pipeline = SlowPipeline(tmp_path / "index")
    with serving(create_app(pipeline, warm_up=False)) as url, ThreadPoolExecutor(2) as pool:
        ask = {"url": f"{url}/ask", "json": {"question": "How long did the talks last?"}, "timeout": 30}
        first = pool.submit(httpx.post, **ask)
        wait_until(lambda: pipeline.entered == 1)
        second = pool.submit(httpx.post, **ask)
        time.sleep(0.5)
        assert pipeline.entered == 1  # the second waits in line: one is answered at a time

        busy, seconds = timed(httpx.post, **ask)
        assert busy.status_code == 503
        assert seconds < AT_ONCE_S
        assert int(busy.headers["retry-after"]) >= 1
        assert busy.headers["content-type"].startswith("application/json")
        body = busy.json()
        assert "busy" in body["detail"] and body["errors"] == []

        health, seconds = timed(httpx.get, f"{url}/healthz", timeout=30)
        assert health.status_code == 200 and seconds < AT_ONCE_S
        style = httpx.get(f"{url}/static/style.css", timeout=30)
        assert style.status_code == 200

        pipeline.release.set()
        assert [first.result().status_code, second.result().status_code] == [200, 200]
        assert httpx.post(**ask).status_code == 200  # the line is free again
        assert pipeline.entered == 3


def test_a_browser_gets_a_busy_page_with_retry_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limits(monkeypatch, max_active_requests=1, max_waiting_requests=0, target_wait_s=3)
    pipeline = SlowPipeline(tmp_path / "index")
    with serving(create_app(pipeline, warm_up=False)) as url, ThreadPoolExecutor(1) as pool:
        held = pool.submit(httpx.post, f"{url}/ask", json={"question": "Who?"}, timeout=30)
        wait_until(lambda: pipeline.entered == 1)
        page, seconds = timed(httpx.post, f"{url}/", data={"question": "Who won?"}, timeout=30,
                              headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
        pipeline.release.set()
        assert held.result().status_code == 200
    assert page.status_code == 503 and seconds < AT_ONCE_S
    assert page.headers["retry-after"] == "3"
    assert page.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in page.headers
    assert "busy" in page.text and "3 seconds" in page.text


def test_normal_load_gets_no_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight clients asking back to back stay within the default bound: every request is answered."""
    pipeline = SlowPipeline(tmp_path / "index", delay_s=0.02)
    with serving(create_app(pipeline, warm_up=False)) as url:
        def client(_: int) -> list[int]:
            with httpx.Client(base_url=url, timeout=30) as session:
                return [session.post("/ask", json={"question": "Who?"}).status_code for _ in range(5)]

        with ThreadPoolExecutor(8) as pool:
            statuses = [status for statuses in pool.map(client, range(8)) for status in statuses]
    assert statuses == [200] * 40
    assert pipeline.entered == 40


def test_the_default_bound_follows_the_cpu_count_and_the_target_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    from web.admission import AdmissionLimits

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    short = AdmissionLimits.from_settings(Settings(target_wait_s=1))
    long = AdmissionLimits.from_settings(Settings(target_wait_s=4))
    assert short.active == long.active == 4
    assert 8 <= short.waiting < long.waiting  # a longer acceptable wait admits a longer line
    assert (short.retry_after_s, long.retry_after_s) == (1, 4)
    assert AdmissionLimits.from_settings(Settings(max_active_requests=3, max_waiting_requests=7)) == \
        AdmissionLimits(active=3, waiting=7, target_wait_s=2.0)


def test_the_line_is_shorter_when_requests_take_longer() -> None:
    """Past the free turns, a newcomer is let in only if the turns ahead would be done within the target wait."""
    from web.admission import AdmissionLimits, Line

    line = Line(AdmissionLimits(active=2, waiting=100, target_wait_s=2.12))
    for _ in range(50):
        line.admit()
        line.leave(0.1)
    assert abs(line.seconds_per_request - 0.1) < 1e-3
    admitted_fast = sum(line.admit() for _ in range(200))
    assert admitted_fast == 2 + 42  # two at work, then 42 in line: two turns at 0.1 s take 0.05 s a request

    line = Line(AdmissionLimits(active=2, waiting=100, target_wait_s=2.12))
    for _ in range(50):
        line.admit()
        line.leave(1.0)
    assert sum(line.admit() for _ in range(200)) == 2 + 4
    line.leave(None)  # one gives up before its turn: room for one more
    assert line.admit() and not line.admit()


@pytest.mark.parametrize("name, value", [("max_active_requests", 0), ("max_waiting_requests", -1),
                                         ("target_wait_s", 0), ("read_timeout_s", 0)])
def test_limits_that_make_no_sense_are_refused(name: str, value: int) -> None:
    with pytest.raises(ValueError, match=rf"{name}\s+Input should be greater than"):
        Settings(**{name: value})


def raw_connection(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=10)
    return connection


def read_until_closed(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def read_response(connection: socket.socket) -> bytes:
    """One whole response (head and a body of Content-Length bytes), leaving the connection open."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def stall_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A server as `rag serve` runs it, with a half-second read timeout."""
    from web.admission import server_options

    limits(monkeypatch, read_timeout_s=0.5)
    with serving(create_app(SlowPipeline(tmp_path / "index", delay_s=0), warm_up=False),
                 **server_options(get_settings())) as url:
        yield url


@pytest.mark.parametrize("sent", [
    b"",  # connects and says nothing
    b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n",  # headers never finished
    b"POST /ask HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n"
    b'{"que',  # the body never finished
])
def test_a_stalled_request_is_answered_408_and_closed(stall_server: str, sent: bytes) -> None:
    with raw_connection(stall_server) as connection:
        started = time.monotonic()
        connection.sendall(sent)
        received = read_until_closed(connection)
        assert time.monotonic() - started < 3
    assert received.startswith(b"HTTP/1.1 408 ")
    assert b'"detail"' in received


def test_a_request_trickled_byte_by_byte_is_cut_off(stall_server: str) -> None:
    """Each byte would reset a per-read idle timer; the whole request has one deadline."""
    request = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
    with raw_connection(stall_server) as connection:
        started = time.monotonic()
        try:
            for byte in request:
                connection.sendall(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass  # the server closed the connection
        received = read_until_closed(connection)
        assert time.monotonic() - started < 3
    assert received.startswith(b"HTTP/1.1 408 ")


def test_a_slow_client_within_the_deadline_is_served_and_kept_alive(stall_server: str) -> None:
    with raw_connection(stall_server) as connection:
        for _ in range(2):
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
            time.sleep(0.2)
            connection.sendall(b"\r\n")
            reply = read_response(connection)
            assert reply.startswith(b"HTTP/1.1 200 "), reply
            time.sleep(0.3)  # idle between requests: the keep-alive timeout's business, not the read timeout's


def test_rag_serve_passes_the_limits_to_the_app_and_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    result = CliRunner().invoke(main, ["serve", "--max-active", "3", "--max-waiting", "9", "--read-timeout", "4",
                                       "--keep-alive", "7"])
    assert result.exit_code == 0, result.output
    settings = get_settings()
    assert (settings.max_active_requests, settings.max_waiting_requests, settings.read_timeout_s) == (3, 9, 4)
    assert calls[0]["timeout_keep_alive"] == 7
    assert calls[0]["http"].read_timeout_s == 4


def test_rag_serve_help_explains_the_limits() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    for option in ("--max-active", "--max-waiting", "--read-timeout", "--keep-alive", "503"):
        assert option in result.output
