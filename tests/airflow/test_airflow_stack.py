"""The production stack's files: docker-compose.yml parses (Debian's docker-compose) and wires what the DAGs expect,
the Dockerfile's stages and copies are consistent with the repo and its pins, and the catalog database init script
works on a real PostgreSQL. No Docker engine exists here, so images are not built."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from talkvid_ops.config import PipelineConfig
from talkvid_ops.config.runner import RunnerConfig

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {"AIRFLOW_DB_PASSWORD": "adb0", "TALKVID_DB_PASSWORD": "tdb0", "AIRFLOW_JWT_SECRET": "jwt0", "AIRFLOW_FERNET_KEY": "fk0",
           "AIRFLOW_ADMIN_PASSWORD": "admin0"}  # fmt: skip
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-worker-gpu",
    "airflow-init",
}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        ["docker-compose", "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )


@pytest.fixture(scope="module")
def compose():
    proc = compose_config(SECRETS)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def test_compose_has_the_official_airflow_services_plus_a_gpu_worker(compose):
    services = compose["services"]
    assert set(services) == AIRFLOW_SERVICES | {"postgres", "redis"}
    commands = {name: " ".join(s["command"]) if isinstance(s.get("command"), list) else s.get("command") for name, s in services.items()}
    assert commands["airflow-apiserver"] == "api-server" and commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-scheduler"] == "scheduler" and commands["airflow-triggerer"] == "triggerer"
    runner = RunnerConfig()
    assert "--queues default" in commands["airflow-worker"]
    assert f"--queues {runner.gpu_queue}" in commands["airflow-worker-gpu"]
    (device,) = services["airflow-worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"] and device["count"] == 1
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == SECRETS["AIRFLOW_JWT_SECRET"], name  # one secret for all
        assert any(v.endswith(":/data") or ":/data:" in v for v in services[name]["volumes"]), name
    assert services["airflow-apiserver"]["ports"] == ["127.0.0.1:8080:8080/tcp"]  # the UI is not published beyond the host


def test_compose_keeps_metadata_and_catalog_in_separate_databases(compose):
    from sqlalchemy.engine import make_url

    env = compose["services"]["airflow-scheduler"]["environment"]
    metadata = make_url(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    catalog = make_url(env["TALKVID_DATABASE_URL"])
    assert (metadata.host, catalog.host) == ("postgres", "postgres")
    assert metadata.database != catalog.database and metadata.username != catalog.username
    assert catalog.password == SECRETS["TALKVID_DB_PASSWORD"]
    connection = make_url(env["AIRFLOW_CONN_TALKVID_CATALOG"].replace("postgres://", "postgresql://", 1))
    assert (connection.database, connection.username) == (catalog.database, catalog.username)
    postgres = compose["services"]["postgres"]
    assert any(v.endswith(":/docker-entrypoint-initdb.d:ro") for v in postgres["volumes"])


def test_compose_init_migrates_both_databases_and_creates_the_pools_the_dags_use(compose):
    script = compose["services"]["airflow-init"]["command"][-1]
    runner = PipelineConfig.from_yaml(ROOT / "docker" / "talkvid.yaml").runner  # the stack's own stage config
    assert "airflow db migrate" in script and "talkvid init" in script
    pools = set(re.findall(r"airflow pools set (\S+) \d+", script))
    assert pools == {runner.egress_pool, runner.gpu_pool}
    assert runner.docker.container_config and runner.docker.container_config.startswith(runner.docker.data_mount)
    assert f"cp /opt/talkvid/talkvid.yaml {runner.docker.container_config}" in script
    assert runner.docker.network_mode == compose["networks"]["default"]["name"]
    assert runner.docker.data_volume in compose["volumes"] and runner.docker.model_volume in compose["volumes"]


def test_compose_holds_no_secret_and_says_which_is_missing():
    proc = compose_config({k: v for k, v in SECRETS.items() if k != "AIRFLOW_JWT_SECRET"})
    assert proc.returncode != 0 and "AIRFLOW_JWT_SECRET" in proc.stderr


def dockerfile_stages() -> dict[str, list[str]]:
    stages: dict[str, list[str]] = {}
    current = None
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        match = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, re.I)
        if match:
            current = match.group(2)
            stages[current] = [line]
        elif current and line and not line.startswith("#"):
            stages[current].append(line)
    return stages


def test_dockerfile_stages_copy_only_what_exists_and_is_in_the_context():
    stages = dockerfile_stages()
    assert {"airflow", "airflow-gpu", "operator-gpu", "operator-whisperx"} <= set(stages)
    ignored = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")]
    copies = [line.split()[1:-1] for lines in stages.values() for line in lines if line.startswith("COPY") and "--from=" not in line]
    sources = [s for args in copies for s in args if not s.startswith("--")]
    assert {"pyproject.toml", "constraints.txt", "talkvid_ops", "dags"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), f"{source} is excluded by .dockerignore"
    for stage in ("operator-gpu", "operator-whisperx"):
        lineage = stages[stage][0].split()[1]
        assert lineage == "operator-base" and 'ENTRYPOINT ["talkvid"]' in stages["operator-base"]


def test_dockerfile_pins_agree_with_the_constraints():
    pins = dict(line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line)
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", (ROOT / "Dockerfile").read_text(), re.M))
    assert args["AIRFLOW_VERSION"] == pins["apache-airflow"]
    assert args["TORCH_VERSION"] == pins["torch"]
    assert args["ONNXRUNTIME_GPU_VERSION"] == pins["onnxruntime"]  # the GPU build replaces the CPU one


def test_postgres_init_script_creates_the_catalog_database(pg_server):
    from talkvid_ops.catalog import db

    env = {
        **os.environ,
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "postgres",
        "TALKVID_DB_PASSWORD": "s3cret'quote",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg_server.port),
    }
    proc = subprocess.run(["sh", str(ROOT / "docker" / "postgres-init" / "10-talkvid-catalog.sh")], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    url = f"postgresql+psycopg2://talkvid@127.0.0.1:{pg_server.port}/talkvid"
    db.upgrade(url)  # the new role owns the new database: it can create the catalog there
    assert db.current_revision(url) == db.head_revision(url)
