"""The face pass: each clip's faces found once, stored, and shared by labels, speakers and crops.

What is stored (`clip_face`, one row per sampled frame: `curate.faces.frames_per_clip` frames at the centres of
equal parts of the clip): the frame's time and size, its largest face's box, and what every configured face model
(`face_models`: age and gender, an operator's classifier, the speaker descriptor) made of that face, by model
origin. That is all the three consumers read: labels are estimated from the stored age/gender (and classifier)
outputs, speakers average the stored descriptors, and export crops around the stored boxes.

Why one pass that runs every model, rather than stored pixels: a face chip is tens of kilobytes per frame, while a
model's outputs are at most a 128-d descriptor, so storing outputs keeps the catalog small and lets separate stage
tasks (the curate DAG's labels and speakers, in different processes) share one decode. Whichever stage first needs
a clip's faces decodes the clip once and runs every configured model on its faces; the other stage then finds its
outputs stored. The price: a model added later (an operator's classifier, other weights) has no outputs yet, so the
stage that needs it decodes those clips once more, which a new model costs anyway.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Clip, ClipFace, Video
from talkvid_ops.catalog.runs import RunRecorder
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.config.curate import CurateConfig
from talkvid_ops.context import Context
from talkvid_ops.curate.face_models import FaceDescriptor, FaceModel, StoredFace, get_face_model
from talkvid_ops.curate.labels.estimators import AgeGenderEstimator, OnnxFaceClassifier
from talkvid_ops.curate.queries import chunks
from talkvid_ops.ids import make_id
from talkvid_ops.media.clip_faces import FaceBox, failure_reason, sample_faces, source_media


def face_models(config: CurateConfig) -> list[FaceModel]:
    """Every face model the curate stages are configured to run: the pass runs them all on each decoded face."""
    models = [get_face_model(AgeGenderEstimator, config.labels.age_gender_model_dir)]
    if config.labels.ethnicity_model:
        models.append(get_face_model(OnnxFaceClassifier, config.labels.ethnicity_model, "ethnicity"))
    return [*models, get_face_model(FaceDescriptor)]


def stored_faces(session: Session, clip_ids: list[str], samples: int) -> dict[str, list[StoredFace]]:
    """clip id -> its stored faces of a pass of `samples` frames, in sample order (clips without one are absent)."""
    faces: dict[str, list[StoredFace]] = defaultdict(list)
    for chunk in chunks(sorted(set(clip_ids))):
        query = select(ClipFace).where(ClipFace.clip_id.in_(chunk), ClipFace.samples == samples).order_by(ClipFace.clip_id, ClipFace.sample)
        for row in session.scalars(query):
            box = FaceBox(*row.box) if row.box else None
            faces[row.clip_id].append(StoredFace(row.sample, row.time, (row.frame_width, row.frame_height), box, dict(row.outputs)))
    return dict(faces)


def _has_outputs(faces: list[StoredFace] | None, models: list[FaceModel]) -> bool:
    return bool(faces) and all(face.box is None or all(m.origin in face.outputs for m in models) for face in faces)


def face_pass(ctx: Context, run: RunRecorder, clips: list[tuple[Clip, Video]], needed: list[FaceModel], redo: bool = False) -> dict[str, list[StoredFace]]:
    """clip id -> the stored faces of these clips, with the outputs of the `needed` models.

    Clips whose stored faces lack them (all clips with `redo`) are decoded once and every configured model runs on
    their faces; the rows are committed clip by clip. A clip whose media or a model fails is recorded as an error
    of `run` and left out.
    """
    samples = ctx.config.curate.faces.frames_per_clip
    with ctx.sessions() as session:
        faces = stored_faces(session, [clip.id for clip, _ in clips], samples)
    missing = [(clip, video) for clip, video in clips if redo or not _has_outputs(faces.get(clip.id), needed)]
    if not missing:
        return {clip.id: faces[clip.id] for clip, _ in clips}
    models = face_models(ctx.config.curate)
    for model in models:
        model.load()
    margin = max(model.margin for model in models)
    for clip, video in run.progress(missing, len(missing), "clips faced"):
        faces.pop(clip.id, None)
        try:
            sampled = sample_faces(source_media(ctx.settings, video), clip.start_time, clip.end_time, samples, video.rotation, margin)
            found = [
                StoredFace(i, round(clip.start_time + s.time, 6), s.frame_size, s.box, {m.origin: m.analyse(s.face) for m in models} if s.box else {})
                for i, s in enumerate(sampled)
            ]
        except Exception as exc:  # one clip's bad media or odd face is recorded; the run goes on
            run.error(clip.id, failure_reason(exc))
            continue
        rows = [dict(id=make_id("clip_face", clip.id, samples, f.sample), clip_id=clip.id, samples=samples, sample=f.sample, time=f.time,
                     frame_width=f.frame_size[0], frame_height=f.frame_size[1], outputs=f.outputs, run_id=run.id,
                     box=[f.box.left, f.box.top, f.box.right, f.box.bottom] if f.box else None) for f in found]  # fmt: skip
        with ctx.sessions() as session:
            upsert(session, ClipFace, rows, ["clip_id", "samples", "sample"])
            session.commit()
        faces[clip.id] = found
        run.count("clips_faced")
    return {clip.id: faces[clip.id] for clip, _ in clips if clip.id in faces}
