"""Time intervals in seconds, as sorted lists of (start, end) pairs: the algebra speech and clips are built from."""

from __future__ import annotations

from collections.abc import Iterable

Intervals = list[tuple[float, float]]


def normalize(intervals: Iterable[tuple[float, float]], max_gap: float = 0.0) -> Intervals:
    """Sorted, non-empty intervals; those separated by at most `max_gap` seconds are merged."""
    merged: Intervals = []
    for start, end in sorted((float(s), float(e)) for s, e in intervals if e > s):
        if merged and start - merged[-1][1] <= max_gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def union(a: Intervals, b: Intervals) -> Intervals:
    return normalize([*a, *b])


def intersect(a: Intervals, b: Intervals) -> Intervals:
    a, b = normalize(a), normalize(b)
    out: Intervals = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if end > start:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def clip_to(intervals: Intervals, start: float, end: float) -> Intervals:
    """The parts of `intervals` inside [start, end]."""
    return intersect(intervals, [(start, end)]) if end > start else []


def total(intervals: Intervals) -> float:
    return sum(end - start for start, end in intervals)


def overlap(intervals: Intervals, start: float, end: float) -> float:
    """Seconds of `intervals` inside [start, end]."""
    return total(clip_to(intervals, start, end))
