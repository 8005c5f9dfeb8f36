"""Scoring parameters: which backend runs each scorer, how clips are batched, where production models live."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ScorerName = Literal["quality", "motion", "head"]


class ScoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scorers: list[ScorerName] = Field(default_factory=lambda: ["quality", "motion", "head"], min_length=1)
    quality_backend: Literal["classical", "dover"] = "classical"
    motion_backend: Literal["lk", "cotracker3"] = "lk"
    head_backend: Literal["dlib", "fan", "insightface"] = "dlib"
    batch_size: int = Field(200, ge=1, description="clips per batch (one mapped task each)")
    model_dir: str | None = Field(None, description="where production model weights live")
    device: Literal["cpu", "cuda"] = "cpu"
    # quality
    quality_sample_fps: float = Field(2.0, gt=0, description="frames per second the classical backend analyses")
    dover_model: str = Field("dover/onnx_dover.onnx", description="DOVER ONNX export, relative to model_dir")
    dover_seed: int = Field(0, description="seed of DOVER's random fragment / frame offsets (reproducible scores)")
    # motion
    cotracker_hub_dir: str = Field("cotracker/co-tracker", description="local clone of facebookresearch/co-tracker, relative to model_dir")
    cotracker_checkpoint: str = Field("cotracker/scaled_offline.pth", description="CoTracker3 offline weights, relative to model_dir")
    # head
    head_sample_fps: float = Field(1.0, gt=0, description="TalkVid samples one frame per second")
    head_detect_short_side: int = Field(540, ge=64, description="face detection runs on frames scaled down to this short side")
    head_max_upsample: int = Field(2, ge=0, le=3, description="HOG upsampling steps tried when no face is found")
