"""People's labels of validation items: accept or reject, one per item and annotator, with their provenance.

An `annotation` row says who (`annotator`: the Airflow user on the page, a name on the CLI, a column in a file), how
(`origin`: `page`, `cli` or `import:<file name>`, with the import's run) and when (`created_at`, `updated_at`). An
annotator labelling an item again replaces their own label. What an annotator is shown (`blind_items`) holds the
clip's file and time range and their own label only: never the score, the rule's verdict or another person's label.

CSV (`export_csv` / `import_csv`), one row per item and annotator; an item nobody labelled yet (or, with an
annotator given, that one has not) is a row with empty annotator and verdict, so an exported sheet can be filled in
by an outside tool and imported back. Columns: set, position, item_id, clip_id, video_path, start_time, end_time,
annotator, verdict, origin, annotated_at. An import needs set (name or id), clip_id or item_id, annotator and
verdict (accept/reject, a/r, yes/no, 1/0, any case); rows with an empty verdict are skipped, invalid rows are
recorded as errors of the import's run with their line, the rest is imported.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Annotation, Clip, ValidationItem, ValidationSet, Video
from talkvid_ops.catalog.status import Verdict
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.context import Context
from talkvid_ops.curate.validation.draw import STAGE
from talkvid_ops.errors import TalkvidError
from talkvid_ops.ids import make_id

ORIGIN_PAGE = "page"
ORIGIN_CLI = "cli"
CSV_COLUMNS = ("set", "position", "item_id", "clip_id", "video_path", "start_time", "end_time", "annotator", "verdict", "origin", "annotated_at")
_VERDICT_WORDS = {
    **dict.fromkeys(("accept", "a", "yes", "y", "1", "true", "acceptable"), Verdict.ACCEPT),
    **dict.fromkeys(("reject", "r", "no", "n", "0", "false", "unacceptable"), Verdict.REJECT),
}
MAX_ANNOTATOR = 255


@dataclass(frozen=True)
class BlindItem:
    """A validation item as its annotator sees it: the clip's range of its source file and their own label."""

    item_id: str
    position: int
    clip_id: str
    video_path: str | None
    start_time: float
    end_time: float
    own_verdict: Verdict | None


def parse_verdict(raw: Any) -> Verdict:
    verdict = _VERDICT_WORDS.get(str(raw).strip().lower())
    if verdict is None:
        raise ValueError(f"verdict {raw!r}: expected accept or reject (a/r, yes/no, 1/0)")
    return verdict


def check_annotator(raw: Any) -> str:
    name = str(raw or "").strip()
    if not name or len(name) > MAX_ANNOTATOR:
        raise ValueError(f"annotator {raw!r}: a name of 1 to {MAX_ANNOTATOR} characters is needed")
    return name


def find_set(session: Session, ref: str) -> ValidationSet:
    """A validation set by id or name."""
    found = session.get(ValidationSet, ref) or session.scalar(select(ValidationSet).where(ValidationSet.name == ref))
    if found is None:
        raise TalkvidError(f"no validation set {ref!r} (`talkvid validate list` shows them)")
    return found


def list_sets(session: Session) -> list[ValidationSet]:
    return list(session.scalars(select(ValidationSet).order_by(ValidationSet.created_at, ValidationSet.name)))


def blind_items(session: Session, set_id: str, annotator: str) -> list[BlindItem]:
    """The set's items in display order, each with this annotator's own label (or None)."""
    own = select(Annotation.item_id, Annotation.verdict).where(Annotation.annotator == annotator).subquery()
    rows = session.execute(
        select(ValidationItem.id, ValidationItem.position, Clip.id, Video.storage_path, Clip.start_time, Clip.end_time, own.c.verdict)
        .join(Clip, Clip.id == ValidationItem.clip_id)
        .join(Video, Video.id == Clip.video_id)
        .outerjoin(own, own.c.item_id == ValidationItem.id)
        .where(ValidationItem.set_id == set_id)
        .order_by(ValidationItem.position)
    )
    return [BlindItem(*row[:6], Verdict(row[6]) if row[6] else None) for row in rows]


def annotation_row(item_id: str, annotator: str, verdict: Verdict, origin: str, run_id: str | None = None) -> dict[str, Any]:
    return dict(id=make_id("annotation", item_id, annotator), item_id=item_id, annotator=annotator, verdict=verdict, origin=origin, run_id=run_id)


def record(session: Session, item_id: str, annotator: str, verdict: Verdict | str, origin: str, run_id: str | None = None) -> None:
    """Store (or replace) one annotator's label of one item."""
    upsert(session, Annotation, [annotation_row(item_id, check_annotator(annotator), parse_verdict(verdict), origin, run_id)], ["item_id", "annotator"])


def export_csv(ctx: Context, set_ref: str, out: str | Path, annotator: str | None = None) -> dict[str, Any]:
    """Write the set as a CSV sheet (the module's columns); with `annotator`, only that person's labels."""
    out = Path(out)
    with ctx.sessions() as session:
        validation_set = find_set(session, set_ref)
        labels = select(Annotation).where(Annotation.annotator == annotator) if annotator else select(Annotation)
        labels = labels.subquery()
        rows = session.execute(
            select(ValidationItem.position, ValidationItem.id, Clip.id, Video.storage_path, Clip.start_time, Clip.end_time,
                   labels.c.annotator, labels.c.verdict, labels.c.origin, labels.c.updated_at)
            .join(Clip, Clip.id == ValidationItem.clip_id)
            .join(Video, Video.id == Clip.video_id)
            .outerjoin(labels, labels.c.item_id == ValidationItem.id)
            .where(ValidationItem.set_id == validation_set.id)
            .order_by(ValidationItem.position, labels.c.annotator)
        ).all()  # fmt: skip
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for position, item_id, clip_id, path, start, end, who, verdict, origin, when in rows:
            writer.writerow([validation_set.name, position, item_id, clip_id, path or "", start, end, who or annotator or "", verdict or "",
                             origin or "", when.isoformat(timespec="seconds") if when else ""])  # fmt: skip
    return {"set": validation_set.name, "rows": len(rows), "labels": sum(1 for row in rows if row[7]), "path": str(out)}


def import_csv(ctx: Context, path: str | Path) -> dict[str, Any]:
    """Labels from a CSV sheet (see the module), origin `import:<file name>`; importing it again updates them."""
    path = Path(path)
    origin = f"import:{path.name}"
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            lines = list(enumerate(csv.DictReader(handle), start=2))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TalkvidError(f"{path}: cannot read it as a UTF-8 CSV file: {exc}") from None
    with ctx.run(STAGE, {"action": "import", "file": path.name}) as run, ctx.sessions() as session:
        sets: dict[str, ValidationSet | None] = {}
        items: dict[tuple[str, str], str] = {}
        for set_id, item_id, clip_id in session.execute(select(ValidationItem.set_id, ValidationItem.id, ValidationItem.clip_id)):
            items[(set_id, item_id)] = items[(set_id, clip_id)] = item_id
        rows: dict[str, dict[str, Any]] = {}
        for line, fields in lines:
            fields = {str(k).strip().lower(): (v or "").strip() for k, v in fields.items() if k is not None}
            if not fields.get("verdict"):
                run.count("rows_blank")
                continue
            problems = []
            ref = fields.get("set", "")
            if ref not in sets:
                try:
                    sets[ref] = find_set(session, ref)
                except TalkvidError:
                    sets[ref] = None
            item_id = None
            if sets[ref] is None:
                problems.append(f"no validation set {ref!r}")
            else:
                item_id = items.get((sets[ref].id, fields.get("item_id") or fields.get("clip_id", "")))
                if item_id is None:
                    problems.append(f"set {sets[ref].name!r} has no item or clip {fields.get('item_id') or fields.get('clip_id')!r}")
            try:
                annotator = check_annotator(fields.get("annotator"))
                verdict = parse_verdict(fields["verdict"])
            except ValueError as exc:
                problems.append(str(exc))
            if problems:
                run.error(f"{path.name}:{line}", "; ".join(problems))
                continue
            rows[make_id("annotation", item_id, annotator)] = annotation_row(item_id, annotator, verdict, origin, run.id)  # the last row wins
            run.count("rows_imported")
        upsert(session, Annotation, list(rows.values()), ["item_id", "annotator"])
        session.commit()
        run.count("annotations", len(rows))
        return {"run_id": run.id, "origin": origin, **run.counts, "errors": list(run.errors)}
