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


def decoded_frames(container: InputContainer, *streams: Stream) -> Iterator:
    """Every decodable frame of `streams`, in file order (one read of the file for all of them). Packets that fail
    to decode are counted, and once the pass is over the file is declared undecodable (the first stream given
    with failures is named): a clip over a damaged stretch would be scored on garbage."""
    import av

    failures: dict[Stream, list[tuple[float | None, str]]] = {stream: [] for stream in streams}
    for packet in container.demux(*streams):
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            at = float(packet.pts * packet.stream.time_base) if packet.pts is not None else None
            failures[packet.stream].append((at, str(exc)))
            continue
        yield from frames
    for stream, failed in failures.items():
        if failed:
            at, reason = failed[0]
            where = f"first at {at:.2f} s" if at is not None else "position unknown"
            raise MediaError(MediaFault.UNDECODABLE, f"undecodable {stream.type} frames mid-file: {len(failed)} packets failed, {where} ({reason})")


def container_duration(container: InputContainer) -> float | None:
    return container.duration / 1_000_000 if container.duration else None


class AudioTrack:
    """Collects decoded audio frames as mono float32 at `rate`; `samples()` gives them with sample 0 at time 0."""

    def __init__(self, rate: int = AUDIO_RATE):
        import av

        self.rate = rate
        self.resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        self.chunks: list[np.ndarray] = []
        self.first_time: float | None = None

    def add(self, frame) -> None:
        if self.first_time is None:
            self.first_time = frame.time or 0.0
        self.chunks.extend(out.to_ndarray().reshape(-1) for out in self.resampler.resample(frame))

    def samples(self) -> np.ndarray:
        self.chunks.extend(out.to_ndarray().reshape(-1) for out in self.resampler.resample(None))
        samples = np.concatenate(self.chunks).astype(np.float32, copy=False) if self.chunks else np.zeros(0, np.float32)
        if samples.size == 0:
            raise MediaError(MediaFault.NO_AUDIO, "the audio track has no samples")
        # A track that starts late (or early, with codec priming) is shifted so that index / rate is video time.
        offset = round((self.first_time or 0.0) * self.rate)
        if offset > 0:
            samples = np.concatenate([np.zeros(offset, np.float32), samples])
        elif offset < 0:
            samples = samples[-offset:]
        return samples


def audio_stream(container: InputContainer) -> Stream:
    """The first audio track; a file without one is a NO_AUDIO fault."""
    if not container.streams.audio:
        raise MediaError(MediaFault.NO_AUDIO, "no audio track")
    return container.streams.audio[0]


def decode_audio(path: str | Path, rate: int = AUDIO_RATE) -> np.ndarray:
    """The first audio track as mono float32 at `rate`, sample 0 at time 0."""
    with open_media(path) as container:
        track = AudioTrack(rate)
        for frame in decoded_frames(container, audio_stream(container)):
            track.add(frame)
    return track.samples()
