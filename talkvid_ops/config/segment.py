"""Segmentation parameters (defaults follow TalkVid's released config where TalkVid had one)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from talkvid_ops.ids import content_hash

SEGMENTER_NAME = "pyscenedetect+silero-vad"
# Bump when a code change alters the clips planned from the same parameters: it starts a new clip generation.
SEGMENTER_VERSION = "1.0"

# TalkVid's released config used HistogramDetector 0.085 (ContentDetector 10.0 as its alternative);
# AdaptiveDetector keeps PySceneDetect's own default.
DEFAULT_THRESHOLDS = {"histogram": 0.085, "content": 10.0, "adaptive": 3.0}

SpeechRule = Literal["vad", "subtitles", "vad_or_subtitles", "vad_and_subtitles"]

# Where `talkvid models fetch` installs the models a set-up provides (the images set TALKVID_MODEL_DIR).
ENV_MODEL_DIR = "TALKVID_MODEL_DIR"
DEFAULT_WHISPER = "whisper-base-ct2"  # the multilingual Whisper base model (CTranslate2)


def model_home() -> Path:
    return Path(os.environ.get(ENV_MODEL_DIR) or "~/.cache/talkvid/models").expanduser()


class AsrConfig(BaseModel):
    """Transcript and spoken language per clip. Models load from a local directory only, never from a hub."""

    model_config = ConfigDict(extra="forbid")

    transcribe: bool = Field(True, description="transcribe and identify the spoken language; false: ASR off")
    backend: Literal["faster-whisper", "whisperx"] = "faster-whisper"
    model_dir: Path | None = Field(None, description="CTranslate2 Whisper model directory; unset: the one `talkvid models fetch` installs")
    device: str = "cpu"
    compute_type: str = "int8"
    beam_size: int = Field(1, ge=1)
    language: str | None = Field(None, description="force a language instead of detecting it")
    cpu_threads: int = Field(0, ge=0, description="0: the library's default")
    batch_size: int = Field(16, ge=1, description="whisperx only")
    align_model_dir: Path | None = Field(None, description="whisperx only: local wav2vec2 alignment model")

    @property
    def resolved_model_dir(self) -> Path:
        return Path(self.model_dir).expanduser() if self.model_dir is not None else model_home() / DEFAULT_WHISPER

    @property
    def missing_default_model(self) -> bool:
        """Transcription is on with the default model, which is not installed (language Unknown, with a warning)."""
        return self.transcribe and self.model_dir is None and not (self.resolved_model_dir / "model.bin").is_file()

    @property
    def enabled(self) -> bool:
        return self.transcribe and not self.missing_default_model


class SegmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # shots
    detector: Literal["histogram", "content", "adaptive"] = "histogram"
    threshold: float | None = Field(None, gt=0, description="unset: the detector's default (histogram 0.085)")
    min_shot_frames: int = Field(15, ge=1, description="PySceneDetect's min_scene_len, as TalkVid ran it")
    shot_width: int = Field(256, ge=32, description="frames are scaled to this width for shot detection")
    # speech
    speech_rule: SpeechRule = Field(
        "vad_and_subtitles",
        description="how VAD and subtitle cues combine; *_subtitles rules use VAD alone when a video has no subtitles",
    )
    vad_threshold: float = Field(0.5, gt=0, lt=1)
    vad_min_speech_s: float = Field(0.25, ge=0)
    vad_min_silence_s: float = Field(0.3, ge=0, description="shorter pauses do not end a speech stretch")
    vad_pad_s: float = Field(0.03, ge=0)
    # clip planning
    trim_start_s: float = Field(0.3, ge=0, description="net start trim: +0.4 s then -0.1 s")
    trim_end_s: float = Field(0.1, ge=0)
    min_duration_s: float = Field(5.0, ge=0, description="clips must be strictly longer")
    max_duration_s: float | None = Field(None, gt=0, description="longer stretches are split, at pauses when possible")
    max_pause_s: float | None = Field(1.0, ge=0, description="non-speech longer than this ends a clip; unset: a clip is the whole trimmed shot (TalkVid)")
    min_speech_coverage: float = Field(0.0, ge=0, le=1, description="fraction of a clip that is speech (some speech is always required)")
    # transcripts
    asr: AsrConfig = AsrConfig()
    batch_size: int = Field(20, ge=1, description="videos per batch")

    @property
    def resolved_threshold(self) -> float:
        return self.threshold if self.threshold is not None else DEFAULT_THRESHOLDS[self.detector]

    def clip_params(self) -> dict[str, Any]:
        """Everything that decides where clips are, with defaults resolved: the clip generation's identity.

        Transcription settings and the batch size are left out: they do not move clips.
        """
        params = self.model_dump(mode="json", exclude={"asr", "batch_size", "threshold"})
        params["threshold"] = self.resolved_threshold
        params["segmenter"] = SEGMENTER_NAME
        params["segmenter_version"] = SEGMENTER_VERSION
        return params

    @property
    def params_hash(self) -> str:
        return content_hash(self.clip_params())
