"""Turning decoded frames upright: the one place that reads a video's stored display rotation.

Decoders hand out frames as coded; a phone video is often coded sideways with a display rotation beside it
(`video.rotation`, from the probe: 0, 90, 180 or 270 degrees). Every reader turns its frames with `upright`, so
all stages see the same picture and sizes.

The rotation is taken as degrees clockwise to turn the coded picture for display. PyAV reports a stream's display
rotation counter-clockwise; if that is what the probe stored, QUARTER_TURNS below is the one line to change.
"""

from __future__ import annotations

import numpy as np

# display rotation (degrees) -> np.rot90's counter-clockwise quarter turns
QUARTER_TURNS = {90: 3, 180: 2, 270: 1}


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
