"""What the next runs will do, counted from the catalog with the pipeline's configuration: probed videos the segment
stage owes the current parameters, clips each configured scorer has not run on, scored clips a stored profile has
not decided since they were scored, and the configured profile's passed clips without face labels or a speaker.

The conditions are those of the stages (their constants are imported, not copied), counted by aggregate queries
that read a table once in index order or follow an index to the few rows that matter, so the page stays fast on
large catalogs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, exists, func, or_, select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Clip, Decision, FaceEmbedding, Label, Profile, Run, Score, Scoring, Segmentation, Video
from talkvid_ops.catalog.status import DecisionStatus, RunStatus, SegmentationStatus, VideoStatus
from talkvid_ops.config import PipelineConfig


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
    """Per configured `scorer/backend`, the clips without a scoring row (ok or failed) of it: what the next score run
    takes once their video's file is in place. A clip has at most one scoring per scorer and backend, so this is
    the catalog's clips less the scorer's rows, counted on the (scorer, backend) index. (Clips missing any of them
    would need every scoring row grouped by clip: the page leaves that out to stay fast.)"""
    clips = session.scalar(select(func.count()).select_from(Clip)) or 0
    return {
        f"{name}/{backend}": clips - (session.scalar(select(func.count()).where(Scoring.scorer == name, Scoring.backend == backend)) or 0)
        for name, backend in scorers
    }


def _decided_since(session: Session) -> dict[str, dict]:
    """Per profile id, a time none of its decisions is older than: the start of its last successful decide run (which
    replaced all of them in one transaction), else the oldest decision itself."""
    from talkvid_ops.curate.decide import STAGE

    starts: dict[tuple[str, str], Any] = {}
    for started_at, params in session.execute(select(Run.started_at, Run.params).where(Run.stage == STAGE, Run.status == RunStatus.SUCCEEDED)):
        key = ((params or {}).get("profile"), (params or {}).get("content_hash"))
        starts[key] = max(starts.get(key, started_at), started_at)
    since = {}
    for profile_id, name, chash in session.execute(select(Profile.id, Profile.name, Profile.content_hash)):
        since[profile_id] = {"name": f"{name}@{chash}", "since": starts.get((name, chash))}
    unknown = [profile_id for profile_id, entry in since.items() if entry["since"] is None]
    if unknown:  # decisions not made by a recorded decide run (imported, or written by hand)
        oldest = select(Decision.profile_id, func.min(Decision.decided_at)).where(Decision.profile_id.in_(unknown)).group_by(Decision.profile_id)
        for profile_id, decided_at in session.execute(oldest):
            since[profile_id]["since"] = decided_at
    return since


def undecided_scored_clips(session: Session) -> dict[str, int]:
    """Per stored profile (`name@hash`), the scored clips its decisions do not cover: clips with a score written after
    the profile's decision of them, or with no decision (`decide` decides every clip, scored or not, so these are
    what its next run changes).

    Only scores written since the profile's decisions can qualify, and those were written by runs unfinished at that
    time: the few runs found so lead through `score.run_id` to the few score rows worth comparing, instead of
    comparing every score of every clip."""
    out = {}
    for profile_id, entry in _decided_since(session).items():
        query = (
            select(func.count(func.distinct(Score.clip_id)))
            .select_from(Score)
            .outerjoin(Decision, (Decision.clip_id == Score.clip_id) & (Decision.profile_id == profile_id))
            .where(or_(Decision.id.is_(None), Score.created_at > Decision.decided_at))
        )
        if entry["since"] is not None:
            unfinished = select(Run.id).where(or_(Run.finished_at.is_(None), Run.finished_at >= entry["since"]))
            query = query.where(Score.run_id.in_(unfinished), Score.created_at > entry["since"])
        out[entry["name"]] = session.scalar(query) or 0
    return out


def passed_clips_without_curation(session: Session, profile_id: str | None) -> dict[str, dict[str, int]]:
    """For the profile the next curate run applies (its catalog row; None: not decided yet, so nothing is pending),
    if it passed clips: how many, and how many of them have no estimated age group (the labels stage's face
    estimate) and no face descriptor (the speakers stage's). One pass over its passed decisions, each probing the
    label and face descriptor indexes."""
    from talkvid_ops.curate.face_models import FaceDescriptor
    from talkvid_ops.curate.labels.vocabulary import Provenance

    labelled = exists().where(
        Label.subject_kind == "clip", Label.subject_id == Decision.clip_id, Label.name == "age_group", Label.provenance == Provenance.ESTIMATED
    )
    described = exists().where(FaceEmbedding.clip_id == Decision.clip_id, FaceEmbedding.model == FaceDescriptor.MODEL)
    query = select(func.count(), *(func.coalesce(func.sum(case((~condition, 1), else_=0)), 0) for condition in (labelled, described))).where(
        Decision.profile_id == profile_id, Decision.status == DecisionStatus.PASSED
    )
    passed, without_labels, without_speaker = session.execute(query).one()
    if not passed:
        return {}
    name = session.scalar(select(Profile.name + "@" + Profile.content_hash).where(Profile.id == profile_id))
    return {name: {"passed": passed, "without_labels": without_labels, "without_speaker": without_speaker}}


def configured_profile_id(session: Session, config: PipelineConfig) -> str | None:
    """The catalog row of the profile the next curate run applies (`curate.profile`), None if it decided nothing
    yet (or the profile cannot be read: the page still shows the rest)."""
    from talkvid_ops.curate.profiles import load_profile
    from talkvid_ops.errors import TalkvidError

    try:
        profile = load_profile(config.curate.profile)
    except TalkvidError:
        return None
    return session.scalar(select(Profile.id).where(Profile.name == profile.name, Profile.content_hash == profile.content_hash))


def pending_work(session: Session, config: PipelineConfig) -> dict[str, Any]:
    from talkvid_ops.score.stage import configured

    return {
        "segment": {"params_hash": config.segment.params_hash, "videos": unsegmented_videos(session, config.segment.params_hash)},
        "score": unscored_clips(session, configured(config.score)),
        "decide": undecided_scored_clips(session),
        "curate": passed_clips_without_curation(session, configured_profile_id(session, config)),
    }
