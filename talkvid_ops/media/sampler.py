"""Decode a clip's time range once and deliver every scorer the frames it declared.

A clip is a time range of its source video (clips are virtual until export). The sampler seeks to the keyframe
before the range, decodes forward once, and converts only the frames some spec needs, once per distinct
(colour, size) -- the conversion to numpy costs more than decoding. Sample times on a spec's grid are matched to
the decoded frame that covers them, so constant and variable frame rates behave the same.

Clip times are seconds from the video stream's first frame. Frames come out upright: a video's display
rotation (`video.rotation`, degrees clockwise) is applied before any crop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from talkvid_ops.catalog.status import MediaFault
from talkvid_ops.media.errors import MediaError


@dataclass(frozen=True)
class FrameSpec:
    """Frames a scorer needs from a clip.

    fps: sample rate (None: every decoded frame). scale / short_side: resize (at most one; None: native).
    square_crop: keep the central square (side = the short side) after resizing.
    select: given how many samples the clip has at `fps`, which of them to keep (None: all).
    reduce: applied to each kept frame as it is decoded, so a scorer that needs only parts of full-resolution
    frames (DOVER's fragments) never holds whole frames; every result must have the same shape.
    """

    fps: float | None = None
    colour: Literal["rgb", "gray"] = "rgb"
    scale: float | None = None
    short_side: int | None = None
    square_crop: bool = False
    select: Callable[[int], Sequence[int]] | None = None
    reduce: Callable[[np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.scale is not None and self.short_side is not None:
            raise ValueError("a FrameSpec takes scale or short_side, not both")


@dataclass
class FrameSet:
    """The frames of one spec: `frames` is (N, H, W) for gray or (N, H, W, 3) for RGB; `times` in clip seconds."""

    frames: np.ndarray
    times: np.ndarray
    indices: np.ndarray  # each frame's position on the spec's sample grid (what `select` chose from)
    fps: float
    samples_on_grid: int  # samples the clip has at this rate before `select`

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def height(self) -> int:
        return int(self.frames.shape[1]) if len(self.frames) else 0

    @property
    def width(self) -> int:
        return int(self.frames.shape[2]) if len(self.frames) else 0


@dataclass
class ClipFrames:
    """Everything decoded for one clip, by spec."""

    duration: float
    fps: float
    width: int
    height: int
    sets: dict[FrameSpec, FrameSet]
    decoded: int = 0
    converted: int = 0

    def __getitem__(self, spec: FrameSpec) -> FrameSet:
        return self.sets[spec]


@dataclass
class _Plan:
    """Per spec: the wanted sample times (clip seconds) and where each decoded frame goes."""

    spec: FrameSpec
    indices: np.ndarray
    times: np.ndarray
    grid_count: int
    size: tuple[int, int]
    cursor: int = 0
    frames: list = field(default_factory=list)
    frame_times: list = field(default_factory=list)


def _grid(spec: FrameSpec, duration: float, native_fps: float) -> tuple[np.ndarray, np.ndarray, int]:
    rate = spec.fps or native_fps
    count = max(1, int(math.floor(duration * rate + 1e-6)))
    indices = np.arange(count)
    if spec.select is not None:
        indices = np.array(sorted({int(i) for i in spec.select(count) if 0 <= int(i) < count}), dtype=int)
    return indices, indices / rate, count


def _target_size(spec: FrameSpec, width: int, height: int) -> tuple[int, int]:
    if spec.scale is not None:
        factor = spec.scale
    elif spec.short_side is not None:
        factor = spec.short_side / min(width, height)
    else:
        return width, height
    return max(1, int(round(width * factor))), max(1, int(round(height * factor)))


def _square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(image[top : top + side, left : left + side])


CLOCKWISE_QUARTER_TURNS = {90: 3, 180: 2, 270: 1}  # display rotation -> np.rot90's counter-clockwise turns


def sample_clip(path: str | Path, start_time: float, end_time: float, specs: Iterable[FrameSpec], rotation: int | None = None) -> ClipFrames:
    """Decode [start_time, end_time) of the video at `path` once and return the frames of every spec."""
    import av

    specs = list(dict.fromkeys(specs))
    if end_time <= start_time:
        raise MediaError(MediaFault.EMPTY_RANGE, f"empty clip range [{start_time}, {end_time})")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(MediaFault.UNREADABLE if Path(path).is_file() else MediaFault.MISSING, f"cannot open {path}: {exc}") from None
    with container:
        if not container.streams.video:
            raise MediaError(MediaFault.NO_VIDEO, f"{path} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        native_fps = float(stream.average_rate or stream.guessed_rate or 25.0)
        width, height = stream.codec_context.width, stream.codec_context.height
        turns = CLOCKWISE_QUARTER_TURNS.get(int(rotation or 0) % 360, 0)
        duration = end_time - start_time
        half_frame = 0.5 / native_fps
        plans = []
        for spec in specs:
            indices, times, grid_count = _grid(spec, duration, native_fps)
            plans.append(_Plan(spec, indices, times, grid_count, _target_size(spec, width, height)))
        origin = float(stream.start_time or 0) * float(stream.time_base)
        try:
            container.seek(int((origin + start_time) / float(stream.time_base)), stream=stream, backward=True)
        except av.FFmpegError as exc:
            raise MediaError(MediaFault.UNDECODABLE, f"cannot seek to {start_time:.3f}s in {path}: {exc}") from None
        decoded = converted = 0
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts) * float(stream.time_base) - origin - start_time
                if t < -half_frame:
                    continue
                if t >= duration - half_frame:
                    break
                decoded += 1
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
                cache: dict[tuple[str, tuple[int, int]], np.ndarray] = {}
                for plan, n in wanted:
                    key = (plan.spec.colour, plan.size)
                    if key not in cache:
                        fmt = "gray" if plan.spec.colour == "gray" else "rgb24"
                        image = frame.to_ndarray(format=fmt, width=plan.size[0], height=plan.size[1])
                        cache[key] = np.ascontiguousarray(np.rot90(image, turns)) if turns else image
                        converted += 1
                    image = _square(cache[key]) if plan.spec.square_crop else cache[key]
                    if plan.spec.reduce is not None:
                        image = plan.spec.reduce(image)
                    for _ in range(n):
                        plan.frames.append(image)
                        plan.frame_times.append(t)
                    plan.cursor += n
        except av.FFmpegError as exc:
            raise MediaError(MediaFault.UNDECODABLE, f"decoding {path} failed near {start_time:.3f}s: {exc}") from None
    if decoded == 0:
        raise MediaError(MediaFault.EMPTY_RANGE, f"no frames decoded in [{start_time:.3f}, {end_time:.3f}) of {path}")
    sets = {}
    for plan in plans:
        if plan.frames:
            frames = np.stack(plan.frames)
        else:
            frames = np.zeros((0, 0, 0), dtype=np.uint8)
        sets[plan.spec] = FrameSet(
            frames,
            np.asarray(plan.frame_times, dtype=float),
            plan.indices[: len(plan.frames)],
            plan.spec.fps or native_fps,
            plan.grid_count,
        )
    if turns % 2:
        width, height = height, width
    return ClipFrames(duration, native_fps, width, height, sets, decoded, converted)


def sample_frames(path: str | Path, start_time: float, end_time: float, times: Iterable[float], rotation: int | None = None) -> FrameSet:
    """RGB frames at native size of [start_time, end_time) at `times` (clip seconds): the frame covering each time,
    once even when several times fall on it."""
    duration = end_time - start_time
    wanted = list(times)
    # the grid at the native rate has `count` frames over the range, so a time's frame is its share of `count`
    # (the epsilon keeps a time on a frame boundary on that frame despite rounding, as `_grid` does)
    spec = FrameSpec(select=lambda count: [int(t / duration * count + 1e-6) for t in wanted])
    return sample_clip(path, start_time, end_time, [spec], rotation)[spec]
