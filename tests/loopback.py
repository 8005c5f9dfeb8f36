"""A loopback HTTP server that stands in for the web in crawl (and end-to-end DAG) tests.

It serves a folder of real media files and the failure modes a long-running crawler meets, and it records every
request (arrival time, path, headers, status, bytes sent, whether the connection was dropped), so tests can assert
what the crawler did to the server (how often, how far apart), not only what it reported.

Routes (NAME is a file in the media folder, ANY is anything):

| route | behaviour |
| --- | --- |
| `/media/NAME` | the file, with `Range` support (206) and a content type from its extension |
| `/pages/NAME` | an HTML page registered with `add_page` (`playlist_page`, `jsonld_page` build the usual ones) |
| `/flaky/NAME` | the first transfer that reaches the middle of the file is cut there (Content-Length was sent); later ones succeed |
| `/broken/NAME` | every transfer stops at the middle of the file: it can never complete |
| `/stall/NAME` | the first transfer sends half the file, then waits until `release_stalls()`; later ones succeed |
| `/throttled/ANY` | 429 Too Many Requests with `Retry-After` |
| `/botcheck/ANY` | 503 whose body carries YouTube's "Sign in to confirm you're not a bot" text (the status alone says transient; only the body says throttled) |
| anything else | 404 |

Use it as a context manager: `with LoopbackServer(folder) as server: server.url("/media/a.mp4")`.
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BOT_CHECK_TEXT = "Sign in to confirm you\u2019re not a bot. This helps protect our community. Learn more"
CHUNK = 64 * 1024
# The server's send buffer for media responses: small, so that a client which opens a response and never reads
# it (yt-dlp's generic extractor sniffing the content type) blocks the writer long before the middle of a file.
SEND_BUFFER = 32 * 1024

mimetypes.add_type("text/vtt", ".vtt")
mimetypes.add_type("video/mp4", ".m4v")


@dataclass
class Hit:
    """One request as the server saw it."""

    at: float  # time.monotonic() when the request line arrived
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    bytes_sent: int = 0
    dropped: bool = False


@dataclass
class _RouteState:
    flaky_dropped: set[str] = field(default_factory=set)
    stalled: set[str] = field(default_factory=set)


class LoopbackServer:
    def __init__(self, media_dir: Path, retry_after: int = 120, host: str = "127.0.0.1"):
        self.media_dir = Path(media_dir)
        self.retry_after = retry_after
        self.host = host
        self.hits: list[Hit] = []
        self.pages: dict[str, str] = {}
        self._state = _RouteState()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------------------------
    def start(self) -> LoopbackServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="loopback-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"

    # content ---------------------------------------------------------------------------------------------------
    def add_page(self, name: str, body: str) -> str:
        """Serve `body` as text/html at /pages/NAME; returns its URL."""
        self.pages[name] = body
        return self.url(f"/pages/{name}")

    def playlist_page(self, name: str, media_paths: list[str], title: str = "Talks", tracks: dict[str, str] | None = None) -> str:
        """An HTML page with one <video> tag per media path (yt-dlp's generic extractor reads it as a playlist).
        `tracks` maps a media path to the path of its English VTT subtitles (a <track> inside its <video>)."""
        tracks = tracks or {}

        def video(path: str) -> str:
            track = f'<track kind="subtitles" srclang="en" label="English" src="{html.escape(self.url(tracks[path]))}">' if path in tracks else ""
            return f'<video controls width="320"><source src="{html.escape(self.url(path))}" type="video/mp4">{track}</video>'

        videos = "\n".join(video(p) for p in media_paths)
        return self.add_page(name, f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head><body>{videos}</body></html>")

    def jsonld_page(self, name: str, media_path: str, metadata: dict[str, Any]) -> str:
        """An HTML page whose only video is described by a schema.org VideoObject in JSON-LD."""
        ld = {"@context": "https://schema.org", "@type": "VideoObject", "contentUrl": self.url(media_path), **metadata}
        return self.add_page(
            name,
            '<!DOCTYPE html><html><head><title>{}</title><script type="application/ld+json">{}</script></head><body><p>A talk.</p></body></html>'.format(
                html.escape(str(metadata.get("name", name))), json.dumps(ld)
            ),
        )

    def release_stalls(self) -> None:
        self._release.set()

    # what happened ---------------------------------------------------------------------------------------------
    def hits_for(self, prefix: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path.startswith(prefix)]

    def reset_hits(self) -> None:
        with self._lock:
            self.hits.clear()

    def _record(self, hit: Hit) -> None:
        with self._lock:
            self.hits.append(hit)


class _Handler(BaseHTTPRequestHandler):
    owner: LoopbackServer
    protocol_version = "HTTP/1.1"
    timeout = 20  # a client that vanished without closing must not pin a thread forever

    def log_message(self, format: str, *args) -> None:
        pass  # the request log is `owner.hits`

    def handle(self) -> None:
        try:
            super().handle()
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            pass  # a client closing a kept-alive connection is normal

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    # routing ---------------------------------------------------------------------------------------------------
    def _serve(self, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        hit = Hit(at=time.monotonic(), method=self.command, path=path, headers=dict(self.headers.items()))
        self.owner._record(hit)
        route, _, rest = path.lstrip("/").partition("/")
        try:
            if route == "media":
                self._file(hit, rest, body)
            elif route == "pages" and rest in self.owner.pages:
                self._bytes(hit, 200, self.owner.pages[rest].encode(), "text/html; charset=utf-8", body)
            elif route in ("flaky", "broken", "stall"):
                self._file(hit, rest, body, mode=route)
            elif route == "throttled":
                self._bytes(hit, 429, b"Too Many Requests", "text/plain", body, {"Retry-After": str(self.owner.retry_after)})
            elif route == "botcheck":
                page = f"<html><body><div class='error'>{html.escape(BOT_CHECK_TEXT)}</div></body></html>"
                # Not 403: yt-dlp's generic extractor reads a 403 body itself (looking for Cloudflare) and leaves none.
                self._bytes(hit, 503, page.encode(), "text/html; charset=utf-8", body)
            else:
                self._bytes(hit, 404, b"Not Found", "text/plain", body)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away; hit.bytes_sent says how far it got

    def _bytes(self, hit: Hit, status: int, payload: bytes, ctype: str, body: bool, headers: dict[str, str] | None = None) -> None:
        hit.status = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(payload)
            hit.bytes_sent = len(payload)

    def _file(self, hit: Hit, name: str, body: bool, mode: str = "media") -> None:
        path = self.owner.media_dir / name
        if "/" in name or not path.is_file():
            self._bytes(hit, 404, b"Not Found", "text/plain", body)
            return
        size = path.stat().st_size
        start, end = 0, size - 1
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
            if start >= size:
                self._bytes(hit, 416, b"", "text/plain", body, {"Content-Range": f"bytes */{size}"})
                return
        hit.status = 206 if match else 200
        self.send_response(hit.status)
        self.send_header("Content-Type", mimetypes.guess_type(name)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        if match:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not body:
            return
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        cut = self._cut_at(mode, name, size)
        with path.open("rb") as fh:
            fh.seek(start)
            position = start
            while position <= end:
                if cut is not None and position >= cut:
                    self._drop(hit, mode, name)
                    return
                limit = end + 1 if cut is None or cut <= position else min(end + 1, cut)
                chunk = fh.read(min(CHUNK, limit - position))
                self.wfile.write(chunk)
                position += len(chunk)
                hit.bytes_sent += len(chunk)

    def _cut_at(self, mode: str, name: str, size: int) -> int | None:
        """Where this transfer stops early, if it does."""
        state = self.owner._state
        with self.owner._lock:
            if mode == "broken":
                return size // 2
            if mode == "flaky" and name not in state.flaky_dropped:
                return size // 2
            if mode == "stall" and name not in state.stalled:
                return size // 2
        return None

    def _drop(self, hit: Hit, mode: str, name: str) -> None:
        state = self.owner._state
        with self.owner._lock:
            if mode == "flaky":
                state.flaky_dropped.add(name)
            elif mode == "stall":
                state.stalled.add(name)
        hit.dropped = True  # before a stall, so that a test can see the transfer hang
        if mode == "stall":
            self.wfile.flush()
            self.owner._release.wait(timeout=60)
        self.close_connection = True
        # Close the socket now: the client sees a short read against the announced Content-Length.
        self.connection.shutdown(socket.SHUT_RDWR)


# --- helpers for tests that crawl the loopback server ------------------------------------------------------------

WEB_MEDIA = {
    "talk.mp4": "single_face.mp4",  # 2.4 s, 640x360 @ 30, h264 + mp3
    "interview.mp4": "no_face.mp4",  # 3.9 s, 960x540 @ 24, h264 + aac
    "lecture.mp4": "WolfgangLanger_Pexels.mp4",  # 19.7 s, 640x360 @ 23.976, 1.6 MB: big enough to cut mid-transfer
}
TALK_SUBTITLES = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello, and welcome to the talk.\n"


def prepare_web_media(pyfeat_media: dict[str, Path], folder: Path) -> Path:
    """The standard folder to serve: real face clips under neutral names, and an English VTT for talk.mp4."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for name, original in WEB_MEDIA.items():
        shutil.copyfile(pyfeat_media[original], folder / name)
    (folder / "talk.en.vtt").write_text(TALK_SUBTITLES)
    return folder


def loopback_context(data_dir: Path, database_url: str, **crawl: Any):
    """A Context for crawling the loopback server quickly: no request spacing, yt-dlp retries 2 with 20 ms back-off
    (override any CrawlConfig field with keyword arguments)."""
    from talkvid_ops.config import PipelineConfig, Settings
    from talkvid_ops.config.crawl import CrawlConfig
    from talkvid_ops.context import Context

    fast = dict(
        min_request_interval_s=0.0, retries=2, fragment_retries=2, extractor_retries=0, retry_backoff_base_s=0.02, retry_backoff_max_s=0.1, socket_timeout_s=10
    )
    fast.update(crawl)
    pipeline = PipelineConfig(crawl=CrawlConfig(**fast))
    return Context(Settings(data_dir=data_dir, database_url=database_url, pipeline=pipeline))
