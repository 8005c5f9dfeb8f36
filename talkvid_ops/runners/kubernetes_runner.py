"""The Kubernetes runner: one batch per pod on a GPU node.

The pod asks for `nvidia.com/gpu`, tolerates the GPU nodes' taint, selects them by label, mounts the data and
model claims, reads the catalog URL from a Kubernetes Secret, and gets the task's Airflow identity in its
environment so the `run` row it writes names its DAG, run and task.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.secret import Secret
from kubernetes.client import models as k8s

from talkvid_ops.config import ENV_CONFIG_FILE, ENV_DATA_DIR, ENV_DATABASE_URL
from talkvid_ops.config.runner import KubernetesRunnerConfig
from talkvid_ops.runners.inprocess import airflow_env
from talkvid_ops.stages import stage_named


class StagePodOperator(KubernetesPodOperator):
    """`talkvid <stage> --batch <batch_id>` in a pod."""

    def __init__(self, *, stage: str, batch_id: str, **kwargs: Any) -> None:
        command = stage_named(stage).batch_command(batch_id)
        super().__init__(cmds=command[:1], arguments=command[1:], name=f"talkvid-{stage}", **kwargs)
        self.stage = stage
        self.batch_id = batch_id

    def build_pod_request_obj(self, context=None, *, dry_run: bool = False) -> k8s.V1Pod:
        if context is not None:
            identity = airflow_env(context)
            self.env_vars = [e for e in (self.env_vars or []) if e.name not in identity]
            self.env_vars.extend(k8s.V1EnvVar(name=k, value=v) for k, v in identity.items())
        return super().build_pod_request_obj(context, dry_run=dry_run)


def kubernetes_stage_kwargs(stage: str, config: KubernetesRunnerConfig) -> dict[str, Any]:
    """Everything but the batch id: the `partial` of a mapped StagePodOperator."""
    volumes = [k8s.V1Volume(name="data", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=config.data_claim))]
    mounts = [k8s.V1VolumeMount(name="data", mount_path=config.data_mount)]
    if config.model_claim:
        volumes.append(
            k8s.V1Volume(name="models", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=config.model_claim, read_only=True))
        )
        mounts.append(k8s.V1VolumeMount(name="models", mount_path=config.model_mount, read_only=True))
    env = [k8s.V1EnvVar(name=ENV_DATA_DIR, value=config.data_mount)]
    if config.container_config:
        env.append(k8s.V1EnvVar(name=ENV_CONFIG_FILE, value=config.container_config))
    limits = {"memory": config.memory_limit}
    if config.gpus:
        limits["nvidia.com/gpu"] = str(config.gpus)
    return dict(
        stage=stage,
        namespace=config.namespace,
        image=config.stage_images.get(stage, config.image),
        image_pull_policy=config.image_pull_policy,
        service_account_name=config.service_account,
        kubernetes_conn_id=config.kubernetes_conn_id,
        in_cluster=config.kubernetes_conn_id is None,
        env_vars=env,
        secrets=[Secret("env", ENV_DATABASE_URL, config.catalog_secret, config.catalog_secret_key)],
        container_resources=k8s.V1ResourceRequirements(requests={"cpu": config.cpu_request, "memory": config.memory_request}, limits=limits),
        node_selector=dict(config.node_selector),
        tolerations=[k8s.V1Toleration(**t.model_dump()) for t in config.tolerations],
        volumes=volumes,
        volume_mounts=mounts,
        startup_timeout_seconds=config.startup_timeout_s,
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
    )
