"""How stage tasks run: in-process (embedded default), in a Docker container, or in a Kubernetes pod.

Also the Airflow-side settings the DAGs read at parse time (schedules, pools, queues, mapping bounds), so one YAML
file (`runner:` in TALKVID_CONFIG) describes a deployment. Stage names here are checked against the stage registry
(`talkvid_ops.stages`) when a DAG file reads this config (`runners.dag_tasks.runner_config`); this module does not
import the registry, which imports the stages, which import this config.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ContainerRunnerConfig(BaseModel):
    """What the Docker and Kubernetes runners share: the operator image and where data, models and config are."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field("talkvid-operator-gpu:latest", description="image with CUDA torch and the production models")
    stage_images: dict[str, str] = Field(default_factory=dict, description="per-stage image override, e.g. segment: talkvid-operator-whisperx:latest")
    data_mount: str = Field("/data", description="where the data volume is mounted; must equal TALKVID_DATA_DIR on workers")
    model_mount: str = "/models"
    container_config: str | None = Field(None, description="TALKVID_CONFIG inside the container, e.g. a file on the data volume")
    gpus: int = Field(1, ge=0, description="GPUs per container")


class DockerRunnerConfig(ContainerRunnerConfig):
    """DockerOperator settings: the daemon, its network, the shared volumes, the catalog connection."""

    docker_url: str = "unix://var/run/docker.sock"
    network_mode: str | None = Field(None, description="the compose network, so containers reach the catalog database")
    data_volume: str = Field("talkvid-data", description="named volume (or host path) holding media and releases")
    data_volume_type: Literal["volume", "bind"] = "volume"
    model_volume: str | None = Field("talkvid-models", description="volume holding the model directory (read-only)")
    catalog_conn_id: str = Field("talkvid_catalog", description="Airflow connection holding the catalog database")
    shm_size_bytes: int | None = Field(2 * 1024**3, description="PyTorch data loaders need more than Docker's 64 MB")
    auto_remove: Literal["never", "success", "force"] = "success"


class Toleration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = "NoSchedule"


class KubernetesRunnerConfig(ContainerRunnerConfig):
    """KubernetesPodOperator settings: GPU limits, scheduling onto GPU nodes, claims and the catalog secret."""

    namespace: str = "talkvid"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    service_account: str | None = None
    kubernetes_conn_id: str | None = Field(None, description="None: in-cluster config of the Airflow worker")
    cpu_request: str = "4"
    memory_request: str = "16Gi"
    memory_limit: str = "32Gi"
    node_selector: dict[str, str] = Field(default_factory=lambda: {"nvidia.com/gpu.present": "true"})
    tolerations: list[Toleration] = Field(default_factory=lambda: [Toleration(key="nvidia.com/gpu")])
    data_claim: str = Field("talkvid-data", description="PersistentVolumeClaim holding media and releases")
    model_claim: str | None = Field("talkvid-models", description="PersistentVolumeClaim of the model directory")
    catalog_secret: str = Field("talkvid-catalog", description="Kubernetes Secret holding the catalog database URL")
    catalog_secret_key: str = "url"
    startup_timeout_s: int = Field(1800, ge=60, description="pulling a multi-GB CUDA image onto a fresh node is slow")


class RunnerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["inprocess", "docker", "kubernetes"] = "inprocess"
    container_stages: list[str] | None = Field(
        None,
        description="stages the docker/kubernetes runner runs in a container, the rest run on the Airflow worker; None: every stage the registry can run in a container",
    )
    gpu_stages: list[str] | None = Field(None, description="stages held to the GPU pool and queue; None: the stages the registry says want a GPU")
    gpu_pool: str = "gpu"
    gpu_queue: str = Field("gpu", description="Celery queue served by the GPU worker")
    egress_pool: str = Field("talkvid_egress", description="Airflow pool bounding concurrent downloads")
    sources_per_download_task: int = Field(5, ge=1, description="sources one mapped download task crawls")
    max_mapped_tasks: int = Field(500, ge=1, le=1000, description="batches per DAG run; the rest wait for the next run (Airflow maps at most 1024)")
    retries: int = Field(2, ge=0)
    retry_delay_s: int = Field(120, ge=0)
    crawl_schedule: str | None = Field("@daily", description="cron or preset for talkvid_crawl; None: manual only")
    curate_schedule: str = Field("@daily", description="cron or preset for talkvid_curate (backfill needs one)")
    docker: DockerRunnerConfig = DockerRunnerConfig()
    kubernetes: KubernetesRunnerConfig = KubernetesRunnerConfig()
