"""Run records: every stage execution writes one, and every row it derives points to it."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import traceback
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from talkvid_ops import __version__
from talkvid_ops.catalog.models import Run, utcnow
from talkvid_ops.catalog.status import RunStatus

T = TypeVar("T")
MAX_RECORDED_ERRORS = 200
ERRORS_LOGGED = 20
log = logging.getLogger("talkvid.run")  # a run over a huge batch keeps the first errors, and counts all of them


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
            self.errors.append({"item": item, "reason": reason, **extra})


@contextmanager
def stage_run(factory: sessionmaker[Session], stage: str, params: dict[str, Any] | None = None) -> Iterator[RunRecorder]:
    """Record a run of `stage` around the block; the run is committed first so that rows can point to it.

    The run ends `succeeded`, `partial` (some items failed and were recorded) or `failed` (the block raised).
    """
    recorder = RunRecorder(id=uuid.uuid4().hex, stage=stage)
    with factory() as session:
        session.add(
            Run(
                id=recorder.id,
                stage=stage,
                params=params or {},
                code_version=code_version(),
                hostname=socket.gethostname(),
                **airflow_ids(),
            )
        )
        session.commit()
    status = RunStatus.SUCCEEDED
    try:
        yield recorder
        if recorder.counts.get("errors"):
            status = RunStatus.PARTIAL
    except BaseException as exc:
        status = RunStatus.FAILED
        recorder.errors.append({"item": None, "reason": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8)})
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
