"""The catalog page app served by uvicorn on 127.0.0.1 under /talkvid, as the Airflow plugin mounts it, and headless
Chromium to drive it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI

MOUNT = "/talkvid"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve `app` under /talkvid on a free loopback port; yields the page root URL (ending in /talkvid/)."""
    import uvicorn

    root = FastAPI()
    root.mount(MOUNT, app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(root, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}{MOUNT}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


CHROMIUM = Path("/usr/bin/chromium")  # Debian's: no browser is downloaded


@contextmanager
def chromium() -> Iterator:
    """Headless Debian Chromium through Playwright, allowed to play media without a click."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        try:
            yield browser
        finally:
            browser.close()
