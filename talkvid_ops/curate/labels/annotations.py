"""Human labels from annotation files: CSV with a header, a JSON list or JSON lines, long (`name`, `value`) or wide
(one column per label; TalkVid's info keys such as `Age Group` too). A row is imported whole or not at all."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.labels import label_row, write_labels
from talkvid_ops.catalog.models import Clip, Video
from talkvid_ops.context import Context
from talkvid_ops.curate.labels.vocabulary import LABEL_NAMES, Provenance, canonical_column, normalise_value
from talkvid_ops.curate.queries import chunks
from talkvid_ops.errors import TalkvidError

SUBJECT_KEYS = ("clip_id", "id", "video_id", "platform_id", "platform", "url", "video_link")
# columns read but not labels: about the annotation, and the other fields of a TalkVid record (talkvid.json)
NOT_LABELS = ("confidence", "note", "annotator", "description", "height", "width", "fps", "start_time", "start_frame",
              "end_time", "end_frame", "durations", "dover_scores", "cotracker_ratio", "head_detail")  # fmt: skip
LONG_FORM = ("name", "value")


def read_annotation_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, fields) from a CSV with a header, a JSON list (or {"labels": [...]}) or JSON lines.

    TalkVid records (`id` plus an `info` mapping) are read too, so a corrected talkvid.json can be imported.
    """
    if not path.exists():
        raise TalkvidError(f"{path}: annotation file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.DictReader(handle))
            start = 2  # line 1 is the header
        elif suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            start = 1
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data.get("labels") if isinstance(data, dict) else data
            start = 1
            if not isinstance(rows, list):
                raise TalkvidError(f'{path}: expected a JSON list of annotations (or {{"labels": [...]}})')
        else:
            raise TalkvidError(f"{path}: annotations must be .csv, .json or .jsonl")
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        raise TalkvidError(f"{path}: cannot read annotations: {exc}") from None
    for offset, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TalkvidError(f"{path}: row {start + offset} is not an object")
        flat = {k: v for k, v in row.items() if k != "info"}
        if isinstance(row.get("info"), dict):
            flat.update(row["info"])
        yield start + offset, {canonical_column(k): v for k, v in flat.items() if k is not None}


def check_columns(path: Path, rows: list[dict[str, Any]]) -> None:
    """Refuse a file that is not an annotation file (a script, another table) as a whole, naming its missing and
    unknown columns: its rows are not read as annotations, so none of its content reaches errors or the catalog."""
    columns = {column for fields in rows for column in fields}
    if not rows:
        return
    problems = []
    if not columns & set(SUBJECT_KEYS):
        problems.append(f"no subject column (one of {', '.join(SUBJECT_KEYS)})")
    if not columns & set(LABEL_NAMES) and not set(LONG_FORM) <= columns:
        problems.append(f"no label column (one of {', '.join(LABEL_NAMES)}, or name and value)")
    unknown = columns - {*SUBJECT_KEYS, *NOT_LABELS, *LABEL_NAMES, *LONG_FORM}
    if unknown:  # a header that is no column name (a script's first line) is counted, not shown
        named = sorted(c for c in unknown if re.fullmatch(r"[a-z0-9_]{1,40}", c))
        others = f"{len(unknown) - len(named)} that {'is' if len(unknown) - len(named) == 1 else 'are'} not a column name" if len(named) < len(unknown) else ""
        problems.append(f"unknown column(s) {', '.join([*named, others] if others else named)}")
    if problems:
        raise TalkvidError(f"{path}: not an annotation file: {'; '.join(problems)}")


def _confidence_of(fields: dict[str, Any]) -> float:
    raw = fields.get("confidence")
    if raw in (None, ""):
        return 1.0
    try:
        if 0 <= float(raw) <= 1:
            return float(raw)
    except (TypeError, ValueError):
        pass
    raise ValueError(f"confidence {raw!r}: expected a number from 0 to 1")


def _row_labels(fields: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(name, stored value, confidence) of every label of one row, long (`name`, `value`) or wide (one column per
    label); ValueError naming every invalid field, so that a row is imported whole or not at all."""
    if "name" in fields and "value" in fields:
        annotations = [(canonical_column(str(fields["name"])), fields["value"])]
    else:
        skip = {*SUBJECT_KEYS, *NOT_LABELS}
        annotations = [(k, v) for k, v in fields.items() if k not in skip and v not in (None, "")]
    if not annotations:
        raise ValueError("no label in this row")
    labels, problems = [], []
    try:
        confidence = _confidence_of(fields)
    except ValueError as exc:
        confidence = 1.0  # still check the values, to name every bad field at once
        problems.append(str(exc))
    for name, raw in annotations:
        try:
            labels.append((name, normalise_value(name, raw), confidence))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return labels


class _SubjectIndex:
    """Finds the clip or video an annotation row is about, with one query per kind of key."""

    def __init__(self, session: Session, rows: list[dict[str, Any]]):
        def values(*keys: str) -> set[str]:
            return {str(r[k]).strip() for r in rows for k in keys if r.get(k) not in (None, "")}

        self.clips = self._existing(session, Clip.id, values("clip_id", "id"))
        self.videos = self._existing(session, Video.id, values("video_id"))
        self.by_platform_id: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for chunk in chunks(sorted(values("platform_id"))):
            for vid, platform, pid in session.execute(select(Video.id, Video.platform, Video.platform_id).where(Video.platform_id.in_(chunk))):
                self.by_platform_id[pid].append((platform, vid))
        self.by_url: dict[str, str] = {}
        for chunk in chunks(sorted(values("url", "video_link"))):
            self.by_url.update(dict(session.execute(select(Video.url, Video.id).where(Video.url.in_(chunk))).all()))

    @staticmethod
    def _existing(session: Session, column, ids: set[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(sorted(ids)):
            found.update(session.scalars(select(column).where(column.in_(chunk))))
        return found

    def find(self, fields: dict[str, Any]) -> tuple[str, str]:
        def get(key: str) -> str | None:
            value = fields.get(key)
            return str(value).strip() if value not in (None, "") else None

        if clip_id := get("clip_id") or get("id"):
            if clip_id not in self.clips:
                raise ValueError(f"no clip {clip_id!r} in the catalog")
            return "clip", clip_id
        if video_id := get("video_id"):
            if video_id not in self.videos:
                raise ValueError(f"no video {video_id!r} in the catalog")
            return "video", video_id
        if platform_id := get("platform_id"):
            matches = [vid for platform, vid in self.by_platform_id.get(platform_id, [])
                       if get("platform") in (None, platform)]  # fmt: skip
            if len(matches) != 1:
                what = "no video" if not matches else f"{len(matches)} videos (add a platform column)"
                raise ValueError(f"{what} with platform_id {platform_id!r}")
            return "video", matches[0]
        if url := get("url") or get("video_link"):
            if url not in self.by_url:
                raise ValueError(f"no video with url {url!r}")
            return "video", self.by_url[url]
        raise ValueError("no subject: give clip_id, video_id, platform_id or url")


def import_labels(ctx: Context, path: str | Path) -> dict[str, Any]:
    """Human annotations from a file, stored with provenance `human` and origin `import:<file name>`.

    A row is imported whole or not at all: one that names no known subject or has any invalid value is recorded as
    an error of the run (its line and every bad field) and skipped; the other rows are imported. Importing the same
    file again updates its labels in place.
    """
    path = Path(path)
    origin = f"import:{path.name}"
    with ctx.run("labels", {"action": "import", "file": path.name}) as run:
        rows = list(read_annotation_rows(path))
        check_columns(path, [fields for _, fields in rows])
        labels: dict[tuple[str, str, str], dict[str, Any]] = {}
        with ctx.sessions() as session:
            index = _SubjectIndex(session, [fields for _, fields in rows])
            for line, fields in rows:
                problems = []
                try:
                    kind, subject_id = index.find(fields)
                except ValueError as exc:
                    problems.append(str(exc))
                try:
                    row_labels = _row_labels(fields)
                except ValueError as exc:
                    problems.append(str(exc))
                if problems:  # nothing of this row is kept
                    run.error(f"{path.name}:{line}", "; ".join(problems))
                    run.count("rows_skipped")
                    continue
                for name, value, confidence in row_labels:
                    key = (kind, subject_id, name)
                    if key in labels and labels[key]["value"] != value:
                        run.count("conflicting")  # the file's last row wins, as a spreadsheet reads
                    labels[key] = label_row(kind, subject_id, name, value, confidence, Provenance.HUMAN, origin, run.id)
                run.count("rows_imported")
            write_labels(session, list(labels.values()))
            session.commit()
        run.count("labels", len(labels))
        return {"run_id": run.id, "origin": origin, **run.counts, "errors": list(run.errors)}
