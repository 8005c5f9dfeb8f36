"""Curation parameters: which threshold profile applies by default."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CurateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: str = "talkvid-code"
