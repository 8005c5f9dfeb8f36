"""What the crawl's jobs share: a crawl run (settings, run recorder, request spacers, its private cookie folder), the
settings and cookies of its sources, the id of a video and the folder its files live in (downloads and copied-in
local files alike)."""

from __future__ import annotations

import datetime as dt
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Source, utcnow
from talkvid_ops.catalog.runs import RunRecorder
from talkvid_ops.catalog.status import ErrorClass
from talkvid_ops.context import Context
from talkvid_ops.crawl.cookies import RunCookieFolder, cookies_path
from talkvid_ops.crawl.politeness import Spacers
from talkvid_ops.crawl.sources import SourceSettings
from talkvid_ops.errors import TalkvidError
from talkvid_ops.ids import make_id


def video_id_for(platform: str, platform_id: str) -> str:
    return make_id("video", platform, platform_id)


def media_folder(media_dir: Path, video_id: str) -> Path:
    """Where a video's files live once complete: sharded by id so no folder grows huge."""
    return media_dir / video_id[:2] / video_id


def failure_outcome(error_class: ErrorClass) -> str:
    """The run's count of items that failed with `error_class`."""
    return f"failed_{error_class}"


def settings_of(source: Source) -> SourceSettings:
    return SourceSettings.load(source.settings, where=f"source {source.id} settings")


class CrawlRun:
    """What one crawl run shares: settings, the run recorder, the spacer of each egress, the private folder of its
    cookie files. Used as a context manager: entering sweeps cookie folders that dead runs left, leaving removes its own."""

    def __init__(self, ctx: Context, run: RunRecorder) -> None:
        self.ctx = ctx
        self.run = run
        self.config = ctx.config.crawl
        self.media_dir = ctx.settings.media_dir
        self.spacers = Spacers(ctx.settings.data_dir / "state" / "egress", self.config.interval_for)
        self.cookie_folder = RunCookieFolder(ctx.settings.data_dir / "state" / "cookies", run.id)

    def __enter__(self) -> CrawlRun:
        self.cookie_folder.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.cookie_folder.__exit__(*exc)

    @property
    def now(self) -> dt.datetime:
        """The time of each decision, not of the run's start: a pause set hours into a run counts from then."""
        return utcnow()


def open_cookies(crawl: CrawlRun, stack: ExitStack, session: Session, sources: list[Source]) -> dict[str, tuple[SourceSettings, str | None]]:
    """Settings and cookies file of each source for the run; a source whose cookies cannot be had is left out."""
    ready = {}
    for source in sources:
        try:
            settings = settings_of(source)
            ready[source.id] = (settings, stack.enter_context(cookies_path(settings, crawl.cookie_folder)))
        except TalkvidError as exc:
            source.last_error = f"{ErrorClass.SETUP}: {exc}"
            crawl.run.error(source.id, str(exc), error_class=ErrorClass.SETUP, kind="source", locator=source.locator)
    session.commit()
    return ready
