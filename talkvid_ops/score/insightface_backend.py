"""Head backend `insightface` (production, GPU image default): TalkVid's own face models, buffalo_l's SCRFD detector
and 3D landmark / pose model (see talkvid_ops.media.insightface), feeding the same `head_detail_scores`.

What differs from the CPU backends (whose scores do not mean quite the same under TalkVid's thresholds):
- boxes: SCRFD's box is tighter around the face than dlib's HOG box is around its landmarks, and resolution is
  box area / frame area, so box size moves `avg_resolution` and `min_resolution`;
- detector: SCRFD finds turned and tilted heads that the frontal-only HOG detector misses, so a head turning away
  stays in the orientation and rotation sequences instead of becoming a frame without a face;
- keypoints and pose: SCRFD predicts the 5 keypoints directly and the pose comes from fitting insightface's mean 3D
  face to 68 3D landmarks, where the CPU backends derive keypoints from 68 2D landmarks and solve the pose with
  solvePnP against a generic face (see talkvid_ops.score.faces).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talkvid_ops.media.insightface import DETECTOR_FILE, LANDMARK_FILE, BuffaloFaces, buffalo_path
from talkvid_ops.score.head import Face, HeadScorer

NEEDED_BY = "the insightface head backend"


class InsightFaceBackend(HeadScorer):
    backend = "insightface"
    colour = "rgb"

    def model_files(self) -> list[Path]:
        return [buffalo_path(self.config.model_dir, name, NEEDED_BY) for name in (DETECTOR_FILE, LANDMARK_FILE)]

    def _load(self) -> None:
        self.models = BuffaloFaces(self.config.model_dir, self.config.device, NEEDED_BY)

    def detect(self, image: np.ndarray) -> list[Face]:
        return [Face(face.bbox, face.landmarks[:, :2], face.kps, face.pose) for face in self.models.faces(image)]
