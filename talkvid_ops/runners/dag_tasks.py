"""Building blocks of the DAG files: the assets, default arguments, and stage tasks made by the configured runner,
placed (pool, queue, container or not) by what the stage registry declares and the runner config overrides.

Imported at DAG parse time, so it imports only Airflow's SDK, our config and the registry; the Docker and Kubernetes
providers are imported only when that runner is configured, and stage code only when a task runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import Asset, Param, XComArg, task

from talkvid_ops.config import Settings
from talkvid_ops.config.runner import RunnerConfig
from talkvid_ops.errors import ConfigError
from talkvid_ops.runners import inprocess
from talkvid_ops.stages import STAGES, Stage, stage_named

VIDEOS = Asset("videos")  # new media in the catalog (emitted by talkvid_crawl)
SCORES = Asset("scores")  # new raw scores in the catalog (emitted by talkvid_process)
START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TAGS = ["talkvid"]


def runner_config() -> RunnerConfig:
    """The runner section of TALKVID_CONFIG, read when the DAG file is parsed, its stage names checked."""
    config = Settings.from_env().pipeline.runner
    check_stage_names(config)
    return config


def check_stage_names(config: RunnerConfig) -> None:
    """Every stage the runner config names is a registered stage; those sent to containers can run in one."""
    in_containers = [s.name for s in STAGES.values() if s.resources.container]
    named = {
        "runner.gpu_stages": (config.gpu_stages or [], list(STAGES)),
        "runner.container_stages": (config.container_stages or [], in_containers),
        "runner.docker.stage_images": (list(config.docker.stage_images), in_containers),
        "runner.kubernetes.stage_images": (list(config.kubernetes.stage_images), in_containers),
    }
    for field, (names, allowed) in named.items():
        for name in names:
            if name not in allowed:
                raise ConfigError(f"{field}: {name!r} is not one of the stages it can name ({', '.join(allowed)})")


def wants_gpu(stage: Stage, config: RunnerConfig) -> bool:
    return stage.resources.gpu if config.gpu_stages is None else stage.name in config.gpu_stages


def runs_in_container(stage: Stage, config: RunnerConfig) -> bool:
    """Whether the docker/kubernetes runner sends the stage's batches to a container."""
    if config.kind == "inprocess":
        return False
    return stage.resources.container if config.container_stages is None else stage.name in config.container_stages


def dag_args(config: RunnerConfig) -> dict[str, Any]:
    """What every talkvid DAG shares: no catch-up of missed intervals, one run at a time, retried tasks."""
    return {
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "default_args": {
            "owner": "talkvid",
            "retries": config.retries,
            "retry_delay": dt.timedelta(seconds=config.retry_delay_s),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": dt.timedelta(hours=1),
        },
    }


def placement(stage: Stage, config: RunnerConfig) -> dict[str, str]:
    """Pool and queue of a stage's tasks: GPU stages share the GPU pool and go to the GPU worker's queue; stages
    that reach the internet share the egress pool."""
    if wants_gpu(stage, config):
        return {"pool": config.gpu_pool, "queue": config.gpu_queue}
    if stage.resources.egress:
        return {"pool": config.egress_pool}
    return {}


def task_id(stage: Stage) -> str:
    """A stage's task in its DAG: crawl.discover is the crawl DAG's `discover`."""
    return stage.name.rpartition(".")[2]


class RecordedTriggerDagRunOperator(TriggerDagRunOperator):
    """Triggers a DAG run and, like every talkvid task, records a `run` row naming its Airflow task."""

    def execute(self, context):
        from talkvid_ops.context import Context

        with inprocess.exported(inprocess.airflow_env(context)), Context.from_env().run("trigger", {"dag_id": self.trigger_dag_id}) as run:
            run.count("dag_runs")
        return super().execute(context)


def batch_stage(name: str, batch_ids: XComArg, config: RunnerConfig):
    """One mapped task per batch of the stage, run by the configured runner."""
    stage = stage_named(name)
    where = {"task_id": task_id(stage), **placement(stage, config)}
    if not runs_in_container(stage, config):
        return task(python_callable=inprocess.batch_task, **where).partial(stage=stage.name).expand(batch_id=batch_ids)
    if config.kind == "docker":
        from talkvid_ops.runners.docker_runner import StageDockerOperator, docker_stage_kwargs

        return StageDockerOperator.partial(**where, **docker_stage_kwargs(stage.name, config.docker)).expand(batch_id=batch_ids)
    from talkvid_ops.runners.kubernetes_runner import StagePodOperator, kubernetes_stage_kwargs

    return StagePodOperator.partial(**where, **kubernetes_stage_kwargs(stage.name, config.kubernetes)).expand(batch_id=batch_ids)


def validate_curate_conf():
    """The curate DAG's first task: every error of the run's conf at once, failing in one try (a retry cannot fix a
    typo, and a retried run would hold the next one in the queue)."""
    return task(python_callable=inprocess.validate_curate_task, task_id="validate", retries=0)()


def curate_stage(name: str, config: RunnerConfig):
    """One task running a curate stage on what the DAG run's form asks for."""
    stage = stage_named(name)
    return task(python_callable=inprocess.curate_task, task_id=task_id(stage), **placement(stage, config))(stage.name)


BOUND = {"type": ["number", "null"]}


def thresholds_schema() -> dict[str, Any]:
    """JSON Schema of the form's threshold overrides: one property per criterion of the shipped profiles, its
    backends an enum (the metric each measures in the description), so a typo is refused when the run is triggered."""
    from talkvid_ops.curate.profiles import load_profile, shipped_profiles

    backends: dict[str, dict[str, set[str]]] = {}  # criterion -> backend -> metrics
    for name in sorted(shipped_profiles()):
        for criterion, spec in load_profile(name).criteria.items():
            for rule in spec.rules:
                backends.setdefault(criterion, {}).setdefault(rule.backend, set()).add(rule.metric)
    return {
        "type": "object",
        "properties": {
            criterion: {
                "type": "object",
                "description": "; ".join(f"{backend}: {', '.join(sorted(metrics))}" for backend, metrics in sorted(by_backend.items())),
                "properties": {"min": BOUND, "max": BOUND, "backend": {"type": "string", "enum": sorted(by_backend)}},
                "additionalProperties": False,
                "minProperties": 1,
            }
            for criterion, by_backend in sorted(backends.items())
        },
        "additionalProperties": False,
    }


RELEASE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def curate_params() -> dict[str, Param]:
    """The talkvid_curate form; Airflow validates a run's conf against these JSON Schemas before it starts."""
    from talkvid_ops.config.export import ALL_FORMATS
    from talkvid_ops.curate.profiles import shipped_profiles

    return {
        "profile": Param(
            "talkvid-code",
            type="string",
            minLength=1,
            title="Threshold profile",
            description="a shipped profile name or the path of a profile YAML file",
            examples=sorted(shipped_profiles()),
        ),
        "thresholds": Param(
            {},
            title="Threshold overrides",
            description='bounds per criterion, e.g. {"avg_movement": {"min": 85}} or {"quality": {"backend": "dover", "min": 7.5}}; criteria and backends are those of the shipped profiles',
            **thresholds_schema(),
        ),
        "bench_spec": Param(
            None, type=["null", "string"], minLength=1, title="Bench spec", description="a shipped bench spec name or YAML path (empty: the configured one)"
        ),
        "formats": Param(
            [],
            type="array",
            items={"type": "string", "enum": list(ALL_FORMATS)},
            uniqueItems=True,
            examples=list(ALL_FORMATS),  # an array with examples is a multi-select in the trigger form
            title="Export formats",
            description="empty: the configured formats",
        ),
        "out_dir": Param(None, type=["null", "string"], title="Output folder", description="empty: <data dir>/releases/<name>"),
        "name": Param(None, type=["null", "string"], pattern=RELEASE_NAME, title="Release name", description="empty: profile, its hash and the run's date"),
        "seed": Param(0, type="integer", minimum=0, title="Bench sampling seed"),
        "preset": preset_param(),
    }


def preset_param() -> Param:
    """The config preset of a DAG run (empty: the worker's TALKVID_PRESET, if any)."""
    from talkvid_ops.config import shipped_presets

    return Param(None, type=["null", "string"], enum=[None, *sorted(shipped_presets())], title="Config preset",
                 description="talkvid-released: TalkVid's released pipeline; TALKVID_CONFIG overrides it key by key")  # fmt: skip
