"""Export parameters."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    formats: list[str] = []
