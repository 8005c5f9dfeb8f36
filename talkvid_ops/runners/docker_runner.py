"""The Docker runner: one batch per container of the operator image, on the GPU the device request asks for.

The container talks to the catalog directly; its URL comes from an Airflow connection (resolved on the worker at
execution time and passed as a private variable, so it never shows in rendered templates or logs), and the task's
Airflow identity is passed in the environment so the container's `run` row names its DAG, run and task.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.docker.operators.docker import DockerOperator
from docker.types import DeviceRequest, Mount

from talkvid_ops.config import ENV_CONFIG_FILE, ENV_DATA_DIR, ENV_DATABASE_URL
from talkvid_ops.config.runner import DockerRunnerConfig
from talkvid_ops.redact import register_secret
from talkvid_ops.runners.inprocess import airflow_env
from talkvid_ops.stages import stage_named


def catalog_url_from_connection(conn) -> str:
    """A SQLAlchemy URL for the catalog from an Airflow connection (postgres or sqlite)."""
    from sqlalchemy.engine import URL

    from talkvid_ops.errors import TalkvidError

    if conn.conn_type in ("postgres", "postgresql"):
        url = URL.create(
            "postgresql+psycopg2",
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or None,
            port=conn.port or None,
            database=conn.schema or None,
        )
        register_secret(conn.password)  # the container's output comes back into the task log
        return url.render_as_string(hide_password=False)
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host or conn.schema}"
    raise TalkvidError(f"connection {conn.conn_id!r}: the catalog must be a postgres or sqlite connection, not {conn.conn_type!r}")


class StageDockerOperator(DockerOperator):
    """`talkvid <stage> --batch <batch_id>` in a container."""

    def __init__(self, *, stage: str, batch_id: str, catalog_conn_id: str, **kwargs: Any) -> None:
        super().__init__(command=stage_named(stage).batch_command(batch_id), **kwargs)
        self.stage = stage
        self.batch_id = batch_id
        self.catalog_conn_id = catalog_conn_id

    def execute(self, context):
        from airflow.sdk import BaseHook

        self.environment.update(airflow_env(context))
        self._private_environment[ENV_DATABASE_URL] = catalog_url_from_connection(BaseHook.get_connection(self.catalog_conn_id))
        return super().execute(context)


def docker_stage_kwargs(stage: str, config: DockerRunnerConfig) -> dict[str, Any]:
    """Everything but the batch id: the `partial` of a mapped StageDockerOperator."""
    mounts = [Mount(target=config.data_mount, source=config.data_volume, type=config.data_volume_type)]
    if config.model_volume:
        mounts.append(Mount(target=config.model_mount, source=config.model_volume, type="volume", read_only=True))
    environment = {ENV_DATA_DIR: config.data_mount}
    if config.container_config:
        environment[ENV_CONFIG_FILE] = config.container_config
    return dict(
        stage=stage,
        image=config.stage_images.get(stage, config.image),
        catalog_conn_id=config.catalog_conn_id,
        docker_url=config.docker_url,
        network_mode=config.network_mode,
        mounts=mounts,
        environment=environment,
        device_requests=[DeviceRequest(count=config.gpus, capabilities=[["gpu"]])] if config.gpus else None,
        shm_size=config.shm_size_bytes,
        auto_remove=config.auto_remove,
        mount_tmp_dir=False,  # the daemon may be remote: nothing of the worker's disk is mounted but the volumes
    )
