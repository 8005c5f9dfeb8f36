"""InsightFace's buffalo_l face models, the ones TalkVid's head-detail code ran, loaded file by file from the
operator's model directory through insightface's model zoo (never `FaceAnalysis`, which downloads model packs):

- `det_10g.onnx`: SCRFD-10G, faces with a box, a score and TalkVid's 5 keypoints (left eye, right eye, nose tip,
  left / right mouth corner, "left" meaning the image's left);
- `1k3d68.onnx`: 68 3D landmarks per face, from which insightface solves the head pose (pitch, yaw, roll in
  degrees) against its mean face shape (shipped in the insightface package).

Both live in `<model_dir>/insightface/buffalo_l/`. Detection runs as TalkVid ran `FaceAnalysis.prepare(det_size=(640,
640))`: each frame letterboxed into 640x640, score threshold 0.5, NMS 0.4. ONNX Runtime uses CUDA when the device is
`cuda` and the installed onnxruntime has it, else the CPU. Images in and out are RGB (insightface itself takes BGR).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkvid_ops.errors import ModelUnavailable
from talkvid_ops.media.runtime import onnx_providers

BUFFALO_L = Path("insightface") / "buffalo_l"
DETECTOR_FILE = "det_10g.onnx"
LANDMARK_FILE = "1k3d68.onnx"
DETECTION_SIZE = (640, 640)  # width, height: TalkVid's det_size
DETECTION_THRESHOLD = 0.5
LANDMARK_TASK = "landmark_3d_68"


def buffalo_path(model_dir: str | Path | None, name: str, needed_by: str) -> Path:
    """Where a buffalo_l file is expected (ModelUnavailable when no model dir is configured)."""
    if not model_dir:
        raise ModelUnavailable(f"{needed_by} needs score.model_dir holding {BUFFALO_L / name}")
    return Path(model_dir) / BUFFALO_L / name


def buffalo_file(model_dir: str | Path | None, name: str, needed_by: str) -> Path:
    """A buffalo_l file; ModelUnavailable naming the expected path when it is not there."""
    path = buffalo_path(model_dir, name, needed_by)
    if not path.is_file():
        raise ModelUnavailable(f"InsightFace model not found: {path} (put buffalo_l's {name} there)")
    return path


def _zoo_model(path: Path, device: str, taskname: str):
    """One model through insightface's model zoo, which picks the class from the graph's inputs and outputs."""
    from insightface.model_zoo import get_model

    try:
        model = get_model(str(path), providers=onnx_providers(device))
    except Exception as exc:  # onnxruntime and the zoo raise their own classes for an unreadable graph
        raise ModelUnavailable(f"{path} cannot be loaded: {type(exc).__name__}: {exc}") from None
    if getattr(model, "taskname", None) != taskname:
        found = getattr(model, "taskname", None) or "no model the zoo knows"
        raise ModelUnavailable(f"{path} is not buffalo_l's {taskname} model (the model zoo reads it as {found})")
    return model


@dataclass(frozen=True)
class BuffaloFace:
    """One face as buffalo_l sees it: box (x1, y1, x2, y2), detector score, 5 keypoints, 68 3D landmarks, pose."""

    bbox: tuple[float, float, float, float]
    score: float
    kps: np.ndarray  # 5x2
    landmarks: np.ndarray  # 68x3
    pose: tuple[float, float, float]  # pitch, yaw, roll in degrees


class ScrfdDetector:
    """buffalo_l's SCRFD detector: faces with boxes, scores and 5 keypoints."""

    def __init__(self, model_dir: str | Path | None, device: str, needed_by: str):
        self.path = buffalo_file(model_dir, DETECTOR_FILE, needed_by)
        self.model = _zoo_model(self.path, device, "detection")
        if not self.model.use_kps:
            raise ModelUnavailable(f"{self.path} detects faces without keypoints: not buffalo_l's SCRFD")
        self.model.prepare(0, input_size=DETECTION_SIZE, det_thresh=DETECTION_THRESHOLD)

    def detect(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N x 5 boxes with scores, N x 5 x 2 keypoints) in the image's pixels."""
        return self.model.detect(bgr, input_size=DETECTION_SIZE)

    def boxes(self, rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Face boxes (x1, y1, x2, y2) of an RGB image."""
        detections, _ = self.detect(np.ascontiguousarray(rgb[..., ::-1]))
        return [tuple(float(v) for v in row[:4]) for row in detections]


class BuffaloFaces:
    """Detector plus 3D landmarks: what `FaceAnalysis(name="buffalo_l")` gives TalkVid, without its download path."""

    def __init__(self, model_dir: str | Path | None, device: str, needed_by: str = "the insightface head backend"):
        self.detector = ScrfdDetector(model_dir, device, needed_by)
        self.landmark_path = buffalo_file(model_dir, LANDMARK_FILE, needed_by)
        self.landmarks = _zoo_model(self.landmark_path, device, LANDMARK_TASK)
        if getattr(self.landmarks, "mean_lmk", None) is None:
            raise ModelUnavailable("the insightface package lacks its mean face shape (data/objects/meanshape_68.pkl): reinstall insightface")

    def faces(self, rgb: np.ndarray) -> list[BuffaloFace]:
        from insightface.app.common import Face as ZooFace

        bgr = np.ascontiguousarray(rgb[..., ::-1])
        detections, keypoints = self.detector.detect(bgr)
        found = []
        for row, kps in zip(detections, keypoints):
            face = ZooFace(bbox=row[:4], kps=kps, det_score=row[4])
            self.landmarks.get(bgr, face)  # sets face.landmark_3d_68 and face.pose
            found.append(
                BuffaloFace(
                    bbox=tuple(float(v) for v in row[:4]),
                    score=float(row[4]),
                    kps=np.asarray(kps, dtype=float).reshape(5, 2),
                    landmarks=np.asarray(face[LANDMARK_TASK], dtype=float).reshape(68, 3),
                    pose=tuple(float(v) for v in face.pose),
                )
            )
        return found
