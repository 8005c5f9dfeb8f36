"""The scorer contract: what a scorer declares, how it loads, and the one method that scores a clip.

A scorer never opens media. It declares the frames it needs (`FrameSpec`: rate, size, colour, which samples);
the sampler decodes each clip once and hands every scorer its frames. Models load lazily, once per process
(`get_scorer` keeps one instance per scorer class and configuration).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar

from talkvid_ops.media.sampler import FrameSpec

if TYPE_CHECKING:
    from talkvid_ops.media.sampler import ClipFrames
    from talkvid_ops.score.config import ScoreConfig


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
