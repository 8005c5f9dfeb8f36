"""Cutting and cropping with ffmpeg (commands built by ffmpeg-python): exact frames, the audio under them, the
same bytes every time, and media faults as MediaError."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from talkvid_ops.catalog.status import MediaFault
from talkvid_ops.media.cut import CutRequest, crop_clip, cut_clip, source_has_audio
from talkvid_ops.media.errors import MediaError
from talkvid_ops.media.hashing import sha256_file

FPS, SECONDS, STEP = 25, 4, 5  # frame i of the source is flat grey 5 * i (mod 250)


@dataclass(frozen=True)
class Encoding:
    video_preset: str = "ultrafast"
    video_crf: int = 18
    audio_bitrate: str = "64k"
    crop_size: int = 64


@pytest.fixture(scope="module")
def numbered_with_audio(tmp_path_factory) -> Path:
    """4 s at 25 fps, 160x96: frame i is flat grey 5 * i (mod 250); a 440 Hz tone under it."""
    folder = tmp_path_factory.mktemp("cut")
    path = folder / "numbered.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=black:size=160x96:rate={FPS}:duration={SECONDS}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}", "-vf", f"format=gray,geq=lum='mod({STEP}*N,250)',format=yuv420p",
         "-c:v", "libx264", "-qp", "0", "-g", "50", "-c:a", "aac", "-shortest", str(path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return path


def grey_levels(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.array([float(np.mean(f.to_ndarray(format="gray"))) for f in container.decode(video=0)])


def same_frames(clip: Path, source: Path, first: int, end: int) -> bool:
    """The clip's frames are the source's [first, end): neighbours differ by 5 grey levels, encoding by about 1."""
    got, want = grey_levels(clip), grey_levels(source)[first:end]
    return len(got) == len(want) and bool(np.all(np.abs(got - want) <= 2))


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        return sum(f.samples for f in container.decode(audio=0)) / container.streams.audio[0].rate


def test_a_cut_is_exactly_its_frames_with_their_audio_and_the_same_bytes_twice(numbered_with_audio, tmp_path):
    request = CutRequest(numbered_with_audio, tmp_path / "a" / "clip.mp4", 37, 62, float(FPS), True)  # 1.48 s to 2.48 s, not on a keyframe
    first = cut_clip(request, Encoding())
    assert same_frames(first, numbered_with_audio, 37, 62) and not same_frames(first, numbered_with_audio, 38, 63)
    assert audio_seconds(first) == pytest.approx(25 / FPS, abs=0.03)
    again = cut_clip(CutRequest(numbered_with_audio, tmp_path / "b" / "clip.mp4", 37, 62, float(FPS), True), Encoding())
    assert sha256_file(first) == sha256_file(again)
    assert [p.name for p in first.parent.iterdir()] == ["clip.mp4"]  # written atomically: no partial file left
    silent = cut_clip(CutRequest(numbered_with_audio, tmp_path / "silent.mp4", 0, 10, float(FPS), False), Encoding())
    assert same_frames(silent, numbered_with_audio, 0, 10) and not source_has_audio(silent)


def test_a_crop_is_a_scaled_square_with_the_audio_kept(numbered_with_audio, tmp_path):
    clip = cut_clip(CutRequest(numbered_with_audio, tmp_path / "clip.mp4", 0, 25, float(FPS), True), Encoding())
    cropped = crop_clip(clip, tmp_path / "crop.mp4", (40, 10, 80), Encoding())
    with av.open(str(cropped)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height, video.frames) == (64, 64, 25)
    assert source_has_audio(cropped)
    silent = cut_clip(CutRequest(numbered_with_audio, tmp_path / "silent.mp4", 0, 25, float(FPS), False), Encoding())
    assert not source_has_audio(crop_clip(silent, tmp_path / "silent_crop.mp4", (40, 10, 80), Encoding()))  # no audio to keep


def test_faults_are_media_errors(numbered_with_audio, tmp_path):
    with pytest.raises(MediaError, match="empty frame range") as caught:
        cut_clip(CutRequest(numbered_with_audio, tmp_path / "x.mp4", 5, 5, float(FPS), True), Encoding())
    assert caught.value.kind == MediaFault.EMPTY_RANGE
    with pytest.raises(MediaError, match="cutting y.mp4 failed: .*No such file") as caught:
        cut_clip(CutRequest(tmp_path / "gone.mp4", tmp_path / "y.mp4", 0, 5, float(FPS), False), Encoding())
    assert caught.value.kind == MediaFault.ENCODE_FAILED and not (tmp_path / "y.mp4").exists()
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(MediaError, match="cannot open") as caught:
        source_has_audio(tmp_path / "text.mp4")
    assert caught.value.kind == MediaFault.UNREADABLE
