"""Scoring parameters: which backend runs each scorer, and how clips are batched."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ScoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quality_backend: Literal["classical", "dover"] = "classical"
    motion_backend: Literal["lk", "cotracker3"] = "lk"
    head_backend: Literal["dlib", "fan"] = "dlib"
    batch_size: int = Field(200, ge=1, description="clips per batch (one mapped task each)")
    model_dir: str | None = Field(None, description="where production model weights live")
