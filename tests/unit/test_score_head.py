"""TalkVid's head-detail formulas on constructed faces, with values worked out by hand, edge cases included."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from talkvid_ops.catalog.metrics import HEAD_METRICS
from talkvid_ops.media.faces import estimate_pose, landmarks_to_kps
from talkvid_ops.score.head import head_detail_scores

W, H = 200, 100  # min(W, H) = 100, frame area 20000
BASE = [[50, 40], [70, 40], [60, 50], [52, 60], [68, 60]]


def face(kps, pose, bbox):
    return SimpleNamespace(kps=kps, pose=pose, bbox=bbox)


def shifted(points, dx, dy):
    return [[x + dx, y + dy] for x, y in points]


def test_mixed_sequence_matches_hand_computed_values():
    f1 = face(BASE, (10, 20, 5), (40, 30, 80, 70))  # bbox area 1600 -> 8 % of the frame
    kps2 = shifted(BASE, 2, 1)  # mean |diff| = 1.5 px -> step 0.015
    f2 = face(kps2, (13, 16, 5), (40, 30, 90, 70))  # rotation step sqrt(9 + 16) = 5; area 2000 -> 10 %
    kps4 = shifted(kps2, 4, 0)
    kps4[4] = [200, 61]  # right mouth corner at x = W: outside; its step is 130 px
    f4 = face(kps4, (13, 16, -7), (0, 0, 100, 50))  # rotation step 12; area 5000 -> 25 %
    frames = [[f1], [f2], [], [f4], [f1, f2]]  # frame 3 has no face, frame 5 two: both left out, both counted

    scores = head_detail_scores(frames, W, H)

    assert list(scores) == list(HEAD_METRICS)
    # movement steps: 0.015 and (4 * 4 + 130) / 10 / 100 = 0.146
    assert scores["avg_movement"] == pytest.approx(100 - 100 * (0.015 + 0.146) / 2)  # 91.95
    assert scores["min_movement"] == pytest.approx(85.4)
    assert scores["avg_rotation"] == pytest.approx(91.5)  # 100 - (5 + 12) / 2
    assert scores["min_rotation"] == pytest.approx(88.0)
    # orientation per frame: 12.7294, 11.7851, 12.0953 (degrees / 180 * 100, Euclidean norm)
    assert scores["avg_orientation"] == pytest.approx(87.7967, abs=1e-4)
    assert scores["min_orientation"] == pytest.approx(87.2706, abs=1e-4)
    # completeness: 100, 100, and 30 + 40 + 30 / 2 = 85 with one mouth corner out
    assert scores["avg_completeness"] == pytest.approx(95.0)
    assert scores["min_completeness"] == pytest.approx(85.0)
    # resolution: 30 * mean(8, 10, 25) and 30 * 8
    assert scores["avg_resolution"] == pytest.approx(430.0)
    assert scores["min_resolution"] == pytest.approx(240.0)
    assert scores["face_consistency"] == pytest.approx(60.0)  # two frames without exactly one face


def test_static_frontal_face_scores_full_marks():
    still = face(BASE, (0, 0, 0), (0, 0, 100, 100))  # half the frame
    scores = head_detail_scores([[still]] * 4, W, H)
    for name in (
        "avg_movement",
        "min_movement",
        "avg_rotation",
        "min_rotation",
        "avg_orientation",
        "min_orientation",
        "avg_completeness",
        "min_completeness",
        "face_consistency",
    ):
        assert scores[name] == pytest.approx(100.0), name
    assert scores["avg_resolution"] == pytest.approx(1500.0)  # 30 * 50 %


def test_one_usable_frame_takes_steps_as_zero():
    tilted = face(BASE, (30, 0, 0), (40, 30, 80, 70))
    scores = head_detail_scores([[tilted], [], []], W, H)
    assert scores["avg_movement"] == scores["min_movement"] == 100.0
    assert scores["avg_rotation"] == scores["min_rotation"] == 100.0
    assert scores["avg_orientation"] == pytest.approx(100 - 30 / 180 * 100)  # 83.33
    assert scores["face_consistency"] == pytest.approx(60.0)


def test_no_usable_face_fails_face_criteria_and_consistency_floors_at_zero():
    a, b = face(BASE, (0, 0, 0), (0, 0, 10, 10)), face(BASE, (0, 0, 0), (0, 0, 10, 10))
    scores = head_detail_scores([[], [a, b], [], [], [], [], []], W, H)
    assert scores["face_consistency"] == 0.0  # 100 - 20 * 7, floored
    assert scores["avg_movement"] == scores["min_rotation"] == 100.0
    for name in ("avg_orientation", "min_orientation", "avg_completeness", "min_completeness", "avg_resolution", "min_resolution"):
        assert scores[name] == 0.0, name
    assert head_detail_scores([], W, H)["face_consistency"] == 100.0  # nothing sampled: nothing inconsistent


def test_keypoints_on_the_border():
    on_edges = [[0, 0], [W - 1, H - 1], [-0.5, 50], [10, H], [20, 99.9]]  # nose just left of x = 0, one corner at y = H
    scores = head_detail_scores([[face(on_edges, (0, 0, 0), (0, 0, 1, 1))]], W, H)
    assert scores["avg_completeness"] == pytest.approx(30 + 0 + 15)


def test_keypoints_and_pose_from_68_landmarks():
    rng = np.random.default_rng(3)
    landmarks = rng.uniform(0, 100, (68, 2))
    kps = landmarks_to_kps(landmarks)
    np.testing.assert_allclose(kps[0], landmarks[36:42].mean(axis=0))
    np.testing.assert_allclose(kps[1], landmarks[42:48].mean(axis=0))
    np.testing.assert_allclose(kps[2:], landmarks[[30, 48, 54]])


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("degrees", [0.0, 15.0, -25.0])
def test_pose_is_zero_for_a_frontal_face_and_recovers_each_axis(axis, degrees):
    import cv2

    from talkvid_ops.media.faces import POSE_LANDMARKS, POSE_MODEL

    width, height = 640, 480
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)
    rvec = np.zeros(3)
    rvec[axis] = np.radians(degrees)  # camera axes: x right (pitch), y down (yaw), z away (roll)
    projected, _ = cv2.projectPoints(POSE_MODEL, rvec, np.array([0.0, 0.0, 2000.0]), camera, None)
    landmarks = np.zeros((68, 2))
    landmarks[list(POSE_LANDMARKS)] = projected.reshape(-1, 2)
    expected = [0.0, 0.0, 0.0]
    expected[axis] = degrees
    assert estimate_pose(landmarks, width, height) == pytest.approx(tuple(expected), abs=0.5)


def test_a_face_whose_pose_cannot_be_solved_is_left_out_not_the_clip(monkeypatch):
    from talkvid_ops.score import faces

    landmarks = np.tile(np.arange(68, dtype=float)[:, None], (1, 2))
    calls = []

    def pose(landmarks, width, height):
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("solvePnP found no head pose")
        return (1.0, 2.0, 3.0)

    monkeypatch.setattr(faces, "estimate_pose", pose)
    found = faces._faces([((0, 0, 10, 10), landmarks), ((20, 20, 40, 40), landmarks)], 100, 100)
    assert [f.bbox for f in found] == [(20.0, 20.0, 40.0, 40.0)] and found[0].pose == (1.0, 2.0, 3.0)
