"""How stage tasks run: in-process (embedded default), in a Docker container, or in a Kubernetes pod."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class RunnerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["inprocess", "docker", "kubernetes"] = "inprocess"
