"""Phone video upright: a clip coded sideways or upside down with a display rotation beside it is read as displayed,
in both ways a rotation gets stored (the `rotate` tag given to the muxer, and a display matrix carried over by a
stream copy), so its frames and head scores are the upright clip's.

ffmpeg 5.1 (installed here) has no `-display_rotation` input option (FFmpeg 6+): the display-matrix copies are
made by a stream copy of a tagged file into .mov, whose muxer writes the matrix from the stream's side data.
ffmpeg's own playback (its autorotation) is the reference that the test media are right.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from talkvid_ops.config.score import ScoreConfig
from talkvid_ops.media.probe import probe
from talkvid_ops.media.sampler import sample_frames
from talkvid_ops.score.stage import score_clip, scorers_for

# display rotation (the rotate tag) -> the filter that codes the upright picture so that it displays upright
CODED = {90: "transpose=1", 180: "hflip,vflip", 270: "transpose=2"}
TIMES = [0.5, 2.5, 4.5, 6.5]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def phone_clips(tmp_path_factory, pyfeat_media) -> dict[str, Path]:
    """7 s of a real face video upright, and per rotation a sideways/upside-down coding of it with the rotate tag
    (`ffmpeg -i X -vf transpose=2 p.mp4; ffmpeg -i p.mp4 -c copy -metadata:s:v:0 rotate=270 a.mp4`) and with the
    display matrix of a stream copy."""
    folder = tmp_path_factory.mktemp("phone")
    upright = folder / "upright.mp4"
    _ffmpeg("-i", str(pyfeat_media["WolfgangLanger_Pexels.mp4"]), "-t", "7", "-an", str(upright))
    clips = {"upright": upright}
    for rotation, coding in CODED.items():
        coded = folder / f"coded{rotation}.mp4"
        _ffmpeg("-i", str(upright), "-vf", coding, str(coded))
        clips[f"tag{rotation}"] = folder / f"tag{rotation}.mp4"
        _ffmpeg("-i", str(coded), "-c", "copy", "-metadata:s:v:0", f"rotate={rotation}", str(clips[f"tag{rotation}"]))
        clips[f"matrix{rotation}"] = folder / f"matrix{rotation}.mov"
        _ffmpeg("-i", str(clips[f"tag{rotation}"]), "-c", "copy", str(clips[f"matrix{rotation}"]))
    return clips


def _displayed(path: Path) -> np.ndarray:
    """ffmpeg's first displayed frame (autorotated), gray."""
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True
    )
    return np.frombuffer(done.stdout, np.uint8).astype(float)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(float).ravel(), b.astype(float).ravel()
    return float(np.corrcoef(a, b)[0, 1]) if a.shape == b.shape else -1.0


def _frames(path: Path) -> np.ndarray:
    return sample_frames(path, 0.0, 7.0, TIMES, probe(path).rotation).frames.mean(axis=-1)


NAMES = [f"{kind}{rotation}" for rotation in CODED for kind in ("tag", "matrix")]


@pytest.mark.parametrize("name", NAMES)
def test_the_sampler_hands_out_rotated_phone_frames_upright(phone_clips, name):
    path, upright = phone_clips[name], phone_clips["upright"]
    assert _correlation(_displayed(path), _displayed(upright)) > 0.99  # the test media display upright
    assert probe(path).rotation in CODED
    reference, frames = _frames(upright), _frames(path)
    assert frames.shape == reference.shape
    assert all(_correlation(f, r) > 0.95 for f, r in zip(frames, reference)), [_correlation(f, r) for f, r in zip(frames, reference)]


def test_head_scores_of_rotated_phone_clips_match_the_upright_clip(phone_clips):
    scorers = scorers_for(ScoreConfig(scorers=["head"]))

    def head(path: Path) -> dict[str, float]:
        outcome = score_clip(path, 0.0, 7.0, probe(path).rotation, scorers)
        assert not outcome.failures, outcome.failures
        return next(iter(outcome.metrics.values()))

    upright = head(phone_clips["upright"])
    assert upright["face_consistency"] == 100.0
    for name in NAMES:
        rotated = head(phone_clips[name])
        assert rotated["face_consistency"] == upright["face_consistency"], name
        # the copies are re-encoded: dlib's HOG boxes come in discrete sizes and one frame of seven may land on the
        # next size up, which moves avg_resolution by about 5 %
        assert rotated == pytest.approx(upright, rel=0.06, abs=2.0), name


@pytest.mark.parametrize(
    ("picture", "kind", "words"),
    [
        (["-vf", "scale=1:1", "-pix_fmt", "yuv444p"], "degenerate", "1x1 pixels"),  # a 1x1 picture
        (["-frames:v", "0"], "zero_length", "zero-length video"),  # no frame at all, 3 s of sound
    ],
    ids=["1x1", "no-frames"],
)
def test_degenerate_video_is_a_permanent_media_failure_not_retried(tmp_path, sqlite_url, picture, kind, words):
    from talkvid_ops.catalog.models import Segmentation, Video
    from talkvid_ops.config import PipelineConfig, Settings
    from talkvid_ops.context import Context
    from talkvid_ops.segment.stage import segment
    from tests.factories import add_source, add_video

    path = tmp_path / "degenerate.mp4"
    _ffmpeg(
        "-f", "lavfi", "-i", "color=c=red:r=25:d=3", "-f", "lavfi", "-i", "sine=f=440:d=3", *picture, "-c:v", "libx264", "-c:a", "aac", "-t", "3", str(path)
    )
    ctx = Context(Settings(data_dir=tmp_path / "data", database_url=sqlite_url, pipeline=PipelineConfig()))
    with ctx.sessions() as session:
        video_id = add_video(session, add_source(session, locator="test://degenerate"), "degenerate", storage_path=str(path))
        session.commit()
    first = segment(ctx)
    assert (first["videos"], first["videos_failed"]) == (1, 1)
    with ctx.sessions() as session:
        row = session.scalars(select(Segmentation).where(Segmentation.video_id == video_id)).one()
        assert (row.status, row.error_class) == ("failed", kind) and words in row.error, row.error
        assert session.get(Video, video_id).error_class == "media"
    assert segment(ctx)["videos"] == 0  # settled: not retried by every run
