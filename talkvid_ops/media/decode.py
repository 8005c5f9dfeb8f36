"""Decoding through PyAV, with the media faults that stop a video's segmentation named as data."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from talkvid_ops.catalog.status import MediaFault
from talkvid_ops.media.errors import MediaError

if TYPE_CHECKING:
    from av.container import InputContainer
    from av.stream import Stream

AUDIO_RATE = 16000  # what Silero VAD and Whisper take
ZERO_LENGTH_S = 0.5  # a cut-off file of a few frames (an interrupted download) is as empty as a 0-byte one


@contextmanager
def open_media(path: str | Path) -> Iterator[InputContainer]:
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(MediaFault.MISSING, f"media file not found: {path}")
    if path.stat().st_size == 0:
        raise MediaError(MediaFault.ZERO_LENGTH, "zero-length video: the file is empty")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise MediaError(MediaFault.UNREADABLE, f"cannot open media: {exc}") from None
    if not container.streams.video and not container.streams.audio:
        container.close()
        raise MediaError(MediaFault.ZERO_LENGTH, "zero-length video: the file holds no audio or video stream")
    duration = container_duration(container)
    if duration is not None and duration < ZERO_LENGTH_S:
        container.close()
        raise MediaError(MediaFault.ZERO_LENGTH, f"zero-length video: {duration:.2f} s of media")
    try:
        yield container
    finally:
        container.close()


def decoded_frames(container: InputContainer, stream: Stream, what: str) -> Iterator:
    """Every decodable frame of `stream`. Packets that fail to decode are counted, and once the pass is over
    the file is declared undecodable: a clip over a damaged stretch would be scored on garbage."""
    import av

    failures: list[tuple[float | None, str]] = []
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            at = float(packet.pts * stream.time_base) if packet.pts is not None else None
            failures.append((at, str(exc)))
            continue
        yield from frames
    if failures:
        at, reason = failures[0]
        where = f"first at {at:.2f} s" if at is not None else "position unknown"
        raise MediaError(MediaFault.UNDECODABLE, f"undecodable {what} frames mid-file: {len(failures)} packets failed, {where} ({reason})")


def container_duration(container: InputContainer) -> float | None:
    return container.duration / 1_000_000 if container.duration else None


def decode_audio(path: str | Path, rate: int = AUDIO_RATE) -> np.ndarray:
    """The first audio track as mono float32 at `rate`, sample 0 at time 0."""
    import av

    with open_media(path) as container:
        if not container.streams.audio:
            raise MediaError(MediaFault.NO_AUDIO, "no audio track")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks: list[np.ndarray] = []
        first_time: float | None = None
        for frame in decoded_frames(container, stream, "audio"):
            if first_time is None:
                first_time = frame.time or 0.0
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
        chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    if samples.size == 0:
        raise MediaError(MediaFault.NO_AUDIO, "the audio track has no samples")
    # A track that starts late (or early, with codec priming) is shifted so that index / rate is video time.
    offset = round((first_time or 0.0) * rate)
    if offset > 0:
        samples = np.concatenate([np.zeros(offset, np.float32), samples])
    elif offset < 0:
        samples = samples[-offset:]
    return samples
