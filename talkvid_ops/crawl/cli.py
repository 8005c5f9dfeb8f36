"""`talkvid source ...`, `talkvid crawl`, `talkvid ingest`."""

from __future__ import annotations

from pathlib import Path

import click

from talkvid_ops.catalog.status import SourceStatus
from talkvid_ops.commands import echo_json, get_context
from talkvid_ops.crawl.sources import KINDS
from talkvid_ops.errors import TalkvidError


def _find_source(session, ref: str):
    """A source by id or by its (unique) name; a usage error naming the problem otherwise."""
    from talkvid_ops.crawl.sources import find_source

    try:
        return find_source(session, ref)
    except TalkvidError as exc:
        raise click.UsageError(str(exc)) from None


@click.group("source")
def source() -> None:
    """Where videos come from: YouTube channels, playlists and searches, URL lists, pages, local folders."""


@source.command("add")
@click.argument("locator")
@click.option("--kind", type=click.Choice(KINDS), help="What LOCATOR is (guessed when omitted: a URL, an existing folder, or a text file of URLs).")
@click.option("--name", help="A name to refer to the source by (default: from the locator; an existing source keeps its own).")
@click.option("--min-height", type=click.IntRange(min=0), help="Reject videos below this height in pixels [default: 1080].")
@click.option("--max-duration", type=float, help="Reject videos longer than this many seconds.")
@click.option("--language", "languages", multiple=True, help="A wanted language, e.g. en (repeatable; default: any).")
@click.option("--max-new-per-run", type=click.IntRange(min=1), help="New items one discovery run may add [default: 200].")
@click.option("--search-results", type=click.IntRange(min=1), help="Results a YouTube search lists [default: 200].")
@click.option("--egress", help="Network exit whose request spacing this source shares [default: default].")
@click.option("--sleep", "sleep_interval_s", type=click.FloatRange(min=0), help="Seconds yt-dlp sleeps before each download.")
@click.option("--max-sleep", "max_sleep_interval_s", type=click.FloatRange(min=0), help="Sleep a random time up to this instead.")
@click.option("--max-rate", "max_download_rate", type=click.IntRange(min=1), help="Download rate limit, bytes per second.")
@click.option("--cookies", "cookies_file", help="Path of a Netscape cookies file (only the path is stored).")
@click.option("--cookies-connection", help="Airflow connection id whose extra holds cookies_file or cookies.")
def source_add(locator: str, kind: str | None, name: str | None, **options) -> None:
    """Add the source at LOCATOR (adding it again replaces its settings, and its name when --name is given)."""
    from talkvid_ops.crawl.sources import SourceSettings, add_source

    given = {k: v for k, v in options.items() if v not in (None, ())}
    if "languages" in given:
        given["languages"] = list(given["languages"])
    if "max_duration" in given:
        given["max_duration_s"] = given.pop("max_duration")
    settings = SourceSettings.load(given, where="source settings")
    ctx = get_context()
    with ctx.sessions() as session:
        source_id, created = add_source(session, locator, kind=kind, name=name, settings=settings)
        session.commit()
        row = _find_source(session, source_id)
    click.echo(f"{'added' if created else 'updated'} {row.kind} source {source_id} ({row.name}): {row.locator}")


@source.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def source_list(as_json: bool) -> None:
    """Every source with its state, back-off and videos per status."""
    from talkvid_ops.catalog.queries import source_overview

    with get_context().sessions() as session:
        rows = source_overview(session)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no sources (add one with `talkvid source add`)")
    for row in rows:
        state = "enabled" if row["enabled"] else "disabled"
        if row["status"] == SourceStatus.PAUSED:
            state += f", paused until {row['paused_until']} (back-off level {row['backoff_level']})"
        videos = ", ".join(f"{k}={v}" for k, v in sorted(row["videos"].items())) or "no videos"
        click.echo(f"{row['id']}  {row['kind']:<16} {row['name']}  [{state}]  {videos}")
        click.echo(f"    {row['locator']}")
        if row["last_error"]:
            click.echo(f"    last error: {row['last_error']}")


def _set_enabled(ref: str, enabled: bool) -> None:
    from talkvid_ops.crawl.state import set_enabled

    with get_context().sessions() as session:
        row = _find_source(session, ref)
        set_enabled(row, enabled)
        session.commit()
        click.echo(f"source {row.id} ({row.name}) {'enabled' if enabled else 'disabled'}")


@source.command("enable")
@click.argument("ref")
def source_enable(ref: str) -> None:
    """Crawl the source REF (id or name) again; a paused source resumes now."""
    _set_enabled(ref, True)


@source.command("disable")
@click.argument("ref")
def source_disable(ref: str) -> None:
    """Stop crawling the source REF (id or name); its videos stay."""
    _set_enabled(ref, False)


@source.command("remove")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def source_remove(ref: str, yes: bool) -> None:
    """Delete the source REF with its videos and everything derived from them (media files stay on disk)."""
    from talkvid_ops.catalog.queries import videos_of_source
    from talkvid_ops.crawl.sources import remove_source

    with get_context().sessions() as session:
        row = _find_source(session, ref)
        videos = videos_of_source(session, row.id)
        if not yes:
            click.confirm(f"remove source {row.id} ({row.name}) and its {videos} videos with their clips and scores?", abort=True)
        remove_source(session, row.id)
        session.commit()
    click.echo(f"removed source {row.id} and {videos} videos")


@click.command("crawl")
@click.option("--discover", "steps", flag_value="discover", multiple=True, help="List the sources and add new items to the catalog.")
@click.option("--download", "steps", flag_value="download", multiple=True, help="Download the items that are due and ingest new files of watched folders.")
@click.option("--recheck", "steps", flag_value="recheck", multiple=True, help="Ask the sites whether the videos we hold are still online (no download).")
@click.option("--source", "refs", multiple=True, metavar="ID", help="Only this source (id or name; repeatable). Not with --recheck.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many downloads / re-checks.")
def crawl(steps: tuple[str, ...], refs: tuple[str, ...], limit: int | None) -> None:
    """Discover and download (the default: both), or re-check availability. Prints each step's counts as JSON.

    The download step also ingests the files added to watched local folders. Paused sources are skipped until
    their pause ends; failures are recorded on the video rows.
    """
    from talkvid_ops.crawl.discover import discover
    from talkvid_ops.crawl.download import download
    from talkvid_ops.crawl.recheck import recheck

    if "recheck" in steps and refs:
        raise click.UsageError("--recheck covers every source; --source goes with --discover / --download")
    ctx = get_context()
    source_ids = None
    if refs:
        with ctx.sessions() as session:
            source_ids = [_find_source(session, ref).id for ref in refs]
    chosen = set(steps or ("discover", "download"))
    results = {}
    if "discover" in chosen:
        results["discover"] = discover(ctx, source_ids=source_ids)
    if "download" in chosen:
        results["download"] = download(ctx, source_ids=source_ids, limit=limit)
    if "recheck" in chosen:
        results["recheck"] = recheck(ctx, limit=limit)
    echo_json(results)


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--copy", is_flag=True, help="Copy the files into the data dir (default: register them where they are).")
@click.option("--name", help="Name of the local_folder source (default: the folder's name; an existing source keeps its own).")
def ingest(paths: tuple[Path, ...], copy: bool, name: str | None) -> None:
    """Register local media files and folders (searched recursively): probed, hashed, failures recorded."""
    from talkvid_ops.crawl.ingest import ingest_paths

    echo_json(ingest_paths(get_context(), list(paths), copy=copy, name=name))
