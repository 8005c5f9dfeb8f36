"""Decode a clip's time range once and deliver, frame by frame, what every reader declared it needs.

A clip is a time range of its source video (clips are virtual until export). `ClipReader` seeks to the keyframe
before the range, decodes forward once, and converts only the frames some spec needs, once per distinct
(colour, size) -- the conversion to numpy costs more than decoding. Sample times on a spec's grid are matched to
the decoded frame that covers them, so constant and variable frame rates behave the same.

The reader is a stream: each sample is handed out as its frame is decoded and the reader keeps none of them, so
what a consumer holds is what it chose to keep (the scorers keep a window at most, see talkvid_ops.score.base).

Clip times are seconds from the video stream's first frame. Frames come out upright (`media.rotation.upright`,
applied after resizing and before any crop).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from talkvid_ops.catalog.status import MediaFault
from talkvid_ops.media.errors import MediaError
from talkvid_ops.media.rotation import upright, upright_size


@dataclass(frozen=True)
class FrameSpec:
    """Frames a reader needs from a clip.

    fps: sample rate (None: every decoded frame). max_fps: a cap on that rate (TalkVid's released motion code reads
    at min(native, 30)). scale / short_side / width: resize (at most one; None: native); width is the upright
    frame's, whatever the rotation.
    square_crop: keep the central square (side = the short side) after resizing.
    select: given the clip's grid at that rate, which of its samples to keep (None: all).
    """

    fps: float | None = None
    max_fps: float | None = None
    colour: Literal["rgb", "gray"] = "rgb"
    scale: float | None = None
    short_side: int | None = None
    width: int | None = None
    square_crop: bool = False
    select: Callable[[Grid], Sequence[int]] | None = None

    def __post_init__(self) -> None:
        if sum(size is not None for size in (self.scale, self.short_side, self.width)) > 1:
            raise ValueError("a FrameSpec takes one of scale, short_side and width")


@dataclass(frozen=True)
class Grid:
    """A spec's sample grid over the clip: its rate, how many samples the clip has at it (before `select`), and the
    clip's duration (s)."""

    fps: float
    samples: int
    duration: float


@dataclass(frozen=True)
class ClipInfo:
    """What is known of a clip before its first frame: duration (s), native rate, upright size, each spec's grid."""

    duration: float
    fps: float
    width: int
    height: int
    grids: dict[FrameSpec, Grid]


@dataclass(frozen=True)
class Sample:
    """One frame for one spec: (H, W) gray or (H, W, 3) RGB, upright; the decoded frame's time in clip seconds;
    its position on the spec's grid. Samples of one frame may share the array: read it, do not write to it."""

    image: np.ndarray
    time: float
    index: int


@dataclass
class _Plan:
    """Per spec: the wanted sample positions and times (clip seconds), and how far delivery has come."""

    spec: FrameSpec
    indices: np.ndarray
    times: np.ndarray
    size: tuple[int, int]
    cursor: int = 0


def _grid(spec: FrameSpec, duration: float, native_fps: float) -> tuple[np.ndarray, np.ndarray, Grid]:
    rate = min(spec.fps or native_fps, spec.max_fps or math.inf)
    count = max(1, int(math.floor(duration * rate + 1e-6)))
    grid = Grid(rate, count, duration)
    indices = np.arange(count)
    if spec.select is not None:
        indices = np.array(sorted({int(i) for i in spec.select(grid) if 0 <= int(i) < count}), dtype=int)
    return indices, indices / rate, grid


def _target_size(spec: FrameSpec, width: int, height: int, rotation: int | None) -> tuple[int, int]:
    """The coded frame's size after resizing (it is turned upright after)."""
    if spec.scale is not None:
        factor = spec.scale
    elif spec.short_side is not None:
        factor = spec.short_side / min(width, height)
    elif spec.width is not None:
        factor = spec.width / upright_size(width, height, rotation)[0]
    else:
        return width, height
    return max(1, int(round(width * factor))), max(1, int(round(height * factor)))


def _square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(image[top : top + side, left : left + side])


class ClipReader:
    """One decode of [start_time, end_time) of the video at `path`, delivering every spec's samples in decode order.

        with ClipReader(path, start, end, specs, rotation) as clip:
            clip.info.grids[spec]          # known before the first frame
            for spec, sample in clip:      # once
                ...
        clip.decoded, clip.converted       # frames decoded in the range, conversions to numpy

    Raises MediaError: opening (empty range, unreadable, no video), and while iterating (decoding fails; nothing
    in the range, raised once the range is over).
    """

    def __init__(self, path: str | Path, start_time: float, end_time: float, specs: Iterable[FrameSpec], rotation: int | None = None):
        self.path, self.start_time, self.end_time, self.rotation = Path(path), start_time, end_time, rotation
        self.specs = list(dict.fromkeys(specs))
        self.decoded = self.converted = 0
        self._container = None

    def __enter__(self) -> ClipReader:
        import av

        if self.end_time <= self.start_time:
            raise MediaError(MediaFault.EMPTY_RANGE, f"empty clip range [{self.start_time}, {self.end_time})")
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as exc:
            raise MediaError(MediaFault.UNREADABLE if self.path.is_file() else MediaFault.MISSING, f"cannot open {self.path}: {exc}") from None
        try:
            self._open_stream()
        except BaseException:
            self._container.close()
            raise
        return self

    def _open_stream(self) -> None:
        import av

        if not self._container.streams.video:
            raise MediaError(MediaFault.NO_VIDEO, f"{self.path} has no video stream")
        stream = self._stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        native_fps = float(stream.average_rate or stream.guessed_rate or 25.0)
        width, height = stream.codec_context.width, stream.codec_context.height
        duration = self.end_time - self.start_time
        self._plans, grids = [], {}
        for spec in self.specs:
            indices, times, grids[spec] = _grid(spec, duration, native_fps)
            self._plans.append(_Plan(spec, indices, times, _target_size(spec, width, height, self.rotation)))
        self.info = ClipInfo(duration, native_fps, *upright_size(width, height, self.rotation), grids)
        self._origin = float(stream.start_time or 0) * float(stream.time_base)
        try:
            self._container.seek(int((self._origin + self.start_time) / float(stream.time_base)), stream=stream, backward=True)
        except av.FFmpegError as exc:
            raise MediaError(MediaFault.UNDECODABLE, f"cannot seek to {self.start_time:.3f}s in {self.path}: {exc}") from None

    def __exit__(self, *exc_info) -> None:
        self._container.close()

    def __iter__(self) -> Iterator[tuple[FrameSpec, Sample]]:
        import av
        from av.video.reformatter import VideoReformatter

        stream, plans, duration = self._stream, self._plans, self.info.duration
        half_frame = 0.5 / self.info.fps
        # one scaler per output: `to_ndarray(width=, height=)` would build a scaling context for every frame; each
        # scales on one thread (the same pixels as FFmpeg's automatic threads): the stage runs a worker per core
        scalers: dict[tuple[str, tuple[int, int]], VideoReformatter] = {}
        try:
            for frame in self._container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts) * float(stream.time_base) - self._origin - self.start_time
                if t < -half_frame:
                    continue
                if t >= duration - half_frame:
                    break
                self.decoded += 1
                wanted = []
                for plan in plans:
                    n = 0
                    while plan.cursor + n < len(plan.times) and plan.times[plan.cursor + n] < t + half_frame:
                        n += 1
                    if n:
                        wanted.append((plan, n))
                if not wanted:
                    if all(p.cursor >= len(p.times) for p in plans):
                        break
                    continue
                converted: dict[tuple[str, tuple[int, int]], np.ndarray] = {}  # this frame's conversions only
                for plan, n in wanted:
                    key = (plan.spec.colour, plan.size)
                    if key not in converted:
                        fmt = "gray" if plan.spec.colour == "gray" else "rgb24"
                        scaled = scalers.setdefault(key, VideoReformatter()).reformat(frame, plan.size[0], plan.size[1], fmt, threads=1)
                        converted[key] = upright(scaled.to_ndarray(), self.rotation)
                        self.converted += 1
                    image = _square(converted[key]) if plan.spec.square_crop else converted[key]
                    for _ in range(n):
                        yield plan.spec, Sample(image, t, int(plan.indices[plan.cursor]))
                        plan.cursor += 1
        except av.FFmpegError as exc:
            raise MediaError(MediaFault.UNDECODABLE, f"decoding {self.path} failed near {self.start_time:.3f}s: {exc}") from None
        if self.decoded == 0:
            raise MediaError(MediaFault.EMPTY_RANGE, f"no frames decoded in [{self.start_time:.3f}, {self.end_time:.3f}) of {self.path}")


@dataclass
class FrameSet:
    """A few frames of one spec, collected: `frames` is (N, H, W) for gray or (N, H, W, 3) for RGB; `times` in
    clip seconds; `indices` their positions on the spec's grid."""

    frames: np.ndarray
    times: np.ndarray
    indices: np.ndarray
    grid: Grid

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def height(self) -> int:
        return int(self.frames.shape[1]) if len(self.frames) else 0

    @property
    def width(self) -> int:
        return int(self.frames.shape[2]) if len(self.frames) else 0


def sample_frames(path: str | Path, start_time: float, end_time: float, times: Iterable[float], rotation: int | None = None) -> FrameSet:
    """RGB frames at native size of [start_time, end_time) at `times` (clip seconds): the frame covering each time,
    once even when several times fall on it. For a few frames (faces of a clip); scorers stream instead."""
    duration = end_time - start_time
    wanted = list(times)
    # the grid at the native rate has `count` frames over the range, so a time's frame is its share of `count`
    # (the epsilon keeps a time on a frame boundary on that frame despite rounding, as `_grid` does)
    spec = FrameSpec(select=lambda grid: [int(t / duration * grid.samples + 1e-6) for t in wanted])
    with ClipReader(path, start_time, end_time, [spec], rotation) as clip:
        samples = [sample for _, sample in clip]
    frames = np.stack([s.image for s in samples]) if samples else np.zeros((0, 0, 0), dtype=np.uint8)
    return FrameSet(frames, np.array([s.time for s in samples], dtype=float), np.array([s.index for s in samples], dtype=int), clip.info.grids[spec])
