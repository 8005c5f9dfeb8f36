"""Run records that tell the truth (issue 11): a run whose process died is marked `abandoned` by the next run (PID
and process start time on the same host, heartbeat elsewhere), and `talkvid status` shows every stage's failures."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from talkvid_ops.catalog import db
from talkvid_ops.catalog.db import as_utc
from talkvid_ops.catalog.models import Decision, Profile, Run, Scoring, Segmentation, utcnow
from talkvid_ops.catalog.queries import catalog_status
from talkvid_ops.catalog.runs import code_version, stage_run, this_process
from talkvid_ops.cli import cli
from talkvid_ops.crawl.discover import discover
from talkvid_ops.crawl.sources import SourceSettings, add_source
from talkvid_ops.ids import make_id
from tests.factories import add_clip, add_run, add_video
from tests.factories import add_source as add_test_source
from tests.loopback import LoopbackServer, loopback_context, prepare_web_media


@pytest.fixture(scope="module")
def web_media(pyfeat_media, tmp_path_factory) -> Path:
    return prepare_web_media(pyfeat_media, tmp_path_factory.mktemp("web-media"))


def _runs(factory) -> dict[str, Run]:
    with factory() as session:
        return {r.id: r for r in session.scalars(select(Run))}


def test_a_run_killed_with_sigkill_is_marked_abandoned_by_the_next_run(web_media, talkvid_env, tmp_path):
    config = tmp_path / "talkvid.yaml"
    config.write_text(yaml.safe_dump({"crawl": {"min_request_interval_s": 0, "retries": 1}}))
    env = {**os.environ, "TALKVID_CONFIG": str(config), "TALKVID_RUN_HEARTBEAT_S": "0.2"}
    ctx = loopback_context(talkvid_env, f"sqlite:///{talkvid_env / 'catalog.sqlite'}")
    db.upgrade(ctx.settings.database_url)
    with LoopbackServer(web_media) as server:
        urls = tmp_path / "urls.txt"
        urls.write_text(server.url("/stall/lecture.mp4") + "\n")
        with ctx.sessions() as session:
            add_source(session, str(urls), settings=SourceSettings(min_height=0))
            session.commit()
        discover(ctx)
        proc = subprocess.Popen(
            [sys.executable, "-m", "talkvid_ops.cli", "crawl", "--download"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not any(h.dropped for h in server.hits_for("/stall/")):
                assert proc.poll() is None and time.monotonic() < deadline, "the download never reached the stall"
                time.sleep(0.05)
            (killed,) = [r for r in _runs(ctx.sessions).values() if r.stage == "crawl.download"]
            first_beat = as_utc(killed.heartbeat_at)
            time.sleep(1.0)
            beating = _runs(ctx.sessions)[killed.id]
            assert as_utc(beating.heartbeat_at) > first_beat  # alive while blocked in one download
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        server.release_stalls()
        assert _runs(ctx.sessions)[killed.id].status == "running"  # nobody could write anything else
        assert (killed.hostname, killed.pid) == (socket.gethostname(), proc.pid)

        after = discover(ctx)  # any run looks for dead ones first
    runs = _runs(ctx.sessions)
    dead = runs[killed.id]
    assert dead.status == "abandoned" and dead.finished_at is not None
    assert f"process {proc.pid} on {socket.gethostname()}" in dead.errors[-1]["reason"] and after["run_id"] in dead.errors[-1]["reason"]
    assert runs[after["run_id"]].status == "succeeded"
    status = json.loads(CliRunner().invoke(cli, ["status", "--json"]).output)
    assert status["failures"]["runs"] == {"crawl.download:abandoned": 1}


def _running(session, **fields) -> str:
    run_id = uuid.uuid4().hex
    session.add(Run(id=run_id, stage="score", params={}, code_version=code_version(), status="running", **fields))
    return run_id


def test_dead_runs_are_found_by_pid_and_start_time_here_and_by_heartbeat_elsewhere(catalog_url, monkeypatch):
    monkeypatch.setenv("TALKVID_RUN_STALE_S", "600")
    factory = db.session_factory(catalog_url)
    me = this_process()
    here = socket.gethostname()
    now = utcnow()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with factory() as session:
            ids = {
                "live_here": _running(session, hostname=here, pid=me.pid, process_started=me.started, heartbeat_at=now - dt.timedelta(hours=5)),
                "other_live_here": _running(session, hostname=here, pid=sleeper.pid, process_started=this_process(sleeper.pid).started),
                "reused_pid": _running(session, hostname=here, pid=me.pid, process_started="another boot or process", heartbeat_at=now),
                "fresh_elsewhere": _running(session, hostname="worker-7", pid=me.pid, heartbeat_at=now - dt.timedelta(seconds=100)),
                "stale_elsewhere": _running(session, hostname="worker-7", pid=me.pid, heartbeat_at=now - dt.timedelta(seconds=700)),
                "never_beat_elsewhere": _running(session, hostname="worker-8", started_at=now - dt.timedelta(hours=2)),
            }
            session.commit()
        with stage_run(factory, "score") as run:
            pass
    finally:
        sleeper.kill()
        sleeper.wait()
    runs = _runs(factory)
    assert {name: runs[run_id].status for name, run_id in ids.items()} == {
        "live_here": "running",
        "other_live_here": "running",
        "reused_pid": "abandoned",
        "fresh_elsewhere": "running",
        "stale_elsewhere": "abandoned",
        "never_beat_elsewhere": "abandoned",
    }
    stale = runs[ids["stale_elsewhere"]].errors[-1]["reason"]
    assert "no heartbeat from worker-7 for" in stale and run.id in stale
    assert runs[run.id].status == "succeeded" and runs[run.id].pid == me.pid and runs[run.id].heartbeat_at is not None


def test_status_shows_every_stages_failures_with_their_class(talkvid_env):
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    factory = db.session_factory(f"sqlite:///{talkvid_env / 'catalog.sqlite'}")
    with factory() as session:
        run_id = add_run(session, stage="segment")
        source_id = add_test_source(session)
        add_video(session, source_id, "v1", status="failed", error_class="transient", error_message="reset")
        silent = add_video(session, source_id, "v2", status="probed")
        talking = add_video(session, source_id, "v3", status="probed")
        session.add(
            Segmentation(
                id=make_id("segmentation", silent, "p0"),
                video_id=silent,
                segmenter="test",
                segmenter_version="1",
                params_hash="p0",
                status="failed",
                error="no audio stream",
                error_class="no_audio",
                run_id=run_id,
            )
        )
        clip = add_clip(session, talking, run_id, 0, 50)
        session.add(
            Scoring(
                id=make_id("scoring", clip, "face", "dlib"),
                clip_id=clip,
                scorer="face",
                backend="dlib",
                scorer_version="1",
                status="failed",
                error="x",
                run_id=run_id,
            )
        )
        profile = Profile(id=make_id("profile", "talkvid", "abc"), name="talkvid", content_hash="abc", body={})
        session.add(profile)
        session.flush()
        session.add(Decision(id=profile.id + clip, clip_id=clip, profile_id=profile.id, status="undecided", missing=["face_consistency"], run_id=run_id))
        session.add(
            Run(id=uuid.uuid4().hex, stage="labels", params={"action": "import"}, code_version="t", status="partial", counts={"errors": 3, "rows_skipped": 3})
        )
        session.commit()

    with factory() as session:
        failures = catalog_status(session)["failures"]
    assert failures == {
        "videos": {"transient": 1},
        "segmentations": {"no_audio": 1},
        "scorings": {"face": 1},
        "undecided": {"talkvid@abc": 1},
        "runs": {"labels:partial": 1},
        "run_items": {"labels": 3},
    }
    shown = runner.invoke(cli, ["status"]).output
    for line in (
        "failures videos: transient=1",
        "failures segmentations: no_audio=1",
        "failures scorings: face=1",
        "failures undecided: talkvid@abc=1",
        "failures runs: labels:partial=1",
        "failures run_items: labels=3",
    ):
        assert line in shown, shown
