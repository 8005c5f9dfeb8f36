"""Face backends for head detail: every face's bbox, 68 iBUG landmarks, TalkVid's 5 keypoints and head pose.

- `dlib` (CPU, no download): dlib's HOG detector and 68-point shape predictor from the `face-recognition-models`
  package. Detection runs on a frame scaled to at most `head_detect_short_side`, upsampling (up to
  `head_max_upsample` times) only when nothing is found, so small faces are still found without paying for
  upsampling on every frame.
- `fan` (production): face-alignment's FAN 68-point network on the same HOG boxes, with its weights read from the
  operator's model dir (`<model_dir>/torch/hub/checkpoints/2DFAN4-11f355bf06.pth.tar`, where the package's own
  loader looks when TORCH_HOME is `<model_dir>/torch`); nothing is downloaded.

Both give 68 iBUG points, from which the 5 keypoints are derived (eye centres = mean of each eye's six points,
nose tip = point 30, mouth corners = points 48 and 54) and the pose is solved with cv2.solvePnP against a generic
3D face. Pose zero: a face looking straight into the camera, upright. Angles come from cv2.RQDecomp3x3 of the
head rotation in camera axes (x right, y down, z away from the camera), in degrees: pitch about x (positive:
looking down), yaw about y (positive: turned towards the image's left), roll about z (positive: tilted clockwise
as seen in the image). Only magnitudes and differences enter TalkVid's scores.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from talkvid_ops.score.base import ModelUnavailable
from talkvid_ops.score.head import Face, HeadScorer

# Generic 3D face in camera axes (x right, y down, z away from the camera), millimetre-like units, nose tip at 0.
# iBUG indices: 30 nose tip, 8 chin, 36 / 45 outer eye corners, 48 / 54 mouth corners.
POSE_LANDMARKS = (30, 8, 36, 45, 48, 54)
POSE_MODEL = np.array(
    [
        (0.0, 0.0, 0.0),
        (0.0, 330.0, 65.0),
        (-225.0, -170.0, 135.0),
        (225.0, -170.0, 135.0),
        (-150.0, 150.0, 125.0),
        (150.0, 150.0, 125.0),
    ]
)
FAN_WEIGHTS = "torch/hub/checkpoints/2DFAN4-11f355bf06.pth.tar"


def landmarks_to_kps(landmarks: np.ndarray) -> np.ndarray:
    """TalkVid's 5 keypoints from 68 iBUG landmarks: left eye, right eye, nose tip, left / right mouth corner."""
    lm = np.asarray(landmarks, dtype=float).reshape(68, 2)
    return np.stack([lm[36:42].mean(axis=0), lm[42:48].mean(axis=0), lm[30], lm[48], lm[54]])


def estimate_pose(landmarks: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
    """Pitch, yaw, roll in degrees (0, 0, 0 = frontal, upright) from 68 landmarks, pinhole camera f = width."""
    import cv2

    image_points = np.asarray(landmarks, dtype=np.float64).reshape(68, 2)[list(POSE_LANDMARKS)]
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)
    # Start from a frontal face in front of the camera so the solver never settles on the mirrored solution.
    rvec = np.zeros((3, 1))
    tvec = np.array([[0.0], [0.0], [float(width) * 450.0 / max(1.0, np.ptp(image_points[:, 0]))]])
    ok, rvec, tvec = cv2.solvePnP(POSE_MODEL, image_points, camera, None, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise ValueError("solvePnP found no head pose")
    rotation, _ = cv2.Rodrigues(rvec)
    angles = cv2.RQDecomp3x3(rotation)[0]
    return float(angles[0]), float(angles[1]), float(angles[2])


def package_file(package: str, name: str) -> Path:
    """A data file of an installed package, found without importing it (face_recognition_models imports
    pkg_resources on import)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"package {package!r} is not installed (pip install {package.replace('_', '-')})")
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.exists():
        raise ModelUnavailable(f"{path} is missing from package {package!r}")
    return path


class HogFaceDetector:
    """dlib's HOG face detector on a downscaled frame, upsampling only when nothing is found."""

    def __init__(self, short_side: int, max_upsample: int):
        import dlib

        self.detector = dlib.get_frontal_face_detector()
        self.short_side = short_side
        self.max_upsample = max_upsample

    def boxes(self, image: np.ndarray) -> list[tuple[float, float, float, float]]:
        import cv2

        h, w = image.shape[:2]
        factor = min(1.0, self.short_side / min(h, w))
        small = cv2.resize(image, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA) if factor < 1 else image
        for upsample in range(self.max_upsample + 1):
            rects = self.detector(small, upsample)
            if len(rects):
                return [(r.left() / factor, r.top() / factor, r.right() / factor, r.bottom() / factor) for r in rects]
        return []


def _faces(found: Iterable[tuple[Any, np.ndarray]], width: int, height: int) -> list[Face]:
    """Faces from (bbox, 68 landmarks) pairs; a face whose pose cannot be solved is left out, like an undetected
    one, rather than failing the whole clip's head score."""
    faces = []
    for bbox, landmarks in found:
        landmarks = np.asarray(landmarks, dtype=float).reshape(68, 2)
        try:
            pose = estimate_pose(landmarks, width, height)
        except ValueError:
            continue
        faces.append(Face(tuple(float(v) for v in bbox), landmarks, landmarks_to_kps(landmarks), pose))
    return faces


class DlibBackend(HeadScorer):
    backend = "dlib"
    colour = "gray"

    def _load(self) -> None:
        import dlib

        self.detector = HogFaceDetector(self.config.head_detect_short_side, self.config.head_max_upsample)
        predictor = package_file("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat")
        self.predictor = dlib.shape_predictor(str(predictor))

    def detect(self, image: np.ndarray) -> list[Face]:
        import dlib

        height, width = image.shape[:2]
        found = []
        for box in self.detector.boxes(image):
            shape = self.predictor(image, dlib.rectangle(*(int(round(v)) for v in box)))
            found.append((box, np.array([(p.x, p.y) for p in shape.parts()], dtype=float)))
        return _faces(found, width, height)


@contextmanager
def _torch_hub_dir(path: Path):
    """Point torch.hub (where face-alignment's loader looks) at the operator's model dir for the block."""
    import torch.hub

    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(path))
    try:
        yield
    finally:
        torch.hub.set_dir(previous)


class FaceAlignmentBackend(HeadScorer):
    backend = "fan"
    colour = "rgb"

    def weights_path(self) -> Path:
        if not self.config.model_dir:
            raise ModelUnavailable(f"the fan head backend needs score.model_dir holding {FAN_WEIGHTS}")
        return Path(self.config.model_dir) / FAN_WEIGHTS

    def _load(self) -> None:
        weights = self.weights_path()
        if not weights.exists():
            raise ModelUnavailable(f"FAN weights not found: {weights} (put face-alignment's 2DFAN4 checkpoint there)")
        import face_alignment

        self.detector = HogFaceDetector(self.config.head_detect_short_side, self.config.head_max_upsample)
        # The CUDA branch of face-alignment's dlib detector would download its CNN model; give it the packaged one.
        cnn_detector = package_file("face_recognition_models", "models/mmod_human_face_detector.dat")
        with _torch_hub_dir(weights.parent.parent), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*this detector is deprecated.*")  # we pass its boxes in
            self.network = face_alignment.FaceAlignment(
                face_alignment.LandmarksType.TWO_D,
                device=self.config.device,
                flip_input=False,
                face_detector="dlib",
                face_detector_kwargs={"path_to_detector": str(cnn_detector)},
                compile=False,
            )

    def detect(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        boxes = self.detector.boxes(image)
        if not boxes:
            return []
        landmarks = self.network.get_landmarks_from_image(image, detected_faces=[list(b) for b in boxes]) or []
        return _faces(((box, lm[:, :2]) for box, lm in zip(boxes, landmarks)), width, height)
