"""Read-side queries: counts per stage for `talkvid status`, recent runs, the sources with their state for
`talkvid source list`, and what the catalog dashboard lists."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session, aliased

from talkvid_ops.catalog.models import (
    Clip,
    Decision,
    Profile,
    Release,
    Run,
    Score,
    Scoring,
    Segmentation,
    Source,
    Video,
)
from talkvid_ops.catalog.status import Availability, DecisionStatus, RunStatus, ScoringStatus, SegmentationStatus, VideoStatus

UNFINISHED_RUNS = (RunStatus.PARTIAL, RunStatus.FAILED, RunStatus.ABANDONED)


def _grouped(session: Session, column, *filters) -> dict[str, int]:
    query = select(column, func.count()).group_by(column)
    for f in filters:
        query = query.where(f)
    return {str(k): n for k, n in session.execute(query)}


def _isoformat(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def stage_failures(session: Session) -> dict[str, dict[str, int]]:
    """Every stage's failures with their class: videos and segmentations by error class, scorings by scorer,
    undecided decisions by profile, runs that did not succeed by `stage:status` and their failed items by stage (the
    import of a label or annotation file records its bad rows only there)."""
    undecided = session.execute(
        select(Profile.name, Profile.content_hash, func.count())
        .join(Decision, Decision.profile_id == Profile.id)
        .where(Decision.status == DecisionStatus.UNDECIDED)
        .group_by(Profile.name, Profile.content_hash)
    )
    runs: dict[str, int] = {}
    run_items: dict[str, int] = {}
    for stage, status, counts in session.execute(select(Run.stage, Run.status, Run.counts).where(Run.status.in_(UNFINISHED_RUNS))):
        runs[f"{stage}:{status}"] = runs.get(f"{stage}:{status}", 0) + 1
        if (counts or {}).get("errors"):
            run_items[stage] = run_items.get(stage, 0) + counts["errors"]
    failures = {
        "videos": _grouped(session, Video.error_class, Video.status == VideoStatus.FAILED),
        "segmentations": _grouped(session, Segmentation.error_class, Segmentation.status == SegmentationStatus.FAILED),
        "scorings": _grouped(session, Scoring.scorer, Scoring.status == ScoringStatus.FAILED),
        "undecided": {f"{name}@{chash}": n for name, chash, n in undecided},
        "runs": runs,
        "run_items": run_items,
    }
    return {kind: counts for kind, counts in failures.items() if counts}


def catalog_status(session: Session, recent_runs: int = 10, count_scores: bool = True) -> dict[str, Any]:
    """Counts per stage, every stage's failures with their class, and the last runs. `count_scores`: also count the
    score rows (one per clip and metric: tens of millions in a large catalog, so the catalog page leaves it out)."""
    failures = stage_failures(session)
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
        "video_failures": failures.get("videos", {}),
        "failures": failures,
        "videos_gone": session.scalar(select(func.count()).where(Video.availability == Availability.GONE)) or 0,
        "clips": session.scalar(select(func.count()).select_from(Clip)) or 0,
        "clip_generations": _grouped(session, Clip.params_hash),
        "scorings": _grouped(session, Scoring.status),
        **({"scores": session.scalar(select(func.count()).select_from(Score)) or 0} if count_scores else {}),
        "decisions": by_profile,
        "releases": session.scalar(select(func.count()).select_from(Release)) or 0,
        "runs": [
            {
                "id": r.id,
                "stage": r.stage,
                "status": r.status,
                "started_at": _isoformat(r.started_at),
                "finished_at": _isoformat(r.finished_at),
                "counts": r.counts,
                "dag_id": r.dag_id,
                "dag_run_id": r.dag_run_id,
                "task_id": r.task_id,
                "map_index": r.map_index,
            }
            for r in runs
        ],
    }


def _latest_failures(session: Session, model, failed: str, group, subject, reason, examples: int) -> dict[str, dict[str, Any]]:
    """Rows of `model` whose status is `failed`, per `group`: how many, and the `examples` most recently updated with
    their reason."""
    ranked = (
        select(
            group.label("grp"),
            subject.label("subject"),
            reason.label("reason"),
            func.row_number().over(partition_by=group, order_by=(model.updated_at.desc(), subject)).label("rank"),
        )
        .where(model.status == failed)
        .subquery()
    )
    out: dict[str, dict[str, Any]] = {str(k): {"count": n, "examples": []} for k, n in _grouped(session, group, model.status == failed).items()}
    latest = select(ranked.c.grp, ranked.c.subject, ranked.c.reason).where(ranked.c.rank <= examples)
    for grp, subject_id, why in session.execute(latest.order_by(ranked.c.grp, ranked.c.rank)):
        out[str(grp)]["examples"].append({"id": subject_id, "reason": why})
    return out


def failure_examples(session: Session, examples: int = 3) -> dict[str, dict[str, dict[str, Any]]]:
    """Failed downloads/probes and segmentations by error class, failed scorings by scorer, each with recent reasons."""
    return {
        "videos": _latest_failures(session, Video, VideoStatus.FAILED, Video.error_class, Video.id, Video.error_message, examples),
        "segmentations": _latest_failures(
            session, Segmentation, SegmentationStatus.FAILED, Segmentation.error_class, Segmentation.video_id, Segmentation.error, examples
        ),
        "scorings": _latest_failures(session, Scoring, ScoringStatus.FAILED, Scoring.scorer, Scoring.clip_id, Scoring.error, examples),
    }


def gone_videos(session: Session, limit: int = 20) -> list[dict[str, Any]]:
    """Videos the site no longer serves (found by `recheck`), most recently checked first."""
    rows = session.scalars(
        select(Video).where(Video.availability == Availability.GONE).order_by(Video.availability_checked_at.desc().nulls_last(), Video.id).limit(limit)
    )
    return [
        {
            "id": v.id,
            "platform": v.platform,
            "platform_id": v.platform_id,
            "title": v.title,
            "url": v.url,
            "reason": v.availability_reason,
            "checked_at": _isoformat(v.availability_checked_at),
        }
        for v in rows
    ]


def recent_releases(session: Session, limit: int = 10) -> list[dict[str, Any]]:
    """The latest releases with their profile and counts, how many files they wrote and those at their top level
    (card, report, manifest, tables; clip files live in subfolders and can number in the hundreds of thousands)."""
    rows = session.execute(
        select(Release, Profile.name, Profile.content_hash)
        .join(Profile, Profile.id == Release.profile_id)
        .order_by(Release.created_at.desc(), Release.id)
        .limit(limit)
    )
    return [
        {
            "id": r.id,
            "name": r.name,
            "profile": f"{name}@{chash}",
            "created_at": _isoformat(r.created_at),
            "formats": r.formats,
            "counts": r.counts,
            "out_dir": r.out_dir,
            "file_count": len(r.files),
            "top_files": sorted(path for path in r.files if "/" not in path),
            "run_id": r.run_id,
        }
        for r, name, chash in rows
    ]


def source_overview(session: Session) -> list[dict[str, Any]]:
    """Every source with its settings, state, back-off, last error and its videos per status, oldest first."""
    counts: dict[str, dict[str, int]] = {}
    for source_id, status, n in session.execute(select(Video.source_id, Video.status, func.count()).group_by(Video.source_id, Video.status)):
        counts.setdefault(source_id, {})[status] = n
    return [
        {
            "id": s.id,
            "kind": s.kind,
            "name": s.name,
            "locator": s.locator,
            "enabled": s.enabled,
            "status": s.status,
            "paused_until": _isoformat(s.paused_until),
            "backoff_level": s.backoff_level,
            "last_error": s.last_error,
            "last_discovered_at": _isoformat(s.last_discovered_at),
            "last_crawled_at": _isoformat(s.last_crawled_at),
            "videos": counts.get(s.id, {}),
            "settings": s.settings,
        }
        for s in session.scalars(select(Source).order_by(Source.created_at, Source.id))
    ]


def videos_of_source(session: Session, source_id: str) -> int:
    return session.scalar(select(func.count()).where(Video.source_id == source_id)) or 0


CURRENT_GENERATION = "current"


def generation_condition(generation: str = CURRENT_GENERATION):
    """Which clips belong to a release's generation: `current` keeps, per video, the clips of its newest successful
    segmentation (by when that parameter set first segmented the video; a video without segmentation rows: the
    parameter set of its newest clip), so a re-segmentation with new parameters replaces the old clips in a release
    while they stay in the catalog; any other value is a segment parameter hash and keeps that generation."""
    if generation != CURRENT_GENERATION:
        return Clip.params_hash == generation
    newest_segmentation = (
        select(Segmentation.params_hash)
        .where(Segmentation.video_id == Clip.video_id, Segmentation.status == SegmentationStatus.DONE)
        .order_by(Segmentation.created_at.desc(), Segmentation.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    newer = aliased(Clip)
    newest_clip = select(newer.params_hash).where(newer.video_id == Clip.video_id).order_by(newer.created_at.desc(), newer.id.desc()).limit(1).scalar_subquery()
    return Clip.params_hash == func.coalesce(newest_segmentation, newest_clip)


def crawled_by(as_of: dt.datetime | None):
    """Which clips a release as of `as_of` holds: those of videos downloaded or ingested by then (a dated curate run
    releases the catalog as it stood at its logical date); every clip when `as_of` is None."""
    if as_of is None:
        return true()
    crawled_at = func.coalesce(Video.downloaded_at, Video.created_at)
    return Clip.video_id.in_(select(Video.id).where(crawled_at <= as_of.astimezone(dt.UTC)))
