"""The in-process runner: task callables that run a stage inside the Airflow worker (the embedded default).

Airflow 3 exports AIRFLOW_CTX_DAG_ID, _DAG_RUN_ID, _TASK_ID and _TRY_NUMBER into the worker's environment but not
the map index, and in `dag.test()` every task shares one process. So each callable exports the complete set for
exactly the duration of its stage call; `catalog.runs` reads it into the `run` row, as it does in a container.
XCom carries only ids: batch ids out of planners, run ids out of stages.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

AIRFLOW_ENV_PREFIX = "AIRFLOW_CTX_"


def airflow_env(context: Mapping[str, Any]) -> dict[str, str]:
    """The task's identity as environment variables (the same names a container gets)."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", None)
    return {
        "AIRFLOW_CTX_DAG_ID": ti.dag_id,
        "AIRFLOW_CTX_DAG_RUN_ID": ti.run_id,
        "AIRFLOW_CTX_TASK_ID": ti.task_id,
        "AIRFLOW_CTX_MAP_INDEX": "" if map_index is None or map_index < 0 else str(map_index),
        "AIRFLOW_CTX_TRY_NUMBER": str(ti.try_number),
    }


@contextmanager
def exported(env: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then restore what was there."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def task_context() -> Iterator[tuple[Any, Mapping[str, Any]]]:
    """(talkvid Context, Airflow context) of the running task, with its identity exported for run rows."""
    from airflow.sdk import get_current_context

    from talkvid_ops.context import Context

    context = get_current_context()
    with exported(airflow_env(context)):
        yield Context.from_env(), context


def run_day(context: Mapping[str, Any]) -> dt.date:
    """The day a run stands for: its logical date (scheduled, backfilled) or when it was triggered (manual)."""
    dag_run = context["dag_run"]
    moment = dag_run.logical_date or dag_run.run_after
    return moment.date()


def _skip(message: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(message)


# --- crawl --------------------------------------------------------------------------------------------------------


def plan_crawl_task(sources_per_task: int) -> list[str]:
    from talkvid_ops.runners.stages import plan_crawl

    with task_context() as (ctx, _):
        return plan_crawl(ctx, sources_per_task)


def crawl_batch_task(step: str, batch_id: str) -> str:
    from talkvid_ops.runners.stages import run_crawl_batch

    with task_context() as (ctx, _):
        return run_crawl_batch(ctx, step, batch_id)["run_id"]


def publish_task(asset: str, stage: str, table: str) -> None:
    """Succeeds (so the task's outlet emits `asset`) only when this DAG run's `stage` runs wrote `table` rows with
    media or results; skips otherwise, so consumers are not woken for nothing."""
    from talkvid_ops.catalog.models import Scoring, Video
    from talkvid_ops.runners.stages import rows_made_by, runs_of_dag_run

    produced = {"video": (Video, Video.storage_path.is_not(None)), "scoring": (Scoring, Scoring.status == "ok")}
    model, condition = produced[table]
    with task_context() as (ctx, context), ctx.run("publish", {"asset": asset}) as run:
        ti = context["ti"]
        made = rows_made_by(ctx, model, [r.id for r in runs_of_dag_run(ctx, ti.dag_id, ti.run_id, stage)], condition)
        run.count(table, made)
    if not made:
        _skip(f"nothing new in this run: not emitting the {asset} asset")


# --- process ------------------------------------------------------------------------------------------------------


def plan_batches_task(stage: str, max_batches: int) -> list[str]:
    """Plan the stage's batches; the batch size comes from the run's params (`<stage>_batch_size`) or config."""
    from talkvid_ops.runners.stages import plan

    with task_context() as (ctx, context):
        size = (context.get("params") or {}).get(f"{stage}_batch_size")
        return plan(ctx, stage, size=size, max_batches=max_batches)


def batch_task(stage: str, batch_id: str) -> str:
    from talkvid_ops.runners.stages import run_batch

    with task_context() as (ctx, _):
        return run_batch(ctx, stage, batch_id)["run_id"]


def backlog_task() -> bool:
    """True when a planner of this DAG run deferred batches: the next task triggers another run for them."""
    from talkvid_ops.runners.stages import deferred_batches

    with task_context() as (ctx, context):
        ti = context["ti"]
        with ctx.run("backlog", {}) as run:
            run.count("deferred", deferred_batches(ctx, ti.dag_id, ti.run_id))
    return run.counts["deferred"] > 0


# --- curate -------------------------------------------------------------------------------------------------------


def _profile_from(params: Mapping[str, Any]):
    from talkvid_ops.runners.stages import resolve_profile

    return resolve_profile(params["profile"], params.get("thresholds") or None)


def decide_task() -> str:
    from talkvid_ops.curate.decide import decide

    with task_context() as (ctx, context):
        return decide(ctx, _profile_from(context["params"]))["run_id"]


def export_task() -> str:
    from talkvid_ops.export.release import export
    from talkvid_ops.runners.stages import release_location

    with task_context() as (ctx, context):
        params = context["params"]
        profile = _profile_from(params)
        name, out_dir = release_location(ctx, profile, run_day(context), params.get("name"), params.get("out_dir"))
        result = export(
            ctx,
            profile,
            out_dir,
            formats=params.get("formats") or None,
            bench_spec=params.get("bench_spec") or None,
            seed=params.get("seed", 0),
            name=name,
        )
        return result["release_id"]
