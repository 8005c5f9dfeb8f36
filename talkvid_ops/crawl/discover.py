"""Discovery: list every enabled, unpaused remote source flat (no video page is visited) and add the items the
catalog does not hold yet.

The catalog is the download archive: an item becomes a `video` row once, when it is discovered, keyed by
(platform, platform id): `discovered`, or `rejected` when what the listing tells already breaks the source's
policy. Watched local folders have nothing to list: a download run ingests their new files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Source, Video
from talkvid_ops.catalog.status import ErrorClass, VideoStatus
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.context import Context
from talkvid_ops.crawl.common import CrawlRun, settings_of, video_id_for
from talkvid_ops.crawl.cookies import cookies_path
from talkvid_ops.crawl.errors import Classified
from talkvid_ops.crawl.sources import URL_LIST, Item, SourceSettings, discovery_url, item_for_url, item_from_entry, policy_reason, read_url_list
from talkvid_ops.crawl.state import crawlable_sources, record_source_failure, reset_backoff
from talkvid_ops.crawl.ytdlp import FetchError, base_options, list_entries
from talkvid_ops.errors import TalkvidError

LOOKUP_CHUNK = 200


def discover(ctx: Context, source_ids: list[str] | None = None) -> dict[str, Any]:
    """List every enabled, unpaused remote source flat and add the items the catalog does not hold yet."""
    with ctx.run("crawl.discover", {"source_ids": source_ids}) as run:
        with CrawlRun(ctx, run) as crawl, ctx.sessions() as session:
            sources = crawlable_sources(crawl, session, source_ids)
            for source in sources:
                try:
                    _discover_source(crawl, session, source)
                except FetchError as exc:
                    session.rollback()
                    source = session.get(Source, source.id)
                    record_source_failure(crawl, source, exc.classified)
                except TalkvidError as exc:  # our own checks: an unreadable URL list, cookies that are not there
                    session.rollback()
                    source = session.get(Source, source.id)
                    record_source_failure(crawl, source, Classified(ErrorClass.SETUP, str(exc)))
                session.commit()
            run.count("sources", len(sources))
        return {"run_id": run.id, **run.counts}


def _listed_items(crawl: CrawlRun, source: Source, settings: SourceSettings, cookiefile: str | None) -> Iterator[Item]:
    if source.kind == URL_LIST:
        for url in read_url_list(source.locator):
            yield item_for_url(url)
        return
    options = base_options(crawl.config, cookiefile)
    for entry, parent in list_entries(discovery_url(source.kind, source.locator, settings), options, crawl.spacers.get(settings.egress)):
        item = item_from_entry(entry, parent)
        if item is None:
            crawl.run.count("entries_not_videos")
        else:
            yield item


def _discover_source(crawl: CrawlRun, session: Session, source: Source) -> None:
    settings = settings_of(source)
    accepted = rejected = known = 0
    seen: set[tuple[str, str]] = set()
    with cookies_path(settings, crawl.cookie_folder) as cookiefile:
        for chunk in _chunks(_listed_items(crawl, source, settings, cookiefile), LOOKUP_CHUNK):
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
                rows.append(_discovered_row(crawl, source, item, vid, reason))
                if reason:
                    rejected += 1
                else:
                    accepted += 1
            # do-nothing on conflict: another worker may have discovered the same item a moment ago
            upsert(session, Video, rows, ["platform", "platform_id"], update=[])
            if accepted >= settings.max_new_per_run:
                crawl.run.count("sources_capped")
                break
    crawl.run.count("new", accepted)
    crawl.run.count("rejected", rejected)
    crawl.run.count("known", known)
    reset_backoff(source)
    source.last_discovered_at = crawl.now
    source.last_error = None


def _discovered_row(crawl: CrawlRun, source: Source, item: Item, vid: str, reason: str | None) -> dict[str, Any]:
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
        status=VideoStatus.REJECTED if reason else VideoStatus.DISCOVERED,
        error_class=ErrorClass.POLICY if reason else None,
        error_message=reason,
        run_id=crawl.run.id,
    )


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
