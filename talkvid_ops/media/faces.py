"""Faces in frames, shared by every stage that reads them: dlib's HOG detector and 68-point landmarks, TalkVid's 5
keypoints from 68 iBUG landmarks, a solvePnP head pose, and data files of the packages that ship face models.

Pose zero: a face looking straight into the camera, upright. Angles come from cv2.RQDecomp3x3 of the head rotation
in camera axes (x right, y down, z away from the camera), in degrees: pitch about x (positive: looking down), yaw
about y (positive: turned towards the image's left), roll about z (positive: tilted clockwise as seen in the image).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from talkvid_ops.errors import ModelUnavailable

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


class DlibLandmarks:
    """dlib's 68-point shape predictor (the file face-recognition-models ships): 68 iBUG points of a face box."""

    def __init__(self):
        import dlib

        self.predictor = dlib.shape_predictor(str(package_file("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat")))

    def points(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """(68, 2) pixel coordinates for the face in `box` (left, top, right, bottom)."""
        import dlib

        shape = self.predictor(image, dlib.rectangle(*(int(round(v)) for v in box)))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=float)
