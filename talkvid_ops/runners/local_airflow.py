"""The local Airflow UI on one machine, reachable from it only: `make airflow` (`python -m talkvid_ops.runners.local_airflow`).

It starts what `airflow standalone` starts (api-server, scheduler, dag-processor, triggerer, after `airflow db
migrate`) but without Airflow's log servers. Airflow 3.3 binds them to every interface and has no setting for their
host (`airflow/utils/serve_logs/core.py` runs uvicorn with `host=""`): the scheduler's, which the LocalExecutor
needs to serve the logs of running tasks to an api-server on another machine ([logging] worker_log_server_port,
8793), and the triggerer's (trigger_log_server_port, 8794); `airflow standalone` starts both and cannot be told not
to. On one machine they serve nothing the api-server cannot read itself: it reads task logs, running or finished,
from the log folder ([logging] base_log_folder). So each component that would start one gets `--skip-serve-logs`,
and the api-server listens on 127.0.0.1 unless AIRFLOW__API__HOST says otherwise.

Each component runs in its own process group; Ctrl-C or SIGTERM stops them all, and so does any of them exiting.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

# `airflow <args>` per component; the log servers stay off (see the module docstring)
COMPONENTS: dict[str, list[str]] = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
# Settings of the local run unless the environment has its own: what `airflow standalone` would pick, on loopback
LOCAL_DEFAULTS = {
    "AIRFLOW__API__HOST": "127.0.0.1",
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__CORE__PARALLELISM": "4",  # not 32 worker processes on a small machine
}
STOP_GRACE_S = 15


def airflow_command() -> str:
    """The `airflow` of this Python environment (a virtualenv's bin need not be on PATH)."""
    beside = Path(sys.executable).parent / "airflow"
    return str(beside) if beside.exists() else shutil.which("airflow") or "airflow"


def local_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    for key, value in LOCAL_DEFAULTS.items():
        env.setdefault(key, value)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the components' own subprocesses
    return env


def stop(processes: dict[str, subprocess.Popen]) -> None:
    """SIGTERM to every component's process group, SIGKILL to those still there after the grace period (some
    Airflow components ignore SIGTERM at times)."""
    for proc in processes.values():
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in processes.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def main() -> int:
    env = local_env()
    airflow = airflow_command()
    subprocess.run([airflow, "db", "migrate"], env=env, check=True)
    processes: dict[str, subprocess.Popen] = {}

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        for name, args in COMPONENTS.items():
            processes[name] = subprocess.Popen([airflow, *args], env=env, start_new_session=True)
        home = env.get("AIRFLOW_HOME", str(Path.home() / "airflow"))
        print(
            f"Airflow UI at http://{env['AIRFLOW__API__HOST']}:{env.get('AIRFLOW__API__PORT', '8080')} (no log servers); "
            f"the admin password is in {home}/simple_auth_manager_passwords.json.generated",
            flush=True,
        )
        while all(proc.poll() is None for proc in processes.values()):
            time.sleep(1)
        exited = [f"{name} (exit status {proc.returncode})" for name, proc in processes.items() if proc.poll() is not None]
        print(f"stopping Airflow: {', '.join(exited)} exited", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(processes)


if __name__ == "__main__":
    sys.exit(main())
