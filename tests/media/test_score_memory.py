"""Scoring holds a window of frames, not the clip: the peak memory of scoring a clip with the CPU scorers is the
same for a 2 s clip and one six times as long (the sampler streams, each scorer keeps only its window)."""

from __future__ import annotations

import gc
import tracemalloc

from talkvid_ops.config.score import ScoreConfig
from talkvid_ops.score import stage
from talkvid_ops.score.motion import PAPER_FPS, PAPER_SHORT_SIDE

START, SHORT, LONG = 1.0, 2.0, 12.0


def peak_bytes_while_scoring(path, seconds: float, scorers) -> tuple[int, stage.ClipOutcome]:
    gc.collect()
    tracemalloc.start()
    try:
        outcome = stage.score_clip(path, START, START + seconds, 0, scorers)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, outcome


def test_peak_memory_does_not_grow_with_clip_length(pyfeat_media):
    video = pyfeat_media["WolfgangLanger_Pexels.mp4"]  # 19.7 s of a talking head, 640x360
    scorers = stage.scorers_for(ScoreConfig())  # classical quality, LK motion, dlib head
    for scorer in scorers:
        scorer.load()  # models are loaded once per process, not per clip: not part of a clip's memory
    short_peak, short = peak_bytes_while_scoring(video, SHORT, scorers)
    long_peak, long = peak_bytes_while_scoring(video, LONG, scorers)
    assert not short.failures and not long.failures, (short.failures, long.failures)
    decoded = [next(iter(outcome.details.values()))["decoded_frames"] for outcome in (short, long)]
    assert decoded[1] > 5 * decoded[0]  # the long clip really streamed six times the frames
    assert long_peak < 1.2 * short_peak, (short_peak, long_peak)
    # and far below what holding the long clip's motion frames alone would take (512 x 512 gray at 25 fps)
    assert long_peak < LONG * PAPER_FPS * PAPER_SHORT_SIDE**2 / 4, long_peak
