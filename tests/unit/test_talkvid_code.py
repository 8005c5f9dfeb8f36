"""TalkVid's released-code DOVER normalisation and CoTracker segment rule, against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from talkvid_ops.score import talkvid_code


def _set_with(n: int, total: float, squares: float) -> np.ndarray:
    """An array of n values with exactly this sum and sum of squares (what numpy sees of a prediction set)."""
    mean = total / n
    std = math.sqrt(squares / n - mean * mean)
    z = np.tile([1.0, -1.0], n // 2 + 1)[:n]
    if n % 2:  # three values carry the odd tail with mean 0 and the same second moment
        z[-3:] = np.array([1.0, 1.0, -2.0]) / math.sqrt(2.0)
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1.0) < 1e-12
    return mean + std * z


def _released_by_numpy(s0: float) -> float:
    zscores = []
    for n, total, squares in talkvid_code.DOVER_PREDICTION_SETS.values():
        values = np.concatenate([[s0], _set_with(n, total, squares)])
        zscores.append((s0 - values.mean()) / values.std())
    return round(float(np.mean(zscores)), 2)


@pytest.mark.parametrize("s0", [-0.2, -0.09, 0.0, 0.05, 0.1, 0.137, 0.2, 0.25, 0.3, 0.5])
def test_dover_released_score_equals_numpy_over_the_prediction_sets(s0):
    assert talkvid_code.dover_released_score(s0) == _released_by_numpy(s0)


def test_dover_released_scale_matches_the_reference_examples():
    # the reference: s0 = 0.1, 0.2, 0.3 give 4.8, 7.1, 9.4 (rounded to one decimal there)
    assert [round(talkvid_code.dover_released_score(s), 1) for s in (0.1, 0.2, 0.3)] == [4.8, 7.1, 9.4]
    assert talkvid_code.dover_released_score(0.2) == round(talkvid_code.dover_released_score(0.2), 2)


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        (5.5, [(0.0, 5.5)]),
        (6.0, [(0.0, 6.0)]),
        (9.0, [(0.0, 6.0), (3.0, 9.0)]),
        (12.0, [(0.0, 6.0), (6.0, 12.0)]),
        (30.0, [(0.0, 6.0), (12.0, 18.0), (24.0, 30.0)]),
    ],
)
def test_code_segment_times_follow_the_duration_rule(duration, expected):
    assert talkvid_code.code_segment_times(duration) == expected


@pytest.mark.parametrize("duration", [5.5, 6.0, 9.0, 12.0, 30.0])
@pytest.mark.parametrize("source_fps", [25.0, 29.97, 30.0, 60.0])
def test_code_segment_frames_index_the_trimmed_array_every_half_second(duration, source_fps):
    fps = talkvid_code.code_read_fps(source_fps)
    read = int(duration * fps)
    first, last = talkvid_code.code_trim(read, fps)
    assert (first, read - last) == (int(0.2 * fps), int(0.2 * fps))  # every clip here is longer than a second
    trimmed = last - first
    segments = talkvid_code.code_segment_frames(duration, fps, trimmed)
    for (start, end), frames in zip(talkvid_code.code_segment_times(duration), segments, strict=True):
        # written out as the released code does it: range(floor(start * fps), ceil(end * fps), int(fps / 2)), clipped
        expected = [i for i in range(math.floor(start * fps), math.ceil(end * fps), int(fps / 2)) if i < trimmed]
        assert frames == expected
        assert frames and all(0 <= i < trimmed for i in frames)
    assert fps <= 30.0


def test_a_clip_of_a_second_or_less_is_not_trimmed():
    assert talkvid_code.code_trim(30, 30.0) == (0, 30)
    assert talkvid_code.code_trim(31, 30.0) == (6, 25)


@pytest.mark.parametrize("duration", [5.5, 6.0, 9.0, 12.0, 30.0])
@pytest.mark.parametrize("source_fps", [25.0, 29.97, 60.0])
def test_motion_scorer_reads_the_released_code_frames(duration, source_fps):
    """The motion scorer's code segments, as grid positions, are the reference rule's frames: read at min(fps, 30),
    trimmed by int(0.2 * fps) at each end, segment times indexing the trimmed frames every int(fps / 2)-th."""
    from talkvid_ops.media.sampler import FrameSpec, _grid
    from talkvid_ops.score.motion import code_samples, code_segments

    spec = FrameSpec(max_fps=30.0, select=code_samples)
    indices, _, grid = _grid(spec, duration, source_fps)
    fps = min(source_fps, 30.0)
    read = math.floor(duration * fps + 1e-6)
    drop = int(0.2 * fps)
    trimmed = list(range(drop, read - drop))
    expected = []
    for start, end in talkvid_code.code_segment_times(duration):
        expected.append([trimmed[i] for i in range(math.floor(start * fps), math.ceil(end * fps), int(fps / 2)) if i < len(trimmed)])
    assert grid.fps == fps and code_segments(grid) == expected
    assert list(indices) == sorted({i for segment in expected for i in segment})


def test_the_talkvid_released_preset_is_talkvids_pipeline_and_the_config_file_overrides_it_key_by_key(tmp_path):
    from talkvid_ops.config import ENV_CONFIG_FILE, ENV_PRESET, Settings
    from talkvid_ops.errors import ConfigError

    released = Settings.from_env({ENV_PRESET: "talkvid-released", "TALKVID_DATA_DIR": str(tmp_path)}).pipeline
    segment, score = released.segment, released.score
    assert (segment.detector, segment.resolved_threshold, segment.speech_rule, segment.max_pause_s, segment.max_duration_s) == (
        "histogram",
        0.085,
        "subtitles",
        None,
        None,
    )
    assert (score.quality_backend, score.motion_backend, released.curate.profile) == ("dover", "cotracker3", "talkvid-code")
    config = tmp_path / "config.yaml"
    config.write_text("segment:\n  threshold: 0.1\nscore:\n  device: cuda\n")
    both = Settings.from_env({ENV_PRESET: "talkvid-released", ENV_CONFIG_FILE: str(config), "TALKVID_DATA_DIR": str(tmp_path)}).pipeline
    assert (both.segment.threshold, both.segment.speech_rule, both.score.device, both.score.quality_backend) == (0.1, "subtitles", "cuda", "dover")
    assert Settings.from_env({ENV_CONFIG_FILE: str(config), "TALKVID_DATA_DIR": str(tmp_path)}).pipeline.segment.speech_rule == "vad_and_subtitles"
    with pytest.raises(ConfigError, match="unknown preset 'talkvid'"):
        Settings.from_env({ENV_PRESET: "talkvid", "TALKVID_DATA_DIR": str(tmp_path)})
