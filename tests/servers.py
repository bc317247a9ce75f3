"""A test server: the explorer's app served by uvicorn in a thread (browser and security
tests share it)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def serving(app, host: str = "127.0.0.1") -> Iterator[str]:
    """``app`` served by uvicorn in a thread on a free port of ``host``; yields its URL (a
    host it cannot listen on skips the test)."""
    uvicorn = pytest.importorskip("uvicorn")
    sock = socket.socket()
    try:
        sock.bind((host, 0))
    except OSError:
        sock.close()
        pytest.skip(f"cannot listen on {host} here")
    port = sock.getsockname()[1]
    instance = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert instance.started, "the server did not start"
    try:
        yield f"http://{host}:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)
        sock.close()
