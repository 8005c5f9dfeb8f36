"""The `insightface` head backend end to end on real face video, with ONNX models the test builds that have buffalo_l's
interfaces (see tests/insightface_models.py): the real model zoo loads them, SCRFD's letterboxing, anchor decoding and
NMS and the landmark model's crop and pose fit run, and their 5 keypoints, box and pose reach `head_detail_scores`.
The constructed models report one known face, so every score is computed here by hand from TalkVid's formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from insightface_models import FACE_CELL, FACE_DISTANCES, FACE_KPS_OFFSETS, write_buffalo_l, write_landmark_3d_68, write_scrfd
from test_score_backends import scored_clip, scoring_of

from talkvid_ops.config.score import ScoreConfig
from talkvid_ops.errors import ModelUnavailable
from talkvid_ops.score.insightface_backend import InsightFaceBackend

WIDTH, HEIGHT = 640, 360  # single_face.mp4
STRIDE = 32


def expected_face() -> tuple[np.ndarray, np.ndarray]:
    """The box and 5 keypoints the constructed detector reports, in frame pixels. SCRFD letterboxes the frame into
    640x640 at scale int(640 * H / W) / H for a landscape frame: 1 for 640x360."""
    scale = int(640 * HEIGHT / WIDTH) / HEIGHT
    centre = np.array([FACE_CELL[0] * STRIDE, FACE_CELL[1] * STRIDE], dtype=float)
    left, top, right, bottom = np.array(FACE_DISTANCES) * STRIDE
    box = np.array([centre[0] - left, centre[1] - top, centre[0] + right, centre[1] + bottom]) / scale
    kps = (centre + np.array(FACE_KPS_OFFSETS) * STRIDE) / scale
    return box, kps


def test_insightface_backend_end_to_end_on_real_video(tmp_path, pyfeat_media):
    yaw = 20.0
    models = tmp_path / "models"
    write_buffalo_l(models, yaw=yaw)
    config = ScoreConfig(scorers=["head"], head_backend="insightface", model_dir=str(models))
    ctx, clip_id, result = scored_clip(tmp_path, pyfeat_media["single_face.mp4"], config)
    assert result["scorings_ok"] == 1 and "scorings_failed" not in result, result
    scoring, scores = scoring_of(ctx, clip_id)
    assert (scoring.scorer, scoring.backend, scoring.status) == ("head", "insightface", "ok")

    box, kps = expected_face()
    frames = scoring.details["frames"]
    assert [f["t"] for f in frames] == [0.0, 1.0]  # one frame per second of the 2.4 s clip
    for frame in frames:
        (face,) = frame["faces"]
        np.testing.assert_allclose(face["bbox"], box, atol=0.05)
        np.testing.assert_allclose(face["kps"], kps, atol=0.05)
        np.testing.assert_allclose(face["pose"], [0.0, yaw, 0.0], atol=0.01)  # fitted from the yawed mean face

    resolution = 100 * (box[2] - box[0]) * (box[3] - box[1]) / (WIDTH * HEIGHT)
    orientation = math.sqrt((yaw / 180 * 100) ** 2)
    expected = {
        "avg_movement": 100.0,  # the same keypoints in both frames
        "min_movement": 100.0,
        "avg_rotation": 100.0,
        "min_rotation": 100.0,
        "avg_orientation": 100 - orientation,
        "min_orientation": 100 - orientation,
        "avg_completeness": 100.0,  # all five keypoints inside the frame
        "min_completeness": 100.0,
        "avg_resolution": 30 * resolution,
        "min_resolution": 30 * resolution,
        "face_consistency": 100.0,
    }
    assert scores == pytest.approx(expected, abs=1e-3)


def test_insightface_missing_or_foreign_models_name_the_path(tmp_path):
    config = ScoreConfig(head_backend="insightface", model_dir=str(tmp_path))
    with pytest.raises(ModelUnavailable, match=r"InsightFace model not found: .*insightface/buffalo_l/det_10g\.onnx"):
        InsightFaceBackend(config).load()
    write_scrfd(tmp_path / "insightface" / "buffalo_l" / "det_10g.onnx")
    with pytest.raises(ModelUnavailable, match=r"InsightFace model not found: .*insightface/buffalo_l/1k3d68\.onnx"):
        InsightFaceBackend(config).load()
    with pytest.raises(ModelUnavailable, match=r"needs score\.model_dir holding insightface/buffalo_l/det_10g\.onnx"):
        InsightFaceBackend(ScoreConfig(head_backend="insightface")).load()
    # a landmark model where the detector belongs: the model zoo reads it for what it is
    write_landmark_3d_68(tmp_path / "insightface" / "buffalo_l" / "det_10g.onnx")
    with pytest.raises(ModelUnavailable, match="det_10g.onnx is not buffalo_l's detection model .*landmark_3d_68"):
        InsightFaceBackend(config).load()
    assert InsightFaceBackend(config).model_files() == [tmp_path / "insightface/buffalo_l" / name for name in ("det_10g.onnx", "1k3d68.onnx")]
