"""The app served for real: uvicorn in a thread on a free localhost port, for browsers, schemathesis and clients."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


@contextmanager
def serving(app: FastAPI, start_timeout_s: float = 180, stop_timeout_s: float = 30, **options: object) -> Iterator[str]:
    """Yields the base URL once the server has started; stops it after (waiting `stop_timeout_s` for the thread,
    so a rebuild or request in progress can end). `options` go to uvicorn.Config."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **options))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout_s
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=stop_timeout_s)
        listener.close()
