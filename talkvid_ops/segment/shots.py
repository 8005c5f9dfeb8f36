"""Shot boundaries with PySceneDetect's detectors, fed from one PyAV pass that also checks the video decodes.

PySceneDetect's own PyAV stream converts every frame to full-size BGR and then resizes it; here FFmpeg's scaler
converts straight to a small BGR frame (`shot_width` wide), which is where most of the time went
(benchmarks/bench_segment.py measures both). One scaler serves the whole pass: PyAV's `frame.to_ndarray(width=...)`
sets up a new scaling context (and its threads) for every frame, which cost 7x the scaling itself at 720p, for
bit-identical pictures. Scaling and detection run on a thread of their own (`_BackgroundDetector`), so the next
frames decode meanwhile. The same pass counts frames and finds undecodable stretches, and
can decode the audio track as well (`scan_shots_and_audio`), so the segment stage reads each file once.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from talkvid_ops.catalog.status import MediaFault
from talkvid_ops.config.segment import SegmentConfig
from talkvid_ops.media.decode import AudioTrack, audio_stream, container_duration, decoded_frames, open_media
from talkvid_ops.media.errors import MediaError

# A decodable stream shorter than its container claims by more than this was cut off (truncated download).
TRUNCATION_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class ShotScan:
    """What one decoding pass found: frame rate and count, size, and the first frame of every shot after the first."""

    fps: float
    frame_count: int
    width: int
    height: int
    cut_frames: tuple[int, ...]
    # each frame's presentation time (s from the stream's first frame), then the end of the last frame
    frame_times: tuple[float, ...] | None = None

    @property
    def duration(self) -> float:
        return self.frame_times[-1] if self.frame_times else self.frame_count / self.fps

    @property
    def shots(self) -> list[tuple[int, int]]:
        """Shots as [start_frame, end_frame) ranges covering the whole video."""
        edges = [0, *self.cut_frames, self.frame_count]
        return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def make_detector(config: SegmentConfig):
    from scenedetect.detectors import AdaptiveDetector, ContentDetector, HistogramDetector

    threshold, min_len = config.resolved_threshold, config.min_shot_frames
    if config.detector == "histogram":
        return HistogramDetector(threshold=threshold, min_scene_len=min_len)
    if config.detector == "content":
        return ContentDetector(threshold=threshold, min_scene_len=min_len)
    return AdaptiveDetector(adaptive_threshold=threshold, min_scene_len=min_len)


# below this many pixels a side no shot, face or speaker can be seen (and the scaler cannot halve it)
MIN_PICTURE_SIDE = 8


def scaled_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """`target_width` wide (never upscaled), aspect kept, both even for the scaler."""
    out_w = min(target_width, width)
    out_h = max(2, round(height * out_w / width / 2) * 2)
    return out_w - out_w % 2, out_h


def scan_shots(path: str | Path, config: SegmentConfig) -> ShotScan:
    """Decode every frame once (downscaled), run the configured detector, and check that the video is whole."""
    return _scan(path, config, with_audio=False)[0]


def scan_shots_and_audio(path: str | Path, config: SegmentConfig) -> tuple[ShotScan, np.ndarray]:
    """`scan_shots` and `media.decode.decode_audio` in one read of the file: a file without an audio track is a
    NO_AUDIO fault before any frame is decoded, and a damaged audio stretch is named before a damaged video one."""
    return _scan(path, config, with_audio=True)


class _BackgroundDetector:
    """Scales each frame and runs the shot detector on it on a thread of its own, in frame order: FFmpeg's scaler
    releases the GIL, so the decoder works on the next frames meanwhile (the same pictures and cuts; the analysis
    went from 0.61x to 0.69x the decode floor, benchmarks/bench_segment.py). The queue is short, so memory stays
    a few frames; after a failure the thread keeps draining, so the decoder never blocks on a full queue."""

    QUEUE_FRAMES = 8

    def __init__(self, detector, rate: Fraction, size: tuple[int, int]):
        self.detector, self.rate, self.size = detector, rate, size
        self.cuts: list[int] = []
        self.failure: BaseException | None = None
        self._frames: queue.Queue = queue.Queue(self.QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._run, name="shot-detector", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from av.video.reformatter import VideoReformatter
        from scenedetect import FrameTimecode

        scaler = VideoReformatter()
        number = 0
        while (frame := self._frames.get()) is not None:
            if self.failure is None:
                try:
                    # one scaler thread: the decoder's threads already use the cores (same pixels as FFmpeg's auto)
                    image = scaler.reformat(frame, *self.size, "bgr24", threads=1).to_ndarray()
                    self.cuts.extend(t.frame_num for t in self.detector.process_frame(FrameTimecode(number, fps=self.rate), image))
                except BaseException as exc:  # raised to the decoding thread by `finish`
                    self.failure = exc
            number += 1

    def add(self, frame) -> None:
        self._frames.put(frame)

    def stop(self) -> None:
        """Wait until every frame given so far was processed (idempotent)."""
        if self._thread.is_alive():
            self._frames.put(None)
            self._thread.join()

    def finish(self) -> list[int]:
        """The cuts found in all frames given; raises what the thread ran into."""
        self.stop()
        if self.failure is not None:
            raise self.failure
        return self.cuts


def _scan(path: str | Path, config: SegmentConfig, with_audio: bool) -> tuple[ShotScan, np.ndarray | None]:
    import av
    from scenedetect import FrameTimecode

    with open_media(path) as container:
        audio = audio_stream(container) if with_audio else None
        if not container.streams.video:
            raise MediaError(MediaFault.NO_VIDEO, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            raise MediaError(MediaFault.UNREADABLE, "the video stream has no frame rate")
        rate = Fraction(rate.numerator, rate.denominator)
        width, height = stream.codec_context.width, stream.codec_context.height
        if min(width, height) < MIN_PICTURE_SIDE:
            raise MediaError(MediaFault.DEGENERATE, f"degenerate video: a picture of {width}x{height} pixels")
        detector = make_detector(config)
        background = _BackgroundDetector(detector, rate, scaled_size(width, height, config.shot_width))
        track = AudioTrack() if audio is not None else None
        times: list[float] = []
        frames = 0
        time_base, origin = float(stream.time_base), float(stream.start_time or 0) * float(stream.time_base)
        try:
            for frame in decoded_frames(container, *([audio] if audio is not None else []), stream):
                if isinstance(frame, av.AudioFrame):
                    track.add(frame)
                    continue
                times.append(frame.pts * time_base - origin if frame.pts is not None else (times[-1] + 1 / float(rate) if times else 0.0))
                background.add(frame)
                frames += 1
        finally:
            background.stop()
        samples = track.samples() if track is not None else None  # no samples: NO_AUDIO, before the video's faults
        if frames == 0:
            raise MediaError(MediaFault.ZERO_LENGTH, "zero-length video: no frame decodes")
        cuts = background.finish()
        cuts.extend(t.frame_num for t in detector.post_process(FrameTimecode(frames - 1, fps=rate)))
        expected = container_duration(container)
    fps = float(rate)
    last = times[-1] + 1 / fps  # the end of the last frame, by presentation time (variable frame rates included)
    if expected is not None and last < expected - max(TRUNCATION_TOLERANCE_S, 0.02 * expected):
        raise MediaError(MediaFault.UNDECODABLE, f"undecodable video frames mid-file: frames stop at {last:.2f} s of {expected:.2f} s")
    times.append(last)
    scan = ShotScan(fps=fps, frame_count=frames, width=width, height=height, cut_frames=tuple(sorted({c for c in cuts if 0 < c < frames})),
                    frame_times=tuple(round(t, 6) for t in times))  # fmt: skip
    return scan, samples
