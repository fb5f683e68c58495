"""Serving under load: a bounded line of requests, and a deadline for a request to arrive.

Admission: at most `active` requests are worked on at once and others wait their turn, in order of arrival,
while the line is at most `waiting` long and would be worked through within the target wait at the pace of
recent requests; a request past it gets 503 with `Retry-After` at once instead of joining a line that would
only make everyone wait longer. `/healthz`, `/readyz` and `/static/` never count or wait, so probes answer in
milliseconds under any load (and the few requests at work leave the threadpool free for them).

Read deadline: uvicorn's keep-alive timeout closes a connection idle between requests, but nothing bounds
the time a client takes to send a request: a connection that never finishes its headers or its body holds
its socket for ever, and a byte now and then resets any idle timer. `ReadDeadlineProtocol` gives each
request one deadline from its first byte (from the connection's opening for the first request) until it has
been received whole; past it the client gets 408 and the connection is closed.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import time
from dataclasses import dataclass

import h11
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from rag.settings import Settings

# CPU time one /ask takes on this kind of machine: bench/REPORT.md measured 9.4 answers/s with 8 clients on
# 2 cores. Only the default line length depends on it.
CPU_SECONDS_PER_ANSWER = 0.2
ALWAYS_ADMITTED = ("/healthz", "/readyz")
ALWAYS_ADMITTED_PREFIXES = ("/static/",)


@dataclass(frozen=True)
class AdmissionLimits:
    """Requests worked on at once, the most that may wait for them, and the longest wait to let them in for."""

    active: int
    waiting: int
    target_wait_s: float

    def __post_init__(self) -> None:
        if self.active < 1:
            raise ValueError(f"active must be >= 1, got {self.active}")
        if self.waiting < 0:
            raise ValueError(f"waiting must be >= 0, got {self.waiting}")
        if self.target_wait_s <= 0:
            raise ValueError(f"target_wait_s must be > 0, got {self.target_wait_s}")

    @property
    def retry_after_s(self) -> int:
        """What a refused client is told to wait: about the time the line takes to be worked through."""
        return max(1, math.ceil(self.target_wait_s))

    @classmethod
    def from_settings(cls, settings: Settings) -> AdmissionLimits:
        """The settings' limits; unset ones from the CPU count and the target wait (the line that many CPUs
        work through in `target_wait_s` at CPU_SECONDS_PER_ANSWER)."""
        cpus = os.cpu_count() or 1
        active = settings.max_active_requests or cpus
        waiting = settings.max_waiting_requests
        if waiting is None:
            waiting = max(1, math.floor(settings.target_wait_s * cpus / CPU_SECONDS_PER_ANSWER) - active)
        return cls(active, waiting, settings.target_wait_s)


class Line:
    """The requests admitted (at work or waiting) and how long one holds its turn, to bound the wait.

    A newcomer is let in while a turn is free, or while it would be at most `limits.waiting`-th in line and the
    turns ahead of it would be done within the target wait at the pace of recent requests (a moving average):
    on a machine slower or busier than CPU_SECONDS_PER_ANSWER assumes, the line is shorter.
    """

    SMOOTHING = 0.2  # weight of the newest request's time in the moving average

    def __init__(self, limits: AdmissionLimits) -> None:
        self.limits = limits
        self.admitted = 0
        self.seconds_per_request = CPU_SECONDS_PER_ANSWER * limits.active / (os.cpu_count() or 1)

    def expected_wait_s(self) -> float:
        """How long a newcomer would wait for a turn now."""
        ahead = self.admitted - self.limits.active + 1
        return max(0, ahead) * self.seconds_per_request / self.limits.active

    def admit(self) -> bool:
        """Let a newcomer in (counting it) if the line is short enough."""
        position = self.admitted - self.limits.active + 1  # in line, once let in; <= 0 when a turn is free
        if position > 0 and (position > self.limits.waiting or self.expected_wait_s() > self.limits.target_wait_s):
            return False
        self.admitted += 1
        return True

    def leave(self, seconds_at_work: float | None) -> None:
        """A request is done (None: it left before its turn came)."""
        self.admitted -= 1
        if seconds_at_work is not None:
            self.seconds_per_request += self.SMOOTHING * (seconds_at_work - self.seconds_per_request)


def always_admitted(scope: Scope) -> bool:
    path = scope["path"].removeprefix(scope.get("root_path", "")) or "/"
    return path in ALWAYS_ADMITTED or path.startswith(ALWAYS_ADMITTED_PREFIXES)


def busy_response(scope: Scope, limits: AdmissionLimits) -> Response:
    """503 with Retry-After: the project's JSON error body, or a page for a browser."""
    from web.app import HTML_HEADERS, templates, wants_html  # web.app imports this module

    retry_after = str(limits.retry_after_s)
    detail = f"The server is busy: too many requests are answered or waiting; try again in {retry_after} seconds."
    request = Request(scope)
    if wants_html(request):
        return templates.TemplateResponse(request, "busy.html", {"message": detail, "retry_after": retry_after},
                                          status_code=503, headers={**HTML_HEADERS, "Retry-After": retry_after})
    return JSONResponse({"detail": detail, "errors": []}, status_code=503,
                        headers={"Retry-After": retry_after, "X-Content-Type-Options": "nosniff"})


class AdmissionMiddleware:
    """Admits requests into a bounded `Line` (health checks and static files always), answers 503 past it."""

    def __init__(self, app: ASGIApp, limits: AdmissionLimits) -> None:
        self.app = app
        self.limits = limits
        self.line = Line(limits)  # only touched on the event loop's thread
        self._turns: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _active_turns(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._turns is None or self._loop is not loop:  # a test may serve the same app on a new loop
            self._turns, self._loop = asyncio.Semaphore(self.limits.active), loop
        return self._turns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or always_admitted(scope):
            await self.app(scope, receive, send)
            return
        if not self.line.admit():
            await busy_response(scope, self.limits)(scope, receive, send)
            return
        seconds_at_work = None
        try:
            async with self._active_turns():  # asyncio's semaphore wakes its waiters first come, first served
                started = time.perf_counter()
                try:
                    await self.app(scope, receive, send)
                finally:
                    seconds_at_work = time.perf_counter() - started
        finally:
            self.line.leave(seconds_at_work)


def _timeout_reply(read_timeout_s: float) -> bytes:
    body = json.dumps({"detail": f"the request did not arrive whole within {read_timeout_s:g} seconds",
                       "errors": []}).encode()
    head = (f"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "x-content-type-options: nosniff\r\nconnection: close\r\n\r\n")
    return head.encode() + body


class ReadDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request to arrive whole (408 past it).

    The deadline runs while the server waits for the client: from the connection's opening, or from the
    first byte after a response (the keep-alive timeout covers the idle time before it), until the request's
    headers and body are in. It does not run while the app works, nor while uvicorn itself stops reading.
    """

    read_timeout_s: float = 10.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_deadline()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        waiting_for_client = self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and self.timeout_keep_alive_task is None
        if waiting_for_client and not self.transport.is_closing():
            self._arm_read_deadline()
        else:
            self._cancel_read_deadline()

    def on_response_complete(self) -> None:
        self._cancel_read_deadline()  # the next request's deadline starts with its first byte
        super().on_response_complete()

    def _arm_read_deadline(self) -> None:
        if self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self.read_timeout_s, self._read_deadline_passed)

    def _cancel_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_deadline_passed(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # uvicorn stopped reading (the app has not taken the body yet): not stalled
            self._arm_read_deadline()
            return
        answered = self.conn.their_state is h11.SEND_BODY and self.cycle is not None and self.cycle.response_started
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app, if it waits for the body, hears the client has gone
            self.cycle.message_event.set()
        if not answered:
            self.logger.info("closing a connection whose request did not arrive within %g s", self.read_timeout_s)
            self.transport.write(_timeout_reply(self.read_timeout_s))
        self.transport.close()


def read_deadline_protocol(read_timeout_s: float) -> type[ReadDeadlineProtocol]:
    """`ReadDeadlineProtocol` with this deadline, for uvicorn's `http` option."""
    if read_timeout_s <= 0:
        raise ValueError(f"read_timeout_s must be > 0, got {read_timeout_s}")
    return type("ReadDeadlineProtocol", (ReadDeadlineProtocol,), {"read_timeout_s": read_timeout_s})


def server_options(settings: Settings) -> dict[str, object]:
    """uvicorn options for serving under load: the keep-alive timeout and the read deadline."""
    return {"timeout_keep_alive": settings.keep_alive_s, "http": read_deadline_protocol(settings.read_timeout_s)}
