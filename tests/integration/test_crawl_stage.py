"""The crawl stage end to end: real yt-dlp against the loopback server, real files, real catalogs.

One crawl "world" per catalog backend (SQLite, PostgreSQL) runs discovery and download twice and a re-check; the
tests below each assert one property of what happened, at the server and in the catalog.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
import yt_dlp
from click.testing import CliRunner
from sqlalchemy import func, select, update

from talkvid_ops.catalog import db
from talkvid_ops.catalog.db import as_utc
from talkvid_ops.catalog.models import Run, Source, Video, utcnow
from talkvid_ops.cli import cli
from talkvid_ops.crawl.common import media_folder
from talkvid_ops.crawl.discover import discover
from talkvid_ops.crawl.download import download
from talkvid_ops.crawl.recheck import recheck
from talkvid_ops.crawl.sources import SourceSettings, add_source
from tests.loopback import LoopbackServer, loopback_context, prepare_web_media

RETRY_AFTER = 7200
PAUSE_BASE = 3600


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def url_list(folder: Path, name: str, urls: list[str]) -> str:
    path = folder / name
    path.write_text("\n".join(urls) + "\n")
    return str(path)


def videos_by_url(ctx) -> dict[str, Video]:
    with ctx.sessions() as session:
        return {v.url: v for v in session.scalars(select(Video))}


def source_of(ctx, source_id: str) -> Source:
    with ctx.sessions() as session:
        return session.get(Source, source_id)


@pytest.fixture(scope="session")
def web_media(pyfeat_media, tmp_path_factory) -> Path:
    return prepare_web_media(pyfeat_media, tmp_path_factory.mktemp("web-media"))


@dataclass
class World:
    ctx: Any
    server: LoopbackServer
    media: Path
    sources: dict[str, str]
    first: dict[str, dict]
    second: dict[str, dict]
    first_hits: list
    second_hits: list
    recheck: dict
    started: dt.datetime


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request, tmp_path_factory, web_media):
    """Six sources covering every route; discover + download, then again, then a re-check after a file vanished."""
    root = tmp_path_factory.mktemp(f"crawl-{request.param}")
    media = Path(shutil.copytree(web_media, root / "web"))  # this world may delete files from its own copy
    url = f"sqlite:///{root / 'catalog.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("pg_server").create_database()
    db.upgrade(url)
    ctx = loopback_context(root / "data", url, pause_base_s=PAUSE_BASE)
    with LoopbackServer(media, retry_after=RETRY_AFTER) as server:
        talk_page = server.playlist_page("talk.html", ["/media/talk.mp4"], title="A talk", tracks={"/media/talk.mp4": "/media/talk.en.vtt"})
        ld_page = server.jsonld_page(
            "interview.html",
            "/media/interview.mp4",
            {"name": "An interview about lighting", "description": "Two people talk about light.", "uploadDate": "2024-05-01T10:00:00Z"},
        )
        long_page = server.jsonld_page("workshop.html", "/media/lecture.mp4", {"name": "Workshop", "duration": "PT20M"})
        playlist = server.playlist_page("playlist.html", ["/media/talk.mp4", "/media/interview.mp4", "/flaky/lecture.mp4"])
        lists = root / "lists"
        lists.mkdir()
        anything = SourceSettings(min_height=0)
        sources = {
            "playlist": (playlist, anything),
            "mixed": (url_list(lists, "mixed.txt", [talk_page, ld_page, server.url("/missing.mp4"), server.url("/broken/talk.mp4")]), anything),
            "throttled": (url_list(lists, "throttled.txt", [server.url("/throttled/a.mp4"), server.url("/throttled/b.mp4")]), anything),
            "botcheck": (url_list(lists, "botcheck.txt", [server.url("/botcheck/watch?v=1"), server.url("/botcheck/watch?v=2")]), anything),
            "hd_only": (url_list(lists, "hd.txt", [server.url("/media/talk.mp4?copy=hd")]), SourceSettings(min_height=720)),
            "short_only": (long_page, SourceSettings(min_height=0, max_duration_s=60)),
        }
        with ctx.sessions() as session:
            ids = {name: add_source(session, locator, settings=settings)[0] for name, (locator, settings) in sources.items()}
            session.commit()
        started = utcnow()
        first = {"discover": discover(ctx), "download": download(ctx)}
        first_hits = list(server.hits)
        server.reset_hits()
        second = {"discover": discover(ctx), "download": download(ctx)}
        second_hits = list(server.hits)
        server.reset_hits()
        (media / "interview.mp4").unlink()  # the site removed it
        rechecked = recheck(ctx)
        yield World(ctx, server, media, ids, first, second, first_hits, second_hits, rechecked, started)
    db.get_engine(url).dispose()


def test_everything_downloadable_is_downloaded_and_probed(world, web_media):
    videos = videos_by_url(world.ctx)
    server = world.server
    expected = {
        server.url("/media/talk.mp4"): ("talk.mp4", 360, 30.0),
        server.url("/media/interview.mp4"): ("interview.mp4", 540, 24.0),
        server.url("/flaky/lecture.mp4"): ("lecture.mp4", 360, 23.976),
        server.url("/pages/talk.html"): ("talk.mp4", 360, 30.0),
        server.url("/pages/interview.html"): ("interview.mp4", 540, 24.0),
    }
    probed = {url for url, v in videos.items() if v.status == "probed"}
    assert probed == set(expected)
    assert world.first["download"]["probed"] == len(expected)
    for url, (original, height, fps) in expected.items():
        video = videos[url]
        path = Path(video.storage_path)
        assert path == media_folder(world.ctx.settings.media_dir, video.id) / f"{video.id}.mp4"  # named from the id
        assert video.sha256 == sha(path) == sha(web_media / original)
        assert (video.height, video.fps, video.has_audio, video.video_codec) == (height, pytest.approx(fps, abs=0.001), True, "h264")
        assert video.duration > 2 and video.size_bytes == path.stat().st_size
        assert (video.availability, video.attempts, video.error_class) in {("available", 1, None), ("gone", 1, None)}
        info = json.loads(path.with_name(f"{video.id}.info.json").read_text())
        assert info["webpage_url"].startswith("http://127.0.0.1")
    assert not any(p.name.endswith((".part", ".ytdl")) for p in world.ctx.settings.media_dir.rglob("*") if ".partial" not in p.parts)


def test_page_metadata_and_subtitles_are_kept(world):
    videos = videos_by_url(world.ctx)
    talk = videos[world.server.url("/pages/talk.html")]
    assert Path(talk.subtitles_path).name == f"{talk.id}.en.vtt"
    assert "welcome to the talk" in Path(talk.subtitles_path).read_text()
    interview = videos[world.server.url("/pages/interview.html")]
    assert (interview.title, interview.upload_date) == ("An interview about lighting", "20240501")
    assert interview.description == "Two people talk about light."
    assert Path(interview.storage_path).with_suffix(".description").read_text().strip() == "Two people talk about light."


def test_404_is_permanent_and_never_retried(world):
    video = videos_by_url(world.ctx)[world.server.url("/missing.mp4")]
    assert (video.status, video.error_class, video.next_attempt_at, video.availability) == ("failed", "permanent", None, "gone")
    assert "HTTP Error 404" in video.error_message
    assert len([h for h in world.first_hits if h.path == "/missing.mp4"]) == 1
    assert not [h for h in world.second_hits if h.path == "/missing.mp4"]


def test_dropped_connection_is_retried_and_resumed(world, web_media):
    hits = [h for h in world.first_hits if h.path == "/flaky/lecture.mp4"]
    dropped = [h for h in hits if h.dropped]
    assert len(dropped) == 1 and 0 < dropped[0].bytes_sent < (web_media / "lecture.mp4").stat().st_size
    resumed = hits[hits.index(dropped[0]) + 1]
    assert resumed.status == 206 and resumed.headers.get("Range", "").startswith("bytes=")
    video = videos_by_url(world.ctx)[world.server.url("/flaky/lecture.mp4")]
    assert video.status == "probed" and video.sha256 == sha(web_media / "lecture.mp4")


def test_an_interrupted_download_never_appears_complete(world, web_media):
    video = videos_by_url(world.ctx)[world.server.url("/broken/talk.mp4")]
    assert (video.status, video.error_class, video.storage_path, video.sha256) == ("failed", "transient", None, None)
    assert "Giving up after 2 retries" in video.error_message
    assert as_utc(video.next_attempt_at) > world.started + dt.timedelta(seconds=800)  # a later run retries it
    assert not media_folder(world.ctx.settings.media_dir, video.id).exists()
    part = world.ctx.settings.media_dir / ".partial" / video.id / f"{video.id}.mp4.part"
    assert 0 < part.stat().st_size < (web_media / "talk.mp4").stat().st_size  # kept hidden, for the resume
    broken = [h for h in world.first_hits if h.path == "/broken/talk.mp4"]
    assert len(broken) == 4 and all(h.dropped for h in broken[1:])  # the extractor's look, the transfer, two retries
    assert not [h for h in world.second_hits if h.path.startswith("/broken/")]  # not due yet


@pytest.mark.parametrize("name, route, pause_s", [("throttled", "/throttled/", RETRY_AFTER), ("botcheck", "/botcheck/", PAUSE_BASE)])
def test_throttling_pauses_the_source_instead_of_hammering(world, name, route, pause_s):
    source = source_of(world.ctx, world.sources[name])
    assert (source.status, source.backoff_level) == ("paused", 1)
    assert source.last_error.startswith("throttled: ")
    paused_for = (as_utc(source.paused_until) - world.started).total_seconds()
    assert pause_s - 5 < paused_for < pause_s + 120
    # one request in total: the second item of the source was never tried, nor was anything on the second run
    assert len([h for h in world.first_hits if h.path.startswith(route)]) == 1
    assert not [h for h in world.second_hits if h.path.startswith(route)]
    with world.ctx.sessions() as session:
        statuses = sorted(v.status for v in session.scalars(select(Video).where(Video.source_id == source.id)))
        assert statuses == ["discovered", "failed"]
        failed = session.scalar(select(Video).where(Video.source_id == source.id, Video.status == "failed"))
        assert failed.error_class == "throttled" and as_utc(failed.next_attempt_at) == as_utc(source.paused_until)
    assert world.second["discover"]["sources_paused"] == 2 and world.second["download"]["sources_paused"] == 2


def test_second_crawl_downloads_nothing_and_adds_no_rows(world):
    assert world.first["discover"]["new"] == 12
    assert world.second["discover"].get("new", 0) == 0 and world.second["discover"]["known"] == 9
    assert not any(k.startswith(("probed", "failed", "rejected")) for k in world.second["download"])
    # the second run read the listings again, and fetched no media
    assert {h.path for h in world.second_hits} == {"/pages/playlist.html", "/pages/workshop.html"}
    with world.ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Video)) == 13
        assert session.scalar(select(func.count()).select_from(Source)) == 6


def test_policy_rejections_are_recorded_with_their_reason(world):
    videos = videos_by_url(world.ctx)
    hd = videos[world.server.url("/media/talk.mp4?copy=hd")]  # the generic extractor knows no height: probed, then rejected
    assert (hd.status, hd.error_class, hd.height) == ("rejected", "policy", 360)
    assert hd.error_message == "probed height 360 below the source's min_height 720"
    assert hd.storage_path is None and not media_folder(world.ctx.settings.media_dir, hd.id).exists()
    long = videos[world.server.url("/pages/workshop.html")]  # JSON-LD says 20 minutes: rejected at discovery
    assert (long.status, long.error_class) == ("rejected", "policy")
    assert long.error_message == "duration 1200 s above the source's max_duration_s 60"
    assert not [h for h in world.first_hits if h.path == "/media/lecture.mp4"]


def test_every_failure_is_on_its_video_row_and_in_the_run(world):
    with world.ctx.sessions() as session:
        failed = session.scalars(select(Video).where(Video.status == "failed")).all()
        run = session.get(Run, world.first["download"]["run_id"])
    assert {(v.error_class, bool(v.error_message)) for v in failed} == {("permanent", True), ("transient", True), ("throttled", True)}
    assert run.status == "partial" and run.counts["errors"] == len(failed) == 4
    assert {e["item"] for e in run.errors} == {v.id for v in failed}
    with world.ctx.sessions() as session:
        assert all(v.run_id == run.id for v in session.scalars(select(Video).where(Video.status.in_(["probed", "failed"]))))


def test_recheck_records_which_videos_are_gone(world):
    videos = videos_by_url(world.ctx)
    gone = [videos[world.server.url(p)] for p in ("/media/interview.mp4", "/pages/interview.html")]
    for video in gone:
        assert (video.availability, as_utc(video.availability_checked_at) > world.started) == ("gone", True)
        assert "404" in video.availability_reason
        assert video.status == "probed" and Path(video.storage_path).exists()  # we keep what we have
    available = [v for v in videos.values() if v.status == "probed" and v not in gone]
    assert len(available) == 3 and all(v.availability == "available" and v.availability_reason is None for v in available)
    assert (world.recheck["gone"], world.recheck["available"]) == (2, 3)
    (lecture,) = [h for h in world.server.hits if h.path == "/flaky/lecture.mp4"]
    assert lecture.bytes_sent < 1_000_000  # a re-check reads no media: the 1.6 MB file was only opened


# --- single-backend scenarios --------------------------------------------------------------------------------------


@pytest.fixture
def server(web_media):
    with LoopbackServer(web_media) as srv:
        yield srv


def _source(ctx, locator: str, **settings) -> str:
    with ctx.sessions() as session:
        source_id, _ = add_source(session, locator, settings=SourceSettings(min_height=0, **settings))
        session.commit()
    return source_id


def test_discovery_respects_max_new_per_run(server, sqlite_url, tmp_path):
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    page = server.playlist_page("three.html", ["/media/talk.mp4", "/media/interview.mp4", "/media/lecture.mp4"])
    _source(ctx, page, max_new_per_run=2)
    runs = [discover(ctx) for _ in range(3)]
    assert [r.get("new", 0) for r in runs] == [2, 1, 0]
    assert runs[0]["sources_capped"] == 1 and "sources_capped" not in runs[1]
    assert len(videos_by_url(ctx)) == 3


def test_transient_failures_are_retried_by_later_runs_then_given_up(server, sqlite_url, tmp_path):
    ctx = loopback_context(tmp_path / "data", sqlite_url, max_attempts=2, transient_retry_after_s=60)
    _source(ctx, url_list(tmp_path, "urls.txt", [server.url("/broken/talk.mp4")]))
    discover(ctx)
    download(ctx)
    (video,) = videos_by_url(ctx).values()
    part_dir = ctx.settings.media_dir / ".partial" / video.id
    assert (video.attempts, video.status) == (1, "failed") and part_dir.exists()
    assert download(ctx).get("failed_transient") is None  # not due for a minute
    with ctx.sessions() as session:
        session.execute(update(Video).values(next_attempt_at=utcnow() - dt.timedelta(seconds=1)))
        session.commit()
    before = len(server.hits_for("/broken/"))
    assert download(ctx)["failed_transient"] == 1
    ranges = [h.headers.get("Range") for h in server.hits_for("/broken/")[before:]]
    assert any(r and r != "bytes=0-" for r in ranges)  # the retry resumed the kept partial file
    (video,) = videos_by_url(ctx).values()
    assert (video.attempts, video.next_attempt_at) == (2, None)  # max_attempts reached: recorded, not retried
    assert not part_dir.exists()


def test_an_unexpected_error_fails_only_its_video_and_the_batch_goes_on(server, sqlite_url, tmp_path, monkeypatch):
    ctx = loopback_context(tmp_path / "data", sqlite_url, transient_retry_after_s=60)
    _source(ctx, url_list(tmp_path, "urls.txt", [server.url("/media/talk.mp4"), server.url("/media/interview.mp4")]))
    discover(ctx)
    hashed = []

    def disk_fails_once(path):
        hashed.append(path)
        if len(hashed) == 1:
            raise OSError(5, "Input/output error", str(path))
        return sha(path)

    monkeypatch.setattr("talkvid_ops.crawl.download.sha256_file", disk_fails_once)
    result = download(ctx)
    assert (result["probed"], result["failed_transient"]) == (1, 1)
    videos = videos_by_url(ctx)
    failed = [v for v in videos.values() if v.status == "failed"]
    assert len(failed) == 1 and {v.status for v in videos.values()} == {"probed", "failed"}
    (video,) = failed
    assert (video.error_class, video.attempts, video.storage_path) == ("transient", 1, None)
    assert "OSError" in video.error_message and video.next_attempt_at is not None
    with ctx.sessions() as session:
        (error,) = session.get(Run, result["run_id"]).errors
    assert (error["item"], error["error_class"]) == (video.id, "transient")


def test_rate_limit_is_kept_between_requests_at_the_server(server, sqlite_url, tmp_path):
    page = server.playlist_page("pair.html", ["/media/talk.mp4", "/media/interview.mp4"])
    gaps = {}
    for interval in (0.0, 0.3):
        url = f"sqlite:///{tmp_path / f'c{interval}.sqlite'}"
        db.upgrade(url)
        ctx = loopback_context(tmp_path / f"data{interval}", url, min_request_interval_s=interval)
        _source(ctx, page)
        server.reset_hits()
        discover(ctx)
        download(ctx)
        times = [h.at for h in server.hits]
        assert len(times) >= 5  # the page, then a probe and a transfer per video
        gaps[interval] = min(b - a for a, b in zip(times, times[1:]))
    assert gaps[0.0] < 0.3  # unspaced, yt-dlp sends requests back to back
    assert gaps[0.3] >= 0.29


def test_cookies_are_sent_but_never_stored_or_logged(server, sqlite_url, tmp_path, monkeypatch, caplog):
    secret = "s3cr3t-cookie-value-4711"
    jar = tmp_path / "cookies.txt"
    jar.write_text(f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tSID\t{secret}\n")
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    page = server.playlist_page("solo.html", ["/media/talk.mp4"], title="Solo")
    monkeypatch.setenv("AIRFLOW_CONN_WEB_COOKIES", json.dumps({"conn_type": "generic", "extra": {"cookies": jar.read_text()}}))
    _source(ctx, page, cookies_connection="web_cookies")
    _source(ctx, url_list(tmp_path, "urls.txt", [server.url("/media/interview.mp4")]), cookies_file=str(jar))
    caplog.set_level("DEBUG")
    discover(ctx)
    result = download(ctx)
    assert result["probed"] == 2
    media_hits = [h for h in server.hits if h.path.startswith("/media/")]
    assert media_hits and all(secret in h.headers.get("Cookie", "") for h in media_hits)
    stored = [p.read_text(errors="replace") for p in ctx.settings.data_dir.rglob("*") if p.is_file() and p.suffix in (".json", ".description")]
    assert stored and not any(secret in text for text in stored)
    with ctx.sessions() as session:
        dump = json.dumps(
            [
                [{column.key: getattr(row, column.key) for column in row.__table__.columns} for row in session.scalars(select(model))]
                for model in (Source, Video, Run)
            ],
            default=str,
        )
    assert "web_cookies" in dump and str(jar) in dump and secret not in dump
    assert secret not in caplog.text


def test_cli_source_lifecycle_and_crawl(server, talkvid_env, tmp_path, monkeypatch):
    runner = CliRunner()

    def talkvid(*args: str) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    config = tmp_path / "talkvid.yaml"
    config.write_text(yaml.safe_dump({"crawl": {"min_request_interval_s": 0, "retries": 1, "retry_backoff_base_s": 0.01}}))
    monkeypatch.setenv("TALKVID_CONFIG", str(config))
    talkvid("init")
    page = server.playlist_page("cli.html", ["/media/talk.mp4", "/media/interview.mp4"])
    added = talkvid("source", "add", page, "--name", "cli-page", "--min-height", "0", "--language", "en", "--max-new-per-run", "5")
    assert "added page source" in added
    listed = json.loads(talkvid("source", "list", "--json"))
    assert [(s["name"], s["settings"]["min_height"], s["settings"]["languages"], s["settings"]["max_new_per_run"]) for s in listed] == [
        ("cli-page", 0, ["en"], 5)
    ]
    talkvid("source", "disable", "cli-page")
    skipped = json.loads(talkvid("crawl"))
    assert skipped["discover"]["sources_disabled"] == 1 and skipped["download"].get("probed") is None
    talkvid("source", "enable", "cli-page")
    done = json.loads(talkvid("crawl", "--source", "cli-page"))
    assert (done["discover"]["new"], done["download"]["probed"]) == (2, 2)
    assert "probed=2" in talkvid("source", "list")
    rechecked = json.loads(talkvid("crawl", "--recheck"))
    assert rechecked["recheck"]["available"] == 2
    bad = runner.invoke(cli, ["source", "add", page, "--language", "english!"])
    assert bad.exit_code != 0 and "languages" in str(bad.exception)
    talkvid("source", "remove", "cli-page", "--yes")
    assert json.loads(talkvid("source", "list", "--json")) == []
    assert json.loads(talkvid("status", "--json"))["videos"] == {}


def test_a_killed_download_leaves_nothing_that_looks_complete_and_resumes(server, talkvid_env, tmp_path, web_media):
    """The crawler process dies mid-transfer: no complete-looking file, no row marked done; the next run resumes."""
    env = {**os.environ, "TALKVID_CONFIG": str(tmp_path / "talkvid.yaml")}
    Path(env["TALKVID_CONFIG"]).write_text(yaml.safe_dump({"crawl": {"min_request_interval_s": 0, "retries": 1}}))
    ctx = loopback_context(talkvid_env, f"sqlite:///{talkvid_env / 'catalog.sqlite'}")
    db.upgrade(ctx.settings.database_url)
    _source(ctx, url_list(tmp_path, "urls.txt", [server.url("/stall/lecture.mp4")]))
    discover(ctx)
    (video,) = videos_by_url(ctx).values()
    proc = subprocess.Popen(
        [sys.executable, "-m", "talkvid_ops.cli", "crawl", "--download"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while not any(h.dropped for h in server.hits_for("/stall/")):
            assert proc.poll() is None and time.monotonic() < deadline, "the download never reached the stall"
            time.sleep(0.05)
        time.sleep(0.5)  # let the half that was sent reach the .part file
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    server.release_stalls()
    (after_kill,) = videos_by_url(ctx).values()
    assert (after_kill.status, after_kill.storage_path, after_kill.sha256) == ("discovered", None, None)
    assert not media_folder(ctx.settings.media_dir, video.id).exists()
    part = ctx.settings.media_dir / ".partial" / video.id / f"{video.id}.mp4.part"
    half = part.stat().st_size
    assert 0 < half < (web_media / "lecture.mp4").stat().st_size
    result = download(ctx)
    assert result["probed"] == 1
    resumed = server.hits_for("/stall/")[-1]
    assert resumed.status == 206 and resumed.headers["Range"] == f"bytes={half}-"
    (done,) = videos_by_url(ctx).values()
    assert done.sha256 == sha(web_media / "lecture.mp4") == sha(done.storage_path)


def test_a_throttled_listing_pauses_discovery_and_a_dead_one_is_recorded(server, sqlite_url, tmp_path):
    ctx = loopback_context(tmp_path / "data", sqlite_url, pause_base_s=60)
    throttled = _source(ctx, server.url("/throttled/channel.html"))
    dead = _source(ctx, server.url("/pages/deleted-channel.html"))
    first = discover(ctx)
    second = discover(ctx, source_ids=[throttled, dead, "0" * 24])
    assert len(server.hits_for("/throttled/")) == 1 and len(server.hits_for("/pages/deleted-channel.html")) == 2
    paused, gone = source_of(ctx, throttled), source_of(ctx, dead)
    assert (paused.status, paused.backoff_level, gone.status) == ("paused", 1, "active")
    assert (as_utc(paused.paused_until) - utcnow()).total_seconds() > 60  # the server's Retry-After (120 s) wins
    assert gone.last_error.startswith("permanent: ") and "404" in gone.last_error
    assert (first["errors"], second["errors"], second["sources_paused"]) == (2, 2, 1)
    with ctx.sessions() as session:
        run = session.get(Run, second["run_id"])
    assert {e["item"] for e in run.errors} == {dead, "0" * 24}


def test_a_youtube_search_source_is_listed_by_youtubes_search_api(sqlite_url, tmp_path, monkeypatch):
    """Up to the network's edge (YouTube cannot be reached here): discovering a search source runs yt-dlp's YouTube
    search extractor, which asks YouTube's search API for the query; the failure is the source's, with its reason."""
    from yt_dlp.networking.exceptions import TransportError

    asked = []

    def offline(ydl, request):
        asked.append(request)
        raise TransportError("no network in tests")

    monkeypatch.setattr(yt_dlp.YoutubeDL, "urlopen", offline)
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    source_id = _source(ctx, "ytsearch:talking head interview", search_results=5)
    result = discover(ctx)
    api = [r for r in asked if urlparse(r.url).path == "/youtubei/v1/search"]
    assert api and json.loads(api[0].data)["query"] == "talking head interview"
    assert {urlparse(r.url).hostname for r in asked} == {"www.youtube.com"}
    source = source_of(ctx, source_id)
    assert source.last_error.startswith("transient: ") and "no network in tests" in source.last_error
    assert "Unsupported url scheme" not in source.last_error
    with ctx.sessions() as session:
        (error,) = session.get(Run, result["run_id"]).errors
    assert (error["item"], error["locator"], error["error_class"]) == (source_id, "talking head interview", "transient")


def test_an_unreadable_url_list_fails_its_source_and_the_others_go_on(server, sqlite_url, tmp_path, pyfeat_media):
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    good = _source(ctx, url_list(tmp_path, "good.txt", [server.url("/media/talk.mp4")]))
    binary = _source(ctx, url_list(tmp_path, "binary.txt", [server.url("/media/interview.mp4")]))
    latin1 = _source(ctx, url_list(tmp_path, "latin1.txt", [server.url("/media/lecture.mp4")]))
    gone = _source(ctx, url_list(tmp_path, "gone.txt", [server.url("/media/lecture.mp4")]))
    (tmp_path / "binary.txt").write_bytes(pyfeat_media["single_face.mp4"].read_bytes())  # replaced after it was added
    (tmp_path / "latin1.txt").write_bytes("https://example.org/caf\xe9.mp4\n".encode("latin-1"))
    (tmp_path / "gone.txt").unlink()
    result = discover(ctx)
    assert (result["sources"], result["new"], result["errors"]) == (4, 1, 3)
    assert [v.source_id for v in videos_by_url(ctx).values()] == [good]
    reasons = {
        binary: f"setup: {tmp_path / 'binary.txt'}: binary content, not a text file of URLs",
        latin1: f"setup: {tmp_path / 'latin1.txt'}: not UTF-8 text (byte 0xe9 at offset 23)",
        gone: f"setup: {tmp_path / 'gone.txt'}: cannot read the URL list: No such file or directory",
    }
    for source_id, reason in reasons.items():
        assert source_of(ctx, source_id).last_error.startswith(reason)
    with ctx.sessions() as session:
        run = session.get(Run, result["run_id"])
    assert run.status == "partial"
    assert {e["item"]: (e["error_class"], e["locator"]) for e in run.errors} == {
        s: ("setup", str(tmp_path / name)) for s, name in ((binary, "binary.txt"), (latin1, "latin1.txt"), (gone, "gone.txt"))
    }
    assert all(e["reason"].startswith(str(tmp_path)) for e in run.errors)  # the reason says which file and why
