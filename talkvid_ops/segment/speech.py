"""Where people speak: Silero VAD on the audio track, subtitle cues from a VTT/SRT file, and the rule combining them.

Silero VAD runs from the ONNX file inside the installed `silero_vad` package through onnxruntime directly (no
torch, no download). It rejects silence, white noise and steady tones; subtitle cues such as `[Music]` or
`♪ ♪` are not speech either.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from talkvid_ops.config.segment import SegmentConfig
from talkvid_ops.errors import TalkvidError
from talkvid_ops.media.decode import AUDIO_RATE
from talkvid_ops.segment import intervals as iv

VAD_FRAME = 512  # samples per Silero step at 16 kHz (32 ms)
VAD_CONTEXT = 64  # samples of the previous step the model sees again
VAD_NEG_MARGIN = 0.15  # speech ends below threshold - margin (hysteresis, as Silero's reference post-processing)


def silero_model_path() -> Path:
    """The ONNX model shipped in the silero-vad package, found without importing it (its __init__ pulls torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise TalkvidError("Silero VAD needs the `silero-vad` package (pip install silero-vad)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise TalkvidError(f"the silero-vad package has no {path.name} at {path.parent}")
    return path


class SileroVad:
    """Per-step speech probabilities from Silero VAD's streaming ONNX model."""

    def __init__(self, model_path: Path | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one 32 ms step is too small to share out; videos run in parallel instead
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_path or silero_model_path()), sess_options=options, providers=["CPUExecutionProvider"])

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """One speech probability per 32 ms step of 16 kHz mono `audio`."""
        steps = -(-audio.size // VAD_FRAME)
        padded = np.zeros(steps * VAD_FRAME + VAD_CONTEXT, np.float32)
        padded[VAD_CONTEXT : VAD_CONTEXT + audio.size] = audio
        state = np.zeros((2, 1, 128), np.float32)
        rate = np.array(AUDIO_RATE, np.int64)
        out = np.empty(steps, np.float32)
        for i in range(steps):
            window = padded[i * VAD_FRAME : (i + 1) * VAD_FRAME + VAD_CONTEXT][None, :]
            prob, state = self.session.run(None, {"input": window, "state": state, "sr": rate})
            out[i] = prob[0, 0]
        return out


@lru_cache(maxsize=1)
def silero_vad() -> SileroVad:
    """Loaded once per process."""
    return SileroVad()


def speech_from_probabilities(probs: np.ndarray, config: SegmentConfig, step_s: float = VAD_FRAME / AUDIO_RATE) -> iv.Intervals:
    """Speech stretches from per-step probabilities: enter above the threshold, leave below threshold - margin,
    bridge pauses shorter than `vad_min_silence_s`, drop blips shorter than `vad_min_speech_s`, pad the edges."""
    enter, leave = config.vad_threshold, max(0.01, config.vad_threshold - VAD_NEG_MARGIN)
    raw: iv.Intervals = []
    start = None
    for i, p in enumerate(probs):
        if start is None and p >= enter:
            start = i
        elif start is not None and p < leave:
            raw.append((start * step_s, i * step_s))
            start = None
    if start is not None:
        raw.append((start * step_s, len(probs) * step_s))
    bridged = iv.normalize(raw, max_gap=config.vad_min_silence_s)
    kept = [(s, e) for s, e in bridged if e - s >= config.vad_min_speech_s]
    end_of_audio = len(probs) * step_s
    return iv.normalize((max(0.0, s - config.vad_pad_s), min(end_of_audio, e + config.vad_pad_s)) for s, e in kept)


def vad_speech(audio: np.ndarray, config: SegmentConfig) -> iv.Intervals:
    return speech_from_probabilities(silero_vad().probabilities(audio), config)


# --- subtitles -------------------------------------------------------------------------------------------------

_TIMING = re.compile(r"((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})\s*-->\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})")
_TAG = re.compile(r"<[^>]*>")
# Sound descriptions, not speech: "[Music]", "(applause)", "♪ ♪", "[Music] ♪".
_NON_SPEECH = re.compile(r"^(?:\s|\[[^\]]*\]|\([^)]*\)|[♪♫♬♩#*~-])*$")


def _seconds(stamp: str) -> float:
    parts = stamp.replace(",", ".").split(":")
    seconds = float(parts[-1]) + 60 * int(parts[-2])
    return seconds + (3600 * int(parts[-3]) if len(parts) == 3 else 0)


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str

    @property
    def is_speech(self) -> bool:
        return bool(self.text.strip()) and not _NON_SPEECH.match(self.text)


def parse_cues(text: str) -> list[Cue]:
    """Cues of a WebVTT (or SRT) file, with inline tags (YouTube's word timings, styling) removed."""
    cues: list[Cue] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = block.strip().split("\n")
        for i, line in enumerate(lines):
            match = _TIMING.search(line)
            if match:
                body = " ".join(_TAG.sub("", part).strip() for part in lines[i + 1 :]).strip()
                cues.append(Cue(_seconds(match.group(1)), _seconds(match.group(2)), body))
                break
    return cues


def subtitle_speech(path: Path) -> iv.Intervals:
    """Speech intervals from the cues of a subtitle file, sound descriptions left out."""
    cues = parse_cues(Path(path).read_text(encoding="utf-8", errors="replace"))
    return iv.normalize((c.start, c.end) for c in cues if c.is_speech)


def combine(rule: str, vad: iv.Intervals | None, subtitles: iv.Intervals | None) -> tuple[iv.Intervals | None, str]:
    """Speech intervals under `rule` and the source actually used. A rule naming subtitles uses VAD alone when
    the video has none; `subtitles` alone with no file gives None: speech unknown (TalkVid kept such clips)."""
    if rule == "vad" or (subtitles is None and rule != "subtitles"):
        return vad, "vad"
    if rule == "subtitles":
        return subtitles, ("subtitles" if subtitles is not None else "none")
    if rule == "vad_or_subtitles":
        return iv.union(vad, subtitles), rule
    return iv.intersect(vad, subtitles), rule
