"""The stage registry: every stage of the pipeline declared once, with the item it works on, how it plans and runs,
and the resources it needs. The runners, the DAGs, the container command and the CLI all read it.

Modelled on NeMo Curator's `ProcessingStage` (a stage declares its `Resources`) and datatrove's steps (one way to
run each), over our catalog: a batch stage stores batches of item ids in the catalog (`catalog/batches.py`) and runs
one batch per task; a whole stage runs once (the curate stages: over a threshold profile). Every run of a stage
writes its own `run` row.

The DAG files read this module when they are parsed, so it imports no stage module: each stage's functions are
small functions here that import their stage module when called. Stage packages never import this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talkvid_ops.errors import TalkvidError

if TYPE_CHECKING:
    import click

    from talkvid_ops.context import Context
    from talkvid_ops.curate.profiles import Profile


class Item(StrEnum):
    """What a stage works on."""

    SOURCE = "source"
    VIDEO = "video"
    CLIP = "clip"
    PROFILE = "profile"  # every clip, decided under one threshold profile
    RELEASE = "release"


@dataclass(frozen=True)
class Resources:
    """What a stage's tasks need; a deployment may override the GPU and container choices (`runner:` config)."""

    gpu: bool = False  # held to the GPU pool, sent to the GPU worker's queue
    egress: bool = False  # reaches the internet: held to the egress pool, whose slots bound concurrent requests
    container: bool = False  # the operator image can run one batch as `talkvid <command> --batch ID`


@dataclass(frozen=True)
class StageRequest:
    """What a whole stage is asked to do: from a curate DAG run's form, `talkvid run` or `talkvid export`."""

    profile: Profile | None = None
    out_dir: Path | None = None
    formats: list[str] | None = None  # None: export.formats
    bench_spec: str | None = None  # None: export.bench_spec
    seed: int | None = None  # None: curate.seed
    name: str | None = None  # the release's
    limit: int | None = None  # at most this many items
    as_of: dt.datetime | None = None  # bench and export release the clips of videos crawled by then (None: all)


@dataclass(frozen=True)
class Batches:
    """How a batch stage works: `plan(ctx, size, max_batches)` stores batches of the pending items and returns every
    batch id (storing only the first `max_batches`); `run(ctx, batch_id)` runs one batch and returns its counts."""

    plan: Callable[[Context, int | None, int | None], list[str]]
    run: Callable[[Context, str], dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    name: str  # as its `run` rows name it
    item: Item
    command_name: str  # `talkvid <command_name>`
    command: Callable[[], click.Command]  # imports and returns the stage's click command
    batches: Batches | None = None  # a batch stage: planned, one task per batch
    whole: Callable[[Context, StageRequest], dict[str, Any]] | None = None  # a whole stage: one run
    resources: Resources = Resources()

    def __post_init__(self) -> None:
        if (self.batches is None) == (self.whole is None):
            raise TalkvidError(f"stage {self.name}: declare either batches or a whole run")
        if self.resources.container and self.batches is None:
            raise TalkvidError(f"stage {self.name}: only a batch stage runs in a container")
        if self.resources.gpu and self.resources.egress:
            raise TalkvidError(f"stage {self.name}: a task is held to one pool, GPU or egress")

    def _batches(self) -> Batches:
        if self.batches is None:
            raise TalkvidError(f"stage {self.name} runs whole, not over batches")
        return self.batches

    def plan(self, ctx: Context, size: int | None = None, max_batches: int | None = None) -> list[str]:
        """Batch ids of the stage's pending work, at most `max_batches` of them (the rest wait for the next run).

        Recorded as a `plan` run whose counts say how many batches were planned and how many deferred.
        """
        planner = self._batches().plan
        with ctx.run("plan", {"stage": self.name, "size": size, "max_batches": max_batches}) as run:
            batch_ids = list(planner(ctx, size, max_batches))
            taken = batch_ids[:max_batches] if max_batches else batch_ids
            run.count("batches", len(taken))
            run.count("deferred", len(batch_ids) - len(taken))
        return taken

    def run_batch(self, ctx: Context, batch_id: str) -> dict[str, Any]:
        return self._batches().run(ctx, batch_id)

    def run(self, ctx: Context, request: StageRequest) -> dict[str, Any]:
        if self.whole is None:
            raise TalkvidError(f"stage {self.name} runs over batches: plan them and run each")
        return self.whole(ctx, request)

    def batch_command(self, batch_id: str) -> list[str]:
        """The container entrypoint form of one batch."""
        if not self.resources.container:
            runnable = ", ".join(s.name for s in STAGES.values() if s.resources.container)
            raise TalkvidError(f"stage {self.name} does not run in a container (those that do: {runnable})")
        return ["talkvid", self.command_name, "--batch", batch_id]


# --- crawl: discover and download map over the same batches of enabled sources --------------------------------------

SOURCE_BATCHES = "crawl"  # the catalog's batch kind of source batches


def _plan_sources(ctx: Context, size: int | None, max_batches: int | None) -> list[str]:
    from sqlalchemy import select

    from talkvid_ops.catalog.batches import make_batches
    from talkvid_ops.catalog.models import Source

    with ctx.sessions() as session:
        source_ids = list(session.scalars(select(Source.id).where(Source.enabled.is_(True)).order_by(Source.id)))
        batch_ids = make_batches(session, SOURCE_BATCHES, source_ids, size or ctx.config.runner.sources_per_download_task, max_batches=max_batches)
        session.commit()
    return batch_ids


def _batch_sources(ctx: Context, batch_id: str) -> list[str]:
    from talkvid_ops.catalog.batches import batch_items

    with ctx.sessions() as session:
        return batch_items(session, batch_id, SOURCE_BATCHES)


def _discover_batch(ctx: Context, batch_id: str) -> dict[str, Any]:
    from talkvid_ops.crawl.discover import discover

    return discover(ctx, source_ids=_batch_sources(ctx, batch_id))


def _download_batch(ctx: Context, batch_id: str) -> dict[str, Any]:
    from talkvid_ops.crawl.download import download

    return download(ctx, source_ids=_batch_sources(ctx, batch_id))


def _recheck(ctx: Context, request: StageRequest) -> dict[str, Any]:
    from talkvid_ops.crawl.recheck import recheck

    return recheck(ctx, limit=request.limit)


def _crawl_command() -> click.Command:
    from talkvid_ops.crawl.cli import crawl

    return crawl


# --- segment, score -------------------------------------------------------------------------------------------------


def _plan_segment(ctx: Context, size: int | None, max_batches: int | None) -> list[str]:
    from talkvid_ops.segment.stage import plan_batches

    return plan_batches(ctx, size=size, max_batches=max_batches)


def _segment_batch(ctx: Context, batch_id: str) -> dict[str, Any]:
    from talkvid_ops.segment.stage import segment

    return segment(ctx, batch_id=batch_id)


def _segment_command() -> click.Command:
    from talkvid_ops.segment.cli import segment_command

    return segment_command


def _plan_score(ctx: Context, size: int | None, max_batches: int | None) -> list[str]:
    from talkvid_ops.score.stage import plan_batches

    return plan_batches(ctx, size=size, max_batches=max_batches)


def _score_batch(ctx: Context, batch_id: str) -> dict[str, Any]:
    from talkvid_ops.score.stage import score

    return score(ctx, batch_id=batch_id)


def _score_command() -> click.Command:
    from talkvid_ops.score.cli import score_command

    return score_command


def _plan_caption(ctx: Context, size: int | None, max_batches: int | None) -> list[str]:
    from talkvid_ops.caption.stage import plan_batches

    return plan_batches(ctx, size=size, max_batches=max_batches)


def _caption_batch(ctx: Context, batch_id: str) -> dict[str, Any]:
    from talkvid_ops.caption.stage import caption

    return caption(ctx, batch_id=batch_id)


def _caption_command() -> click.Command:
    from talkvid_ops.caption.cli import caption_command

    return caption_command


# --- curate: decide, labels, speakers, bench, then export -----------------------------------------------------------


def _decide(ctx: Context, request: StageRequest) -> dict[str, Any]:
    from talkvid_ops.curate.decide import decide

    return decide(ctx, request.profile)


def _decide_command() -> click.Command:
    from talkvid_ops.curate.cli import decide_command

    return decide_command


def _labels(ctx: Context, request: StageRequest) -> dict[str, Any]:
    from talkvid_ops.curate.labels.stage import estimate_labels

    return estimate_labels(ctx, profile=request.profile, limit=request.limit)


def _labels_command() -> click.Command:
    from talkvid_ops.curate.cli import labels

    return labels


def _speakers(ctx: Context, request: StageRequest) -> dict[str, Any]:
    from talkvid_ops.curate.speakers import assign_speakers

    return assign_speakers(ctx, profile=request.profile, limit=request.limit)


def _speakers_command() -> click.Command:
    from talkvid_ops.curate.cli import speakers

    return speakers


def _bench(ctx: Context, request: StageRequest) -> dict[str, Any]:
    from talkvid_ops.curate.bench import draw_bench

    return draw_bench(ctx, request.profile, spec=request.bench_spec, seed=request.seed, as_of=request.as_of)


def _bench_command() -> click.Command:
    from talkvid_ops.curate.cli import bench

    return bench


def _export(ctx: Context, request: StageRequest) -> dict[str, Any]:
    from talkvid_ops.export.release import export

    seed = ctx.config.curate.seed if request.seed is None else request.seed
    return export(
        ctx, request.profile, request.out_dir, formats=request.formats, bench_spec=request.bench_spec, seed=seed, name=request.name, as_of=request.as_of
    )


def _export_command() -> click.Command:
    """`talkvid export` stays one command for a user: it brings the curate stages up to date for its profile first."""
    import inspect

    import click

    from talkvid_ops.export.cli import export, with_export_options

    def curate_then_export(**options: Any) -> None:
        from talkvid_ops.commands import get_context

        ctx = with_export_options(get_context(), generation=options["generation"])  # the bench draws from that generation
        profile = resolve_profile(options["profile"] or ctx.config.curate.profile)
        run_curation(ctx, StageRequest(profile=profile, bench_spec=options["bench_spec"], seed=options["seed"]), through="bench")
        export.callback(**options)

    before = ", ".join(CURATION[:-1])
    return click.Command(
        export.name,
        params=export.params,
        callback=curate_then_export,
        help=f"{inspect.cleandoc(export.help or '')}\n\nFirst runs the curate stages for the profile: {before} (labels and speakers skip clips already done).",
        short_help=export.short_help,
    )


def _registry(*stages: Stage) -> dict[str, Stage]:
    registry: dict[str, Stage] = {}
    for stage in stages:
        if stage.name in registry:
            raise TalkvidError(f"stage {stage.name} is declared twice")
        registry[stage.name] = stage
    return registry


EGRESS = Resources(egress=True)
GPU_CONTAINER = Resources(gpu=True, container=True)

STAGES: dict[str, Stage] = _registry(
    Stage("crawl.discover", Item.SOURCE, "crawl", _crawl_command, batches=Batches(_plan_sources, _discover_batch), resources=EGRESS),
    Stage("crawl.download", Item.SOURCE, "crawl", _crawl_command, batches=Batches(_plan_sources, _download_batch), resources=EGRESS),
    Stage("crawl.recheck", Item.VIDEO, "crawl", _crawl_command, whole=_recheck, resources=EGRESS),
    Stage("segment", Item.VIDEO, "segment", _segment_command, batches=Batches(_plan_segment, _segment_batch), resources=GPU_CONTAINER),
    Stage("score", Item.CLIP, "score", _score_command, batches=Batches(_plan_score, _score_batch), resources=GPU_CONTAINER),
    Stage("caption", Item.CLIP, "caption", _caption_command, batches=Batches(_plan_caption, _caption_batch), resources=GPU_CONTAINER),
    Stage("decide", Item.PROFILE, "decide", _decide_command, whole=_decide),
    Stage("labels", Item.CLIP, "labels", _labels_command, whole=_labels),
    Stage("speakers", Item.CLIP, "speakers", _speakers_command, whole=_speakers),
    Stage("bench", Item.PROFILE, "bench", _bench_command, whole=_bench),
    Stage("export", Item.RELEASE, "export", _export_command, whole=_export),
)
PROCESSING = ("segment", "score", "caption")  # `talkvid run` and talkvid_process: in this order (caption: only with a model)
CURATION = ("decide", "labels", "speakers", "bench", "export")  # talkvid_curate's tasks; export reads what the others stored


def stage_named(name: str) -> Stage:
    if name not in STAGES:
        raise TalkvidError(f"unknown stage {name!r} (stages: {', '.join(STAGES)})")
    return STAGES[name]


def stage_commands() -> dict[str, Callable[[], click.Command]]:
    """`talkvid` command name -> the function that imports and returns it (the crawl stages share `talkvid crawl`)."""
    return {stage.command_name: stage.command for stage in STAGES.values()}


def resolve_profile(name_or_path: str, thresholds: dict[str, dict[str, float | str | None]] | None = None) -> Profile:
    """A shipped profile or YAML file, with per-criterion bounds overridden when `thresholds` is given."""
    from talkvid_ops.curate.profiles import load_profile

    profile = load_profile(name_or_path)
    return profile.with_thresholds(thresholds) if thresholds else profile


def run_curation(ctx: Context, request: StageRequest, through: str = CURATION[-1]) -> dict[str, dict[str, Any]]:
    """The curate stages in order, up to and including `through`; each records its own run. Labels and speakers
    skip clips already done and the bench draw is deterministic, so running them again before an export is cheap."""
    if through not in CURATION:
        raise TalkvidError(f"{through!r} is not a curate stage ({', '.join(CURATION)})")
    return {name: STAGES[name].run(ctx, request) for name in CURATION[: CURATION.index(through) + 1]}
