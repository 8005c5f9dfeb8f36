"""Scoring parameters: which backend runs each scorer, how clips are batched, where production models live."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ScorerName = Literal["quality", "motion", "head"]


class ScoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scorers: list[ScorerName] = Field(default_factory=lambda: ["quality", "motion", "head"], min_length=1)
    quality_backend: Literal["classical", "dover"] = "classical"
    motion_backend: Literal["lk", "lk-fast", "cotracker3"] = "lk"
    head_backend: Literal["dlib", "fan", "insightface"] = "dlib"
    batch_size: int = Field(200, ge=1, description="clips per batch (one mapped task each)")
    workers: int | None = Field(None, ge=1, description="processes scoring a batch's clips (default: the CPUs this task may use; 1 on cuda)")
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

    def effective_workers(self) -> int:
        """Worker processes for a batch: the setting, else 1 on a GPU (one model per device), else the usable CPUs."""
        if self.workers is not None:
            return self.workers
        return 1 if self.device == "cuda" else available_cpus()


def available_cpus(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a container's --cpus)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.ceil(int(quota) / int(period))))
