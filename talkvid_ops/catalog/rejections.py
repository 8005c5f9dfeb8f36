"""Why clips were rejected: per profile with decisions, per failing criterion, how many clips failed it and a few
of them with the judged value, the bound and the backend."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Decision, DecisionFailure, Profile
from talkvid_ops.ids import ID_HEX_LENGTH


def rejections(session: Session, examples: int = 6) -> dict[str, dict[str, dict[str, Any]]]:
    """`name@hash` -> criterion -> {count, examples}: the clips each criterion failed, most failed first, and
    `examples` of them (the highest clip ids) with value, bound and backend.

    A decision's id is its profile's id (ID_HEX_LENGTH characters) followed by the clip's (`Decision.id`): counts
    group the failures by that prefix without joining the decisions, and a profile's failures of one criterion are
    one prefix of the (criterion, decision_id) index, so each strip reads a few index entries."""
    profile_of = func.substr(DecisionFailure.decision_id, 1, ID_HEX_LENGTH)  # no join with the decisions to count
    counts = session.execute(select(profile_of, DecisionFailure.criterion, func.count()).group_by(profile_of, DecisionFailure.criterion)).all()
    names = dict(session.execute(select(Profile.id, Profile.name + "@" + Profile.content_hash).where(Profile.id.in_({p for p, _, _ in counts}))).all())
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for profile_id, criterion, count in sorted(counts, key=lambda row: (names[row[0]], -row[2], row[1])):
        shown = session.execute(
            select(Decision.clip_id, DecisionFailure)
            .join(Decision, Decision.id == DecisionFailure.decision_id)
            .where(DecisionFailure.criterion == criterion, DecisionFailure.decision_id.startswith(profile_id, autoescape=True))
            .order_by(DecisionFailure.decision_id.desc())
            .limit(examples)
        )
        out.setdefault(names[profile_id], {})[criterion] = {
            "count": count,
            "examples": [
                {"clip_id": clip_id, "metric": f.metric, "backend": f.backend, "value": f.value, "min": f.min_value, "max": f.max_value} for clip_id, f in shown
            ],
        }
    return out
