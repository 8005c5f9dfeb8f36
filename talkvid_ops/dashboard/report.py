"""What the dashboard shows, read at each request from the catalog that the environment names
(TALKVID_DATABASE_URL / TALKVID_DATA_DIR / TALKVID_CONFIG): `catalog_status` (as `talkvid status --json`) plus the
latest failure reasons, the videos gone since crawl and the releases; and the files a release lists.

Every Airflow component imports the plugin that serves this module, so talkvid's settings, models and queries are
imported at the first request, not with the module.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkvid_ops.catalog.db import CatalogUnavailable, check_catalog, database_error
from talkvid_ops.errors import TalkvidError

if TYPE_CHECKING:
    from talkvid_ops.context import Context

RECENT_RUNS = 15
FAILURE_EXAMPLES = 3
REJECTION_EXAMPLES = 6  # clips shown per failing criterion of a profile
LISTED_ROWS = 20  # gone videos and releases shown on the page
CLIP_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")  # what a clip id may look like in a URL: no dots, no slashes


class NotInRelease(TalkvidError):
    """A release, or a file of it, that the catalog or this host does not have."""


class NoThumbnail(TalkvidError):
    """A clip thumbnail that was not written (or a name that is no clip id)."""


def open_catalog() -> Context:
    """The talkvid Context of this request, after checking that its catalog exists and is at the code's schema;
    CatalogUnavailable with the reason otherwise."""
    from talkvid_ops.context import Context

    try:
        ctx = Context.from_env()
    except TalkvidError as exc:
        raise CatalogUnavailable(f"talkvid settings are invalid: {exc}") from None
    check_catalog(ctx.settings.database_url)
    return ctx


def catalog_report() -> dict[str, Any]:
    """Everything the page shows, as JSON: `catalog_status` plus failure reasons, rejections per criterion with
    example clips, the sources, the work pending per stage, gone videos and releases."""
    from sqlalchemy.exc import SQLAlchemyError

    from talkvid_ops.catalog.queries import catalog_status, failure_examples, gone_videos, recent_releases, source_overview
    from talkvid_ops.catalog.rejections import rejections
    from talkvid_ops.dashboard.pending import pending_work
    from talkvid_ops.redact import redact

    ctx = open_catalog()
    where = ctx.settings.redacted_database_url()
    try:
        with ctx.sessions() as session:
            return {
                "catalog": {"url": where, "data_dir": str(ctx.settings.data_dir)},
                "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "status": catalog_status(session, recent_runs=RECENT_RUNS, count_scores=False),
                "failures": failure_examples(session, examples=FAILURE_EXAMPLES),
                "rejections": _with_thumbnails(rejections(session, examples=REJECTION_EXAMPLES), ctx.settings.data_dir),
                "sources": [{**s, "last_error": redact(s["last_error"]) if s["last_error"] else None} for s in source_overview(session)],
                "pending": pending_work(session, ctx.config),
                "gone": gone_videos(session, limit=LISTED_ROWS),
                "releases": recent_releases(session, limit=LISTED_ROWS),
            }
    except SQLAlchemyError as exc:
        raise CatalogUnavailable(f"reading the catalog failed: {database_error(exc)}", where) from None


def _with_thumbnails(by_profile: dict[str, dict[str, dict[str, Any]]], data_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Each example clip marked with whether its thumbnail was written (the page shows its id otherwise)."""
    from talkvid_ops.media.thumbnails import thumbnail_path

    for criteria in by_profile.values():
        for entry in criteria.values():
            for example in entry["examples"]:
                example["thumbnail"] = thumbnail_path(data_dir, example["clip_id"]).is_file()
    return by_profile


def thumbnail_file(clip_id: str) -> Path:
    """The stored thumbnail of a clip; NoThumbnail when the id cannot be a clip id or none was written."""
    from talkvid_ops.media.thumbnails import thumbnail_path

    if not CLIP_ID.fullmatch(clip_id):
        raise NoThumbnail(f"{clip_id!r} is not a clip id")
    file = thumbnail_path(open_catalog().settings.data_dir, clip_id)
    if not file.is_file():
        raise NoThumbnail(f"no thumbnail of clip {clip_id}")
    return file


def release_file(release_id: str, path: str) -> Path:
    """A file the release's manifest lists, on this host, inside the release directory; NotInRelease otherwise."""
    from talkvid_ops.catalog.models import Release

    ctx = open_catalog()
    with ctx.sessions() as session:
        release = session.get(Release, release_id)
    if release is None:
        raise NotInRelease(f"no release {release_id}")
    if path not in release.files:
        raise NotInRelease(f"release {release.name} has no file {path}")
    root = Path(release.out_dir).resolve()
    file = (root / path).resolve()
    if not file.is_relative_to(root) or not file.is_file():
        raise NotInRelease(f"{path} of release {release.name} is not on this host (under {release.out_dir})")
    return file
