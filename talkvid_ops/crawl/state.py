"""Source state: which sources a crawl run takes (enabled and not paused), pausing a throttled source with an
exponential back-off (`status = paused`, `paused_until`, `backoff_level`, `last_error`), starting the back-off over
when a request works, and enabling or disabling a source by hand."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.db import as_utc
from talkvid_ops.catalog.models import Source
from talkvid_ops.catalog.status import ErrorClass, SourceStatus
from talkvid_ops.crawl.common import CrawlRun
from talkvid_ops.crawl.errors import Classified
from talkvid_ops.crawl.politeness import pause_until
from talkvid_ops.crawl.sources import REMOTE_KINDS

log = logging.getLogger("talkvid.crawl")


def is_paused(source: Source, now: dt.datetime) -> bool:
    return source.status == SourceStatus.PAUSED and source.paused_until is not None and as_utc(source.paused_until) > now


def crawlable_sources(crawl: CrawlRun, session: Session, source_ids: list[str] | None, kinds: Iterable[str] = REMOTE_KINDS) -> list[Source]:
    """Enabled, unpaused sources of `kinds` (all, or those of `source_ids`), counting the ones left out."""
    query = select(Source).where(Source.kind.in_(kinds)).order_by(Source.created_at, Source.id)
    if source_ids is not None:
        known = set(session.scalars(select(Source.id).where(Source.id.in_(source_ids))))
        for missing in sorted(set(source_ids) - known):
            crawl.run.error(missing, "no such source (removed since the batch was planned?)", kind="source")
        query = query.where(Source.id.in_(source_ids))
    chosen = []
    for source in session.scalars(query):
        if not source.enabled:
            crawl.run.count("sources_disabled")
        elif is_paused(source, crawl.now):
            crawl.run.count("sources_paused")
        else:
            chosen.append(source)
    return chosen


def pause(crawl: CrawlRun, source: Source, failure: Classified) -> None:
    """Pause a throttled source with an exponential back-off (or the server's Retry-After, when later)."""
    config = crawl.config
    source.paused_until = pause_until(crawl.now, source.backoff_level, config.pause_base_s, config.pause_max_s, failure.retry_after_s)
    source.status = SourceStatus.PAUSED
    source.backoff_level += 1
    source.last_error = f"{failure.error_class}: {failure.message}"
    crawl.run.count("sources_throttled")
    log.warning("source %s paused until %s: %s", source.id, source.paused_until.isoformat(), failure.message)


def reset_backoff(source: Source) -> None:
    """A request of the source worked: it is active again and its back-off starts over."""
    source.status, source.paused_until, source.backoff_level = SourceStatus.ACTIVE, None, 0


def record_source_failure(crawl: CrawlRun, source: Source, failure: Classified) -> None:
    """A listing failed: throttling pauses the source; anything else is recorded and retried next run."""
    if failure.error_class == ErrorClass.THROTTLED:
        pause(crawl, source, failure)
    else:
        source.last_error = f"{failure.error_class}: {failure.message}"
    crawl.run.error(source.id, failure.message, error_class=failure.error_class, kind="source", locator=source.locator)


def set_enabled(source: Source, enabled: bool) -> None:
    """Crawl the source again, or stop crawling it (its videos stay). Enabling ends a pause now; the back-off level
    stays, so that a source throttled again pauses for longer."""
    source.enabled = enabled
    if enabled and source.status == SourceStatus.PAUSED:
        source.status, source.paused_until = SourceStatus.ACTIVE, None
