"""Segment stage, pure parts: interval algebra, clip planning rules, subtitle cues, speech rules, parameters."""

from __future__ import annotations

import numpy as np
import pytest

from talkvid_ops.config import PipelineConfig
from talkvid_ops.config.segment import SegmentConfig
from talkvid_ops.errors import ConfigError
from talkvid_ops.segment import intervals as iv
from talkvid_ops.segment.planner import plan_clips, split_long
from talkvid_ops.segment.speech import combine, parse_cues, speech_from_probabilities

FPS = 25.0


def test_interval_algebra():
    assert iv.normalize([(3, 4), (0, 1), (1.2, 2), (5, 5)], max_gap=0.25) == [(0, 2), (3, 4)]
    assert iv.intersect([(0, 2), (3, 6)], [(1, 4), (5, 7)]) == [(1, 2), (3, 4), (5, 6)]
    assert iv.union([(0, 1)], [(0.5, 2), (3, 4)]) == [(0, 2), (3, 4)]
    assert iv.overlap([(0, 2), (3, 6)], 1, 4) == pytest.approx(2.0)


def test_talkvid_shot_rules_trim_and_strict_minimum():
    # TalkVid: a clip is the shot trimmed by +0.3 s / -0.1 s, kept only when strictly longer than 5 s.
    config = SegmentConfig(max_pause_s=None)
    speech = [(0.0, 100.0)]
    fps = 30.0  # trims fall on frames: 0.3 s = 9 frames, 0.1 s = 3
    shots = [(0, 300), (300, 462), (462, 625)]  # 10 s; 5.4 s -> exactly 5.0 s once trimmed; 5.433 s -> 5.033 s
    clips = plan_clips(shots, fps, speech, config)
    assert [(c.shot_index, c.start_frame, c.end_frame) for c in clips] == [(0, 9, 297), (2, 471, 622)]
    assert clips[0].start_time == pytest.approx(0.3) and clips[0].end_time == pytest.approx(9.9)
    assert clips[1].duration == pytest.approx(151 / 30)
    assert all(c.speech_coverage == pytest.approx(1.0) for c in clips)


def test_frames_follow_fractional_fps():
    fps = 30000 / 1001
    clips = plan_clips([(0, 300)], fps, [(0.0, 10.0)], SegmentConfig(max_pause_s=None))
    (clip,) = clips
    assert clip.start_frame == 9  # first frame at or after 0.3 s (frame 9 is at 0.3003 s)
    assert clip.end_frame == 297  # the shot ends at 10.01 s; 9.91 s is 297.003 frames: stop at frame 297
    assert clip.start_time == pytest.approx(9 / fps) and clip.end_time == pytest.approx(297 / fps)


def test_no_clip_crosses_a_shot_cut():
    speech = [(1.0, 19.0)]  # one speech stretch over a cut at frame 250 (10 s)
    clips = plan_clips([(0, 250), (250, 500)], FPS, speech, SegmentConfig())
    assert [c.shot_index for c in clips] == [0, 1]
    assert clips[0].end_frame <= 250 - 2 and clips[1].start_frame >= 250 + 7  # trims on both sides of the cut
    assert clips[0].start_time == pytest.approx(1.0)  # speech start, inside the trimmed shot
    assert clips[1].end_time == pytest.approx(19.0)


def test_long_pauses_split_clips_and_short_ones_do_not():
    speech = [(1.0, 4.0), (4.6, 8.0), (11.0, 17.6)]  # a 0.6 s pause, then a 3 s one
    clips = plan_clips([(0, 500)], FPS, speech, SegmentConfig(max_pause_s=1.0))
    assert [(c.start_time, c.end_time) for c in clips] == [(1.0, 8.0), (11.0, 17.6)]
    assert clips[0].speech_seconds == pytest.approx(6.4)
    assert clips[0].speech_coverage == pytest.approx(6.4 / 7.0)
    # TalkVid's whole-shot clip holds all of it, pauses included.
    (whole,) = plan_clips([(0, 500)], FPS, speech, SegmentConfig(max_pause_s=None))
    assert (whole.start_time, whole.end_time) == (0.32, 19.88)  # frames at or after 0.3 s, before 19.9 s


def test_no_speech_no_clip_and_coverage_threshold():
    assert plan_clips([(0, 500)], FPS, [], SegmentConfig(max_pause_s=None)) == []
    speech = [(2.0, 5.0)]
    assert len(plan_clips([(0, 500)], FPS, speech, SegmentConfig(max_pause_s=None, min_speech_coverage=0.1))) == 1
    assert plan_clips([(0, 500)], FPS, speech, SegmentConfig(max_pause_s=None, min_speech_coverage=0.2)) == []
    # Speech unknown (subtitles rule, no subtitles): kept, as TalkVid kept clips of videos without subtitles.
    (clip,) = plan_clips([(0, 500)], FPS, None, SegmentConfig())
    assert clip.speech_seconds is None and clip.duration == pytest.approx(19.56)


def test_max_duration_splits_at_the_longest_fitting_pause():
    speech = [(0.0, 6.0), (6.3, 9.0), (10.0, 14.0), (14.2, 30.0)]
    pieces = split_long((0.0, 30.0), speech, max_len=12.0, min_len=5.0)
    # pauses 6.0-6.3 and 9.0-10.0 fit in (5, 12]; the longer wins; the rest has no fitting pause: cut at the maximum
    assert pieces == [(0.0, 9.0), (10.0, 22.0), (22.0, 30.0)]
    clips = plan_clips([(0, 800)], FPS, speech, SegmentConfig(max_duration_s=12.0, max_pause_s=2.0, trim_start_s=0))
    assert [(c.start_time, c.end_time) for c in clips] == [(0.0, 9.0), (10.0, 22.0), (22.0, 30.0)]
    assert all(c.duration <= 12.0 for c in clips)


def test_vtt_cues_music_and_tags():
    vtt = """WEBVTT
Kind: captions
Language: en

00:00:00.000 --> 00:00:02.500 align:start position:0%
[Music]

00:00:02.500 --> 00:00:05.000
<c.colorE5E5E5>hello</c><00:00:03.100><c> everyone</c>

00:00:05.000 --> 00:00:06.000
♪ ♪

01:00.000 --> 01:04.250
(applause) and welcome back
"""
    cues = parse_cues(vtt)
    assert [(c.start, c.end) for c in cues] == [(0.0, 2.5), (2.5, 5.0), (5.0, 6.0), (60.0, 64.25)]
    assert cues[1].text == "hello everyone"
    assert [c.is_speech for c in cues] == [False, True, False, True]
    srt = "1\n00:00:01,000 --> 00:00:02,000\nHallo\n"
    assert [(c.start, c.end, c.text) for c in parse_cues(srt)] == [(1.0, 2.0, "Hallo")]


def test_speech_rules():
    vad, subs = [(1.0, 4.0), (10.0, 12.0)], [(0.5, 3.0), (20.0, 22.0)]
    assert combine("vad", vad, subs) == (vad, "vad")
    assert combine("subtitles", vad, subs) == (subs, "subtitles")
    assert combine("vad_or_subtitles", vad, subs) == ([(0.5, 4.0), (10.0, 12.0), (20.0, 22.0)], "vad_or_subtitles")
    assert combine("vad_and_subtitles", vad, subs) == ([(1.0, 3.0)], "vad_and_subtitles")
    # no subtitle file: the combined rules fall back to VAD; subtitles alone means "unknown"
    assert combine("vad_and_subtitles", vad, None) == (vad, "vad")
    assert combine("subtitles", None, None) == (None, "none")


def test_vad_hysteresis_bridges_short_pauses_and_drops_blips():
    step = 0.032
    probs = np.zeros(200, np.float32)
    probs[10:60] = 0.9  # 1.6 s of speech
    probs[60:66] = 0.2  # a 0.19 s pause: bridged (vad_min_silence_s 0.3)
    probs[66:100] = 0.8
    probs[100:104] = 0.45  # between the two thresholds: still speech (hysteresis)
    probs[150:153] = 0.95  # a 0.1 s blip: dropped (vad_min_speech_s 0.25)
    config = SegmentConfig(vad_pad_s=0.0)
    assert speech_from_probabilities(probs, config, step) == [(pytest.approx(10 * step), pytest.approx(104 * step))]


def test_params_hash_is_the_clip_generation():
    base = SegmentConfig()
    assert base.resolved_threshold == 0.085
    assert SegmentConfig(threshold=0.085).params_hash == base.params_hash  # defaults resolved before hashing
    assert SegmentConfig(asr={"model_dir": "/models/x"}, batch_size=3).params_hash == base.params_hash
    assert SegmentConfig(threshold=0.1).params_hash != base.params_hash
    assert SegmentConfig(detector="content").resolved_threshold == 10.0


def test_config_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("segment:\n  speech_rule: whisper\n")
    with pytest.raises(ConfigError, match=r"segment\.speech_rule"):
        PipelineConfig.from_yaml(bad)
    bad.write_text("segment:\n  asr:\n    modeldir: /x\n")
    with pytest.raises(ConfigError, match=r"segment\.asr\.modeldir"):
        PipelineConfig.from_yaml(bad)
