"""Clip planning: pure functions from shots and speech to candidate clips.

Rules, in order (TalkVid's values are the defaults):
1. A clip never crosses a shot cut; each shot is trimmed first (+0.3 s at the start, -0.1 s at the end).
2. With `max_pause_s` set, non-speech longer than that ends a clip, so clips hug speech stretches; unset, a clip
   is the whole trimmed shot, as TalkVid cut them.
3. With `max_duration_s` set, longer stretches are split, at the longest pause that leaves a first part longer
   than the minimum, else at the maximum.
4. Edges snap to frames, placed by the frames' presentation times (variable frame rate and streams with a
   non-zero start are cut and scored at the same instants); a clip must be strictly longer than `min_duration_s`.
5. It must hold some speech, at least `min_speech_coverage` of its length (when speech is unknown, as for a
   video without subtitles under the `subtitles` rule, clips are kept as TalkVid kept them).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from talkvid_ops.config.segment import SegmentConfig
from talkvid_ops.segment import intervals as iv

_EPS = 1e-6


@dataclass(frozen=True)
class PlannedClip:
    shot_index: int
    start_frame: int  # first frame in the clip
    end_frame: int  # first frame after the clip
    fps: float
    speech_seconds: float | None
    speech_coverage: float | None
    start_pts: float | None = None  # the frames' presentation times (s from the stream's first frame), when known
    end_pts: float | None = None

    @property
    def start_time(self) -> float:
        return self.start_pts if self.start_pts is not None else self.start_frame / self.fps

    @property
    def end_time(self) -> float:
        return self.end_pts if self.end_pts is not None else self.end_frame / self.fps

    @property
    def duration(self) -> float:
        return self.end_time - self.start_time


class Timeline:
    """Frame index <-> time: presentation timestamps when known (variable frame rate, a non-zero start), else
    index / fps. `times` holds frame_count + 1 entries: each frame's start, then the end of the last frame."""

    def __init__(self, fps: float, times: Sequence[float] | None = None):
        self.fps, self.times = fps, list(times) if times is not None else None

    def time(self, frame: int) -> float:
        return self.times[frame] if self.times is not None else frame / self.fps

    def first_at_or_after(self, t: float) -> int:
        return bisect.bisect_left(self.times, t - _EPS) if self.times is not None else math.ceil(t * self.fps - _EPS)

    def last_at_or_before(self, t: float) -> int:
        return bisect.bisect_right(self.times, t + _EPS) - 1 if self.times is not None else math.floor(t * self.fps + _EPS)


def speech_windows(start: float, end: float, speech: iv.Intervals | None, max_pause: float | None) -> iv.Intervals:
    """The stretches of [start, end] a clip may cover: all of it, or its speech with short pauses bridged."""
    if max_pause is None or speech is None:
        return [(start, end)]
    return iv.normalize(iv.clip_to(speech, start, end), max_gap=max_pause)


def split_long(window: tuple[float, float], speech: iv.Intervals | None, max_len: float | None, min_len: float) -> iv.Intervals:
    """Split a window longer than `max_len`, preferring the longest pause whose first part is longer than `min_len`."""
    start, end = window
    if max_len is None or end - start <= max_len:
        return [window]
    inside = iv.clip_to(speech or [], start, end)
    pauses = [(a_end, b_start) for (_, a_end), (b_start, _) in zip(inside, inside[1:])]
    fits = [(p0, p1) for p0, p1 in pauses if min_len < p0 - start <= max_len]
    if fits:
        cut_end, next_start = max(fits, key=lambda p: (p[1] - p[0], p[0]))
    else:
        cut_end = next_start = start + max_len
    return [(start, cut_end), *split_long((next_start, end), speech, max_len, min_len)]


def plan_clips(
    shots: list[tuple[int, int]], fps: float, speech: iv.Intervals | None, config: SegmentConfig, frame_times: Sequence[float] | None = None
) -> list[PlannedClip]:
    """Candidate clips of one video from its shots ([start_frame, end_frame) ranges) and speech intervals
    (None: unknown); with `frame_times` (see Timeline) clips are placed on the frames' presentation times."""
    timeline = Timeline(fps, frame_times)
    clips: list[PlannedClip] = []
    for index, (shot_start, shot_end) in enumerate(shots):
        lo = timeline.time(shot_start) + config.trim_start_s
        hi = timeline.time(shot_end) - config.trim_end_s
        if hi - lo <= config.min_duration_s:
            continue
        for window in speech_windows(lo, hi, speech, config.max_pause_s):
            for start, end in split_long(window, speech, config.max_duration_s, config.min_duration_s):
                clip = _framed(index, start, end, timeline, shot_start, shot_end, speech)
                if clip is not None and _keep(clip, config):
                    clips.append(clip)
    return clips


def _framed(index: int, start: float, end: float, timeline: Timeline, shot_start: int, shot_end: int, speech: iv.Intervals | None) -> PlannedClip | None:
    # Start on the first frame at or after `start`, stop after the last frame before `end`: never outside the shot.
    first = max(shot_start, timeline.first_at_or_after(start))
    stop = min(shot_end, timeline.last_at_or_before(end))
    if stop <= first:
        return None
    t0, t1 = timeline.time(first), timeline.time(stop)
    seconds = None if speech is None else iv.overlap(speech, t0, t1)
    coverage = None if seconds is None else seconds / (t1 - t0)
    pts = (t0, t1) if timeline.times is not None else (None, None)
    return PlannedClip(index, first, stop, timeline.fps, seconds, coverage, *pts)


def _keep(clip: PlannedClip, config: SegmentConfig) -> bool:
    if clip.duration <= config.min_duration_s + _EPS:
        return False
    if clip.speech_seconds is None:
        return True
    return clip.speech_seconds > 0 and clip.speech_coverage >= config.min_speech_coverage
