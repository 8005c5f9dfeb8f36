"""The segment stage: probed videos -> shots + speech -> candidate clips (+ transcripts and language).

A clip generation is identified by the hash of the parameters that place clips (`SegmentConfig.params_hash`):
rerunning with the same parameters finds every video settled and changes nothing; new parameters plan a new
generation beside the old one, whose clips (and their scores) stay. A `segmentation` row records per video and
generation that it was segmented (also when that gave no clip) or why it failed; media faults are permanent and
stay recorded, a missing file or an internal error is retried by the next run. Transcripts belong to a clip's time
range and an ASR model, so a new generation with the same ranges, or a rerun after adding a model, reuses them.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from talkvid_ops.catalog.batches import chosen_items, make_batches, mark_batch_done
from talkvid_ops.catalog.models import Clip, Segmentation, Transcript, Video
from talkvid_ops.catalog.runs import RunRecorder
from talkvid_ops.catalog.status import ErrorClass, MediaFault, SegmentationStatus, VideoStatus
from talkvid_ops.catalog.upsert import claim, upsert
from talkvid_ops.config.segment import SEGMENTER_NAME, SEGMENTER_VERSION, SegmentConfig
from talkvid_ops.context import Context
from talkvid_ops.ids import make_id
from talkvid_ops.media.decode import AUDIO_RATE, decode_audio
from talkvid_ops.media.errors import MediaError
from talkvid_ops.segment import intervals as iv
from talkvid_ops.segment.asr import AsrBackend, asr_backend
from talkvid_ops.segment.planner import PlannedClip, plan_clips
from talkvid_ops.segment.shots import ShotScan, scan_shots_and_audio
from talkvid_ops.segment.speech import combine, subtitle_speech, vad_speech

STAGE = "segment"
RETRYABLE_ERRORS = (MediaFault.MISSING, ErrorClass.INTERNAL)  # every other error class is a fault of the media: kept, not retried


@dataclass
class VideoAnalysis:
    """Everything found in one video, before anything is written."""

    scan: ShotScan
    audio: np.ndarray
    speech: iv.Intervals | None
    speech_source: str
    clips: list[PlannedClip]
    seconds: dict[str, float] = field(default_factory=dict)


def analyse_video(path: Path, subtitles: Path | None, config: SegmentConfig) -> VideoAnalysis:
    """Shots, speech and planned clips of one media file. Raises MediaError for faults of the file."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    # one read of the file; a talking-head clip without sound fails first, whatever the speech rule
    scan, audio = scan_shots_and_audio(path, config)
    seconds["audio_and_shots"] = time.perf_counter() - started
    started = time.perf_counter()
    vad = None if config.speech_rule == "subtitles" else vad_speech(audio, config)
    seconds["vad"] = time.perf_counter() - started
    cues = subtitle_speech(subtitles) if subtitles is not None and subtitles.is_file() else None
    speech, source = combine(config.speech_rule, vad, cues)
    clips = plan_clips(scan.shots, scan.fps, speech, config, scan.frame_times)
    return VideoAnalysis(scan, audio, speech, source, clips, seconds)


log = logging.getLogger("talkvid.segment")
MISSING_MODEL_WARNING = (
    "no ASR model at %s: spoken language will be Unknown; install the multilingual Whisper model with `talkvid models fetch` "
    "(or set segment.asr.model_dir, or segment.asr.transcribe: false to switch ASR off)"
)


def _asr(config: SegmentConfig) -> AsrBackend | None:
    if config.asr.missing_default_model:
        log.warning(MISSING_MODEL_WARNING, config.asr.resolved_model_dir)
    return asr_backend(config.asr) if config.asr.enabled else None


def _pending_condition(config: SegmentConfig, asr: AsrBackend | None) -> ColumnElement[bool]:
    """Videos this stage still owes work for the current parameters (and ASR model)."""
    settled = exists().where(
        Segmentation.video_id == Video.id,
        Segmentation.params_hash == config.params_hash,
        or_(Segmentation.status == SegmentationStatus.DONE, Segmentation.error_class.not_in(RETRYABLE_ERRORS)),
    )
    condition = and_(Video.status == VideoStatus.PROBED, Video.storage_path.is_not(None), ~settled)
    if asr is None:
        return condition
    untranscribed = (
        select(Clip.id)
        .outerjoin(Transcript, Clip.transcript_id == Transcript.id)
        .where(
            Clip.video_id == Video.id,
            Clip.params_hash == config.params_hash,
            or_(Clip.transcript_id.is_(None), Transcript.backend != asr.name, Transcript.model != asr.model_id),
        )
        .exists()
    )
    return or_(condition, and_(Video.status == VideoStatus.PROBED, untranscribed))


def pending_video_ids(session: Session, config: SegmentConfig, limit: int | None = None) -> list[str]:
    query = select(Video.id).where(_pending_condition(config, _asr(config))).order_by(Video.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def _batch_params(config: SegmentConfig) -> dict[str, Any]:
    asr = _asr(config)
    return {"params_hash": config.params_hash, "asr": f"{asr.name}:{asr.model_id}" if asr else None}


def plan_batches(ctx: Context, size: int | None = None, max_batches: int | None = None) -> list[str]:
    """Batches of the videos that still need segmenting with the current parameters; returns their ids (only the
    first `max_batches` are stored, see `make_batches`)."""
    config = ctx.config.segment
    with ctx.sessions() as session:
        ids = pending_video_ids(session, config)
        batch_ids = make_batches(session, STAGE, ids, size or config.batch_size, params=_batch_params(config), max_batches=max_batches)
        session.commit()
    return batch_ids


def segment(ctx: Context, video_ids: Iterable[str] | None = None, batch_id: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """Segment videos: the given ones, a batch's, or every pending one (at most `limit`). Per-video faults are
    recorded and the rest goes on."""
    config = ctx.config.segment
    asr = _asr(config)
    video_ids = list(video_ids) if video_ids is not None else None
    params = {
        "params_hash": config.params_hash,
        "clip_params": config.clip_params(),
        "asr": {"backend": asr.name, "model": asr.model_id} if asr else None,
        "video_ids": sorted(video_ids) if video_ids is not None else None,
        "batch_id": batch_id,
        "limit": limit,
    }
    with ctx.run(STAGE, params) as run:
        for key in ("videos_segmented", "videos_failed", "videos_skipped", "clips", "clips_transcribed"):
            run.count(key, 0)
        with ctx.sessions() as session:
            ids = chosen_items(session, STAGE, batch_id, video_ids, lambda: pending_video_ids(session, config, limit), limit)
        for video_id in run.progress(ids, len(ids), "videos"):
            _segment_video(ctx, video_id, config, asr, run)
        if batch_id is not None:
            with ctx.sessions() as session:
                mark_batch_done(session, batch_id, run.id)
                session.commit()
    return {"run_id": run.id, "videos": len(ids), **run.counts}


def _segment_video(ctx: Context, video_id: str, config: SegmentConfig, asr: AsrBackend | None, run: RunRecorder) -> None:
    with ctx.sessions() as session:
        if session.get(Video, video_id) is None:
            run.error(video_id, "no such video", kind="unknown")
            return
        claimed = claim(session, select(Video).where(Video.id == video_id, _pending_condition(config, asr)), limit=1)
        if not claimed:
            run.count("videos_skipped")  # settled already, not downloaded, or taken by another worker
            return
        video = claimed[0]
        try:
            audio = None
            if not _is_settled(session, video.id, config):
                analysis = analyse_video(ctx.settings.media_path(video.storage_path), ctx.settings.media_path(video.subtitles_path), config)
                _write_segmentation(session, video, analysis, config, run.id)
                run.count("videos_segmented")
                run.count("clips", len(analysis.clips))
                audio = analysis.audio
            if asr is not None:
                run.count("clips_transcribed", _transcribe(session, ctx, video, audio, config, asr, run))
            session.commit()
        except MediaError as exc:
            session.rollback()
            _record_failure(session, video_id, config, exc.kind, str(exc), run.id, on_video=exc.permanent)
            run.count("videos_failed")
            run.error(video_id, str(exc), kind=exc.kind)
        except Exception as exc:  # one broken video must not stop the batch; it is recorded and retried
            session.rollback()
            reason = f"{type(exc).__name__}: {exc}"
            _record_failure(session, video_id, config, ErrorClass.INTERNAL, reason, run.id, on_video=False)
            run.count("videos_failed")
            run.error(video_id, reason, kind=ErrorClass.INTERNAL, traceback=traceback.format_exc(limit=6))


def _is_settled(session: Session, video_id: str, config: SegmentConfig) -> bool:
    status = session.scalar(select(Segmentation.status).where(Segmentation.video_id == video_id, Segmentation.params_hash == config.params_hash))
    return status == SegmentationStatus.DONE


def _segmentation_row(video_id: str, config: SegmentConfig, run_id: str, **fields) -> dict[str, Any]:
    return dict(
        id=make_id("segmentation", video_id, config.params_hash),
        video_id=video_id,
        segmenter=SEGMENTER_NAME,
        segmenter_version=SEGMENTER_VERSION,
        params_hash=config.params_hash,
        run_id=run_id,
        **fields,
    )


def _rounded(intervals: iv.Intervals | None) -> list[list[float]]:
    return [[round(s, 3), round(e, 3)] for s, e in intervals or []]


def _write_segmentation(session: Session, video: Video, analysis: VideoAnalysis, config: SegmentConfig, run_id: str) -> None:
    scan, h = analysis.scan, config.params_hash
    clip_params = config.clip_params()
    rows = [
        dict(
            id=make_id("clip", video.id, h, c.start_frame, c.end_frame),
            video_id=video.id,
            segmenter=SEGMENTER_NAME,
            segmenter_version=SEGMENTER_VERSION,
            params_hash=h,
            params=clip_params,
            shot_index=c.shot_index,
            start_time=c.start_time,
            end_time=c.end_time,
            start_frame=c.start_frame,
            end_frame=c.end_frame,
            fps=c.fps,
            duration=c.duration,
            speech_seconds=c.speech_seconds,
            speech_coverage=c.speech_coverage,
            speech_source=analysis.speech_source,
            run_id=run_id,
        )
        for c in analysis.clips
    ]
    upsert(session, Clip, rows, ["video_id", "params_hash", "start_frame", "end_frame"], update=[])
    details = {
        "fps": scan.fps,
        "frame_count": scan.frame_count,
        "duration": scan.duration,
        "width": scan.width,
        "height": scan.height,
        "cut_frames": list(scan.cut_frames),
        "seconds": {k: round(v, 4) for k, v in analysis.seconds.items()},
    }
    shots = [[round(scan.frame_times[a], 3), round(scan.frame_times[b], 3)] for a, b in scan.shots]
    row = _segmentation_row(
        video.id,
        config,
        run_id,
        status=SegmentationStatus.DONE,
        clip_count=len(rows),
        shots=shots,
        speech=_rounded(analysis.speech),
        speech_source=analysis.speech_source,
        error=None,
        error_class=None,
        details=details,
    )
    upsert(session, Segmentation, [row], ["video_id", "params_hash"])


def _record_failure(session: Session, video_id: str, config: SegmentConfig, kind: MediaFault | ErrorClass, reason: str, run_id: str, on_video: bool) -> None:
    if not _is_settled(session, video_id, config):  # a later fault (e.g. re-decoding for ASR) keeps the clips cut
        row = _segmentation_row(
            video_id,
            config,
            run_id,
            status=SegmentationStatus.FAILED,
            clip_count=0,
            shots=[],
            speech=[],
            speech_source=None,
            error=reason,
            error_class=kind,
            details={},
        )
        upsert(session, Segmentation, [row], ["video_id", "params_hash"])
    if on_video:  # a fault of the file itself: shown with the video, where `talkvid status` looks
        video = session.get(Video, video_id)
        video.error_class, video.error_message = ErrorClass.MEDIA, f"segment: {reason}"
    session.commit()


def _transcribe(session: Session, ctx: Context, video: Video, audio: np.ndarray | None, config: SegmentConfig, asr: AsrBackend, run: RunRecorder) -> int:
    """Transcribe this generation's clips that have no transcript by `asr` yet; returns how many ran the model.
    A clip the model fails on is recorded and stays untranscribed (the next run tries it again); the rest go on."""
    clips = session.scalars(select(Clip).where(Clip.video_id == video.id, Clip.params_hash == config.params_hash).order_by(Clip.start_frame)).all()
    ran = 0
    for clip in clips:
        transcript_id = make_id("transcript", video.id, asr.name, asr.model_id, clip.start_time, clip.end_time)
        if clip.transcript_id == transcript_id:
            continue
        transcript = session.get(Transcript, transcript_id)
        if transcript is None:  # not even from another generation with this range
            if audio is None:
                audio = decode_audio(ctx.settings.media_path(video.storage_path))
            piece = audio[round(clip.start_time * AUDIO_RATE) : round(clip.end_time * AUDIO_RATE)]
            try:
                result = asr.transcribe(piece)
            except Exception as exc:  # the ASR backend's fault with this clip: not the segmentation's
                run.error(clip.id, f"{type(exc).__name__}: {exc}", step="transcribe", video_id=video.id)
                continue
            transcript = Transcript(
                id=transcript_id,
                video_id=video.id,
                backend=asr.name,
                model=asr.model_id,
                start_time=clip.start_time,
                end_time=clip.end_time,
                language=result.language,
                language_probability=result.language_probability,
                text=result.text,
                segments=[
                    {"start": round(clip.start_time + s.start, 3), "end": round(clip.start_time + s.end, 3), "text": s.text.strip()} for s in result.segments
                ],
                run_id=run.id,
            )
            session.add(transcript)
            session.flush()
            ran += 1
        clip.transcript_id = transcript.id
        clip.language = transcript.language
        clip.language_probability = transcript.language_probability
        clip.transcript_text = transcript.text
    return ran
