"""What a task runs, as plain library calls: the same code serves `talkvid run`, the in-process Airflow runner and
the container entrypoint's caller. Stage modules are imported only when a stage runs, never when a DAG is parsed.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from talkvid_ops.catalog.batches import batch_items, make_batches
from talkvid_ops.catalog.models import Run, Source
from talkvid_ops.context import Context
from talkvid_ops.curate.profiles import Profile, load_profile
from talkvid_ops.errors import TalkvidError

# stage -> (planner, batch runner), as "module:function" of the stage API contract
BATCH_STAGES: dict[str, tuple[str, str]] = {
    "segment": ("talkvid_ops.segment.stage:plan_batches", "talkvid_ops.segment.stage:segment"),
    "score": ("talkvid_ops.score.stage:plan_batches", "talkvid_ops.score.stage:score"),
}
CRAWL_BATCH_STAGE = "crawl"  # batches of source ids: one mapped discover/download task each
CRAWL_STEPS = ("discover", "download")


def _resolve(target: str) -> Callable[..., Any]:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def _batch_stage(stage: str) -> tuple[str, str]:
    if stage not in BATCH_STAGES:
        raise TalkvidError(f"stage {stage!r} has no batches (batch stages: {', '.join(BATCH_STAGES)})")
    return BATCH_STAGES[stage]


def batch_command(stage: str, batch_id: str) -> list[str]:
    """The container entrypoint form of one batch."""
    _batch_stage(stage)
    return ["talkvid", stage, "--batch", batch_id]


def plan(ctx: Context, stage: str, size: int | None = None, max_batches: int | None = None) -> list[str]:
    """Batch ids of the stage's pending work, at most `max_batches` of them (the rest wait for the next run).

    Recorded as a `plan` run whose counts say how many batches were planned and how many deferred.
    """
    planner = _resolve(_batch_stage(stage)[0])
    with ctx.run("plan", {"stage": stage, "size": size, "max_batches": max_batches}) as run:
        batch_ids = list(planner(ctx, size=size, max_batches=max_batches))  # stores only the batches taken
        taken = batch_ids[:max_batches] if max_batches else batch_ids
        run.count("batches", len(taken))
        run.count("deferred", len(batch_ids) - len(taken))
    return taken


def run_batch(ctx: Context, stage: str, batch_id: str) -> dict[str, Any]:
    return _resolve(_batch_stage(stage)[1])(ctx, batch_id=batch_id)


def plan_crawl(ctx: Context, sources_per_task: int) -> list[str]:
    """Batches of the enabled sources' ids, so discovery and download map over a bounded number of tasks."""
    with ctx.run("plan", {"stage": CRAWL_BATCH_STAGE, "size": sources_per_task}) as run:
        with ctx.sessions() as session:
            source_ids = list(session.scalars(select(Source.id).where(Source.enabled.is_(True)).order_by(Source.id)))
            batch_ids = make_batches(session, CRAWL_BATCH_STAGE, source_ids, sources_per_task)
            session.commit()
        run.count("sources", len(source_ids))
        run.count("batches", len(batch_ids))
    return batch_ids


def run_crawl_batch(ctx: Context, step: str, batch_id: str) -> dict[str, Any]:
    """Discover or download the sources of one crawl batch."""
    if step not in CRAWL_STEPS:
        raise TalkvidError(f"crawl step must be one of {', '.join(CRAWL_STEPS)}, not {step!r}")
    with ctx.sessions() as session:
        source_ids = batch_items(session, batch_id, CRAWL_BATCH_STAGE)
    return _resolve(f"talkvid_ops.crawl.{step}:{step}")(ctx, source_ids=source_ids)


def runs_of_dag_run(ctx: Context, dag_id: str, dag_run_id: str, stage: str) -> list[Run]:
    with ctx.sessions() as session:
        return list(session.scalars(select(Run).where(Run.dag_id == dag_id, Run.dag_run_id == dag_run_id, Run.stage == stage)))


def deferred_batches(ctx: Context, dag_id: str, dag_run_id: str) -> int:
    """Batches the planners of a DAG run left for a later run (beyond the mapping bound)."""
    return sum((r.counts or {}).get("deferred", 0) for r in runs_of_dag_run(ctx, dag_id, dag_run_id, "plan"))


def rows_made_by(ctx: Context, model, run_ids: list[str], *conditions) -> int:
    """How many rows of `model` (a catalog table with run_id) the given runs wrote."""
    if not run_ids:
        return 0
    with ctx.sessions() as session:
        query = select(func.count()).select_from(model).where(model.run_id.in_(run_ids), *conditions)
        return session.scalar(query) or 0


def resolve_profile(name_or_path: str, thresholds: dict[str, dict[str, float | None]] | None = None) -> Profile:
    """A shipped profile or YAML file, with per-criterion bounds overridden when `thresholds` is given."""
    profile = load_profile(name_or_path)
    return profile.with_thresholds(thresholds) if thresholds else profile


def release_location(ctx: Context, profile: Profile, day: dt.date, name: str | None = None, out_dir: str | None = None) -> tuple[str, Path]:
    """A release's name and folder: by default one per profile version and day under the data dir."""
    name = name or f"{profile.name}-{profile.content_hash[:8]}-{day:%Y%m%d}"
    return name, Path(out_dir) if out_dir else ctx.settings.data_dir / "releases" / name
