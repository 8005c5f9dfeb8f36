"""What a release says about each clip: the catalog rows of a profile's candidates, and the records written from
them (TalkVid's released shape for selected clips; every raw score, decision, label and lineage id for all)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.metrics import HEAD_METRICS
from talkvid_ops.catalog.models import Clip, Decision, DecisionFailure, Score, Video
from talkvid_ops.curate.labels.resolution import ResolvedLabel, resolve_labels
from talkvid_ops.curate.labels.vocabulary import UNKNOWN

# Which stored metric fills TalkVid's score fields, production backends first. TalkVid's `cotracker_ratio` is the
# released code's mean point visibility; the paper's valid-trajectory ratio stands in when only that was measured.
DOVER_SOURCES = (("dover", "dover_overall"), ("classical", "quality_technical"))
COTRACKER_SOURCES = (
    ("cotracker3", "motion_visibility_code"),
    ("lk", "motion_visibility_code"),
    ("cotracker3", "motion_valid_ratio_paper"),
    ("lk", "motion_valid_ratio_paper"),
)
HEAD_BACKENDS = ("fan", "dlib")
HEAD_DETAIL_METRICS = tuple(m for m in HEAD_METRICS if m != "face_consistency")  # the ten TalkVid released
INFO_LABELS = {"Person ID": "person", "Ethnicity": "ethnicity", "Age Group": "age_group", "Gender": "gender",
               "Language": "language", "Video Category": "category"}  # fmt: skip


@dataclass
class ClipRecord:
    """One candidate clip of a release: its rows, scores, decision, labels and, once assigned, its split."""

    clip: Clip
    video: Video
    decision: Decision
    failures: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)  # backend -> metric -> value
    score_runs: set[str] = field(default_factory=set)
    labels: dict[str, ResolvedLabel] = field(default_factory=dict)
    split: str = ""  # train | bench | held_out | failed | undecided | media_failed
    bench: tuple[str, str] | None = None  # (sub-benchmark, stratum)

    @property
    def id(self) -> str:
        return self.clip.id

    def label(self, name: str) -> str:
        label = self.labels.get(name)
        return label.display if label else UNKNOWN

    def first_score(self, sources) -> tuple[float | None, str | None]:
        for backend, metric in sources:
            value = self.scores.get(backend, {}).get(metric)
            if value is not None:
                return value, f"{backend}:{metric}"
        return None, None

    def head_backend(self) -> str | None:
        return next((b for b in HEAD_BACKENDS if any(self.scores.get(b, {}).get(m) is not None for m in HEAD_DETAIL_METRICS)), None)


def load_records(session: Session, profile_id: str, min_language_probability: float) -> list[ClipRecord]:
    """Every clip the profile decided (passed, failed or undecided), with everything a release writes about it."""
    rows = session.execute(
        select(Clip, Video, Decision)
        .join(Video, Video.id == Clip.video_id)
        .join(Decision, Decision.clip_id == Clip.id)
        .where(Decision.profile_id == profile_id)
        .order_by(Clip.id)
    ).all()
    records = {clip.id: ClipRecord(clip, video, decision) for clip, video, decision in rows}
    failures = session.execute(
        select(Decision.clip_id, DecisionFailure).join(Decision, Decision.id == DecisionFailure.decision_id).where(Decision.profile_id == profile_id)
    ).all()
    for clip_id, f in sorted(failures, key=lambda r: (r[0], r[1].criterion)):
        records[clip_id].failures.append(
            {"criterion": f.criterion, "metric": f.metric, "backend": f.backend, "value": f.value, "min": f.min_value, "max": f.max_value}
        )
    scores = session.execute(
        select(Score.clip_id, Score.backend, Score.metric, Score.value, Score.run_id)
        .join(Decision, Decision.clip_id == Score.clip_id)
        .where(Decision.profile_id == profile_id)
    ).all()
    for clip_id, backend, metric, value, run_id in scores:
        records[clip_id].scores.setdefault(backend, {})[metric] = value
        records[clip_id].score_runs.add(run_id)
    labels = resolve_labels(session, {r.id: r.clip.video_id for r in records.values()}, min_language_probability)
    for record in records.values():
        record.labels = labels[record.id]
    return list(records.values())


def display_size(video: Video) -> tuple[int | None, int | None]:
    """(width, height) as played: a quarter-turn rotation swaps them."""
    if video.rotation is not None and int(video.rotation) % 180 == 90:
        return video.height, video.width
    return video.width, video.height


def talkvid_record(record: ClipRecord, window: tuple[int, int] | None = None) -> dict[str, Any]:
    """The clip (or a window of it, in frames) in TalkVid's released record shape, field names exactly as released."""
    clip, video = record.clip, record.video
    if window:
        start_frame, end_frame = window
        start_time = clip.start_time + (start_frame - clip.start_frame) / clip.fps
        duration = (end_frame - start_frame) / clip.fps
        end_time = start_time + duration
    else:
        start_frame, end_frame, start_time, end_time, duration = clip.start_frame, clip.end_frame, clip.start_time, clip.end_time, clip.duration
    width, height = display_size(video)
    head_backend = record.head_backend()
    head = record.scores.get(head_backend, {}) if head_backend else {}
    info = {key: record.label(name) for key, name in INFO_LABELS.items()}
    info["Video Link"] = video.url or ""
    return {
        "id": record.id,
        "height": height,
        "width": width,
        "fps": clip.fps,
        "start-time": round(start_time, 6),
        "start-frame": start_frame,
        "end-time": round(end_time, 6),
        "end-frame": end_frame,
        "durations": f"{duration:.3f}s",
        "info": {key: info[key] for key in ("Person ID", "Ethnicity", "Age Group", "Gender", "Video Link", "Language", "Video Category")},
        "description": video.description or video.title or "",
        "dover_scores": record.first_score(DOVER_SOURCES)[0],
        "cotracker_ratio": record.first_score(COTRACKER_SOURCES)[0],
        "head_detail": {"scores": {m: head.get(m) for m in HEAD_DETAIL_METRICS}},
    }


def candidate_row(record: ClipRecord) -> dict[str, Any]:
    """Everything about one candidate clip, selected or not (clips.jsonl; flattened into clips.parquet)."""
    clip, video, decision = record.clip, record.video, record.decision
    return {
        "clip_id": record.id,
        "video_id": video.id,
        "source_id": video.source_id,
        "platform": video.platform,
        "platform_id": video.platform_id,
        "video_url": video.url,
        "license": video.license,
        "start_time": clip.start_time,
        "end_time": clip.end_time,
        "start_frame": clip.start_frame,
        "end_frame": clip.end_frame,
        "fps": clip.fps,
        "duration": clip.duration,
        "speech_coverage": clip.speech_coverage,
        "asr_language": clip.language,
        "asr_language_probability": clip.language_probability,
        "decision": decision.status,
        "failing_criteria": [f["criterion"] for f in record.failures],
        "failing": record.failures,
        "missing_criteria": sorted(decision.missing or []),
        "split": record.split,
        "bench_subbenchmark": record.bench[0] if record.bench else None,
        "bench_stratum": record.bench[1] if record.bench else None,
        "labels": {
            name: {
                "value": label.display,
                "stored": label.value,
                "provenance": label.provenance,
                "confidence": label.confidence,
                "origin": label.origin,
                "subject": label.subject_kind,
            }
            for name, label in sorted(record.labels.items())
        },
        "scores": {f"{backend}.{metric}": value for backend in sorted(record.scores) for metric, value in sorted(record.scores[backend].items())},
        "lineage": {
            "source_id": video.source_id,
            "video_run_id": video.run_id,
            "segment_run_id": clip.run_id,
            "segmenter": f"{clip.segmenter}@{clip.segmenter_version}",
            "segment_params_hash": clip.params_hash,
            "score_run_ids": sorted(record.score_runs),
            "decision_run_id": decision.run_id,
        },
    }


def score_sources(records: list[ClipRecord]) -> dict[str, dict[str, int]]:
    """Which backend and metric filled TalkVid's score fields, with clip counts (the release metadata names them)."""
    used: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in records:
        for fieldname, sources in (("dover_scores", DOVER_SOURCES), ("cotracker_ratio", COTRACKER_SOURCES)):
            used[fieldname][record.first_score(sources)[1] or "none"] += 1
        used["head_detail"][record.head_backend() or "none"] += 1
    return {k: dict(sorted(v.items())) for k, v in sorted(used.items())}
