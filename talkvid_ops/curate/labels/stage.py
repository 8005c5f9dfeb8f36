"""The labels stage: language labels from ASR and metadata (cheap, every run), then age group and gender (and
ethnicity when a model is configured) estimated from the shared face pass for clips that have no estimate yet."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.labels import label_row, write_labels
from talkvid_ops.catalog.models import Clip, Label, Transcript, Video
from talkvid_ops.context import Context
from talkvid_ops.curate.decide import passed_clip_ids, profile_row_id
from talkvid_ops.curate.face_models import get_face_model
from talkvid_ops.curate.faces import face_pass
from talkvid_ops.curate.labels.estimators import AgeGenderEstimator, OnnxFaceClassifier, estimate_face_labels
from talkvid_ops.curate.labels.vocabulary import UNKNOWN, Provenance, language_code
from talkvid_ops.curate.profiles import Profile
from talkvid_ops.curate.queries import chunks, select_in

STAGE = "labels"


def estimate_labels(ctx: Context, profile: Profile | str | Path | None = None, clip_ids: list[str] | None = None, limit: int | None = None,
                    redo: bool = False) -> dict[str, Any]:  # fmt: skip
    """The labels stage: language labels from ASR and metadata, then age group and gender (and ethnicity when a
    model is configured) estimated from the faces of clips that have no estimate of the current models yet.

    `profile` (a Profile or name) limits the stage to the clips that profile passed; `limit` caps the clips
    estimated; `redo` estimates again, decoding the clips' faces anew. A clip whose source media cannot be read is
    recorded as an error of the run; the others go on.
    """
    config = ctx.config.curate
    age_gender = get_face_model(AgeGenderEstimator, config.labels.age_gender_model_dir)
    ethnicity = get_face_model(OnnxFaceClassifier, config.labels.ethnicity_model, "ethnicity") if config.labels.ethnicity_model else None
    origins = {"age_group": age_gender.origin, "gender": age_gender.origin}
    if ethnicity:
        origins["ethnicity"] = ethnicity.origin
    params = {"action": "estimate", "clip_ids": clip_ids, "profile": getattr(profile, "name", profile), "limit": limit,
              "redo": redo, "origins": origins, "frames_per_clip": config.faces.frames_per_clip}  # fmt: skip
    with ctx.run(STAGE, params) as run:
        with ctx.sessions() as session:
            if clip_ids is None and profile is not None:
                clip_ids = passed_clip_ids(session, profile_row_id(session, profile))
            run.count("language_labels", derive_language_labels(session, run.id, clip_ids))
            session.commit()
            targets = _clips_missing(session, clip_ids, origins, redo)[: limit if limit is not None else None]
        faces = face_pass(ctx, run, targets, [age_gender, *([ethnicity] if ethnicity else [])], redo)
        rows = []
        for clip, _ in targets:
            if clip.id not in faces:  # its media failed: recorded by the face pass
                continue
            estimates = estimate_face_labels(faces[clip.id], age_gender, ethnicity)
            rows += [label_row("clip", clip.id, name, value, conf, Provenance.ESTIMATED, origins[name], run.id) for name, (value, conf) in estimates.items()]
            run.count("clips_estimated")
            if estimates["age_group"][0] == UNKNOWN:
                run.count("clips_without_face")
        with ctx.sessions() as session:
            write_labels(session, rows)
            session.commit()
        return {"run_id": run.id, **run.counts}


def derive_language_labels(session: Session, run_id: str, clip_ids: Iterable[str] | None = None) -> int:
    """Language labels from ASR (clip language or a transcript covering the clip) and from source metadata."""
    query = select(Clip.id, Clip.video_id, Clip.start_time, Clip.end_time, Clip.language,
                   Clip.language_probability, Clip.segmenter)  # fmt: skip
    clips = select_in(session, query, Clip.id, clip_ids)
    video_ids = sorted({c.video_id for c in clips})
    transcripts: dict[str, list[Transcript]] = defaultdict(list)
    for chunk in chunks(video_ids):
        for t in session.scalars(select(Transcript).where(Transcript.video_id.in_(chunk), Transcript.language.is_not(None))):
            transcripts[t.video_id].append(t)
    rows = []
    for clip in clips:
        middle = (clip.start_time + clip.end_time) / 2
        covering = sorted(
            (t for t in transcripts[clip.video_id] if t.start_time <= middle and (t.end_time is None or middle < t.end_time)),
            key=lambda t: (t.end_time is None, t.backend, t.model),  # the narrowest range, then by name
        )
        if clip.language:
            code, probability = clip.language, clip.language_probability
            origin = f"{covering[0].backend}:{covering[0].model}" if covering else f"segment:{clip.segmenter}"
        elif covering:
            code, probability = covering[0].language, covering[0].language_probability
            origin = f"{covering[0].backend}:{covering[0].model}"
        else:
            continue
        code = _known_language(code)
        if code:  # an ASR code we cannot read is no label; the clip falls back to metadata
            rows.append(label_row("clip", clip.id, "language", code, probability, Provenance.ASR, origin, run_id))
    for chunk in chunks(video_ids):
        for video_id, hint in session.execute(select(Video.id, Video.language_hint).where(Video.id.in_(chunk))):
            code = _known_language(hint)
            if code:
                rows.append(label_row("video", video_id, "language", code, None, Provenance.METADATA, "video.language_hint", run_id))
    return write_labels(session, rows)


def _known_language(raw: str | None) -> str | None:
    """The stored form of a machine's language code, or None when it is missing, unreadable or undetermined."""
    try:
        code = language_code(raw) if raw else None
    except ValueError:
        return None
    return None if code == UNKNOWN else code


def _clips_missing(session: Session, clip_ids, origins: dict[str, str], redo: bool) -> list[tuple[Clip, Video]]:
    query = select(Clip, Video).join(Video, Video.id == Clip.video_id)
    pairs = [(c, v) for c, v in select_in(session, query, Clip.id, clip_ids)]
    if redo:
        return sorted(pairs, key=lambda p: p[0].id)
    done: dict[str, set[str]] = defaultdict(set)
    for chunk in chunks(sorted(c.id for c, _ in pairs)):
        for subject, name, origin in session.execute(
            select(Label.subject_id, Label.name, Label.origin).where(
                Label.subject_kind == "clip", Label.provenance == Provenance.ESTIMATED, Label.subject_id.in_(chunk)
            )
        ):
            if origins.get(name) == origin:
                done[subject].add(name)
    return sorted(((c, v) for c, v in pairs if done[c.id] != set(origins)), key=lambda p: p[0].id)
