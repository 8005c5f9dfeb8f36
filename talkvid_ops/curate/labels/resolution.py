"""Labels in the catalog: how a label row is keyed and written, and which label of a clip wins.

Resolving a clip's label picks, in order: the best provenance (human > asr > metadata > estimated), the clip's own
label before its video's, the higher confidence, then the origin name (so ties resolve the same way every time).
ASR below `min_language_probability` gives way to the source's metadata.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Label
from talkvid_ops.curate.labels.vocabulary import PROVENANCE_RANK, Provenance, display_value
from talkvid_ops.curate.queries import chunks


@dataclass(frozen=True)
class ResolvedLabel:
    value: str  # stored form
    display: str  # as releases show it
    provenance: str
    confidence: float | None
    origin: str
    subject_kind: str


def resolve_labels(session: Session, clips: dict[str, str], min_language_probability: float = 0.5) -> dict[str, dict[str, ResolvedLabel]]:
    """The winning label per name for each clip; `clips` maps clip id -> video id."""
    by_subject: dict[tuple[str, str], list[Label]] = defaultdict(list)
    for kind, ids in (("clip", sorted(clips)), ("video", sorted(set(clips.values())))):
        for chunk in chunks(ids):
            for label in session.scalars(select(Label).where(Label.subject_kind == kind, Label.subject_id.in_(chunk))):
                by_subject[(kind, label.subject_id)].append(label)
    resolved: dict[str, dict[str, ResolvedLabel]] = {}
    for clip_id, video_id in clips.items():
        candidates: dict[str, list[Label]] = defaultdict(list)
        for label in by_subject[("clip", clip_id)] + by_subject[("video", video_id)]:
            unsure_asr = label.provenance == Provenance.ASR and (label.confidence or 0.0) < min_language_probability
            if not unsure_asr:
                candidates[label.name].append(label)
        resolved[clip_id] = {name: _as_resolved(min(labels, key=_precedence)) for name, labels in sorted(candidates.items())}
    return resolved


def _precedence(label: Label) -> tuple:
    return (
        PROVENANCE_RANK.get(label.provenance, len(PROVENANCE_RANK)),
        0 if label.subject_kind == "clip" else 1,
        -(label.confidence if label.confidence is not None else 0.0),
        label.origin,
    )


def _as_resolved(label: Label) -> ResolvedLabel:
    return ResolvedLabel(label.value, display_value(label.name, label.value), label.provenance, label.confidence,
                         label.origin, label.subject_kind)  # fmt: skip


def label_summary(session: Session, name: str | None = None) -> list[dict[str, Any]]:
    """Counts of stored labels per name, value and provenance (what `talkvid labels list` prints)."""
    query = select(Label.name, Label.value, Label.provenance, Label.subject_kind, func.count()).group_by(
        Label.name, Label.value, Label.provenance, Label.subject_kind
    )
    if name:
        query = query.where(Label.name == name)
    return [{"name": n, "value": v, "provenance": p, "subject": k, "count": c} for n, v, p, k, c in sorted(session.execute(query).all())]


def labels_of(session: Session, subject_id: str) -> list[dict[str, Any]]:
    """Every stored label of one clip or video, best first per name."""
    labels = session.scalars(select(Label).where(Label.subject_id == subject_id)).all()
    return [
        {
            "name": label.name,
            "value": label.value,
            "provenance": label.provenance,
            "confidence": label.confidence,
            "origin": label.origin,
            "subject": label.subject_kind,
        }
        for label in sorted(labels, key=lambda item: (item.name, *_precedence(item)))
    ]
