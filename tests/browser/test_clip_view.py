"""The clip view of the catalog page in headless Chromium: the decision per profile with the failing criterion, value
and bound (as `talkvid clips show` computes them), and a player on the clip's range that plays. An H.264 source is
played from the file itself (HTTP range requests); an HEVC source, which browsers do not play, through an H.264
preview of the clip's range made once with ffmpeg and kept under the data dir."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from talkvid_ops.config import Settings
from talkvid_ops.context import Context
from talkvid_ops.curate.decide import decide
from talkvid_ops.dashboard.app import create_app
from talkvid_ops.dashboard.clips import preview_path
from talkvid_ops.media.probe import probe
from tests.factories import add_clip, add_run, add_source, add_video
from tests.pageserver import CHROMIUM, chromium, serving
from tests.release_catalog import add_scores, set_score

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make setup installs it)")
FPS = 25.0
HEVC_VERSION = "hevc-v1"
# clip -> (video, first frame, end frame, classical quality); the shipped profile's quality rule is min 40
CLIPS = {"sharp": ("h264", 100, 200, 64.0), "blurred": ("hevc", 50, 150, 31.5)}


@pytest.fixture(scope="module")
def hevc_video(cache_dir, pyfeat_media) -> Path:
    """Real face footage re-encoded to HEVC (libx265) with AAC sound in MP4, made once and cached."""
    out = cache_dir / HEVC_VERSION / "wolfgang-hevc.mp4"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_name(".part.mp4")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(pyfeat_media["WolfgangLanger_Pexels.mp4"]), "-f", "lavfi", "-i", "sine=f=440:r=16000",
                        "-map", "0:v", "-map", "1:a", "-t", "8", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
                        "-tag:v", "hvc1", "-c:a", "aac", str(part)], check=True, capture_output=True)  # fmt: skip
        part.replace(out)
    return out


@pytest.fixture
def catalog(sqlite_url, tmp_path, monkeypatch, pyfeat_media, hevc_video):
    ctx = Context(Settings(data_dir=tmp_path / "data", database_url=sqlite_url))
    files = {"h264": pyfeat_media["WolfgangLanger_Pexels.mp4"], "hevc": hevc_video}
    clips = {}
    with ctx.sessions() as session:
        run_id = add_run(session, "score")
        source_id = add_source(session)
        videos = {}
        for name, file in files.items():
            info = probe(file)
            videos[name] = add_video(session, source_id, name, storage_path=str(file), status="probed", video_codec=info.video_codec, has_audio=info.has_audio)
        for name, (video, first, end, quality) in CLIPS.items():
            clips[name] = add_clip(session, videos[video], run_id, first, end, fps=FPS)
            add_scores(session, clips[name], run_id)  # every other score passes
            set_score(session, clips[name], "quality_technical", quality)
        session.commit()
    decided = decide(ctx, "talkvid-code")
    monkeypatch.setenv("TALKVID_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TALKVID_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.delenv("TALKVID_CONFIG", raising=False)
    return ctx, clips, f"talkvid-code@{decided['content_hash']}"


def plays(page) -> float:
    """Wait until the page's player has decoded frames and its clock moves; returns where it started."""
    page.wait_for_function("document.getElementById('player').readyState >= 2", timeout=30000)
    start = page.evaluate("document.getElementById('player').currentTime")
    page.evaluate("document.getElementById('player').muted = true; document.getElementById('player').play()")
    page.wait_for_function(f"document.getElementById('player').currentTime > {start} + 0.3", timeout=30000)
    return start


def test_the_clip_view_shows_why_and_plays_h264_sources_and_hevc_through_a_preview(catalog, tmp_path):
    import httpx

    ctx, clips, profile = catalog
    artifacts = tmp_path / "screenshots"
    artifacts.mkdir()
    print(f"screenshots in {artifacts}")
    with serving(create_app()) as root, chromium() as browser:
        page = browser.new_page()

        page.goto(f"{root}clips/{clips['sharp']}")
        assert page.get_attribute("#player", "src") == f"{clips['sharp']}/media#t=4.000,8.000"
        assert page.inner_text("#decisions").count("passed") == 1 and profile in page.inner_text("#decisions")
        assert "quality_technical" in page.inner_text("#scores") and "classical" in page.inner_text("#scores")
        assert plays(page) == pytest.approx(4.0, abs=0.05)  # the player starts at the clip, in its source
        page.screenshot(path=str(artifacts / "clip-h264.png"), full_page=True)
        ranged = httpx.get(f"{root}clips/{clips['sharp']}/media", headers={"Range": "bytes=1000-1999"})
        assert ranged.status_code == 206 and len(ranged.content) == 1000 and ranged.headers["content-range"].startswith("bytes 1000-1999/")

        page.goto(f"{root}clips/{clips['blurred']}")
        assert page.get_attribute("#player", "src") == f"{clips['blurred']}/preview.mp4"
        assert "quality: 31.5 < min 40 (quality_technical by classical)" in page.inner_text("#decisions")
        page.click("#decisions a.what-if")  # from the failed bound to the what-if of moving it
        assert page.input_value("input[name=criterion]") == "quality" and page.input_value("input[name=backend]") == "classical"
        assert page.input_value("select[name=profile]") == profile
        page.go_back()
        assert plays(page) == 0.0
        page.screenshot(path=str(artifacts / "clip-hevc-preview.png"), full_page=True)

    preview = preview_path(ctx.settings.data_dir, clips["blurred"])
    info = probe(preview)
    assert info.video_codec == "h264" and info.frame_count == 100 and info.has_audio  # frames 50-150 of the HEVC source
    made = preview.stat().st_mtime_ns
    with serving(create_app()) as root:
        again = httpx.get(f"{root}clips/{clips['blurred']}/preview.mp4")
    assert again.status_code == 200 and again.content == preview.read_bytes() and preview.stat().st_mtime_ns == made  # made once
    assert [p.name for p in artifacts.iterdir()] and all(p.stat().st_size > 10_000 for p in artifacts.iterdir())
