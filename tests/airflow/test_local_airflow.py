"""The local UI (`make airflow`) listens on loopback only: its api-server on 127.0.0.1, and no log server at all
(Airflow 3.3 would bind its log servers to every interface)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from talkvid_ops.catalog.pgserver import _free_port

LOOPBACK = {"127.0.0.1", "::1"}
COMPONENTS_UP = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def listening(root: psutil.Process) -> dict[tuple[str, int], str]:
    """(address, port) -> command line of every TCP socket the process tree listens on."""
    sockets = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    sockets[(conn.laddr.ip, conn.laddr.port)] = " ".join(proc.cmdline())
        except psutil.NoSuchProcess:
            continue
    return sockets


def health(port: int) -> dict:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5).json()
    except (httpx.HTTPError, ValueError):  # not listening yet
        return {}


@pytest.fixture
def local_airflow(tmp_path):
    """`python -m talkvid_ops.runners.local_airflow` in a private AIRFLOW_HOME (SQLite, an empty DAG folder), until
    every component reports healthy; stopped by SIGTERM at the end."""
    port = _free_port()
    (tmp_path / "dags").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}  # nothing of the in-pytest Airflow
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__DAGS_FOLDER=str(tmp_path / "dags"), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__API__PORT=str(port), AIRFLOW__API__WORKERS="1")  # fmt: skip
    with open(tmp_path / "airflow.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "talkvid_ops.runners.local_airflow"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 240
        while not all(health(port).get(c, {}).get("status") == "healthy" for c in COMPONENTS_UP):
            assert proc.poll() is None, (tmp_path / "airflow.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"not healthy: {health(port)}\n" + (tmp_path / "airflow.log").read_text()[-3000:]
            time.sleep(2)
        yield proc, port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_the_local_ui_listens_on_loopback_only_and_serves_no_logs(local_airflow):
    proc, port = local_airflow
    tree = psutil.Process(proc.pid)
    sockets = listening(tree)
    assert ("127.0.0.1", port) in sockets and "api_server" in sockets[("127.0.0.1", port)]
    assert {address for address, _ in sockets} <= LOOPBACK, sockets
    assert not [p for p in tree.children(recursive=True) if " ".join(p.cmdline()).startswith("airflow serve-logs")]  # its process title
