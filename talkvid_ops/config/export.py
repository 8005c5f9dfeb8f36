"""Release parameters: what an export writes and how it encodes it (the bench spec, seed, labels and speakers are
curate's: `talkvid_ops.config.curate`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Format = Literal["talkvid-json", "parquet", "jsonl", "clips", "crops", "webdataset", "bench"]
ALL_FORMATS: tuple[str, ...] = ("talkvid-json", "parquet", "jsonl", "clips", "crops", "webdataset", "bench")
# What an export writes when no format is named: every manifest and the cut clips; face crops are opt-in.
DEFAULT_FORMATS: tuple[str, ...] = ("talkvid-json", "parquet", "jsonl", "clips", "webdataset", "bench")


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    formats: list[Format] = Field([], description="empty: every manifest plus cut clips and shards, no crops")
    crop_size: int = Field(512, ge=64, description="face-centred square crops, like TalkVid-Bench's")
    crop_face_scale: float = Field(2.0, gt=1, description="crop side as a multiple of the face box side")
    shard_max_samples: int = Field(1000, ge=1, description="clips per WebDataset tar shard")
    video_crf: int = Field(18, ge=0, le=51)
    video_preset: str = "veryfast"
    audio_bitrate: str = "128k"
    strict: bool = Field(False, description="talkvid.json in TalkVid's record shape only (no talkvid_provenance key)")
    generation: str = Field(
        "current",
        min_length=1,
        description="clip generation released: current (each video's newest segmentation) or a segment params hash",
    )
