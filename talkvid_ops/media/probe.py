"""Probe a media file with PyAV: what it holds, read from the file itself, and whether it is whole.

The probe demuxes every video packet (no decoding, so about as fast as reading the file) and decodes the first
frame. That finds what container headers alone do not: a file cut short after a header that promised more (a
download that stopped early with its index at the front), a variable frame rate, a codec that cannot decode.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from talkvid_ops.catalog.status import MediaFault
from talkvid_ops.media.errors import MediaError
from talkvid_ops.media.hashing import HashingReader
from talkvid_ops.media.rotation import upright_size

# A video whose packets end this much before the declared duration was cut short.
TRUNCATION_TOLERANCE_S = 0.5
TRUNCATION_TOLERANCE_RATIO = 0.02
# Frame intervals further than this from the median are irregular; this share of irregular intervals means VFR.
VFR_DEVIATION = 0.1
VFR_SHARE = 0.02


@dataclass(frozen=True)
class MediaInfo:
    duration: float
    width: int  # as coded; `rotation` says how to turn it for display
    height: int
    fps: float
    frame_count: int
    is_vfr: bool
    rotation: int  # degrees, 0/90/180/270
    video_codec: str
    audio_codec: str | None
    has_audio: bool
    audio_sample_rate: int | None
    size_bytes: int

    @property
    def display_height(self) -> int:
        return upright_size(self.width, self.height, self.rotation)[1]

    def as_row(self) -> dict:
        return asdict(self)


def _frame_rate(deltas: list[float], nominal_rate) -> tuple[float, bool]:
    """(frames per second, variable frame rate?) from the intervals between presentation times.

    A constant rate is the stream's nominal one (exact, e.g. 30000/1001, where millisecond timestamps would
    round); a variable rate is the mean over the stream."""
    if not deltas:
        return (float(nominal_rate) if nominal_rate else 0.0), False
    median = statistics.median(deltas)
    irregular = sum(1 for d in deltas if abs(d - median) > VFR_DEVIATION * median) if median > 0 else 0
    is_vfr = irregular > VFR_SHARE * len(deltas)
    if is_vfr or not nominal_rate:
        span = sum(deltas)
        return (len(deltas) / span if span > 0 else 0.0), is_vfr
    return float(nominal_rate), False


def probe(path: str | Path) -> MediaInfo:
    """Probe `path`; raises MediaError with the reason when it is empty, unreadable, truncated or has no video."""
    return _probe(Path(path), str(path))


def probe_and_hash(path: str | Path) -> tuple[MediaInfo, str]:
    """`probe` and the file's sha256 (as `media.hashing.sha256_file`) from one read of the file."""
    path = Path(path)
    _file_size(path)  # a missing or empty file fails as `probe` says, before it is opened for hashing
    with HashingReader(path) as reader:
        media = _probe(path, reader)
        return media, reader.hexdigest()


def _file_size(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MediaError(
            MediaFault.MISSING if isinstance(exc, FileNotFoundError) else MediaFault.UNREADABLE, f"cannot read the file: {exc.strerror or exc}"
        ) from None
    if size == 0:
        raise MediaError(MediaFault.ZERO_LENGTH, "empty file (0 bytes)")
    return size


def _probe(path: Path, source: str | HashingReader) -> MediaInfo:
    """The probe of `path`, read through `source` (its name, or a reader hashing it)."""
    import av

    size = _file_size(path)
    try:
        container = av.open(source, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise MediaError(MediaFault.UNREADABLE, f"not readable as media ({exc.strerror or exc}): not a video, or a download cut short") from None
    with container:
        if not container.streams.video:
            raise MediaError(MediaFault.NO_VIDEO, "no video stream")
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        time_base = float(video.time_base)
        pts: list[int] = []
        last_end = None
        first_frame = None
        try:
            for packet in container.demux(video):
                if packet.pts is None:
                    continue  # the flush packet at the end
                pts.append(packet.pts)
                end = packet.pts + (packet.duration or 0)
                last_end = end if last_end is None else max(last_end, end)
                if first_frame is None:
                    frames = packet.decode()
                    first_frame = frames[0] if frames else None
        except av.error.FFmpegError as exc:
            raise MediaError(MediaFault.UNDECODABLE, f"corrupt after {len(pts)} video packets ({exc.strerror or exc})") from None
        if not pts:
            raise MediaError(MediaFault.ZERO_LENGTH, "the video stream holds no frames")
        if first_frame is None:
            raise MediaError(MediaFault.UNDECODABLE, f"no frame of the {video.codec_context.name} video stream could be decoded")
        start = (video.start_time or 0) * time_base
        actual = last_end * time_base - start
        if video.duration:
            declared = video.duration * time_base
        elif container.duration:
            declared = container.duration / 1_000_000
        else:
            declared = actual
        if actual < declared - max(TRUNCATION_TOLERANCE_S, TRUNCATION_TOLERANCE_RATIO * declared):
            raise MediaError(MediaFault.TRUNCATED, f"truncated: video packets end at {actual:.2f} s of the {declared:.2f} s the file declares")
        ordered = sorted(pts)
        deltas = [(b - a) * time_base for a, b in zip(ordered, ordered[1:])]
        fps, is_vfr = _frame_rate(deltas, video.base_rate or video.average_rate)
        return MediaInfo(
            duration=round(actual, 3),
            width=video.codec_context.width,
            height=video.codec_context.height,
            fps=round(fps, 3),
            frame_count=len(pts),
            is_vfr=is_vfr,
            rotation=int(first_frame.rotation or 0) % 360,
            video_codec=video.codec_context.codec.canonical_name,
            audio_codec=audio.codec_context.codec.canonical_name if audio else None,
            has_audio=audio is not None,
            audio_sample_rate=audio.codec_context.sample_rate if audio else None,
            size_bytes=size,
        )
