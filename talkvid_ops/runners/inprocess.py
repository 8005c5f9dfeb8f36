"""The in-process runner: task callables that run a stage inside the Airflow worker (the embedded default).

Airflow 3 exports AIRFLOW_CTX_DAG_ID, _DAG_RUN_ID, _TASK_ID and _TRY_NUMBER into the worker's environment but not
the map index, and in `dag.test()` every task shares one process. So each callable exports the complete set for
exactly the duration of its stage call; `catalog.runs` reads it into the `run` row, as it does in a container.
XCom carries only ids: batch ids out of planners, run ids out of stages. Every stage is called through the stage
registry (`talkvid_ops.stages`), imported when a task runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

log = logging.getLogger(__name__)  # through the root logger into the Airflow task log

if TYPE_CHECKING:
    from talkvid_ops.context import Context
    from talkvid_ops.curate.profiles import Profile
    from talkvid_ops.stages import StageRequest


def airflow_env(context: Mapping[str, Any]) -> dict[str, str]:
    """The task's identity as environment variables (the same names a container gets), and the config preset the
    DAG run's form chose (else the worker's TALKVID_PRESET), so every batch runs with it in or out of a container."""
    from talkvid_ops.config import ENV_PRESET

    ti = context["ti"]
    map_index = getattr(ti, "map_index", None)
    env = {
        "AIRFLOW_CTX_DAG_ID": ti.dag_id,
        "AIRFLOW_CTX_DAG_RUN_ID": ti.run_id,
        "AIRFLOW_CTX_TASK_ID": ti.task_id,
        "AIRFLOW_CTX_MAP_INDEX": "" if map_index is None or map_index < 0 else str(map_index),
        "AIRFLOW_CTX_TRY_NUMBER": str(ti.try_number),
    }
    preset = (context.get("params") or {}).get("preset") or os.environ.get(ENV_PRESET)
    if preset:
        env[ENV_PRESET] = preset
    return env


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
def task_context() -> Iterator[tuple[Context, Mapping[str, Any]]]:
    """(talkvid Context, Airflow context) of the running task, with its identity exported for run rows; the task's
    log lines pass through the redaction (the catalog URL's password is registered by `Context.from_env`)."""
    from airflow.sdk import get_current_context

    from talkvid_ops import redact
    from talkvid_ops.context import Context

    redact.install()
    context = get_current_context()
    with exported(airflow_env(context)), config_errors_fail_the_task():
        yield Context.from_env(), context


@contextmanager
def config_errors_fail_the_task() -> Iterator[None]:
    """A config error fails the task at once: retrying cannot fix it, and the retries would hold the DAG's next run."""
    from airflow.sdk.exceptions import AirflowFailException

    from talkvid_ops.errors import ConfigError

    try:
        yield
    except ConfigError as exc:
        raise AirflowFailException(f"config error (not retried): {exc}") from exc


def run_day(context: Mapping[str, Any]) -> dt.date:
    """The day a run stands for: its logical date (scheduled, backfilled) or when it was triggered (manual)."""
    dag_run = context["dag_run"]
    moment = dag_run.logical_date or dag_run.run_after
    return moment.date()


def release_as_of(context: Mapping[str, Any]) -> dt.datetime | None:
    """The moment a curate run releases the catalog as of: a dated run's logical date (scheduled or backfilled), so
    only videos crawled by then are released; None for a run without one (a manual trigger): everything."""
    return context["dag_run"].logical_date


def _skip(message: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(message)


# --- stages ---------------------------------------------------------------------------------------------------------


def plan_batches_task(stage: str, max_batches: int | None) -> list[str]:
    """Plan the stage's batches; the batch size comes from the run's params (`<stage>_batch_size`) or config."""
    from talkvid_ops.stages import stage_named

    with task_context() as (ctx, context):
        size = (context.get("params") or {}).get(f"{stage}_batch_size")
        batch_ids = stage_named(stage).plan(ctx, size=size, max_batches=max_batches)
    log.info("%s: %s", stage, f"planned {len(batch_ids)} batch(es)" if batch_ids else "nothing to do")
    return batch_ids


def batch_task(stage: str, batch_id: str) -> str:
    from talkvid_ops.stages import stage_named

    with task_context() as (ctx, _):
        result = stage_named(stage).run_batch(ctx, batch_id)
    log.info(summary(f"{stage} batch {batch_id}", result))
    return result["run_id"]


def curate_task(stage: str) -> str:
    """One curate stage (decide, labels, speakers, bench, export) on the profile and release the run's form asks for."""
    from talkvid_ops.stages import stage_named

    with task_context() as (ctx, context):
        result = stage_named(stage).run(ctx, curate_request(ctx, context))
    log.info(summary(stage, result))
    return result["run_id"]


NOT_COUNTS = {"seed"}  # integers of a stage's result that count nothing


def summary(what: str, result: Mapping[str, Any]) -> str:
    """The one line a task's log ends with: its counts and where a release went, or that there was nothing to do
    (the XCom value after it is only the run id)."""
    counts = {k: v for k, v in result.items() if isinstance(v, int) and not isinstance(v, bool) and k not in NOT_COUNTS}
    release = f"; release at {result['out_dir']}" if result.get("out_dir") else ""
    if not any(counts.values()) and not release:
        return f"{what}: nothing to do (run {result['run_id']})"
    return f"{what}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) + f"{release} (run {result['run_id']})"


def validate_curate_task() -> str:
    """Check a talkvid_curate run's form (schema, profile, threshold overrides against that profile, bench spec) and
    fail at once, listing every error."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    context = get_current_context()
    form = context["dag"].params
    errors = curate_conf_errors(dict(context["params"]), {key: form.get_param(key) for key in form})
    if errors:
        raise AirflowFailException(f"the run's conf has {len(errors)} error(s):\n" + "\n".join(errors))
    return "conf ok"


def curate_conf_errors(params: Mapping[str, Any], form: Mapping[str, Any]) -> list[str]:
    """Every error of a talkvid_curate conf, each naming its field; `form` holds the DAG's params (Airflow `Param`s:
    a JSON Schema and a default each)."""
    from jsonschema import Draft202012Validator

    from talkvid_ops.curate.bench import load_bench_spec
    from talkvid_ops.curate.profiles import load_profile
    from talkvid_ops.errors import TalkvidError

    errors = [f"{key}: not a field of the curate form" for key in sorted(set(params) - set(form))]
    params = {key: params.get(key, param.value) for key, param in form.items()}
    for key, param in form.items():
        for error in Draft202012Validator(param.schema).iter_errors(params[key]):
            errors.append(".".join([key, *map(str, error.absolute_path)]) + f": {error.message}")
    if errors:
        return errors  # the checks below assume well-formed fields
    try:
        profile = load_profile(params["profile"])
    except TalkvidError as exc:
        errors.append(f"profile: {exc}")
    else:
        for criterion, bounds in (params.get("thresholds") or {}).items():
            try:
                profile.with_thresholds({criterion: bounds})
            except TalkvidError as exc:
                errors.append(str(exc))
    if params.get("bench_spec"):
        try:
            load_bench_spec(params["bench_spec"])
        except TalkvidError as exc:
            errors.append(f"bench_spec: {exc}")
    return errors


def curate_request(ctx: Context, context: Mapping[str, Any]) -> StageRequest:
    """What a talkvid_curate run's form asks for: the profile with its threshold overrides and the dated release of
    the catalog as of the run's date."""
    from talkvid_ops.stages import StageRequest, resolve_profile

    params = context["params"]
    profile = resolve_profile(params["profile"], params.get("thresholds") or None)
    name, out_dir = release_location(ctx, profile, run_day(context), params.get("name"), params.get("out_dir"))
    return StageRequest(
        profile=profile,
        out_dir=out_dir,
        formats=params.get("formats") or None,
        bench_spec=params.get("bench_spec") or None,
        seed=params.get("seed", 0),
        name=name,
        as_of=release_as_of(context),
    )


def release_location(ctx: Context, profile: Profile, day: dt.date, name: str | None = None, out_dir: str | None = None) -> tuple[str, Path]:
    """A release's name and folder: by default one per profile version and day under the data dir."""
    name = name or f"{profile.name}-{profile.content_hash[:8]}-{day:%Y%m%d}"
    return name, Path(out_dir) if out_dir else ctx.settings.data_dir / "releases" / name


# --- what a DAG run made --------------------------------------------------------------------------------------------


def runs_of_dag_run(ctx: Context, dag_id: str, dag_run_id: str, stage: str) -> list:
    from sqlalchemy import select

    from talkvid_ops.catalog.models import Run

    with ctx.sessions() as session:
        return list(session.scalars(select(Run).where(Run.dag_id == dag_id, Run.dag_run_id == dag_run_id, Run.stage == stage)))


def deferred_batches(ctx: Context, dag_id: str, dag_run_id: str) -> int:
    """Batches the planners of a DAG run left for a later run (beyond the mapping bound)."""
    return sum((r.counts or {}).get("deferred", 0) for r in runs_of_dag_run(ctx, dag_id, dag_run_id, "plan"))


def rows_made_by(ctx: Context, model, run_ids: list[str], *conditions) -> int:
    """How many rows of `model` (a catalog table with run_id) the given runs wrote."""
    from sqlalchemy import func, select

    if not run_ids:
        return 0
    with ctx.sessions() as session:
        query = select(func.count()).select_from(model).where(model.run_id.in_(run_ids), *conditions)
        return session.scalar(query) or 0


def publish_task(asset: str, stage: str, table: str) -> None:
    """Succeeds (so the task's outlet emits `asset`) only when this DAG run's `stage` runs wrote `table` rows with
    media or results; skips otherwise, so consumers are not woken for nothing."""
    from talkvid_ops.catalog.models import Scoring, Video
    from talkvid_ops.catalog.status import ScoringStatus

    produced = {"video": (Video, Video.storage_path.is_not(None)), "scoring": (Scoring, Scoring.status == ScoringStatus.OK)}
    model, condition = produced[table]
    with task_context() as (ctx, context), ctx.run("publish", {"asset": asset}) as run:
        ti = context["ti"]
        made = rows_made_by(ctx, model, [r.id for r in runs_of_dag_run(ctx, ti.dag_id, ti.run_id, stage)], condition)
        run.count(table, made)
    if not made:
        _skip(f"nothing new in this run: not emitting the {asset} asset")


def failed_sources(ctx: Context, dag_id: str, dag_run_id: str) -> dict[str, str]:
    """The sources a crawl DAG run could not crawl, each with why: an error its discover or download runs recorded
    against the source (a listing that failed, an unreadable URL list, missing cookies), or every download it tried
    of the source's videos failed."""
    from sqlalchemy import select

    from talkvid_ops.catalog.models import Video
    from talkvid_ops.catalog.status import VideoStatus

    runs = [run for stage in ("crawl.discover", "crawl.download") for run in runs_of_dag_run(ctx, dag_id, dag_run_id, stage)]
    failed = {}
    for run in runs:
        for error in run.errors or []:
            if error.get("kind") == "source":
                failed.setdefault(error["item"], f"{error.get('error_class') or 'error'}: {error['reason']}")
    download_runs = [run.id for run in runs if run.stage == "crawl.download"]
    with ctx.sessions() as session:
        tried = session.execute(
            select(Video.source_id, Video.status, Video.error_class, Video.error_message).where(Video.run_id.in_(download_runs)).order_by(Video.id)
        ).all()
    by_source: dict[str, list] = {}
    for row in tried:
        by_source.setdefault(row.source_id, []).append(row)
    for source_id, videos in by_source.items():
        if all(v.status == VideoStatus.FAILED for v in videos):
            failed.setdefault(source_id, f"all {len(videos)} download(s) failed, the first with {videos[0].error_class}: {videos[0].error_message}")
    return failed


def check_sources_task() -> None:
    """Fails when a source of this crawl DAG run failed, naming each with its reason, so such a run is red in the
    grid; it runs beside `publish_videos`, so what was crawled stays committed and new videos still go downstream."""
    from airflow.sdk.exceptions import AirflowFailException
    from sqlalchemy import select

    from talkvid_ops.catalog.models import Source

    with task_context() as (ctx, context):
        ti = context["ti"]
        with ctx.run("check_sources", {}) as run:
            failed = failed_sources(ctx, ti.dag_id, ti.run_id)
            with ctx.sessions() as session:
                sources = {s.id: s for s in session.scalars(select(Source).where(Source.id.in_(list(failed))))}
            for source_id, reason in sorted(failed.items()):
                known = sources.get(source_id)
                run.error(source_id, reason, kind="source", name=known.name if known else None, locator=known.locator if known else None)
            run.count("sources_failed", len(failed))
    if failed:
        lines = [f"{e['name'] or e['item']} ({e['locator']}): {e['reason']}" for e in run.errors]
        raise AirflowFailException(f"{len(failed)} source(s) failed in this crawl (what was crawled is kept and published):\n" + "\n".join(lines))
    log.info("check_sources: no source failed (run %s)", run.id)


def backlog_task() -> bool:
    """True when a planner of this DAG run deferred batches: the next task triggers another run for them."""
    with task_context() as (ctx, context):
        ti = context["ti"]
        with ctx.run("backlog", {}) as run:
            run.count("deferred", deferred_batches(ctx, ti.dag_id, ti.run_id))
    return run.counts["deferred"] > 0
