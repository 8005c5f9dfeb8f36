"""What the dashboard shows, read at each request from the catalog that the environment names
(TALKVID_DATABASE_URL / TALKVID_DATA_DIR / TALKVID_CONFIG): `catalog_status` (as `talkvid status --json`) plus the
latest failure reasons, the videos gone since crawl and the releases; and the files a release lists.

Every Airflow component imports the plugin that serves this module, so talkvid's settings, models and queries are
imported at the first request, not with the module.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkvid_ops.catalog.db import CatalogUnavailable, check_catalog, database_error
from talkvid_ops.errors import TalkvidError

if TYPE_CHECKING:
    from talkvid_ops.context import Context

RECENT_RUNS = 15
FAILURE_EXAMPLES = 3
LISTED_ROWS = 20  # gone videos and releases shown on the page


class NotInRelease(TalkvidError):
    """A release, or a file of it, that the catalog or this host does not have."""


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
    """Everything the page shows, as JSON: `catalog_status` plus failure reasons, gone videos and releases."""
    from sqlalchemy.exc import SQLAlchemyError

    from talkvid_ops.catalog.queries import catalog_status, failure_examples, gone_videos, recent_releases

    ctx = open_catalog()
    where = ctx.settings.redacted_database_url()
    try:
        with ctx.sessions() as session:
            return {
                "catalog": {"url": where, "data_dir": str(ctx.settings.data_dir)},
                "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "status": catalog_status(session, recent_runs=RECENT_RUNS),
                "failures": failure_examples(session, examples=FAILURE_EXAMPLES),
                "gone": gone_videos(session, limit=LISTED_ROWS),
                "releases": recent_releases(session, limit=LISTED_ROWS),
            }
    except SQLAlchemyError as exc:
        raise CatalogUnavailable(f"reading the catalog failed: {database_error(exc)}", where) from None


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
