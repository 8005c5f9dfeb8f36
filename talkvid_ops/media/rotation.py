"""Turning decoded frames upright: the one place that reads a video's stored display rotation.

Decoders hand out frames as coded; a phone video is often coded sideways with a display rotation beside it
(`video.rotation`, from the probe: 0, 90, 180 or 270 degrees). Every reader turns its frames with `upright`, so
all stages see the same picture and sizes.

The rotation is degrees counter-clockwise to turn the coded picture for display: what PyAV's `frame.rotation`
reports from the stream's display matrix (the probe stores it modulo 360), whether the file got its rotation as
ffmpeg's `rotate` tag or as a display matrix. A phone clip tagged `rotate=270` (PyAV: -90, stored 270) is coded
turned a quarter counter-clockwise and needs three counter-clockwise quarter turns (one clockwise) to stand upright.
"""

from __future__ import annotations

import numpy as np

# display rotation (degrees counter-clockwise) -> np.rot90's counter-clockwise quarter turns
QUARTER_TURNS = {90: 1, 180: 2, 270: 3}


def quarter_turns(rotation: int | None) -> int:
    """np.rot90's counter-clockwise quarter turns that put a frame of this rotation upright."""
    return QUARTER_TURNS.get(int(rotation or 0) % 360, 0)


def upright(image: np.ndarray, rotation: int | None) -> np.ndarray:
    """The frame (H, W) or (H, W, C) turned for display, contiguous; the frame itself when nothing turns."""
    turns = quarter_turns(rotation)
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def upright_size(width: int, height: int, rotation: int | None) -> tuple[int, int]:
    """(width, height) as displayed: a quarter turn swaps them."""
    return (height, width) if quarter_turns(rotation) % 2 else (width, height)
