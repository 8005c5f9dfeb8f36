"""Download: fetch the due videos of the enabled, unpaused remote sources politely and resumably, then ingest the
files added to watched local folders.

A download claims its video row (FOR UPDATE SKIP LOCKED on PostgreSQL), works in a hidden folder of the media dir
(`.partial/<video id>/`, kept between attempts so that yt-dlp resumes), verifies the file by probing it, and only
then moves the folder to `<id[:2]>/<id>/` and marks the row `probed`. A killed or failed download therefore never
looks complete.

Failures are data on the video row (status `failed`, `error_class`, `error_message`, `attempts`,
`next_attempt_at`): permanent ones are never retried, transient ones are retried by later runs with a growing
delay up to `crawl.max_attempts`, throttling pauses the whole source (see `state`) and the run moves on to other
sources.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select

from talkvid_ops.catalog.models import Source, Video
from talkvid_ops.catalog.status import Availability, ErrorClass, VideoStatus
from talkvid_ops.catalog.upsert import claim
from talkvid_ops.context import Context
from talkvid_ops.crawl.common import CrawlRun, failure_outcome, media_folder, open_cookies, settings_of
from talkvid_ops.crawl.errors import Classified
from talkvid_ops.crawl.ingest import sweep_folder
from talkvid_ops.crawl.politeness import backoff_delay
from talkvid_ops.crawl.sources import KINDS, LOCAL_FOLDER, SourceSettings
from talkvid_ops.crawl.state import crawlable_sources, pause, reset_backoff
from talkvid_ops.crawl.ytdlp import Fetched, FetchError, download_options, fetch_video
from talkvid_ops.media.errors import MediaError
from talkvid_ops.media.hashing import sha256_file
from talkvid_ops.media.probe import MediaInfo, probe

PARTIAL_DIR = ".partial"
YTDLP_LEFTOVERS = ("*.part", "*.ytdl", "*.temp", "*.part-Frag*")


def download(ctx: Context, source_ids: list[str] | None = None, limit: int | None = None) -> dict[str, Any]:
    """Download the due videos of every enabled, unpaused remote source, one source after another in turn; then
    ingest the files added to watched local folders. `limit` bounds both together."""
    with ctx.run("crawl.download", {"source_ids": source_ids, "limit": limit}) as run:
        with CrawlRun(ctx, run) as crawl, ExitStack() as stack:
            with ctx.sessions() as session:
                sources = crawlable_sources(crawl, session, source_ids, kinds=KINDS)
                watched = [s.id for s in sources if s.kind == LOCAL_FOLDER and settings_of(s).watch]
                ready = open_cookies(crawl, stack, session, [s for s in sources if s.kind != LOCAL_FOLDER])
                queues = {
                    source_id: list(
                        session.scalars(select(Video.id).where(Video.source_id == source_id, _due(crawl.now)).order_by(Video.created_at, Video.id).limit(limit))
                    )
                    for source_id in ready
                }
            throttled: set[str] = set()
            tried = 0
            queued = sum(len(q) for q in queues.values())
            for source_id, video_id in run.progress(_round_robin(queues), min(queued, limit) if limit is not None else queued, "videos"):
                if limit is not None and tried >= limit:
                    break
                if source_id in throttled:
                    continue  # paused: the rest of its queue waits for the next run after the pause
                settings, cookiefile = ready[source_id]
                outcome = _download_one(crawl, video_id, source_id, settings, cookiefile)
                if outcome is None:
                    continue
                tried += 1
                if outcome == failure_outcome(ErrorClass.THROTTLED):
                    throttled.add(source_id)
        with ctx.sessions() as session:
            for source_id in watched:
                if limit is not None and tried >= limit:
                    break
                tried += sweep_folder(session, run, session.get(Source, source_id), crawl.media_dir, None if limit is None else limit - tried)
                session.commit()
        run.count("sources", len(sources))
        return {"run_id": run.id, **run.counts}


def _due(now: dt.datetime) -> ColumnElement[bool]:
    """Videos a download run should try now: never tried, or failed in a way that is retried and whose time came."""
    return or_(
        Video.status == VideoStatus.DISCOVERED,
        and_(
            Video.status == VideoStatus.FAILED,
            Video.error_class.in_((ErrorClass.TRANSIENT, ErrorClass.THROTTLED)),
            Video.next_attempt_at.is_not(None),
            Video.next_attempt_at <= now,
        ),
    )


def _round_robin(queues: dict[str, list[str]]) -> Iterator[tuple[str, str]]:
    """(source id, video id) taking one video of each source in turn, so no source starves the others."""
    positions = dict.fromkeys(queues, 0)
    while positions:
        for source_id in list(positions):
            index = positions[source_id]
            if index >= len(queues[source_id]):
                del positions[source_id]
                continue
            positions[source_id] = index + 1
            yield source_id, queues[source_id][index]


def _download_one(crawl: CrawlRun, video_id: str, source_id: str, settings: SourceSettings, cookiefile: str | None) -> str | None:
    """Claim, download, verify, move and record one video; returns the outcome (None: not ours to take)."""
    with crawl.ctx.sessions() as session:
        taken = claim(session, select(Video).where(Video.id == video_id, _due(crawl.now)), limit=1)
        if not taken:
            return None
        video = taken[0]
        source = session.get(Source, source_id)
        work = crawl.media_dir / PARTIAL_DIR / video.id
        work.mkdir(parents=True, exist_ok=True)
        options = download_options(crawl.config, settings, cookiefile, work, video.id)
        try:
            fetched = fetch_video(video.url, options, settings, crawl.spacers.get(settings.egress))
            outcome = _record_fetched(crawl, video, source, settings, fetched, work)
        except FetchError as exc:
            outcome = _record_failure(crawl, video, source, exc.classified, work)
        except Exception as exc:  # hashing/moving OSError, malformed info JSON...: this video's, not the batch's
            session.rollback()
            video, source = session.get(Video, video_id), session.get(Source, source_id)
            failure = Classified(ErrorClass.TRANSIENT, f"{type(exc).__name__}: {exc}")
            outcome = _record_failure(crawl, video, source, failure, work)
        video.run_id = crawl.run.id
        session.commit()
    crawl.run.count(outcome)
    return outcome


def _record_failure(crawl: CrawlRun, video: Video, source: Source, failure: Classified, work: Path) -> str:
    video.status, video.error_class, video.error_message = VideoStatus.FAILED, failure.error_class, failure.message
    if failure.error_class == ErrorClass.THROTTLED:
        pause(crawl, source, failure)
        video.next_attempt_at = source.paused_until  # the partial download stays for the resume
    else:
        video.attempts += 1
        retry = failure.error_class == ErrorClass.TRANSIENT and video.attempts < crawl.config.max_attempts
        if retry:
            delay = backoff_delay(video.attempts - 1, crawl.config.transient_retry_after_s, crawl.config.pause_max_s)
            video.next_attempt_at = crawl.now + dt.timedelta(seconds=delay)
        else:
            video.next_attempt_at = None
            _remove(work)
        if failure.error_class == ErrorClass.PERMANENT:
            video.availability, video.availability_checked_at, video.availability_reason = Availability.GONE, crawl.now, failure.message
    crawl.run.error(video.id, failure.message, error_class=failure.error_class, url=video.url)
    return failure_outcome(failure.error_class)


def _reject(video: Video, reason: str, work: Path) -> str:
    video.status, video.error_class, video.error_message, video.next_attempt_at = VideoStatus.REJECTED, ErrorClass.POLICY, reason, None
    _remove(work)
    return VideoStatus.REJECTED


def _record_fetched(crawl: CrawlRun, video: Video, source: Source, settings: SourceSettings, fetched: Fetched, work: Path) -> str:
    video.attempts += 1
    _apply_metadata(video, fetched.info)
    reset_backoff(source)
    source.last_crawled_at = crawl.now
    if fetched.rejected:
        return _reject(video, fetched.rejected, work)
    try:
        media = probe(fetched.media)
    except MediaError as exc:
        video.status, video.error_class, video.error_message, video.next_attempt_at = VideoStatus.FAILED, ErrorClass.MEDIA, str(exc), None
        _remove(work)
        crawl.run.error(video.id, str(exc), error_class=ErrorClass.MEDIA, url=video.url)
        return failure_outcome(ErrorClass.MEDIA)
    _apply_probe(video, media)
    if media.display_height < settings.min_height:
        return _reject(video, f"probed height {media.display_height} below the source's min_height {settings.min_height}", work)
    video.sha256 = sha256_file(fetched.media)
    final = _publish(work, media_folder(crawl.media_dir, video.id))
    video.storage_path = str(final / fetched.media.name)
    video.subtitles_path = str(final / fetched.subtitles[0].name) if fetched.subtitles else None
    video.status, video.error_class, video.error_message, video.next_attempt_at = VideoStatus.PROBED, None, None, None
    video.downloaded_at = crawl.now
    video.availability, video.availability_checked_at, video.availability_reason = Availability.AVAILABLE, crawl.now, None
    return VideoStatus.PROBED


def _apply_metadata(video: Video, info: dict[str, Any]) -> None:
    """What the site says about the video (the probe, not the site, decides duration and geometry)."""
    video.title = info.get("title") or video.title
    video.channel = info.get("channel") or info.get("uploader") or video.channel
    video.license = info.get("license") or video.license
    video.upload_date = info.get("upload_date") or video.upload_date
    video.language_hint = info.get("language") or video.language_hint
    video.description = info.get("description") or video.description


def _apply_probe(video: Video, media: MediaInfo) -> None:
    for key, value in media.as_row().items():
        setattr(video, key, value)


def _publish(work: Path, final: Path) -> Path:
    """Make a verified download visible: drop yt-dlp's leftovers, then move the whole folder in one rename."""
    for pattern in YTDLP_LEFTOVERS:
        for leftover in work.glob(pattern):
            leftover.unlink(missing_ok=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        _remove(final)  # files of an attempt whose catalog commit never happened
    work.replace(final)
    return final


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
