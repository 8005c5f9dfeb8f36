"""Head detail: TalkVid's five head scores (movement, rotation, orientation, completeness, resolution) and face
consistency, from the faces found in frames sampled once per second.

`head_detail_scores` is the one pure function every face backend feeds. It reproduces TalkVid's released formulas
(W, H = frame width and height; kps = 5 keypoints: left eye centre, right eye centre, nose tip, left mouth
corner, right mouth corner, "left" meaning the image's left; pose = pitch, yaw, roll in degrees):

- only frames with exactly one face enter the score sequences; every sampled frame counts for consistency
- movement step m = mean(|kps_t - kps_t+1|) / min(W, H): avg = 100 - 100 mean(m), min = 100 - 100 max(m)
- rotation step r = sqrt(dpitch^2 + dyaw^2 + droll^2): avg = 100 - mean(r), min = 100 - max(r)
- orientation o = sqrt((|pitch|/180*100)^2 + (|yaw|/180*100)^2 + (|roll|/180*100)^2): avg = 100 - mean(o),
  min = 100 - max(o)
- completeness = 30 * (eyes inside / 2) + 40 * (nose inside) + 30 * (mouth corners inside / 2), a keypoint being
  inside when 0 <= x < W and 0 <= y < H: avg and min over frames
- resolution = 100 * bbox area / frame area: avg = 30 * mean, min = 30 * min
- face_consistency = 100 - 20 * (frames without exactly one face), floored at 0
- with fewer than two single-face frames the movement and rotation steps are taken as 0 (scores 100)

Where the released code leaves a case open we chose, and tests pin it: with no single-face frame at all,
orientation, completeness and resolution are 0 (there is no usable face, so the clip must fail them); the
movement and rotation steps are consecutive pairs of the single-face sequence (frames in between that were left
out do not break a pair).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from talkvid_ops.catalog.metrics import HEAD_METRICS
from talkvid_ops.media.sampler import ClipInfo, FrameSpec, Grid, Sample
from talkvid_ops.score.base import Accumulator, Metrics, Scorer

EYE_WEIGHT, NOSE_WEIGHT, MOUTH_WEIGHT = 30.0, 40.0, 30.0
RESOLUTION_FACTOR = 30.0
CONSISTENCY_PENALTY = 20.0


class FaceLike(Protocol):
    kps: Any  # 5x2
    pose: Any  # pitch, yaw, roll (degrees)
    bbox: Any  # x1, y1, x2, y2


def _inside(points: np.ndarray, width: int, height: int) -> np.ndarray:
    return (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)


def head_detail_scores(frames: Sequence[Sequence[FaceLike]], width: int, height: int) -> dict[str, float]:
    """TalkVid's head-detail scores for one clip; `frames` holds the faces found in each sampled frame."""
    singles = [faces[0] for faces in frames if len(faces) == 1]
    bad_frames = sum(1 for faces in frames if len(faces) != 1)
    kps = np.array([np.asarray(f.kps, dtype=float).reshape(5, 2) for f in singles]).reshape(-1, 5, 2)
    poses = np.array([np.asarray(f.pose, dtype=float).reshape(3) for f in singles]).reshape(-1, 3)
    boxes = np.array([np.asarray(f.bbox, dtype=float).reshape(4) for f in singles]).reshape(-1, 4)

    if len(singles) >= 2:
        movement = np.abs(kps[1:] - kps[:-1]).mean(axis=(1, 2)) / min(width, height)
        rotation = np.sqrt(((poses[1:] - poses[:-1]) ** 2).sum(axis=1))
    else:
        movement = rotation = np.zeros(1)

    scores = {
        "avg_movement": 100.0 - 100.0 * movement.mean(),
        "min_movement": 100.0 - 100.0 * movement.max(),
        "avg_rotation": 100.0 - rotation.mean(),
        "min_rotation": 100.0 - rotation.max(),
        "face_consistency": max(0.0, 100.0 - CONSISTENCY_PENALTY * bad_frames),
    }
    if singles:
        orientation = np.sqrt(((np.abs(poses) / 180.0 * 100.0) ** 2).sum(axis=1))
        completeness = np.array(
            [
                EYE_WEIGHT * _inside(k[0:2], width, height).sum() / 2
                + NOSE_WEIGHT * float(_inside(k[2:3], width, height)[0])
                + MOUTH_WEIGHT * _inside(k[3:5], width, height).sum() / 2
                for k in kps
            ]
        )
        resolution = 100.0 * (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (width * height)
        scores.update(
            avg_orientation=100.0 - orientation.mean(),
            min_orientation=100.0 - orientation.max(),
            avg_completeness=completeness.mean(),
            min_completeness=completeness.min(),
            avg_resolution=RESOLUTION_FACTOR * resolution.mean(),
            min_resolution=RESOLUTION_FACTOR * resolution.min(),
        )
    else:
        scores.update(dict.fromkeys(("avg_orientation", "min_orientation", "avg_completeness", "min_completeness", "avg_resolution", "min_resolution"), 0.0))
    return {name: float(scores[name]) for name in HEAD_METRICS}


@dataclass(frozen=True)
class Face:
    """One detected face: bbox (x1, y1, x2, y2), 68 iBUG landmarks, TalkVid's 5 keypoints, pose in degrees."""

    bbox: tuple[float, float, float, float]
    landmarks: np.ndarray  # 68x2
    kps: np.ndarray  # 5x2
    pose: tuple[float, float, float]  # pitch, yaw, roll

    def summary(self) -> dict[str, Any]:
        """What the catalog keeps per face (68 landmarks are not kept: the head scores need only these)."""
        return {
            "bbox": [round(float(v), 1) for v in self.bbox],
            "kps": [[round(float(x), 1), round(float(y), 1)] for x, y in self.kps],
            "pose": [round(float(v), 2) for v in self.pose],
        }


class HeadScorer(Scorer):
    """Head detail from a face backend (see talkvid_ops.score.faces): faces per sampled frame -> the scores."""

    name = "head"
    version = "1"
    colour = "rgb"  # what `detect` takes

    @property
    def needs(self) -> dict[str, FrameSpec]:
        return {"frames": FrameSpec(fps=self.config.head_sample_fps, colour=self.colour)}

    def detect(self, image: np.ndarray) -> list[Face]:
        """Every face in one frame (backend-specific)."""
        raise NotImplementedError

    def begin(self, clip: ClipInfo) -> Accumulator:
        return HeadClip(self, clip.grids[self.needs["frames"]])


class HeadClip(Accumulator):
    """Keeps the faces found in each sampled frame (and the frame's time), not the frame."""

    def __init__(self, scorer: HeadScorer, grid: Grid):
        self.scorer, self.grid = scorer, grid
        self.per_frame: list[list[Face]] = []
        self.times: list[float] = []
        self.size = (0, 0)

    def add(self, name: str, sample: Sample) -> None:
        self.size = (sample.image.shape[1], sample.image.shape[0])
        self.per_frame.append(self.scorer.detect(sample.image))
        self.times.append(sample.time)

    def result(self) -> Metrics:
        if not self.per_frame:
            raise ValueError("no frames sampled for head detail")
        width, height = self.size
        details = {
            "sample_fps": self.grid.fps,
            "frame_size": [width, height],
            "frames": [{"t": round(float(t), 3), "faces": [f.summary() for f in faces]} for t, faces in zip(self.times, self.per_frame)],
        }
        return Metrics(head_detail_scores(self.per_frame, width, height), details)
