"""Run records: every stage execution writes one, and every row it derives points to it.

A run records where it runs (host, PID and the process's start time, which tells a reused PID apart) and beats a
heartbeat while it runs. A process killed with SIGKILL can write nothing, so every new run first marks as
`abandoned` the `running` runs that are dead: on this host, those whose process is gone; on other hosts (whose
processes it cannot see), those whose heartbeat is older than TALKVID_RUN_STALE_S seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import subprocess
import threading
import traceback
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from talkvid_ops import __version__
from talkvid_ops.catalog.db import as_utc
from talkvid_ops.catalog.models import Run, utcnow
from talkvid_ops.catalog.status import RunStatus
from talkvid_ops.redact import redact

T = TypeVar("T")
MAX_RECORDED_ERRORS = 200
ERRORS_LOGGED = 20
log = logging.getLogger("talkvid.run")  # a run over a huge batch keeps the first errors, and counts all of them
ENV_HEARTBEAT_S = "TALKVID_RUN_HEARTBEAT_S"
ENV_STALE_S = "TALKVID_RUN_STALE_S"
DEFAULT_HEARTBEAT_S = 30.0
DEFAULT_STALE_S = 900.0  # a run on another host silent this long is dead: many heartbeats missed, not one slow write


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit when running from a checkout (images set TALKVID_CODE_VERSION)."""
    if os.environ.get("TALKVID_CODE_VERSION"):
        return os.environ["TALKVID_CODE_VERSION"]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return f"{__version__}+g{sha}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return __version__


def airflow_ids(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Airflow's task context as exported to the environment of a task (in-process or in a container)."""
    env = os.environ if environ is None else environ

    def as_int(name: str) -> int | None:
        value = env.get(name)
        return int(value) if value not in (None, "") else None

    return {
        "dag_id": env.get("AIRFLOW_CTX_DAG_ID"),
        "dag_run_id": env.get("AIRFLOW_CTX_DAG_RUN_ID"),
        "task_id": env.get("AIRFLOW_CTX_TASK_ID"),
        "map_index": as_int("AIRFLOW_CTX_MAP_INDEX"),
        "try_number": as_int("AIRFLOW_CTX_TRY_NUMBER"),
    }


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        log.warning("%s=%r is not a number of seconds; using %s", name, value, default)
        return default


# --- which process a run is ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as a run records it: host, PID, and when it started (`<boot id>:<start ticks>` on Linux; None where
    unknown), so that a PID reused by another process, or after a reboot, is not taken for the run's."""

    host: str
    pid: int
    started: str | None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None where there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


@lru_cache(maxsize=1)
def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def this_process(pid: int | None = None) -> ProcessIdentity:
    """This process (or process `pid` of this host) as a run records it."""
    pid = os.getpid() if pid is None else pid
    fields, boot = _proc_stat(pid), _boot_id()
    started = f"{boot}:{fields[19]}" if fields and len(fields) > 19 and boot else None  # field 22: start time in ticks
    return ProcessIdentity(socket.gethostname(), pid, started)


def process_alive(pid: int, started: str | None) -> bool:
    """Whether process `pid` of this host still runs and is the one that started at `started` (any, when None)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    fields = _proc_stat(pid)
    if fields and fields[0] in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    current = this_process(pid).started
    return started is None or current is None or current == started


def _why_dead(run: Run, me: ProcessIdentity, now: dt.datetime, stale_s: float) -> str | None:
    """Why a `running` run is dead, or None while it may be alive."""
    if run.hostname == me.host and run.pid is not None:
        return None if process_alive(run.pid, run.process_started) else f"its process {run.pid} on {me.host} is gone"
    last = as_utc(run.heartbeat_at or run.started_at)
    age = (now - last).total_seconds()
    return f"no heartbeat from {run.hostname or 'an unknown host'} for {age:.0f} s (over {ENV_STALE_S}={stale_s:.0f})" if age > stale_s else None


def mark_abandoned(session: Session, found_by: str, stale_s: float | None = None) -> list[str]:
    """Mark the dead `running` runs `abandoned` (see `_why_dead`), saying why and which run found them; returns
    their ids. A run that ends meanwhile keeps its own status."""
    stale_s = _env_seconds(ENV_STALE_S, DEFAULT_STALE_S) if stale_s is None else stale_s
    me, now = this_process(), utcnow()
    marked = []
    for run in session.scalars(select(Run).where(Run.status == RunStatus.RUNNING)).all():
        reason = _why_dead(run, me, now, stale_s)
        if reason is None:
            continue
        note = {"item": None, "reason": f"abandoned: {reason} (found by run {found_by})"}
        done = session.execute(
            update(Run)
            .where(Run.id == run.id, Run.status == RunStatus.RUNNING)
            .values(status=RunStatus.ABANDONED, finished_at=now, errors=[*(run.errors or []), note])
        )
        if done.rowcount:
            marked.append(run.id)
            log.warning("run %s (%s) marked abandoned: %s", run.id, run.stage, reason)
    return marked


class _Heartbeat:
    """Writes the run's heartbeat every `interval` seconds from a thread, so that a run busy with one long item (a
    big download, a long video) still shows it is alive, and no write waits on the stage's own open transaction."""

    def __init__(self, factory: sessionmaker[Session], run_id: str, interval: float) -> None:
        self._factory, self._run_id, self._interval = factory, run_id, interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id[:8]}", daemon=True)

    def _beat(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                with self._factory() as session:
                    session.execute(update(Run).where(Run.id == self._run_id).values(heartbeat_at=utcnow()))
                    session.commit()
            except Exception as exc:  # a busy or unreachable catalog: the next beat tries again
                log.debug("heartbeat of run %s not written: %s", self._run_id, exc)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopped.set()
        self._thread.join(timeout=5.0)  # a beat stuck on a busy catalog must not hold the run up; it writes only the time


# --- recording a run ------------------------------------------------------------------------------------------------


def printable(value: Any) -> Any:
    """`value` (JSON-able) with every string fit for a text column: a file name's bytes that are not UTF-8 (lone
    surrogates) shown as \\xNN, secrets redacted."""
    if isinstance(value, str):
        try:
            text = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a surrogate that no file name made
            text = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return redact(text)
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable(v) for v in value]
    return value


@dataclass
class RunRecorder:
    """What a stage reports while it runs: counters and per-item errors (stored as data, not log lines)."""

    id: str
    stage: str
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def progress(self, items: Iterable[T], total: int | None, unit: str) -> Iterator[T]:
        """Iterate `items`, showing this run's progress (a terminal bar, or log lines in task logs)."""
        from talkvid_ops.progress import track

        return track(items, total, f"{self.stage} {unit}")

    def error(self, item: str, reason: str, **extra: Any) -> None:
        self.count("errors")
        if len(self.errors) < MAX_RECORDED_ERRORS:
            self.errors.append(printable({"item": item, "reason": reason, **extra}))


@contextmanager
def stage_run(factory: sessionmaker[Session], stage: str, params: dict[str, Any] | None = None) -> Iterator[RunRecorder]:
    """Record a run of `stage` around the block; the run is committed first so that rows can point to it.

    The run ends `succeeded`, `partial` (some items failed and were recorded) or `failed` (the block raised); a run
    whose process died stays `running` until a later run marks it `abandoned`.
    """
    recorder = RunRecorder(id=uuid.uuid4().hex, stage=stage)
    me = this_process()
    with factory() as session:
        mark_abandoned(session, found_by=recorder.id)
        session.add(
            Run(
                id=recorder.id,
                stage=stage,
                params=printable(params or {}),
                code_version=code_version(),
                hostname=me.host,
                pid=me.pid,
                process_started=me.started,
                heartbeat_at=utcnow(),
                **airflow_ids(),
            )
        )
        session.commit()
    status = RunStatus.SUCCEEDED
    try:
        with _Heartbeat(factory, recorder.id, _env_seconds(ENV_HEARTBEAT_S, DEFAULT_HEARTBEAT_S)):
            yield recorder
        if recorder.counts.get("errors"):
            status = RunStatus.PARTIAL
    except BaseException as exc:
        status = RunStatus.FAILED
        recorder.errors.append(printable({"item": None, "reason": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8)}))
        raise
    finally:
        with factory() as session:
            run = session.get(Run, recorder.id)
            run.status = status
            run.finished_at = utcnow()
            run.counts = dict(recorder.counts)
            run.errors = list(recorder.errors)
            session.commit()
        if status == RunStatus.PARTIAL:
            report_errors(recorder)


def report_errors(recorder: RunRecorder, shown: int = ERRORS_LOGGED) -> None:
    """The reasons of a run's failed items, as warnings on stderr / in the task log (they are also in the catalog)."""
    total = recorder.counts.get("errors", len(recorder.errors))
    log.warning("%s: %d item(s) failed (run %s)", recorder.stage, total, recorder.id)
    for error in recorder.errors[:shown]:
        extra = ", ".join(f"{k}={v}" for k, v in sorted(error.items()) if k not in ("item", "reason", "traceback"))
        log.warning("  %s: %s%s", error.get("item") or "-", error.get("reason"), f" ({extra})" if extra else "")
    if total > shown:
        log.warning("  ... and %d more: `talkvid status` counts them, the run row lists the first %d", total - shown, MAX_RECORDED_ERRORS)
