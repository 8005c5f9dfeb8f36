"""Segmentation parameters (defaults follow TalkVid's released config)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SegmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detector: Literal["histogram", "content", "adaptive"] = "histogram"
    threshold: float = Field(0.085, gt=0)
    trim_start_s: float = Field(0.3, ge=0, description="net start trim: +0.4 s then -0.1 s")
    trim_end_s: float = Field(0.1, ge=0)
    min_duration_s: float = Field(5.0, ge=0, description="clips must be strictly longer")
    max_duration_s: float | None = Field(None, gt=0)
    batch_size: int = Field(20, ge=1, description="videos per batch")
