"""Two `talkvid score` processes started together on one catalog share the pending clips: each clip is scored
once, by one of them (leases), on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from factories import add_clip, add_run, add_source, add_video
from sqlalchemy import select

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import Lease, Run, Scoring
from talkvid_ops.catalog.upsert import release_lease, take_lease

TALKVID = shutil.which("talkvid", path=str(Path(sys.executable).parent)) or "talkvid"
CLIPS, SECONDS, FPS = 8, 2.0, 23.976


def test_two_concurrent_score_processes_score_each_clip_once(catalog_url, pyfeat_media, tmp_path):
    with db.session_factory(catalog_url)() as session:
        run_id = add_run(session, "segment")
        video_id = add_video(session, add_source(session), "talking", storage_path=str(pyfeat_media["WolfgangLanger_Pexels.mp4"]))
        frames = int(SECONDS * FPS)
        clip_ids = {add_clip(session, video_id, run_id, i * frames, (i + 1) * frames, FPS) for i in range(CLIPS)}
        session.commit()
    config = tmp_path / "config.yaml"
    config.write_text("score:\n  scorers: [quality, motion]\n  workers: 1\n")
    env = {**os.environ, "TALKVID_DATA_DIR": str(tmp_path), "TALKVID_DATABASE_URL": catalog_url, "TALKVID_CONFIG": str(config)}
    processes = [subprocess.Popen([TALKVID, "score"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    counts = [json.loads(out) for out, _ in outputs]
    assert sum(c.get("clips", 0) for c in counts) == CLIPS, counts  # nobody scored a clip the other one had
    with db.session_factory(catalog_url)() as session:
        scorings = session.scalars(select(Scoring)).all()
        runs = {r.id: r.counts for r in session.scalars(select(Run).where(Run.stage == "score"))}
    assert {s.clip_id for s in scorings} == clip_ids and {s.status for s in scorings} == {"ok"}
    assert len(scorings) == 2 * CLIPS
    # each clip's rows come from the one run that scored it, and the runs' counts say the same
    by_run = {}
    for s in scorings:
        by_run.setdefault(s.run_id, set()).add(s.clip_id)
    assert sum(len(v) for v in by_run.values()) == CLIPS
    assert {run: len(items) for run, items in by_run.items()} == {run: c["clips"] for run, c in runs.items() if c.get("clips")}


def test_a_lease_is_held_until_released_expired_or_its_run_abandoned(catalog_url):
    factory = db.session_factory(catalog_url)
    with factory() as session:
        first, second = add_run(session, "score"), add_run(session, "score")
        session.commit()
    with factory() as session:
        assert take_lease(session, "score", "clip1", first, 60)
        session.commit()
    with factory() as session:
        assert not take_lease(session, "score", "clip1", second, 60)  # held by a live run
        assert take_lease(session, "score", "clip2", second, -1)  # already expired when taken
        session.commit()
    with factory() as session:
        assert take_lease(session, "score", "clip2", first, 60)  # an expired lease is free
        session.get(Run, first).status = "abandoned"
        session.commit()
    with factory() as session:
        assert take_lease(session, "score", "clip1", second, 60)  # its run died: free before it expires
        release_lease(session, "score", "clip1", second)
        session.commit()
        assert session.scalars(select(Lease.item_id).where(Lease.holder == second)).all() == []
