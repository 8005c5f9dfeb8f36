"""The scorer contract: what a scorer declares, how it loads, and how it scores a clip as a stream of frames.

A scorer never opens media. It declares the frames it needs (`needs`: a local name -> `FrameSpec`: rate, size,
colour, which samples). The stage decodes each clip once (`media.sampler.ClipReader`) and feeds every scorer
from that one decode, frame by frame:

    accumulator = scorer.begin(clip_info)      # one per clip; knows each spec's grid before any frame
    accumulator.add(name, sample)              # each sample of each needed spec, in decode order
    metrics = accumulator.result()             # after the last frame

An accumulator keeps only what its result needs, never the clip's frames, so a worker's memory does not grow
with clip length: the classical quality backend keeps six numbers per sampled frame, the motion backends their
current 16-frame window and 6 s segment, the head backends the faces found per sampled frame, DOVER the reduced
views of its fixed 128 frames (fragments and 224 px frames, not whole frames). Samples of one frame may share
one array: read them, do not write to them.

Models load lazily, once per process (`load()`, called by the stage before a scorer's first clip; `get_scorer`
keeps one instance per scorer class and configuration).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from talkvid_ops.media.runtime import LoadsOnce
from talkvid_ops.media.sampler import ClipInfo, FrameSpec, Sample

if TYPE_CHECKING:
    from talkvid_ops.config.score import ScoreConfig


class Metrics(dict):
    """A scorer's result: metric name -> value, plus `details` (sampling, normalisation) stored with the scoring."""

    def __init__(self, values: dict[str, float], details: dict[str, Any] | None = None):
        super().__init__({k: float(v) for k, v in values.items()})
        self.details = details or {}


class Accumulator:
    """One clip being scored: takes the clip's samples one at a time, then gives the metrics."""

    def add(self, name: str, sample: Sample) -> None:
        """One sample of the spec declared under `name`."""
        raise NotImplementedError

    def result(self) -> Metrics:
        """The clip's metrics, once every sample was added; raises when the clip cannot be scored."""
        raise NotImplementedError


class Scorer(LoadsOnce):
    """One scorer with one backend. Subclasses set the class attributes, declare `needs` and implement `begin`.

    `load()` is called before the first clip in a process (idempotent) and may raise ModelUnavailable.
    """

    name: ClassVar[str]
    backend: ClassVar[str]
    version: ClassVar[str]

    def __init__(self, config: ScoreConfig):
        super().__init__()
        self.config = config

    @property
    def needs(self) -> dict[str, FrameSpec]:
        raise NotImplementedError

    def begin(self, clip: ClipInfo) -> Accumulator:
        """A fresh accumulator for one clip."""
        raise NotImplementedError


_INSTANCES: dict[tuple, Scorer] = {}


def get_scorer(cls: type[Scorer], config: ScoreConfig) -> Scorer:
    """The process-wide instance of `cls` for this configuration (models load once per process)."""
    key = (cls, config.model_dump_json())
    if key not in _INSTANCES:
        _INSTANCES[key] = cls(config)
    return _INSTANCES[key]
