"""The scorer contract: what a scorer declares, how it loads, and the one method that scores a clip.

A scorer never opens media. It declares the frames it needs (`FrameSpec`: rate, size, colour, which samples);
the sampler decodes each clip once and hands every scorer its frames. Models load lazily, once per process
(`get_scorer` keeps one instance per scorer class and configuration).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from talkvid_ops.errors import TalkvidError

if TYPE_CHECKING:
    from talkvid_ops.score.config import ScoreConfig
    from talkvid_ops.score.sampler import ClipFrames


class ModelUnavailable(TalkvidError):
    """A production model's weights are not where the operator's model dir says they are."""


@dataclass(frozen=True)
class FrameSpec:
    """Frames a scorer needs from a clip.

    fps: sample rate (None: every decoded frame). scale / short_side: resize (at most one; None: native).
    square_crop: keep the central square (side = the short side) after resizing.
    select: given how many samples the clip has at `fps`, which of them to keep (None: all).
    reduce: applied to each kept frame as it is decoded, so a scorer that needs only parts of full-resolution
    frames (DOVER's fragments) never holds whole frames; every result must have the same shape.
    """

    fps: float | None = None
    colour: Literal["rgb", "gray"] = "rgb"
    scale: float | None = None
    short_side: int | None = None
    square_crop: bool = False
    select: Callable[[int], Sequence[int]] | None = None
    reduce: Callable[[np.ndarray], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.scale is not None and self.short_side is not None:
            raise ValueError("a FrameSpec takes scale or short_side, not both")


class Metrics(dict):
    """A scorer's result: metric name -> value, plus `details` (sampling, normalisation) stored with the scoring."""

    def __init__(self, values: dict[str, float], details: dict[str, Any] | None = None):
        super().__init__({k: float(v) for k, v in values.items()})
        self.details = details or {}


class Scorer:
    """One scorer with one backend. Subclasses set the class attributes and implement `score`.

    `needs` maps a local name to a FrameSpec; `score` receives the frames under those names. `load()` is
    called before the first `score` in a process (idempotent) and may raise ModelUnavailable.
    """

    name: ClassVar[str]
    backend: ClassVar[str]
    version: ClassVar[str]

    def __init__(self, config: ScoreConfig):
        self.config = config
        self._loaded = False
        self._lock = threading.Lock()

    @property
    def needs(self) -> dict[str, FrameSpec]:
        raise NotImplementedError

    def _load(self) -> None:
        """Load models; the default scorer needs none."""

    def load(self) -> None:
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def score(self, frames: ClipFrames) -> dict[str, float]:
        raise NotImplementedError


_INSTANCES: dict[tuple, Scorer] = {}


def get_scorer(cls: type[Scorer], config: ScoreConfig) -> Scorer:
    """The process-wide instance of `cls` for this configuration (models load once per process)."""
    key = (cls, config.model_dump_json())
    if key not in _INSTANCES:
        _INSTANCES[key] = cls(config)
    return _INSTANCES[key]
