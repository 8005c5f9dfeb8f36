"""Caption stage parameters. No model directory configured: the stage is skipped and captions stay null."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CaptionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_dir: str | None = Field(None, description="a local Qwen2.5-VL model directory (loaded offline); unset: the stage is skipped")
    device: Literal["cpu", "cuda"] = "cpu"
    frames_per_clip: int = Field(8, ge=1, description="frames sampled evenly over each clip")
    frame_max_pixels: int = Field(448 * 448, ge=28 * 28, description="frames are scaled down to at most this many pixels")
    clips_per_generation: int = Field(4, ge=1, description="clips captioned in one batched generate call")
    max_new_tokens: int = Field(256, ge=1)
    category_context_chars: int = Field(4000, ge=200, description="characters of title, uploader description and transcript the category prompt sees")
    batch_size: int = Field(200, ge=1, description="clips per batch (one mapped task each)")

    @property
    def enabled(self) -> bool:
        return self.model_dir is not None
