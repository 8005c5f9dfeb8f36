"""`talkvid run`: the main job on embedded defaults (SQLite, local data dir, in-process stages), as `make run` calls it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from talkvid_ops.catalog.models import ALL_TABLES, Base, Clip, Decision, DecisionFailure, Release, Run, Video
from talkvid_ops.context import Context

TALKVID = [sys.executable, "-c", "from talkvid_ops.cli import main; main()"]


def talkvid(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*TALKVID, *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture
def run_env(talkvid_env, cache_dir) -> dict[str, str]:
    """A fresh data dir; the demo media cache shared with other tests (made once from the registries)."""
    return {**os.environ, "TALKVID_CACHE_DIR": str(cache_dir)}


def row_counts(ctx) -> dict[str, int]:
    with ctx.sessions() as session:
        return {t: session.scalar(select(func.count()).select_from(Base.metadata.tables[t])) for t in ALL_TABLES}


def test_run_demo_makes_a_release_and_says_where(run_env, talkvid_env, tmp_path):
    out = tmp_path / "release"
    proc = talkvid("run", "demo", "--out", str(out), env=run_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = dict(re.findall(r"^(release|report): (.+)$", proc.stdout, re.M))
    assert Path(printed["release"]) == out  # the folder as named: a link to the published release folder
    assert Path(printed["report"]) == out / "report.html" and Path(printed["report"]).is_file()
    assert (out / "talkvid.json").is_file() and (out / "manifest.json").is_file()

    ctx = Context.from_env()
    assert ctx.settings.database_url.startswith("sqlite:///" + str(talkvid_env))  # the embedded default
    with ctx.sessions() as session:
        stages = set(session.scalars(select(Run.stage)))
        release = session.scalars(select(Release)).one()
        videos = session.scalar(select(func.count()).select_from(Video))
        languages = set(session.scalars(select(Clip.language)))
    assert {"ingest", "plan", "segment", "score", "decide", "labels", "speakers", "bench", "export"} <= stages  # every stage ran
    assert videos == 6 and release.out_dir == str(out) and release.counts["candidates"] > 0
    assert f"{release.counts['candidates']} candidates" in proc.stdout
    assert "en" in languages  # the demo transcribes with the registry's multilingual Whisper model
    # the filter at work: the demo's made-to-fail videos are rejected, each for its named reason
    with ctx.sessions() as session:
        failing = session.execute(
            select(Video.storage_path, DecisionFailure.criterion)
            .join(Clip, Clip.video_id == Video.id).join(Decision, Decision.clip_id == Clip.id)
            .join(DecisionFailure, DecisionFailure.decision_id == Decision.id)
        ).all()  # fmt: skip
    reasons: dict[str, set[str]] = {}
    for path, criterion in failing:
        reasons.setdefault(Path(path).stem, set()).add(criterion)
    assert "quality" in reasons["demo-reject-blurred"]
    assert "face_consistency" in reasons["demo-reject-two-faces"] and "min_completeness" in reasons["demo-reject-no-face"]
    # the score stage wrote each clip's pictures; the report shows them beside each candidate and each rejection
    with ctx.sessions() as session:
        clip_ids = set(session.scalars(select(Clip.id)))
    assert {p.stem for p in (talkvid_env / "thumbnails").glob("*.jpg")} == {p.stem for p in (talkvid_env / "previews").glob("*.jpg")} == clip_ids
    report = (out / "report.html").read_text()
    assert report.count('src="data:image/jpeg;base64,') >= 2 * release.counts["candidates"] + len({c for r in reasons.values() for c in r})
    assert re.search(r"<h3>quality: \d+ clips rejected</h3>", report) and re.search(r"classical: quality_technical [0-9.]+ &lt; min [0-9.]+", report)
    pictures = {p: p.stat().st_mtime_ns for p in (talkvid_env / "thumbnails").glob("*.jpg")}

    before = row_counts(ctx)
    again = talkvid("run", "demo", "--out", str(out), env=run_env)
    assert again.returncode == 0, again.stderr[-3000:]
    after = row_counts(ctx)
    assert {t: n for t, n in after.items() if t != "run"} == {t: n for t, n in before.items() if t != "run"}  # idempotent
    assert {p: p.stat().st_mtime_ns for p in (talkvid_env / "thumbnails").glob("*.jpg")} == pictures
    assert (out / "report.html").read_text() == report  # the same release: the same report


def test_run_routes_urls_through_the_crawler(run_env, cache_dir, tmp_path):
    from loopback import LoopbackServer

    from talkvid_ops.demo import demo_videos

    media = demo_videos(cache_dir, cache_dir / "demo-videos")
    with LoopbackServer(media[0].parent) as server:
        url = server.url(f"/media/{media[1].name}")
        proc = talkvid("run", url, "--out", str(tmp_path / "web"), env=run_env)
        assert server.hits_for("/media/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with Context.from_env().sessions() as session:
        (video,) = session.scalars(select(Video)).all()
        stages = set(session.scalars(select(Run.stage)))
    assert video.url == url and {"crawl.discover", "crawl.download"} <= stages
    # the demo is 360p: a URL source keeps TalkVid's 1080p bar, so the crawler rejects it, with the reason
    assert video.status == "rejected" and "min_height" in video.error_message
    assert "0 candidates" in proc.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["no/such/file.mp4", "--out", "x"], "not `demo`, a URL, or an existing file or folder"),
        (["demo", "--out", "x", "--profile", "no-such-profile"], "neither a shipped profile"),
    ],
)
def test_run_rejects_bad_input_before_doing_any_work(run_env, talkvid_env, args, message):
    proc = talkvid("run", *args, env=run_env)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not talkvid_env.exists()  # no catalog, no media: nothing was started
