"""The operators each runner builds. No Docker daemon or Kubernetes cluster exists here, so the Docker operator is
executed against a recording API client (the daemon's edge) and the pod is built as it would be sent."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.engine import make_url

DAGS = Path(__file__).resolve().parents[2] / "dags"
PASSWORD = "p@ss:w/rd%"  # characters that must survive URL quoting


def task_context(map_index: int = 3):
    ti = SimpleNamespace(dag_id="talkvid_process", run_id="manual__2026-01-02", task_id="score", map_index=map_index, try_number=2)
    return {"ti": ti, "run_id": ti.run_id, "dag": SimpleNamespace(dag_id=ti.dag_id)}


def parse_with_config(tmp_path, monkeypatch, runner_yaml: str, dag_id: str = "talkvid_process"):
    from airflow.dag_processing.dagbag import DagBag

    config = tmp_path / "talkvid.yaml"
    config.write_text(textwrap.dedent(runner_yaml))
    monkeypatch.setenv("TALKVID_CONFIG", str(config))
    bag = DagBag(str(DAGS))
    assert bag.import_errors == {}
    return bag.dags if dag_id is None else bag.dags[dag_id]


def test_inprocess_runner_exports_the_complete_task_identity(monkeypatch):
    from talkvid_ops.catalog.runs import airflow_ids
    from talkvid_ops.runners.inprocess import airflow_env, exported

    monkeypatch.setenv("AIRFLOW_CTX_MAP_INDEX", "9")  # left over from another task of the same process
    monkeypatch.delenv("AIRFLOW_CTX_TASK_ID", raising=False)
    with exported(airflow_env(task_context())):
        assert airflow_ids() == dict(dag_id="talkvid_process", dag_run_id="manual__2026-01-02", task_id="score", map_index=3, try_number=2)
    assert os.environ["AIRFLOW_CTX_MAP_INDEX"] == "9" and "AIRFLOW_CTX_TASK_ID" not in os.environ
    with exported(airflow_env(task_context(map_index=-1))):  # an unmapped task has no map index
        assert airflow_ids()["map_index"] is None


def test_catalog_url_from_an_airflow_connection(airflow_env):
    from airflow.sdk import Connection

    from talkvid_ops.errors import TalkvidError
    from talkvid_ops.runners.docker_runner import catalog_url_from_connection

    conn = Connection(conn_id="talkvid_catalog", conn_type="postgres", host="postgres", port=5432, login="talkvid", password=PASSWORD, schema="talkvid")
    url = make_url(catalog_url_from_connection(conn))
    assert (url.drivername, url.host, url.port, url.username, url.password, url.database) == (
        "postgresql+psycopg2",
        "postgres",
        5432,
        "talkvid",
        PASSWORD,
        "talkvid",
    )
    with pytest.raises(TalkvidError, match="postgres or sqlite"):
        catalog_url_from_connection(Connection(conn_id="x", conn_type="http", host="h"))


class RecordingDockerClient:
    """The Docker Engine API as docker-py's APIClient exposes it, recording calls instead of sending them.

    With `run_locally`, `start` runs the container's command as a local process with exactly the container's
    environment: what the operator image would do, minus the isolation.
    """

    def __init__(self, run_locally: bool = False):
        import docker

        self._real = docker.APIClient(base_url="tcp://127.0.0.1:9", version="1.43")  # builds payloads, never connects
        self.run_locally = run_locally
        self.created: dict = {}
        self.calls: list[str] = []
        self.process = None

    def images(self, name):
        self.calls.append("images")
        return [{"Id": name}]

    def create_host_config(self, **kwargs):
        return self._real.create_host_config(**kwargs)

    def create_container(self, **kwargs):
        self.calls.append("create")
        self.created = kwargs
        return {"Id": "c0ffee"}

    def attach(self, **kwargs):
        def logs():
            if self.process is None:
                yield b"scored 12 clips\n"
                return
            out, _ = self.process.communicate(timeout=300)
            yield from out.splitlines(keepends=True)

        return logs()

    def start(self, container_id):
        import subprocess
        import sys

        self.calls.append("start")
        if self.run_locally:
            env = {**self.created["environment"], "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
            self.process = subprocess.Popen(self.created["command"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait(self, container_id):
        return {"StatusCode": self.process.wait() if self.process else 0}

    def remove_container(self, container_id, **kwargs):
        self.calls.append("remove")


def test_docker_runner_runs_a_batch_in_the_gpu_image_with_the_catalog_from_a_connection(airflow_env, monkeypatch, tmp_path):
    from airflow.models.connection import Connection

    from talkvid_ops.config.runner import DockerRunnerConfig
    from talkvid_ops.runners.docker_runner import StageDockerOperator, docker_stage_kwargs

    conn = Connection(conn_id="talkvid_catalog", conn_type="postgres", host="postgres", port=5432, login="talkvid", password=PASSWORD, schema="talkvid")
    monkeypatch.setenv("AIRFLOW_CONN_TALKVID_CATALOG", conn.get_uri())
    config = DockerRunnerConfig(image="registry.example/talkvid-operator-gpu:1.0", network_mode="talkvid_default", container_config="/data/talkvid.yaml")
    op = StageDockerOperator(task_id="score", batch_id="b0123", **docker_stage_kwargs("score", config))
    client = RecordingDockerClient()
    op.__dict__["hook"] = SimpleNamespace(api_client=client)  # the daemon's edge
    op.execute(task_context())

    created = client.created
    assert client.calls == ["images", "create", "start", "remove"]
    assert created["image"] == "registry.example/talkvid-operator-gpu:1.0"
    assert created["command"] == ["talkvid", "score", "--batch", "b0123"]
    env = created["environment"]
    assert make_url(env["TALKVID_DATABASE_URL"]).password == PASSWORD and make_url(env["TALKVID_DATABASE_URL"]).host == "postgres"
    assert env["TALKVID_DATA_DIR"] == "/data" and env["TALKVID_CONFIG"] == "/data/talkvid.yaml"
    assert (env["AIRFLOW_CTX_DAG_ID"], env["AIRFLOW_CTX_TASK_ID"], env["AIRFLOW_CTX_MAP_INDEX"]) == ("talkvid_process", "score", "3")
    assert "TALKVID_DATABASE_URL" not in op.environment  # the password stays out of rendered templates
    host = created["host_config"]
    assert host["DeviceRequests"] == [{"Driver": "", "Count": 1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}]
    assert [(m["Target"], m["Source"], m["Type"], m["ReadOnly"]) for m in host["Mounts"]] == [
        ("/data", "talkvid-data", "volume", False),
        ("/models", "talkvid-models", "volume", True),
    ]
    assert host["NetworkMode"] == "talkvid_default" and host["ShmSize"] == 2 * 1024**3


def test_kubernetes_runner_builds_a_gpu_pod(airflow_env):
    from talkvid_ops.config.runner import KubernetesRunnerConfig
    from talkvid_ops.runners.kubernetes_runner import StagePodOperator, kubernetes_stage_kwargs

    config = KubernetesRunnerConfig(
        image="registry.example/talkvid-operator-gpu:1.0", gpus=2, stage_images={"segment": "registry.example/talkvid-whisperx:1.0"}
    )
    op = StagePodOperator(task_id="segment", batch_id="b42", do_xcom_push=False, **kubernetes_stage_kwargs("segment", config))
    pod = op.build_pod_request_obj(task_context(), dry_run=True)  # dry run: everything but asking the cluster
    spec = pod.spec
    (container,) = spec.containers
    assert pod.metadata.namespace == "talkvid"
    assert container.image == "registry.example/talkvid-whisperx:1.0"
    assert [*container.command, *container.args] == ["talkvid", "segment", "--batch", "b42"]
    assert container.resources.limits == {"memory": "32Gi", "nvidia.com/gpu": "2"}
    assert container.resources.requests == {"cpu": "4", "memory": "16Gi"}
    assert spec.node_selector == {"nvidia.com/gpu.present": "true"}
    assert [(t.key, t.operator, t.effect) for t in spec.tolerations] == [("nvidia.com/gpu", "Exists", "NoSchedule")]
    env = {e.name: e for e in container.env}
    assert env["TALKVID_DATA_DIR"].value == "/data"
    assert env["TALKVID_DATABASE_URL"].value_from.secret_key_ref.name == "talkvid-catalog"
    assert (env["AIRFLOW_CTX_DAG_RUN_ID"].value, env["AIRFLOW_CTX_MAP_INDEX"].value, env["AIRFLOW_CTX_TRY_NUMBER"].value) == ("manual__2026-01-02", "3", "2")
    assert {m.mount_path: m.read_only for m in container.volume_mounts} == {"/data": None, "/models": True}
    assert {v.persistent_volume_claim.claim_name for v in spec.volumes} == {"talkvid-data", "talkvid-models"}
    assert op.startup_timeout_seconds == 1800
    assert pod.metadata.labels["map_index"] == "3"


@pytest.mark.parametrize(
    "kind, operator",
    [("inprocess", "_PythonDecoratedOperator"), ("docker", "StageDockerOperator"), ("kubernetes", "StagePodOperator")],
)
def test_the_configured_runner_maps_stage_batches(airflow_env, tmp_path, monkeypatch, kind, operator):
    dag = parse_with_config(
        tmp_path,
        monkeypatch,
        f"""
        runner:
          kind: {kind}
          container_stages: [score]
          docker: {{image: "talkvid-operator-gpu:test"}}
          kubernetes: {{image: "talkvid-operator-gpu:test"}}
        """,
    )
    score, segment = dag.get_task("score"), dag.get_task("segment")
    assert score.is_mapped and (score.pool, score.queue) == ("gpu", "gpu")
    assert score.operator_class.__name__ == operator
    assert segment.operator_class.__name__ == "_PythonDecoratedOperator"  # not a container stage here
    mapped_over = score._get_specified_expand_input().value
    assert list(mapped_over) == ["batch_id"] and mapped_over["batch_id"].operator.task_id == "plan_score"  # batch ids only
    if kind != "inprocess":
        assert score.partial_kwargs["image"] == "talkvid-operator-gpu:test" and score.partial_kwargs["stage"] == "score"


def test_task_placement_comes_from_the_registry_unless_the_runner_config_overrides_it(airflow_env, tmp_path, monkeypatch):
    dags = parse_with_config(tmp_path, monkeypatch, "runner:\n  gpu_stages: [score]\n  egress_pool: web\n", dag_id=None)
    where = {(dag_id, t.task_id): (t.pool, t.queue) for dag_id, dag in dags.items() for t in dag.tasks}
    assert where[("talkvid_process", "score")] == ("gpu", "gpu")
    assert where[("talkvid_process", "segment")] == ("default_pool", "default")  # the registry's GPU stage, overridden
    assert where[("talkvid_crawl", "discover")] == where[("talkvid_crawl", "download")] == ("web", "default")  # egress
    assert all(where[("talkvid_curate", stage)] == ("default_pool", "default") for stage in ("decide", "labels", "speakers", "bench", "export"))


@pytest.mark.parametrize(
    "runner_yaml, message",
    [
        ("kind: slurm", "runner.kind"),
        ("container_stages: [decide]", "runner.container_stages: 'decide' is not one of the stages it can name (segment, score, caption)"),
        ("gpu_stages: [scroe]", "runner.gpu_stages: 'scroe' is not one of the stages it can name (crawl.discover,"),
        ("kubernetes: {stage_images: {export: x:1}}", "runner.kubernetes.stage_images: 'export' is not one"),
    ],
)
def test_a_bad_runner_config_is_a_dag_import_error_naming_the_field(airflow_env, tmp_path, monkeypatch, runner_yaml, message):
    from airflow.dag_processing.dagbag import DagBag

    config = tmp_path / "bad.yaml"
    config.write_text(f"runner:\n  {runner_yaml}\n")
    monkeypatch.setenv("TALKVID_CONFIG", str(config))
    errors = DagBag(str(DAGS)).import_errors
    assert len(errors) == 3 and all(message in str(e) for e in errors.values()), errors


def test_planning_maps_at_most_the_bound_and_leaves_the_rest_for_the_next_run(sqlite_url, tmp_path):
    from factories import add_source, add_video
    from sqlalchemy import select

    from talkvid_ops.catalog.batches import batch_items
    from talkvid_ops.catalog.models import Batch
    from talkvid_ops.config import Settings
    from talkvid_ops.context import Context
    from talkvid_ops.runners.inprocess import airflow_env, deferred_batches, exported
    from talkvid_ops.stages import stage_named

    ctx = Context(Settings(data_dir=tmp_path, database_url=sqlite_url))
    with ctx.sessions() as session:
        source_id = add_source(session)
        videos = {add_video(session, source_id, f"v{i}", status="probed", storage_path=f"media/v{i}.mp4") for i in range(5)}
        session.commit()
    with exported(airflow_env(task_context(map_index=-1))):
        first = stage_named("segment").plan(ctx, size=2, max_batches=2)
    with ctx.sessions() as session:
        planned = [v for batch_id in first for v in batch_items(session, batch_id, "segment")]
    assert len(first) == 2 and len(set(planned)) == 4 and set(planned) < videos  # batches, never single items
    assert deferred_batches(ctx, "talkvid_process", "manual__2026-01-02") == 1  # so the DAG triggers another run
    with ctx.sessions() as session:  # the deferred batch is planned again next run, not left behind as a row
        assert set(session.scalars(select(Batch.id).where(Batch.stage == "segment"))) == set(first)
    assert deferred_batches(ctx, "talkvid_process", "another-run") == 0


def test_the_backlog_trigger_records_its_run_before_handing_over_to_airflow(airflow_env, sqlite_url, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import DagRunTriggerException

    from talkvid_ops.catalog.models import Run
    from talkvid_ops.context import Context
    from talkvid_ops.runners.dag_tasks import RecordedTriggerDagRunOperator

    monkeypatch.setenv("TALKVID_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TALKVID_DATA_DIR", str(tmp_path))
    op = RecordedTriggerDagRunOperator(task_id="process_backlog", trigger_dag_id="talkvid_process", conf={})
    with pytest.raises(DagRunTriggerException) as raised:  # the task runner turns this into the new DAG run
        op.execute(task_context(map_index=-1))
    assert raised.value.trigger_dag_id == "talkvid_process"
    with Context.from_env().sessions() as session:
        (run,) = session.query(Run).all()
    assert (run.stage, run.dag_id, run.task_id, run.map_index, run.status) == ("trigger", "talkvid_process", "score", None, "succeeded")


def test_a_docker_runner_container_runs_its_batch_and_records_the_airflow_task(airflow_env, pg_server, cache_dir, tmp_path, monkeypatch):
    """The container's command, environment and data mount make a working stage run: the batch is segmented into
    the catalog named by the connection, and the run row names the Airflow task that started the container."""
    from airflow.models.connection import Connection

    from talkvid_ops.catalog import db
    from talkvid_ops.catalog.models import Clip, Run
    from talkvid_ops.config import Settings
    from talkvid_ops.config.runner import DockerRunnerConfig
    from talkvid_ops.context import Context
    from talkvid_ops.crawl.ingest import ingest_paths
    from talkvid_ops.demo import demo_videos
    from talkvid_ops.runners.docker_runner import StageDockerOperator, docker_stage_kwargs
    from talkvid_ops.stages import stage_named

    url = pg_server.create_database()
    db.upgrade(url)
    data_dir = tmp_path / "data"
    ctx = Context(Settings(data_dir=data_dir, database_url=url))
    ingest_paths(ctx, demo_videos(cache_dir, cache_dir / "demo-videos")[1:], copy=True)
    (batch_id,) = stage_named("segment").plan(ctx)
    catalog = make_url(url)
    conn = Connection(conn_id="talkvid_catalog", conn_type="postgres", host=catalog.host, port=catalog.port, login=catalog.username, schema=catalog.database)
    monkeypatch.setenv("AIRFLOW_CONN_TALKVID_CATALOG", conn.get_uri())
    config = DockerRunnerConfig(data_volume=str(data_dir), data_volume_type="bind", data_mount=str(data_dir), model_volume=None, gpus=0)
    op = StageDockerOperator(task_id="segment", batch_id=batch_id, **docker_stage_kwargs("segment", config))
    client = RecordingDockerClient(run_locally=True)
    op.__dict__["hook"] = SimpleNamespace(api_client=client)
    op.execute(task_context(map_index=4))

    assert client.created["host_config"].get("DeviceRequests") is None  # gpus: 0 asks for none
    with ctx.sessions() as session:
        (run,) = session.query(Run).filter(Run.stage == "segment").all()
        clips = session.query(Clip).filter(Clip.run_id == run.id).count()
    assert run.params["batch_id"] == batch_id and run.status == "succeeded" and clips > 0
    assert (run.dag_id, run.dag_run_id, run.task_id, run.map_index, run.try_number) == ("talkvid_process", "manual__2026-01-02", "score", 4, 2)


def test_the_container_entrypoint_needs_no_airflow():
    """The operator images carry no Airflow: `talkvid <stage> --batch` must not import it."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from talkvid_ops.cli import cli\n"
        "import talkvid_ops.segment.stage, talkvid_ops.score.stage  # what a batch run executes\n"
        "for stage in ('segment', 'score'):\n"
        "    result = CliRunner().invoke(cli, [stage, '--help'])\n"
        "    assert result.exit_code == 0 and '--batch' in result.output, result.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env={k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


@pytest.fixture
def curate_dag(airflow_db, tmp_path, monkeypatch):
    """The talkvid_curate DAG, parsed, for `dag.test()` on an empty data dir; the task identity that `dag.test()`
    leaves in this process's environment is removed afterwards."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("TALKVID_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TALKVID_DATABASE_URL", f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    monkeypatch.setenv("TALKVID_CONFIG", "")
    for key in [k for k in os.environ if k.startswith("AIRFLOW_CTX_")]:
        monkeypatch.delenv(key)
    bag = DagBag(str(DAGS))
    assert bag.import_errors == {}
    yield bag.dags["talkvid_curate"]
    for key in [k for k in os.environ if k.startswith("AIRFLOW_CTX_")]:
        del os.environ[key]


def task_states(dag_run) -> dict[str, tuple[str, int]]:
    """task id -> (state, try number) of a DAG run's task instances."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state, TaskInstance.try_number).where(
                TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
            )
        ).all()
    return {task_id: (state, try_number) for task_id, state, try_number in rows}


def test_curate_conf_errors_are_listed_at_once_each_naming_its_field(airflow_env):
    from talkvid_ops.runners import inprocess
    from talkvid_ops.runners.dag_tasks import curate_params

    def curate_conf_errors(conf):
        return inprocess.curate_conf_errors(conf, curate_params())

    assert curate_conf_errors({"thresholds": {"avg_movement": {"min": 85}}, "formats": ["parquet"]}) == []
    assert curate_conf_errors({"thresholds": {"qualty": {"min": 60}, "motion": {"backend": "lkk"}}, "seed": -1, "colour": "red"}) == [
        "colour: not a field of the curate form",
        "thresholds.motion.backend: 'lkk' is not one of ['cotracker3', 'lk', 'lk-fast']",
        "thresholds: Additional properties are not allowed ('qualty' was unexpected)",
        "seed: -1 is less than the minimum of 0",
    ]
    # well-formed, but wrong for the profile named or naming what does not exist
    errors = curate_conf_errors({"profile": "no-such-profile", "bench_spec": "no-such-spec"})
    assert [e.split(":")[0] for e in errors] == ["profile", "bench_spec"] and "no-such-spec" in errors[1]
    (error,) = curate_conf_errors({"thresholds": {"quality": {"min": 60}}})
    assert error.startswith("thresholds.quality: its rules measure on different scales")


def test_the_validate_task_fails_a_bad_conf_in_one_try_and_nothing_runs_after_it(curate_dag):
    dag_run = curate_dag.test(run_conf={"profile": "no-such-profile", "thresholds": {"quality": {"min": 60}}})
    states = task_states(dag_run)
    assert dag_run.state == "failed"
    assert states["validate"] == ("failed", 1)
    assert {states[t][0] for t in ("decide", "labels", "speakers", "bench", "export")} == {"upstream_failed"}


def test_a_config_error_in_a_later_task_fails_it_without_retries(curate_dag, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from talkvid_ops.errors import ConfigError
    from talkvid_ops.runners.inprocess import config_errors_fail_the_task

    with pytest.raises(AirflowFailException, match="config error \\(not retried\\): curate.bench_sepc"), config_errors_fail_the_task():
        raise ConfigError("curate.bench_sepc: Extra inputs are not permitted")
    # the stage config turns bad after the DAG was parsed: the conf is fine, decide cannot load its config
    bad = tmp_path / "talkvid.yaml"
    bad.write_text("curate:\n  bench_sepc: talkvid-bench\n")
    monkeypatch.setenv("TALKVID_CONFIG", str(bad))
    assert curate_dag.get_task("decide").retries >= 1
    dag_run = curate_dag.test(run_conf={"thresholds": {"avg_movement": {"min": 85}}})
    states = task_states(dag_run)
    assert states["validate"] == ("success", 1)
    assert states["decide"] == ("failed", 1)
    assert states["labels"][0] == "upstream_failed"


def test_each_task_log_ends_in_a_one_line_summary(sqlite_url, tmp_path):
    from factories import add_clip, add_run, add_source, add_video

    from talkvid_ops.config import Settings
    from talkvid_ops.context import Context
    from talkvid_ops.curate.decide import decide
    from talkvid_ops.runners.inprocess import summary

    ctx = Context(Settings(data_dir=tmp_path, database_url=sqlite_url))
    assert summary("decide", decide(ctx, "talkvid-code")).startswith("decide: nothing to do (run ")  # an empty catalog
    with ctx.sessions() as session:
        add_clip(session, add_video(session, add_source(session), "summary"), add_run(session), 0, 100)
        session.commit()
    result = decide(ctx, "talkvid-code")
    assert summary("decide", result) == f"decide: clips=1, failed=0, passed=0, undecided=1 (run {result['run_id']})"
    export = {"run_id": "r1", "release_id": "rel", "out_dir": "/data/releases/first", "clips": 3, "seed": 7}
    assert summary("export", export) == "export: clips=3; release at /data/releases/first (run r1)"
