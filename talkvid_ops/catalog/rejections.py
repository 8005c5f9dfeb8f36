"""Why clips were rejected: per profile with decisions, per failing criterion, how many clips failed it and the
latest few of them with the judged value, the bound and the backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Decision, DecisionFailure, Profile


def rejections(session: Session, examples: int = 6) -> dict[str, dict[str, dict[str, Any]]]:
    """`name@hash` -> criterion -> {count, examples}: the clips each criterion failed, most failed first, and the
    `examples` last recorded failures (one bounded query per criterion, so a catalog of any size reads a few rows)."""
    counts = session.execute(
        select(Decision.profile_id, DecisionFailure.criterion, func.count())
        .join(Decision, Decision.id == DecisionFailure.decision_id)
        .group_by(Decision.profile_id, DecisionFailure.criterion)
    ).all()
    names = dict(session.execute(select(Profile.id, Profile.name + "@" + Profile.content_hash).where(Profile.id.in_({p for p, _, _ in counts}))).all())
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for profile_id, criterion, count in sorted(counts, key=lambda row: (names[row[0]], -row[2], row[1])):
        latest = session.execute(
            select(Decision.clip_id, DecisionFailure)
            .join(Decision, Decision.id == DecisionFailure.decision_id)
            .where(Decision.profile_id == profile_id, DecisionFailure.criterion == criterion)
            .order_by(DecisionFailure.id.desc())
            .limit(examples)
        )
        out.setdefault(names[profile_id], {})[criterion] = {
            "count": count,
            "examples": [
                {"clip_id": clip_id, "metric": f.metric, "backend": f.backend, "value": f.value, "min": f.min_value, "max": f.max_value}
                for clip_id, f in latest
            ],
        }
    return out
