"""Recheck: ask the sites whether the videos we hold are still there (no download), and local files whether they
are still on disk; a video found gone is marked so, with the reason, and its files stay."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from sqlalchemy import select

from talkvid_ops.catalog.models import Source, Video
from talkvid_ops.catalog.status import Availability, ErrorClass, VideoStatus
from talkvid_ops.config import display_path
from talkvid_ops.context import Context
from talkvid_ops.crawl.common import CrawlRun, open_cookies
from talkvid_ops.crawl.sources import KINDS, PLATFORM_LOCAL, SourceSettings
from talkvid_ops.crawl.state import crawlable_sources, is_paused, pause
from talkvid_ops.crawl.ytdlp import FetchError, base_options, check_available


def recheck(ctx: Context, limit: int | None = None) -> dict[str, Any]:
    """Ask the sites whether the videos we hold are still there (no download), least recently checked first."""
    with ctx.run("crawl.recheck", {"limit": limit}) as run:
        with CrawlRun(ctx, run) as crawl, ExitStack() as stack, ctx.sessions() as session:
            sources = {s.id: s for s in crawlable_sources(crawl, session, None, kinds=KINDS)}
            ready = open_cookies(crawl, stack, session, list(sources.values()))
            videos = session.scalars(
                select(Video)
                .where(Video.status == VideoStatus.PROBED, Video.source_id.in_(list(ready)))
                .order_by(Video.availability_checked_at.is_not(None), Video.availability_checked_at, Video.id)
                .limit(limit)
            ).all()
            for video in videos:
                source = sources[video.source_id]
                if is_paused(source, crawl.now):
                    run.count("skipped_paused")
                    continue
                settings, cookiefile = ready[source.id]
                _recheck_one(crawl, video, source, settings, cookiefile)
                session.commit()
        return {"run_id": run.id, **run.counts}


def _recheck_one(crawl: CrawlRun, video: Video, source: Source, settings: SourceSettings, cookiefile: str | None) -> None:
    if video.platform == PLATFORM_LOCAL:
        path = crawl.ctx.settings.media_path(video.storage_path)
        if path is None:
            gone = "no file recorded"
        else:
            gone = None if path.is_file() else f"file {display_path(path)} is missing"
    else:
        try:
            check_available(video.url, base_options(crawl.config, cookiefile), crawl.spacers.get(settings.egress))
            gone = None
        except FetchError as exc:
            failure = exc.classified
            if failure.error_class != ErrorClass.PERMANENT:
                if failure.error_class == ErrorClass.THROTTLED:
                    pause(crawl, source, failure)
                crawl.run.error(video.id, failure.message, error_class=failure.error_class, kind="recheck", url=video.url)
                return
            gone = failure.message
    video.availability = Availability.GONE if gone else Availability.AVAILABLE
    video.availability_reason = gone
    video.availability_checked_at = crawl.now
    crawl.run.count(video.availability)
