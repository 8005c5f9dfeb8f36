"""Why a clip passed or failed: one clip's metadata, scores, decisions and lineage, and the clips a criterion failed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Clip, Decision, DecisionFailure, Score, Source, Video
from talkvid_ops.catalog.models import Profile as ProfileRow
from talkvid_ops.catalog.status import DecisionStatus
from talkvid_ops.curate.decide import failures_of, profile_row_id
from talkvid_ops.curate.labels.resolution import labels_of
from talkvid_ops.errors import TalkvidError

CLIP_FIELDS = ("video_id", "start_time", "end_time", "duration", "fps", "language", "speech_coverage", "speech_source")


def clip_report(session: Session, clip_id: str) -> dict[str, Any]:
    """Everything the catalog knows about one clip, for a curator asking why it was (not) released."""
    clip = session.get(Clip, clip_id)
    if clip is None:
        raise TalkvidError(f"no clip {clip_id} in the catalog")
    video = session.get(Video, clip.video_id)
    source = session.get(Source, video.source_id)
    scores = session.scalars(select(Score).where(Score.clip_id == clip_id).order_by(Score.metric, Score.backend)).all()
    decisions = session.execute(
        select(Decision, ProfileRow.name, ProfileRow.content_hash)
        .join(ProfileRow, ProfileRow.id == Decision.profile_id)
        .where(Decision.clip_id == clip_id)
        .order_by(ProfileRow.name, ProfileRow.content_hash)
    ).all()
    return {
        "clip_id": clip.id,
        **{field: getattr(clip, field) for field in CLIP_FIELDS},
        "scores": [{"metric": s.metric, "backend": s.backend, "value": s.value, "scorer": s.scorer, "scorer_version": s.scorer_version} for s in scores],
        "decisions": [
            {
                "profile": f"{name}@{content_hash}",
                "status": decision.status,
                "missing": sorted(decision.missing),
                "failures": failures_of(session, decision.profile_id, [clip_id]).get(clip_id, []),
                "decided_at": decision.decided_at,
            }
            for decision, name, content_hash in decisions
        ],
        "labels": labels_of(session, clip_id) + labels_of(session, video.id),
        "lineage": {
            "source": f"{source.kind} {source.locator}",
            "video": f"{video.platform}:{video.platform_id}",
            "video_url": video.url,
            "segmenter": f"{clip.segmenter} {clip.segmenter_version} (params {clip.params_hash})",
            "frames": f"{clip.start_frame}-{clip.end_frame}",
            "segment_run": clip.run_id,
        },
    }


def failed_clips(session: Session, profile: str, criterion: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The clips a profile's decisions failed (only those failing `criterion` when given), in id order, with every
    failing criterion."""
    profile_id = profile_row_id(session, profile)
    query = select(Decision.clip_id).where(Decision.profile_id == profile_id, Decision.status == DecisionStatus.FAILED).order_by(Decision.clip_id)
    if criterion is not None:
        query = query.join(DecisionFailure, DecisionFailure.decision_id == Decision.id).where(DecisionFailure.criterion == criterion)
    if limit is not None:
        query = query.limit(limit)
    clip_ids = list(session.scalars(query))
    failures = failures_of(session, profile_id, clip_ids)
    return [{"clip_id": clip_id, "failures": failures[clip_id]} for clip_id in clip_ids]
