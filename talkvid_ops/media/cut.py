"""Release media: clips cut from their sources on exact frames, face-centred crops, WebDataset tar shards.

Cutting re-encodes (H.264 + AAC), so boundaries are exact frames, not the keyframes a stream copy snaps to. The video
input seeks a quarter frame before the first wanted frame and a trim filter keeps exactly the clip's frame count;
the audio input seeks to the exact start time. Outputs are bit-exact (no encoder strings, no creation times), so the
same release cut twice gives the same bytes. The ffmpeg commands and filter graphs are built with ffmpeg-python.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from talkvid_ops.catalog.status import MediaFault
from talkvid_ops.media.errors import MediaError

BITEXACT = {"map_metadata": -1, "fflags": "+bitexact", "flags:v": "+bitexact", "flags:a": "+bitexact"}


@dataclass(frozen=True)
class CutRequest:
    source: Path
    out: Path
    start_frame: int
    end_frame: int  # exclusive
    fps: float
    has_audio: bool
    # presentation times of the range (s from the video stream's first frame); None: frames / fps
    start_time: float | None = None
    end_time: float | None = None


class Encoding(Protocol):
    """How cut and cropped clips are encoded (the export config supplies it)."""

    video_preset: str
    video_crf: int
    audio_bitrate: str
    crop_size: int


def _encoding(config: Encoding) -> dict[str, Any]:
    """Output options of every clip file: H.264 + AAC, streamable, bit-exact."""
    return {
        "fps_mode": "passthrough",
        "c:v": "libx264",
        "preset": config.video_preset,
        "crf": config.video_crf,
        "pix_fmt": "yuv420p",
        "c:a": "aac",
        "b:a": config.audio_bitrate,
        "movflags": "+faststart",
        **BITEXACT,
    }


def _run(output, what: str) -> None:
    """Run an ffmpeg-python output node quietly; ffmpeg's complaint becomes a MediaError."""
    import ffmpeg

    try:
        output.global_args("-v", "error", "-nostdin").overwrite_output().run(capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as exc:
        raise MediaError(MediaFault.ENCODE_FAILED, f"{what} failed: {exc.stderr.decode(errors='replace').strip()[-600:]}") from None


def source_has_audio(path: Path) -> bool:
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except av.error.FFmpegError as exc:
        raise MediaError(MediaFault.UNREADABLE, f"cannot open {path}: {exc}") from exc


def _video_start_offset(source: Path) -> float:
    """Seconds from the container's start (where ffmpeg's -ss counts from) to the video stream's first frame (0 when
    the source cannot be read: the cut then fails with ffmpeg's own reason)."""
    import av

    try:
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            video = float(stream.start_time or 0) * float(stream.time_base)
            return max(0.0, video - float(container.start_time or 0) / 1_000_000)
    except (av.FFmpegError, OSError, IndexError):
        return 0.0


def cut_clip(request: CutRequest, config: Encoding) -> Path:
    """Frames [start_frame, end_frame) of the source and the audio under them, into request.out (written atomically)."""
    import ffmpeg

    frames = request.end_frame - request.start_frame
    if frames <= 0:
        raise MediaError(MediaFault.EMPTY_RANGE, f"empty frame range {request.start_frame}-{request.end_frame}")
    start = request.start_time if request.start_time is not None else request.start_frame / request.fps
    end = request.end_time if request.end_time is not None else request.end_frame / request.fps
    duration = end - start
    start += _video_start_offset(request.source)  # ffmpeg seeks from the container's start, clip times from the video's
    video_seek = max(0.0, start - 0.25 / request.fps)
    streams = [ffmpeg.input(str(request.source), ss=f"{video_seek:.6f}")["v:0"].trim(end_frame=frames).setpts("PTS-STARTPTS")]
    if request.has_audio:
        audio = ffmpeg.input(str(request.source), ss=f"{start:.6f}")["a:0"]
        streams.append(audio.filter("atrim", end=f"{duration:.6f}").filter("asetpts", "PTS-STARTPTS"))
    request.out.parent.mkdir(parents=True, exist_ok=True)
    partial = request.out.with_name(f".{request.out.name}.part.mp4")
    _run(ffmpeg.output(*streams, str(partial), **_encoding(config)), f"cutting {request.out.name}")
    partial.replace(request.out)
    return request.out


def crop_clip(clip_file: Path, out: Path, square: tuple[int, int, int], config: Encoding) -> Path:
    """A face-centred square (x, y, side) of a cut clip, scaled to crop_size, audio kept."""
    import ffmpeg

    x, y, side = square
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.part.mp4")
    clip = ffmpeg.input(str(clip_file))
    video = clip.video.crop(x, y, side, side).filter("scale", config.crop_size, config.crop_size, flags="lanczos")
    _run(ffmpeg.output(video, clip["a?"], str(partial), **_encoding(config)), f"cropping {out.name}")
    partial.replace(out)
    return out


def _tar_member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = size, 0, 0o644, 0, 0, "", ""
    return info


def write_shards(samples: list[tuple[str, Path, dict[str, Any]]], out_dir: Path, prefix: str, max_samples: int) -> list[Path]:
    """WebDataset shards: per sample `key.mp4` then `key.json`, in key order; fixed tar metadata for stable bytes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = sorted(samples, key=lambda s: s[0])
    shards = []
    for index, start in enumerate(range(0, len(samples), max_samples)):
        path = out_dir / f"{prefix}-{index:06d}.tar"
        partial = path.with_name(f".{path.name}.part")
        with tarfile.open(partial, "w", format=tarfile.USTAR_FORMAT) as tar:
            for key, media, record in samples[start : start + max_samples]:
                with media.open("rb") as handle:
                    tar.addfile(_tar_member(f"{key}.mp4", media.stat().st_size), handle)
                payload = json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8")
                tar.addfile(_tar_member(f"{key}.json", len(payload)), io.BytesIO(payload))
        partial.replace(path)
        shards.append(path)
    return shards
