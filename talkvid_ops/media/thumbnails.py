"""Clip thumbnails and previews: small JPEGs written once, when a clip is scored, from the decode the score stage
makes anyway (one more spec on `ClipReader`: five frames converted at 160 px wide, no second decode).

    <data_dir>/thumbnails/<clip_id>.jpg   the clip's middle frame, about 160 px wide, upright
    <data_dir>/previews/<clip_id>.jpg     a strip of frames spread over the clip, left to right, the middle one among them

Readers treat a missing file as "no thumbnail" (clips scored before thumbnails existed have none) and show the clip
id instead, never an error. Each file appears whole (a complete temporary file renamed) and is never rewritten:
rescoring a clip leaves its pictures as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkvid_ops.media.sampler import FrameSpec, Grid, Sample

THUMBNAIL_WIDTH = 160
PREVIEW_FRAMES = 5  # odd, so that the middle frame of the clip is the strip's middle one
PREVIEW_FRAME_WIDTH = 96
JPEG_QUALITY = 80


def thumbnail_path(data_dir: Path, clip_id: str) -> Path:
    return data_dir / "thumbnails" / f"{clip_id}.jpg"


def preview_path(data_dir: Path, clip_id: str) -> Path:
    return data_dir / "previews" / f"{clip_id}.jpg"


def _spread(grid: Grid) -> list[int]:
    """The centres of PREVIEW_FRAMES equal parts of the clip; the middle one is the clip's middle frame."""
    return [int((part + 0.5) * grid.samples / PREVIEW_FRAMES) for part in range(PREVIEW_FRAMES)]


# every frame at the native rate (so the middle is the clip's middle frame), of which the spread ones are converted
PICTURE_SPEC = FrameSpec(width=THUMBNAIL_WIDTH, select=_spread)


@dataclass(frozen=True)
class ClipPictures:
    """A clip's thumbnail and preview strip, JPEG-encoded."""

    thumbnail: bytes
    preview: bytes


def _jpeg(rgb: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"JPEG encoding of a {rgb.shape} frame failed")
    return data.tobytes()


class PictureCollector:
    """Keeps the few small frames of PICTURE_SPEC as the clip is decoded, then makes its pictures."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def add(self, sample: Sample) -> None:
        self.frames.append(sample.image)

    def pictures(self) -> ClipPictures | None:
        """None when no frame came (a clip too short to decode anything)."""
        import cv2

        if not self.frames:
            return None
        height, width = self.frames[0].shape[:2]
        size = (PREVIEW_FRAME_WIDTH, max(1, round(height * PREVIEW_FRAME_WIDTH / width)))
        strip = np.hstack([cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in self.frames])
        return ClipPictures(_jpeg(self.frames[len(self.frames) // 2]), _jpeg(strip))


def has_pictures(data_dir: Path, clip_id: str) -> bool:
    return thumbnail_path(data_dir, clip_id).exists() and preview_path(data_dir, clip_id).exists()


def write_pictures(data_dir: Path, clip_id: str, pictures: ClipPictures) -> int:
    """Write the clip's pictures that do not exist yet, each by rename of a complete file; how many were written."""
    written = 0
    for path, data in ((thumbnail_path(data_dir, clip_id), pictures.thumbnail), (preview_path(data_dir, clip_id), pictures.preview)):
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)
        written += 1
    return written


def read_picture(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist (no picture for that clip)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
