"""What the next runs will do, counted from the catalog with the pipeline's configuration: probed videos the segment
stage owes the current parameters, clips each configured scorer has not run on, scored clips a stored profile has
not decided, and per profile the passed clips without face labels or a speaker.

The conditions are those of the stages (their constants are imported, not copied), counted in one aggregate query
per stage, so the page stays fast on large catalogs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, exists, func, or_, select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Clip, Decision, FaceEmbedding, Label, Profile, Score, Scoring, Segmentation, Video
from talkvid_ops.catalog.status import DecisionStatus, SegmentationStatus, VideoStatus
from talkvid_ops.config import PipelineConfig


def _counted(condition) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def unsegmented_videos(session: Session, params_hash: str) -> int:
    """Probed videos with their file in place that have no settled segmentation (done, or failed for a fault of the
    media) with the current parameters."""
    from talkvid_ops.segment.stage import RETRYABLE_ERRORS

    settled = exists().where(
        Segmentation.video_id == Video.id,
        Segmentation.params_hash == params_hash,
        or_(Segmentation.status == SegmentationStatus.DONE, Segmentation.error_class.not_in(RETRYABLE_ERRORS)),
    )
    query = select(func.count()).where(Video.status == VideoStatus.PROBED, Video.storage_path.is_not(None), ~settled)
    return session.scalar(query) or 0


def unscored_clips(session: Session, scorers: list[tuple[str, str]]) -> dict[str, int]:
    """Clips of stored videos without a scoring row (ok or failed) of each configured `scorer/backend`, and of any."""
    missing = {
        f"{name}/{backend}": ~exists().where(Scoring.clip_id == Clip.id, Scoring.scorer == name, Scoring.backend == backend) for name, backend in scorers
    }
    columns = [_counted(condition) for condition in missing.values()] + [_counted(or_(*missing.values()))]
    row = session.execute(select(*columns).select_from(Clip).join(Video, Video.id == Clip.video_id).where(Video.storage_path.is_not(None))).one()
    return {**dict(zip(missing, row)), "any": row[-1]}


def undecided_scored_clips(session: Session) -> dict[str, int]:
    """Per stored profile (`name@hash`), the scored clips its decisions do not cover yet: clips with a score but no
    decision of the profile, or with a score written after that decision (`decide` decides every clip, scored or not,
    so clips scored since are what its next run changes)."""
    scored = exists().where(Score.clip_id == Decision.clip_id)
    rescored = exists().where(Score.clip_id == Decision.clip_id, Score.created_at > Decision.decided_at)
    covered = {
        profile_id: (on_scored, stale)
        for profile_id, on_scored, stale in session.execute(select(Decision.profile_id, _counted(scored), _counted(rescored)).group_by(Decision.profile_id))
    }
    scored_clips = session.scalar(select(func.count()).select_from(Clip).where(exists().where(Score.clip_id == Clip.id))) or 0
    out = {}
    for profile_id, name, chash in session.execute(select(Profile.id, Profile.name, Profile.content_hash)):
        on_scored, stale = covered.get(profile_id, (0, 0))
        out[f"{name}@{chash}"] = scored_clips - on_scored + stale
    return out


def passed_clips_without_curation(session: Session) -> dict[str, dict[str, int]]:
    """Per profile with passed clips: how many passed, and how many of them have no estimated age group (the
    labels stage's face estimate) and no face descriptor (the speakers stage's)."""
    from talkvid_ops.curate.face_models import FaceDescriptor
    from talkvid_ops.curate.labels.vocabulary import Provenance

    labelled = exists().where(
        Label.subject_kind == "clip", Label.subject_id == Decision.clip_id, Label.name == "age_group", Label.provenance == Provenance.ESTIMATED
    )
    described = exists().where(FaceEmbedding.clip_id == Decision.clip_id, FaceEmbedding.model == FaceDescriptor.MODEL)
    rows = session.execute(
        select(Profile.name, Profile.content_hash, func.count(), _counted(~labelled), _counted(~described))
        .select_from(Decision)
        .join(Profile, Profile.id == Decision.profile_id)
        .where(Decision.status == DecisionStatus.PASSED)
        .group_by(Profile.name, Profile.content_hash)
    ).all()
    return {f"{name}@{chash}": {"passed": n, "without_labels": unlabelled, "without_speaker": undescribed} for name, chash, n, unlabelled, undescribed in rows}


def pending_work(session: Session, config: PipelineConfig) -> dict[str, Any]:
    from talkvid_ops.score.stage import configured

    return {
        "segment": {"params_hash": config.segment.params_hash, "videos": unsegmented_videos(session, config.segment.params_hash)},
        "score": unscored_clips(session, configured(config.score)),
        "decide": undecided_scored_clips(session),
        "curate": passed_clips_without_curation(session),
    }
