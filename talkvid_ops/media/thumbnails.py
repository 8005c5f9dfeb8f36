"""Where a clip's thumbnail lives: a JPEG about 160 px wide of the clip's middle sampled frame, written once when the
clip is scored. Readers treat a missing file as "no thumbnail", never as an error."""

from __future__ import annotations

from pathlib import Path


def thumbnail_path(data_dir: Path, clip_id: str) -> Path:
    return data_dir / "thumbnails" / f"{clip_id}.jpg"
