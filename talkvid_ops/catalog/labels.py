"""Label rows as every stage writes them (curate's estimators and imports, the caption stage's categories): one row per
subject, label name, provenance and origin, upserted on that natural key."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Label
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.ids import make_id


def label_row(kind: str, subject_id: str, name: str, value: str, confidence: float | None, provenance: str,
              origin: str, run_id: str | None) -> dict[str, Any]:  # fmt: skip
    return dict(
        id=make_id("label", kind, subject_id, name, provenance, origin),
        subject_kind=kind,
        subject_id=subject_id,
        name=name,
        value=value,
        confidence=None if confidence is None else round(float(confidence), 6),
        provenance=provenance,
        origin=origin,
        run_id=run_id,
    )


def write_labels(session: Session, rows: list[dict[str, Any]]) -> int:
    return upsert(session, Label, rows, ["subject_kind", "subject_id", "name", "provenance", "origin"])
