"""TalkVid's released-code definitions, reproduced exactly (`../shared/talkvid-reference.md` is the specification).

DOVER (`dover/onnx_inference.py` of TalkVid's data pipeline): the ONNX session's outputs are averaged to s0 (the
first output, aesthetic) and s1 (the second, technical). The released `dover_scores` is
`overall.technical_quality.normalized_score`: for each of DOVER's five validation prediction sets d, the Gaussian
z-score (numpy mean and population std) of **s0** within {s0} joined with d's technical (`fragments`) predictions;
the mean of the five, rounded to 2 decimals. Feeding the aesthetic s0 into the technical sets looks like a slip of the
released code; we reproduce it because it defines the scale of every released `dover_scores` (typically 4-10; the
released mean is 8.55) and of both thresholds that apply to it (the code's 5, the paper's 7.0).

CoTracker (`co-tracker/camera_filtering.py`): frames read at min(source fps, 30); when more than one second was
read, the first and last int(0.2 * fps) frames are dropped; segments come from the record's duration d: d <= 6 s
one (0, d), 6 < d <= 12 two, (0, 6) and (d - 6, d), longer three, (0, 6), (d/2 - 3, d/2 + 3), (d - 6, d); a segment's
frames are range(floor(start * fps), ceil(end * fps), int(fps / 2)) of the trimmed array, clipped to it.
"""

from __future__ import annotations

import math

# DOVER's validation prediction sets (technical `fragments` predictions): n, sum, sum of squares.
DOVER_PREDICTION_SETS: dict[str, tuple[int, float, float]] = {
    "livevqc": (585, -48.389025898650289, 4.8353884716467661),
    "kv1k": (1200, -132.97151358053088, 16.815271177613901),
    "ltest": (7186, -752.86349470971618, 92.889662040495097),
    "l1080p": (3573, -319.26514820440207, 34.702709154655381),
    "ytugc": (1147, -120.13577245455235, 14.401928746427304),
}
DOVER_ROUNDING = 2

CODE_MAX_FPS = 30.0
CODE_TRIM_S = 0.2
CODE_SEGMENT_S = 6.0


def dover_set_zscores(s0: float) -> dict[str, float]:
    """Per prediction set: the z-score of s0 among the set's predictions with s0 included (population std)."""
    zscores = {}
    for name, (n, total, squares) in DOVER_PREDICTION_SETS.items():
        count = n + 1
        mean = (total + s0) / count
        variance = (squares + s0 * s0) / count - mean * mean
        zscores[name] = (s0 - mean) / math.sqrt(variance)
    return zscores


def dover_released_score(s0: float) -> float:
    """TalkVid's released `dover_scores` for a clip whose first DOVER output averages to s0."""
    zscores = dover_set_zscores(s0)
    return round(sum(zscores.values()) / len(zscores), DOVER_ROUNDING)


def code_read_fps(source_fps: float) -> float:
    return min(float(source_fps), CODE_MAX_FPS)


def code_trim(frame_count: int, fps: float) -> tuple[int, int]:
    """[first, last) of the frames the released code keeps out of `frame_count` read at `fps`."""
    if frame_count > fps:
        drop = int(CODE_TRIM_S * fps)
        return drop, frame_count - drop
    return 0, frame_count


def code_segment_times(duration: float) -> list[tuple[float, float]]:
    """The released code's (start, end) seconds of each motion segment of a clip lasting `duration` seconds."""
    d = float(duration)
    if d <= CODE_SEGMENT_S:
        return [(0.0, d)]
    if d <= 2 * CODE_SEGMENT_S:
        return [(0.0, CODE_SEGMENT_S), (d - CODE_SEGMENT_S, d)]
    half = CODE_SEGMENT_S / 2
    return [(0.0, CODE_SEGMENT_S), (d / 2 - half, d / 2 + half), (d - CODE_SEGMENT_S, d)]


def code_segment_frames(duration: float, fps: float, trimmed_count: int) -> list[list[int]]:
    """Per segment, the indices into the trimmed frame array that the released code tracks (every int(fps/2)-th)."""
    step = max(1, int(fps / 2))
    segments = []
    for start, end in code_segment_times(duration):
        first, stop = max(0, math.floor(start * fps)), min(trimmed_count, math.ceil(end * fps))
        segments.append(list(range(first, stop, step)))
    return segments
