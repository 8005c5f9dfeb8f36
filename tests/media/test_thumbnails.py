"""Thumbnails and previews are written by the score stage from its own decode: the clip's middle frame upright (a
phone video coded sideways here), and never rewritten by a rescoring."""

from __future__ import annotations

import subprocess

import cv2
import numpy as np
import pytest
from factories import add_clip, add_run, add_source, add_video

from talkvid_ops.catalog import db
from talkvid_ops.config import PipelineConfig, Settings
from talkvid_ops.config.score import ScoreConfig
from talkvid_ops.context import Context
from talkvid_ops.media.probe import probe
from talkvid_ops.media.sampler import sample_frames
from talkvid_ops.media.thumbnails import PREVIEW_FRAME_WIDTH, PREVIEW_FRAMES, THUMBNAIL_WIDTH, preview_path, thumbnail_path
from talkvid_ops.score import stage

FPS, START_FRAME, END_FRAME = 25.0, 10, 90


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def phone_video(tmp_path_factory, pyfeat_media):
    """4 s of a real (landscape) face video coded sideways, displayed upright by its rotate=270 tag, as phones do."""
    folder = tmp_path_factory.mktemp("phone")
    coded = folder / "coded.mp4"
    _ffmpeg("-i", str(pyfeat_media["WolfgangLanger_Pexels.mp4"]), "-t", "4", "-an", "-vf", f"fps={FPS},transpose=2", str(coded))
    tagged = folder / "tagged.mp4"
    _ffmpeg("-i", str(coded), "-c", "copy", "-metadata:s:v:0", "rotate=270", str(tagged))
    return tagged


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1])


def test_scoring_writes_the_upright_middle_frame_once(phone_video, tmp_path):
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    db.upgrade(url)
    ctx = Context(Settings(data_dir=tmp_path, database_url=url, pipeline=PipelineConfig(score=ScoreConfig(scorers=["quality"], workers=1))))
    info = probe(phone_video)
    assert info.rotation == 270
    with ctx.sessions() as session:
        video_id = add_video(session, add_source(session), "phone", storage_path=str(phone_video), rotation=info.rotation)
        clip_id = add_clip(session, video_id, add_run(session, "segment"), START_FRAME, END_FRAME, FPS)
        session.commit()

    first = stage.score(ctx)
    assert first["pictures_written"] == 2
    thumbnail = cv2.imread(str(thumbnail_path(tmp_path, clip_id)))
    height, width = thumbnail.shape[:2]
    assert width == THUMBNAIL_WIDTH and height < width  # landscape, as displayed (coded: portrait)

    start, end = START_FRAME / FPS, END_FRAME / FPS
    middle = (END_FRAME - START_FRAME) // 2 / FPS

    def decoded(times: list[float], rotation: int | None) -> list[np.ndarray]:
        frames = sample_frames(phone_video, start, end, times, rotation=rotation).frames
        return [cv2.cvtColor(cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR) for f in frames]

    first_frame, middle_frame = decoded([0.0, middle], info.rotation)
    assert _correlation(thumbnail, middle_frame) > 0.97
    # the check tells the middle frame from another one and from the frame as coded (sideways)
    assert _correlation(thumbnail, middle_frame) > _correlation(thumbnail, first_frame)
    assert _correlation(thumbnail, decoded([middle], None)[0]) < 0.8

    preview = cv2.imread(str(preview_path(tmp_path, clip_id)))
    assert preview.shape[1] == PREVIEW_FRAMES * PREVIEW_FRAME_WIDTH
    tiles = np.split(preview, PREVIEW_FRAMES, axis=1)
    small = cv2.resize(thumbnail, tiles[0].shape[1::-1], interpolation=cv2.INTER_AREA)
    assert _correlation(tiles[PREVIEW_FRAMES // 2], small) > 0.97  # the strip's middle tile is the thumbnail's frame

    written = {path: path.stat() for path in (thumbnail_path(tmp_path, clip_id), preview_path(tmp_path, clip_id))}
    again = stage.score(ctx, clip_ids=[clip_id])
    assert again["clips"] == 1 and "pictures_written" not in again
    for path, stat in written.items():
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
