"""Faces of a clip: a few frames decoded once by the media sampler, the largest face of each found by the HOG
detector, and the pixels around it kept for the face models (the curate stage's face pass stores what they say).

A sample keeps the frame's time and size, its largest face box and only the pixels around that face (`margin` of
the box on each side): every face model reads a chip near the box, so the frame itself need not be kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from talkvid_ops.errors import TalkvidError

DETECT_SHORT_SIDE = 540  # larger frames are scaled down for detection (as the score stage does); boxes stay in frame pixels
MAX_UPSAMPLE = 1  # a second, upsampled HOG pass only for frames where nothing was found


@dataclass(frozen=True)
class FaceBox:
    """Pixel box of a face; right and bottom are exclusive."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return (self.left + self.right) / 2, (self.top + self.bottom) / 2


@dataclass(frozen=True)
class FaceCrop:
    """The RGB pixels around a face and the face's box in them."""

    image: np.ndarray
    box: FaceBox


@dataclass(frozen=True)
class FaceSample:
    """One sampled frame: its time (seconds from the start of the range), size (width, height), its largest face
    (frame pixels) and that face's crop."""

    time: float
    frame_size: tuple[int, int]
    box: FaceBox | None
    face: FaceCrop | None


@lru_cache(maxsize=1)
def _detector():
    from talkvid_ops.media.faces import HogFaceDetector

    return HogFaceDetector(DETECT_SHORT_SIDE, MAX_UPSAMPLE)


def detect_faces(frame: np.ndarray) -> list[FaceBox]:
    """Faces in an RGB frame, largest first."""
    height, width = frame.shape[:2]
    # dlib's right and bottom are inclusive; FaceBox's are exclusive, like slices
    boxes = [
        FaceBox(max(0, round(left)), max(0, round(top)), min(width, round(right) + 1), min(height, round(bottom) + 1))
        for left, top, right, bottom in _detector().boxes(frame)
    ]
    return sorted((b for b in boxes if b.width > 0 and b.height > 0), key=lambda b: (-b.area, b.left, b.top))


def face_crop(frame: np.ndarray, box: FaceBox, margin: float) -> FaceCrop:
    """A copy of the frame around `box`, `margin` of its size on each side, kept inside the frame."""
    height, width = frame.shape[:2]
    pad_x, pad_y = round(box.width * margin), round(box.height * margin)
    left, top = max(0, box.left - pad_x), max(0, box.top - pad_y)
    image = frame[top : min(height, box.bottom + pad_y), left : min(width, box.right + pad_x)].copy()
    return FaceCrop(image, FaceBox(box.left - left, box.top - top, box.right - left, box.bottom - top))


def sample_faces(path: str | Path, start: float, end: float, count: int, rotation: int | None, margin: float) -> list[FaceSample]:
    """Frames at the centres of `count` equal parts of [start, end) (never the first or last frame, which cuts
    may blur), each with its largest face and `margin` of the face box around it; one decode of the range."""
    from talkvid_ops.media.sampler import sample_frames

    duration = end - start
    frames = sample_frames(path, start, end, [duration * (i + 0.5) / count for i in range(count)], rotation)
    samples = []
    for time, frame in zip(frames.times, frames.frames):
        faces = detect_faces(frame)
        box = faces[0] if faces else None
        samples.append(FaceSample(float(time), (frames.width, frames.height), box, face_crop(frame, box, margin) if box else None))
    return samples


def face_centred_square(boxes: list[FaceBox], frame_size: tuple[int, int], scale: float) -> tuple[int, int, int] | None:
    """(x, y, side) of a square around the median face, `scale` times its side, kept inside the frame."""
    if not boxes:
        return None
    width, height = frame_size
    cx = float(np.median([b.center[0] for b in boxes]))
    cy = float(np.median([b.center[1] for b in boxes]))
    face_side = float(np.median([max(b.width, b.height) for b in boxes]))
    side = int(min(width, height, round(face_side * scale)))
    side -= side % 2  # even sides: H.264 with 4:2:0 chroma needs them
    x = int(round(min(max(cx - side / 2, 0), width - side)))
    y = int(round(min(max(cy - side / 2, 0), height - side)))
    return x, y, side


def source_media(settings, video) -> Path:
    """The video's media file, resolved like every stage resolves stored paths; a TalkvidError when it is gone."""
    path = settings.media_path(video.storage_path)
    if path is None or not path.exists():
        raise TalkvidError(f"source media missing: {video.storage_path or 'the video has no storage path'}")
    return path


def failure_reason(exc: Exception) -> str:
    """What to record for a clip whose faces could not be read or judged (our errors say it; others get their type)."""
    return str(exc) if isinstance(exc, TalkvidError) else f"{type(exc).__name__}: {exc}"
