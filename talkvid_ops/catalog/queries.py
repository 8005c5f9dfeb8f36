"""Read-side queries: counts per stage for `talkvid status`, recent runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Clip, Decision, Profile, Release, Run, Score, Scoring, Source, Video


def _grouped(session: Session, column, *filters) -> dict[str, int]:
    query = select(column, func.count()).group_by(column)
    for f in filters:
        query = query.where(f)
    return {str(k): n for k, n in session.execute(query)}


def catalog_status(session: Session, recent_runs: int = 10) -> dict[str, Any]:
    """Counts per stage, failures with their reasons, and the last runs."""
    failures = session.execute(
        select(Video.error_class, func.count()).where(Video.status == "failed").group_by(Video.error_class)
    ).all()
    decisions = session.execute(
        select(Profile.name, Profile.content_hash, Decision.status, func.count())
        .join(Decision, Decision.profile_id == Profile.id)
        .group_by(Profile.name, Profile.content_hash, Decision.status)
    ).all()
    by_profile: dict[str, dict[str, int]] = {}
    for name, chash, status, n in decisions:
        by_profile.setdefault(f"{name}@{chash}", {})[status] = n
    runs = session.scalars(select(Run).order_by(Run.started_at.desc()).limit(recent_runs)).all()
    return {
        "sources": _grouped(session, Source.status),
        "videos": _grouped(session, Video.status),
        "video_failures": {str(k): n for k, n in failures},
        "videos_gone": session.scalar(select(func.count()).where(Video.availability == "gone")) or 0,
        "clips": session.scalar(select(func.count()).select_from(Clip)) or 0,
        "clip_generations": _grouped(session, Clip.params_hash),
        "scorings": _grouped(session, Scoring.status),
        "scores": session.scalar(select(func.count()).select_from(Score)) or 0,
        "decisions": by_profile,
        "releases": session.scalar(select(func.count()).select_from(Release)) or 0,
        "runs": [
            {
                "id": r.id,
                "stage": r.stage,
                "status": r.status,
                "started_at": r.started_at.isoformat() if r.started_at else None,
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                "counts": r.counts,
                "dag_id": r.dag_id,
            }
            for r in runs
        ],
    }
