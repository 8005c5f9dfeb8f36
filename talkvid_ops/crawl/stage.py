"""The crawl stage: discover what is new in each source, download it politely and resumably, re-check that what
we hold is still online.

The catalog is the download archive: an item becomes a `video` row once, when it is discovered, keyed by
(platform, platform id). A download claims its row (FOR UPDATE SKIP LOCKED on PostgreSQL), works in a hidden
folder of the media dir (`.partial/<video id>/`, kept between attempts so that yt-dlp resumes), verifies the file
by probing it, and only then moves the folder to `<id[:2]>/<id>/` and marks the row `probed`. A killed or failed
download therefore never looks complete.

Watched local folders have nothing to list: a download run ingests the files added to them (see `ingest`).

Failures are data on the video row (status `failed`, `error_class`, `error_message`, `attempts`,
`next_attempt_at`): permanent ones are never retried, transient ones are retried by later runs with a growing
delay up to `crawl.max_attempts`, throttling pauses the whole source (`source.status = paused`, `paused_until`,
`backoff_level`, `last_error`) and the run moves on to other sources.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Source, Video, utcnow
from talkvid_ops.catalog.runs import RunRecorder
from talkvid_ops.catalog.upsert import claim, upsert
from talkvid_ops.context import Context
from talkvid_ops.crawl import errors
from talkvid_ops.crawl.errors import Classified
from talkvid_ops.crawl.politeness import Spacers, backoff_delay, pause_until
from talkvid_ops.crawl.sources import (
    KINDS,
    LOCAL_FOLDER,
    PLATFORM_LOCAL,
    REMOTE_KINDS,
    URL_LIST,
    Item,
    SourceSettings,
    cookies_path,
    discovery_url,
    item_for_url,
    item_from_entry,
    policy_reason,
    read_url_list,
)
from talkvid_ops.crawl.ytdlp import (
    Fetched,
    FetchError,
    base_options,
    check_available,
    download_options,
    fetch_video,
    list_entries,
    scrub_info_json,
)
from talkvid_ops.errors import TalkvidError
from talkvid_ops.ids import make_id
from talkvid_ops.media.errors import MediaError
from talkvid_ops.media.hashing import sha256_file
from talkvid_ops.media.probe import probe

log = logging.getLogger("talkvid.crawl")

DISCOVERED, PROBED, FAILED, REJECTED = "discovered", "probed", "failed", "rejected"
ACTIVE, PAUSED = "active", "paused"
LOOKUP_CHUNK = 200
PARTIAL_DIR = ".partial"
YTDLP_LEFTOVERS = ("*.part", "*.ytdl", "*.temp", "*.part-Frag*")


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def video_id_for(platform: str, platform_id: str) -> str:
    return make_id("video", platform, platform_id)


def media_folder(media_dir: Path, video_id: str) -> Path:
    """Where a video's files live once complete: sharded by id so no folder grows huge."""
    return media_dir / video_id[:2] / video_id


def is_paused(source: Source, now: dt.datetime) -> bool:
    return source.status == PAUSED and source.paused_until is not None and as_utc(source.paused_until) > now


def _due(now: dt.datetime):
    """Videos a download run should try now: never tried, or failed in a way that is retried and whose time came."""
    return or_(
        Video.status == DISCOVERED,
        and_(
            Video.status == FAILED,
            Video.error_class.in_((errors.TRANSIENT, errors.THROTTLED)),
            Video.next_attempt_at.is_not(None),
            Video.next_attempt_at <= now,
        ),
    )


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class Crawl:
    """What one crawl run shares: settings, the run recorder, the spacer of each egress."""

    def __init__(self, ctx: Context, run: RunRecorder):
        self.ctx = ctx
        self.run = run
        self.config = ctx.config.crawl
        self.media_dir = ctx.settings.media_dir
        self.spacers = Spacers(ctx.settings.data_dir / "state" / "egress", self.config.interval_for)

    @property
    def now(self) -> dt.datetime:
        """The time of each decision, not of the run's start: a pause set hours into a run counts from then."""
        return utcnow()

    # --- sources --------------------------------------------------------------------------------------------------
    def sources(self, session: Session, source_ids: list[str] | None, kinds: Iterable[str] = REMOTE_KINDS) -> list[Source]:
        """Enabled, unpaused sources of `kinds` (all, or those of `source_ids`), counting the ones left out."""
        query = select(Source).where(Source.kind.in_(kinds)).order_by(Source.created_at, Source.id)
        if source_ids is not None:
            known = set(session.scalars(select(Source.id).where(Source.id.in_(source_ids))))
            for missing in sorted(set(source_ids) - known):
                self.run.error(missing, "no such source (removed since the batch was planned?)", kind="source")
            query = query.where(Source.id.in_(source_ids))
        chosen = []
        for source in session.scalars(query):
            if not source.enabled:
                self.run.count("sources_disabled")
            elif is_paused(source, self.now):
                self.run.count("sources_paused")
            else:
                chosen.append(source)
        return chosen

    def settings_of(self, source: Source) -> SourceSettings:
        return SourceSettings.load(source.settings, where=f"source {source.id} settings")

    def pause(self, source: Source, failure: Classified) -> None:
        """Pause a throttled source with an exponential back-off (or the server's Retry-After, when later)."""
        source.paused_until = pause_until(self.now, source.backoff_level, self.config.pause_base_s, self.config.pause_max_s, failure.retry_after_s)
        source.status = PAUSED
        source.backoff_level += 1
        source.last_error = f"{failure.error_class}: {failure.message}"
        self.run.count("sources_throttled")
        log.warning("source %s paused until %s: %s", source.id, source.paused_until.isoformat(), failure.message)

    @staticmethod
    def succeeded(source: Source) -> None:
        """A request of the source worked: it is active again and its back-off starts over."""
        source.status, source.paused_until, source.backoff_level = ACTIVE, None, 0

    def source_failed(self, source: Source, failure: Classified) -> None:
        """A listing failed: throttling pauses the source; anything else is recorded and retried next run."""
        if failure.error_class == errors.THROTTLED:
            self.pause(source, failure)
        else:
            source.last_error = f"{failure.error_class}: {failure.message}"
        self.run.error(source.id, failure.message, error_class=failure.error_class, kind="source", locator=source.locator)

    # --- discovery ------------------------------------------------------------------------------------------------
    def listed_items(self, source: Source, settings: SourceSettings, cookiefile: str | None) -> Iterator[Item]:
        if source.kind == URL_LIST:
            for url in read_url_list(source.locator):
                yield item_for_url(url)
            return
        options = base_options(self.config, cookiefile)
        for entry, parent in list_entries(discovery_url(source.kind, source.locator, settings), options, self.spacers.get(settings.egress)):
            item = item_from_entry(entry, parent)
            if item is None:
                self.run.count("entries_not_videos")
            else:
                yield item

    def discover_source(self, session: Session, source: Source) -> None:
        settings = self.settings_of(source)
        accepted = rejected = known = 0
        seen: set[tuple[str, str]] = set()
        with cookies_path(settings) as cookiefile:
            for chunk in _chunks(self.listed_items(source, settings, cookiefile), LOOKUP_CHUNK):
                fresh = [i for i in chunk if (i.platform, i.platform_id) not in seen]
                seen.update((i.platform, i.platform_id) for i in fresh)
                existing = set(session.scalars(select(Video.id).where(Video.id.in_([video_id_for(i.platform, i.platform_id) for i in fresh]))))
                rows = []
                for item in fresh:
                    vid = video_id_for(item.platform, item.platform_id)
                    if vid in existing:
                        known += 1
                        continue
                    if accepted >= settings.max_new_per_run:
                        break
                    reason = policy_reason({"duration": item.duration, "language": item.language}, settings)
                    rows.append(self._discovered_row(source, item, vid, reason))
                    if reason:
                        rejected += 1
                    else:
                        accepted += 1
                # do-nothing on conflict: another worker may have discovered the same item a moment ago
                upsert(session, Video, rows, ["platform", "platform_id"], update=[])
                if accepted >= settings.max_new_per_run:
                    self.run.count("sources_capped")
                    break
        self.run.count("new", accepted)
        self.run.count("rejected", rejected)
        self.run.count("known", known)
        self.succeeded(source)
        source.last_discovered_at = self.now
        source.last_error = None

    def _discovered_row(self, source: Source, item: Item, vid: str, reason: str | None) -> dict[str, Any]:
        return dict(
            id=vid,
            source_id=source.id,
            platform=item.platform,
            platform_id=item.platform_id,
            url=item.url,
            title=item.title,
            channel=item.channel,
            duration=item.duration,
            upload_date=item.upload_date,
            language_hint=item.language,
            status=REJECTED if reason else DISCOVERED,
            error_class=errors.POLICY if reason else None,
            error_message=reason,
            run_id=self.run.id,
        )

    # --- download -------------------------------------------------------------------------------------------------
    def download_one(self, video_id: str, source_id: str, settings: SourceSettings, cookiefile: str | None) -> str | None:
        """Claim, download, verify, move and record one video; returns the outcome (None: not ours to take)."""
        with self.ctx.sessions() as session:
            taken = claim(session, select(Video).where(Video.id == video_id, _due(self.now)), limit=1)
            if not taken:
                return None
            video = taken[0]
            source = session.get(Source, source_id)
            work = self.media_dir / PARTIAL_DIR / video.id
            work.mkdir(parents=True, exist_ok=True)
            options = download_options(self.config, settings, cookiefile, work, video.id)
            try:
                fetched = fetch_video(video.url, options, settings, self.spacers.get(settings.egress))
                outcome = self._record_fetched(video, source, settings, fetched, work)
            except FetchError as exc:
                outcome = self._record_failure(video, source, exc.classified, work)
            except Exception as exc:  # hashing/moving OSError, malformed info JSON...: this video's, not the batch's
                session.rollback()
                video, source = session.get(Video, video_id), session.get(Source, source_id)
                failure = Classified(errors.TRANSIENT, f"{type(exc).__name__}: {exc}")
                outcome = self._record_failure(video, source, failure, work)
            video.run_id = self.run.id
            session.commit()
        self.run.count(outcome)
        return outcome

    def _record_failure(self, video: Video, source: Source, failure: Classified, work: Path) -> str:
        video.status, video.error_class, video.error_message = FAILED, failure.error_class, failure.message
        if failure.error_class == errors.THROTTLED:
            self.pause(source, failure)
            video.next_attempt_at = source.paused_until  # the partial download stays for the resume
        else:
            video.attempts += 1
            retry = failure.error_class == errors.TRANSIENT and video.attempts < self.config.max_attempts
            if retry:
                delay = backoff_delay(video.attempts - 1, self.config.transient_retry_after_s, self.config.pause_max_s)
                video.next_attempt_at = self.now + dt.timedelta(seconds=delay)
            else:
                video.next_attempt_at = None
                _remove(work)
            if failure.error_class == errors.PERMANENT:
                video.availability, video.availability_checked_at, video.availability_reason = "gone", self.now, failure.message
        self.run.error(video.id, failure.message, error_class=failure.error_class, url=video.url)
        return f"failed_{failure.error_class}"

    def _reject(self, video: Video, reason: str, work: Path) -> str:
        video.status, video.error_class, video.error_message, video.next_attempt_at = REJECTED, errors.POLICY, reason, None
        _remove(work)
        return REJECTED

    def _record_fetched(self, video: Video, source: Source, settings: SourceSettings, fetched: Fetched, work: Path) -> str:
        video.attempts += 1
        _apply_metadata(video, fetched.info)
        self.succeeded(source)
        source.last_crawled_at = self.now
        if fetched.rejected:
            return self._reject(video, fetched.rejected, work)
        try:
            media = probe(fetched.media)
        except MediaError as exc:
            video.status, video.error_class, video.error_message, video.next_attempt_at = FAILED, errors.MEDIA, str(exc), None
            _remove(work)
            self.run.error(video.id, str(exc), error_class=errors.MEDIA, url=video.url)
            return f"failed_{errors.MEDIA}"
        _apply_probe(video, media)
        if media.display_height < settings.min_height:
            return self._reject(video, f"probed height {media.display_height} below the source's min_height {settings.min_height}", work)
        video.sha256 = sha256_file(fetched.media)
        info_json = work / f"{video.id}.info.json"
        if info_json.exists():
            scrub_info_json(info_json)
        final = _publish(work, media_folder(self.media_dir, video.id))
        video.storage_path = str(final / fetched.media.name)
        video.subtitles_path = str(final / fetched.subtitles[0].name) if fetched.subtitles else None
        video.status, video.error_class, video.error_message, video.next_attempt_at = PROBED, None, None, None
        video.downloaded_at = self.now
        video.availability, video.availability_checked_at, video.availability_reason = "available", self.now, None
        return PROBED

    # --- availability ---------------------------------------------------------------------------------------------
    def recheck_one(self, video: Video, source: Source, settings: SourceSettings, cookiefile: str | None) -> None:
        if video.platform == PLATFORM_LOCAL:
            path = Path(video.storage_path or "")
            gone = None if path.is_file() else f"file {path} is missing"
        else:
            try:
                check_available(video.url, base_options(self.config, cookiefile), self.spacers.get(settings.egress))
                gone = None
            except FetchError as exc:
                failure = exc.classified
                if failure.error_class != errors.PERMANENT:
                    if failure.error_class == errors.THROTTLED:
                        self.pause(source, failure)
                    self.run.error(video.id, failure.message, error_class=failure.error_class, kind="recheck", url=video.url)
                    return
                gone = failure.message
        video.availability = "gone" if gone else "available"
        video.availability_reason = gone
        video.availability_checked_at = self.now
        self.run.count(video.availability)


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _apply_metadata(video: Video, info: dict[str, Any]) -> None:
    """What the site says about the video (the probe, not the site, decides duration and geometry)."""
    video.title = info.get("title") or video.title
    video.channel = info.get("channel") or info.get("uploader") or video.channel
    video.license = info.get("license") or video.license
    video.upload_date = info.get("upload_date") or video.upload_date
    video.language_hint = info.get("language") or video.language_hint
    video.description = info.get("description") or video.description


def _apply_probe(video: Video, media) -> None:
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


def _open_cookies(crawl: Crawl, stack: ExitStack, session: Session, sources: list[Source]) -> dict[str, tuple[SourceSettings, str | None]]:
    """Settings and cookies file of each source for the run; a source whose cookies cannot be had is left out."""
    ready = {}
    for source in sources:
        try:
            settings = crawl.settings_of(source)
            ready[source.id] = (settings, stack.enter_context(cookies_path(settings)))
        except TalkvidError as exc:
            source.last_error = f"{errors.SETUP}: {exc}"
            crawl.run.error(source.id, str(exc), error_class=errors.SETUP, kind="source", locator=source.locator)
    session.commit()
    return ready


def discover(ctx: Context, source_ids: list[str] | None = None) -> dict[str, Any]:
    """List every enabled, unpaused remote source flat and add the items the catalog does not hold yet."""
    with ctx.run("crawl.discover", {"source_ids": source_ids}) as run:
        crawl = Crawl(ctx, run)
        with ctx.sessions() as session:
            sources = crawl.sources(session, source_ids)
            for source in sources:
                try:
                    crawl.discover_source(session, source)
                except FetchError as exc:
                    session.rollback()
                    source = session.get(Source, source.id)
                    crawl.source_failed(source, exc.classified)
                except TalkvidError as exc:  # our own checks: an unreadable URL list, cookies that are not there
                    session.rollback()
                    source = session.get(Source, source.id)
                    crawl.source_failed(source, Classified(errors.SETUP, str(exc)))
                session.commit()
            run.count("sources", len(sources))
        return {"run_id": run.id, **run.counts}


def download(ctx: Context, source_ids: list[str] | None = None, limit: int | None = None) -> dict[str, Any]:
    """Download the due videos of every enabled, unpaused remote source, one source after another in turn; then
    ingest the files added to watched local folders. `limit` bounds both together."""
    from talkvid_ops.crawl.ingest import sweep_folder  # ingest builds on this module

    with ctx.run("crawl.download", {"source_ids": source_ids, "limit": limit}) as run:
        crawl = Crawl(ctx, run)
        with ExitStack() as stack:
            with ctx.sessions() as session:
                sources = crawl.sources(session, source_ids, kinds=KINDS)
                watched = [s.id for s in sources if s.kind == LOCAL_FOLDER and crawl.settings_of(s).watch]
                ready = _open_cookies(crawl, stack, session, [s for s in sources if s.kind != LOCAL_FOLDER])
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
                outcome = crawl.download_one(video_id, source_id, settings, cookiefile)
                if outcome is None:
                    continue
                tried += 1
                if outcome == f"failed_{errors.THROTTLED}":
                    throttled.add(source_id)
        with ctx.sessions() as session:
            for source_id in watched:
                if limit is not None and tried >= limit:
                    break
                tried += sweep_folder(session, run, session.get(Source, source_id), crawl.media_dir, None if limit is None else limit - tried)
                session.commit()
        run.count("sources", len(sources))
        return {"run_id": run.id, **run.counts}


def recheck(ctx: Context, limit: int | None = None) -> dict[str, Any]:
    """Ask the sites whether the videos we hold are still there (no download), least recently checked first."""
    with ctx.run("crawl.recheck", {"limit": limit}) as run:
        crawl = Crawl(ctx, run)
        with ExitStack() as stack, ctx.sessions() as session:
            sources = {s.id: s for s in crawl.sources(session, None, kinds=KINDS)}
            ready = _open_cookies(crawl, stack, session, list(sources.values()))
            videos = session.scalars(
                select(Video)
                .where(Video.status == PROBED, Video.source_id.in_(list(ready)))
                .order_by(Video.availability_checked_at.is_not(None), Video.availability_checked_at, Video.id)
                .limit(limit)
            ).all()
            for video in videos:
                source = sources[video.source_id]
                if is_paused(source, crawl.now):
                    run.count("skipped_paused")
                    continue
                settings, cookiefile = ready[source.id]
                crawl.recheck_one(video, source, settings, cookiefile)
                session.commit()
        return {"run_id": run.id, **run.counts}
