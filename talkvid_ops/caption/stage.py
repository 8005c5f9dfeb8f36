"""The caption stage: a description per clip from frames sampled evenly over it, and a topic category per video.

Work is the set of clips of stored videos without a caption by the configured model and prompt. Each clip's caption
is one `caption` row (ok with the text, or failed with the reason) carrying the model id, the prompt's hash and the
sampling; a new model or prompt replaces it. Then every video of those clips without a category from this model and
prompt gets one: the closed-list option (talkvid_ops.caption.prompts.CATEGORIES) the model finds most likely given
the video's title, uploader description and transcript, stored as a `category` label of the video with provenance
`estimated` (a human annotation wins when labels are resolved). With no model configured (`caption.model_dir`
unset) the stage records a skipped run and writes nothing: captions stay null and releases export `description`
as null.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from talkvid_ops.caption.model import VisionLanguageModel, model_identity, vision_language_model
from talkvid_ops.caption.prompts import CAPTION_PROMPT, CATEGORIES, caption_prompt_hash, category_prompt, category_prompt_hash
from talkvid_ops.catalog.batches import chosen_items, make_batches, mark_batch_done
from talkvid_ops.catalog.labels import label_row, write_labels
from talkvid_ops.catalog.models import Caption, Clip, Label, Video, utcnow
from talkvid_ops.catalog.status import CaptionStatus
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.config.caption import CaptionConfig
from talkvid_ops.context import Context
from talkvid_ops.ids import make_id

STAGE = "caption"
CATEGORY = "category"
SKIPPED = "no captioning model configured (caption.model_dir)"
MAX_ERROR_LENGTH = 2000
CHUNK = 5000  # ids per IN (...) query


def frame_times(duration: float, count: int) -> list[float]:
    """`count` times (clip seconds) at the centres of equal parts of the clip."""
    return [(i + 0.5) * duration / count for i in range(count)]


def pending_clip_ids(session: Session, model_id: str, prompt_hash: str, limit: int | None = None) -> list[str]:
    """Clips of stored videos without a caption by this model and prompt."""
    done = exists().where(Caption.clip_id == Clip.id, Caption.model == model_id, Caption.prompt_hash == prompt_hash)
    query = select(Clip.id).join(Video, Video.id == Clip.video_id).where(Video.storage_path.is_not(None), ~done).order_by(Clip.id)
    return list(session.scalars(query.limit(limit) if limit is not None else query))


def plan_batches(ctx: Context, size: int | None = None, max_batches: int | None = None) -> list[str]:
    """Batches of the clips that need a caption (none when no model is configured); the same clips, model and
    prompt give the same batch ids."""
    config = ctx.config.caption
    if not config.enabled:
        return []
    model_id, prompt_hash = model_identity(config.model_dir), caption_prompt_hash()
    with ctx.sessions() as session:
        ids = pending_clip_ids(session, model_id, prompt_hash)
        batches = make_batches(session, STAGE, ids, size or config.batch_size, {"model": model_id, "prompt_hash": prompt_hash}, max_batches)
        session.commit()
    return batches


def caption_of(session: Session, clip_ids: Iterable[str]) -> dict[str, str]:
    """clip id -> its caption, for the clips that have one (what releases export as `description`)."""
    ids = sorted(set(clip_ids))
    captions: dict[str, str] = {}
    for start in range(0, len(ids), CHUNK):
        query = select(Caption.clip_id, Caption.text).where(
            Caption.clip_id.in_(ids[start : start + CHUNK]), Caption.status == CaptionStatus.OK, Caption.text.is_not(None)
        )
        captions.update(dict(session.execute(query).all()))
    return captions


def caption_frames(path: Path, start: float, end: float, rotation: int | None, config: CaptionConfig) -> tuple[list[np.ndarray], list[float]]:
    """The RGB frames a clip is captioned from (evenly over it, scaled down to `frame_max_pixels`) and their times."""
    import cv2

    from talkvid_ops.media.sampler import sample_frames

    frame_set = sample_frames(path, start, end, frame_times(end - start, config.frames_per_clip), rotation)
    frames = []
    for frame in frame_set.frames:
        height, width = frame.shape[:2]
        factor = min(1.0, (config.frame_max_pixels / (width * height)) ** 0.5)
        size = (max(28, round(width * factor)), max(28, round(height * factor)))
        frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if factor < 1 else frame)
    return frames, [round(float(t), 3) for t in frame_set.times]


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]


def _caption_row(clip_id: str, model_id: str, prompt_hash: str, sampling: dict[str, Any], run_id: str, text: str | None = None, error: str | None = None):
    return dict(
        id=make_id("caption", clip_id),
        clip_id=clip_id,
        model=model_id,
        prompt_hash=prompt_hash,
        sampling=sampling,
        status=CaptionStatus.FAILED if error else CaptionStatus.OK,
        text=text,
        error=error,
        run_id=run_id,
        updated_at=utcnow(),
    )


def _caption_clips(ctx: Context, model: VisionLanguageModel, rows: list, run) -> None:
    """Caption `rows` (clip with its video's media) a few clips per generate call; failures are recorded per clip."""
    config = ctx.config.caption
    prompt_hash = caption_prompt_hash()
    generation = {"max_new_tokens": config.max_new_tokens, "do_sample": False, "frame_max_pixels": config.frame_max_pixels}
    step = config.clips_per_generation
    for start in run.progress(range(0, len(rows), step), (len(rows) + step - 1) // step, f"generations of {step} clips"):
        written, ready = [], []
        for row in rows[start : start + step]:
            try:
                ready.append((row, *caption_frames(ctx.settings.media_path(row.storage_path), row.start_time, row.end_time, row.rotation, config)))
            except Exception as exc:  # one clip's unreadable media is recorded; the others go on
                written.append(_caption_row(row.id, model.model_id, prompt_hash, {}, run.id, error=f"media: {_reason(exc)}"))
        if ready:
            try:
                texts = model.describe([frames for _, frames, _ in ready], CAPTION_PROMPT, config.max_new_tokens)
            except Exception as exc:
                texts, failure = [None] * len(ready), _reason(exc)
            else:
                failure = None
            for (row, _, times), text in zip(ready, texts):
                sampling = {"frames": len(times), "times": times, **generation}
                written.append(_caption_row(row.id, model.model_id, prompt_hash, sampling, run.id, text=text, error=failure))
        for caption in written:
            run.count("clips_captioned" if caption["error"] is None else "clips_failed")
            if caption["error"]:
                run.error(caption["clip_id"], caption["error"])
        with ctx.sessions() as session:
            upsert(session, Caption, written, ["clip_id"])
            session.commit()


def _categorise_videos(ctx: Context, model: VisionLanguageModel, video_ids: set[str], run) -> None:
    """A category label for each video that has none from this model and prompt, from its title, uploader
    description and transcript (the clips' transcripts in time order)."""
    origin = f"{model.model_id}:{category_prompt_hash()}"
    with ctx.sessions() as session:
        done = set(session.scalars(select(Label.subject_id).where(Label.subject_kind == "video", Label.name == CATEGORY, Label.origin == origin)))
        todo = sorted(video_ids - done)
        videos = {v.id: v for v in session.scalars(select(Video).where(Video.id.in_(todo)))} if todo else {}
        transcripts: dict[str, list[str]] = {}
        for video_id, text in session.execute(
            select(Clip.video_id, Clip.transcript_text).where(Clip.video_id.in_(todo), Clip.transcript_text.is_not(None)).order_by(Clip.start_time)
        ):
            transcripts.setdefault(video_id, []).append(text)
    rows = []
    for video_id in todo:
        video = videos[video_id]
        transcript = " ".join(transcripts.get(video_id, []))
        if not (video.title or video.description or transcript):
            run.count("videos_without_text")
            continue
        try:
            choice = model.choose(category_prompt(video.title, video.description, transcript, ctx.config.caption.category_context_chars), CATEGORIES)
        except Exception as exc:
            run.error(video_id, _reason(exc), step=CATEGORY)
            continue
        rows.append(label_row("video", video_id, CATEGORY, choice.option, choice.probability, "estimated", origin, run.id))
    with ctx.sessions() as session:
        run.count("videos_categorised", write_labels(session, rows) if rows else 0)
        session.commit()


def _selected_clips(ctx: Context, model: VisionLanguageModel, clip_ids: list[str] | None, batch_id: str | None, limit: int | None) -> list:
    with ctx.sessions() as session:
        ids = chosen_items(session, STAGE, batch_id, clip_ids, lambda: pending_clip_ids(session, model.model_id, caption_prompt_hash(), limit), limit)
        query = (
            select(Clip.id, Clip.video_id, Clip.start_time, Clip.end_time, Video.storage_path, Video.rotation)
            .join(Video, Video.id == Clip.video_id)
            .where(Clip.id.in_(ids))
            .order_by(Clip.id)
        )
        return [*session.execute(query)] if ids else []


def caption(ctx: Context, clip_ids: Iterable[str] | None = None, batch_id: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """Caption the given clips, a batch's, or every pending one (at most `limit`), then categorise their videos."""
    config = ctx.config.caption
    clip_ids = list(clip_ids) if clip_ids is not None else None
    params = {"clip_ids": clip_ids, "batch_id": batch_id, "limit": limit, "frames_per_clip": config.frames_per_clip}
    with ctx.run(STAGE, params if config.enabled else {**params, "skipped": SKIPPED}) as run:
        if config.enabled:
            model = vision_language_model(config.model_dir, config.device)
            rows = _selected_clips(ctx, model, clip_ids, batch_id, limit)
            found = {row.id for row in rows}
            for clip_id in clip_ids or []:
                if clip_id not in found:
                    run.error(clip_id, "no such clip")
            for row in rows:
                if not row.storage_path:
                    run.error(row.id, "media: the clip's video has no stored file")
            stored = [row for row in rows if row.storage_path]
            _caption_clips(ctx, model, stored, run)
            _categorise_videos(ctx, model, {row.video_id for row in stored}, run)
        if batch_id is not None:
            with ctx.sessions() as session:
                mark_batch_done(session, batch_id, run.id)
                session.commit()
        return {"run_id": run.id, **run.counts} if config.enabled else {"run_id": run.id, "skipped": SKIPPED}
