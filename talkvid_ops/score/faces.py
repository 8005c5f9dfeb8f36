"""Face backends for head detail: every face's bbox, 68 iBUG landmarks, TalkVid's 5 keypoints and head pose.

Detection, landmarks, keypoints and pose come from the media layer (talkvid_ops.media.faces), shared with curate.

- `dlib` (CPU, no download): dlib's HOG detector and 68-point shape predictor from the `face-recognition-models`
  package. Detection runs on a frame scaled to at most `head_detect_short_side`, upsampling (up to
  `head_max_upsample` times) only when nothing is found, so small faces are still found without paying for
  upsampling on every frame.
- `fan` (production): face-alignment's FAN 68-point network, with its weights read from the operator's model dir
  (`<model_dir>/torch/hub/checkpoints/2DFAN4-11f355bf06.pth.tar`, where the package's own loader looks when
  TORCH_HOME is `<model_dir>/torch`), on boxes from buffalo_l's SCRFD detector (`<model_dir>/insightface/buffalo_l/
  det_10g.onnx`, see talkvid_ops.media.insightface): the boxes TalkVid's resolution score was measured on, and a
  detector that finds turned heads. face-alignment's own S3FD detector is not used: it downloads its weights at
  first use. Nothing is downloaded.

Both give 68 iBUG points, from which the 5 keypoints are derived (eye centres = mean of each eye's six points,
nose tip = point 30, mouth corners = points 48 and 54) and the pose is solved with cv2.solvePnP against a generic
3D face (`estimate_pose`, whose docstring gives the angle conventions). Only magnitudes and differences enter
TalkVid's scores.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from talkvid_ops.errors import ModelUnavailable
from talkvid_ops.media.faces import DlibLandmarks, HogFaceDetector, estimate_pose, landmarks_to_kps, package_file
from talkvid_ops.media.insightface import DETECTOR_FILE, ScrfdDetector, buffalo_path
from talkvid_ops.score.head import Face, HeadScorer

FAN_WEIGHTS = "torch/hub/checkpoints/2DFAN4-11f355bf06.pth.tar"


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
        self.detector = HogFaceDetector(self.config.head_detect_short_side, self.config.head_max_upsample)
        self.landmarks = DlibLandmarks()

    def detect(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        return _faces(((box, self.landmarks.points(image, box)) for box in self.detector.boxes(image)), width, height)


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

    def model_files(self) -> list[Path]:
        return [self.weights_path(), buffalo_path(self.config.model_dir, DETECTOR_FILE, "the fan head backend")]

    def _load(self) -> None:
        weights = self.weights_path()
        if not weights.exists():
            raise ModelUnavailable(f"FAN weights not found: {weights} (put face-alignment's 2DFAN4 checkpoint there)")
        import face_alignment

        self.detector = ScrfdDetector(self.config.model_dir, self.config.device, "the fan head backend")
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
