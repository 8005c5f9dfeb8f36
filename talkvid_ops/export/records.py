"""What a release says about each clip: the catalog rows of a profile's candidates, and the records written from
them (TalkVid's released shape for selected clips; every raw score, decision, label and lineage id for all)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from talkvid_ops.caption.stage import caption_of
from talkvid_ops.catalog.metrics import HEAD_METRICS, get_metric
from talkvid_ops.catalog.models import Clip, Decision, DecisionFailure, Score, Video
from talkvid_ops.catalog.queries import CURRENT_GENERATION, crawled_by, generation_condition
from talkvid_ops.catalog.status import DecisionStatus
from talkvid_ops.curate.labels.resolution import ResolvedLabel, resolve_labels
from talkvid_ops.curate.labels.vocabulary import GENDERS, UNKNOWN
from talkvid_ops.curate.profiles import ANY_BACKEND, Profile

# TalkVid's score fields hold what the name means in TalkVid's release, or null: `dover_scores` is the released
# code's normalised DOVER score, `cotracker_ratio` the released code's CoTracker3 visibility. No other backend's
# value stands in (a CPU run's scores are in clips.jsonl / clips.parquet under their own names).
TALKVID_SCORES = {"dover_scores": ("dover", "dover_released"), "cotracker_ratio": ("cotracker3", "motion_visibility_code")}
HEAD_BACKENDS = ("fan", "dlib")
# the ten head-detail scores TalkVid released, in its order
HEAD_DETAIL_METRICS = ("avg_movement", "min_movement", "avg_rotation", "min_rotation", "avg_completeness", "min_completeness",
                       "avg_resolution", "min_resolution", "avg_orientation", "min_orientation")  # fmt: skip
HEAD_DEFINITION = "TalkVid head-detail formulas on one face detection per second, 0-100"
PROVENANCE_KEY = "talkvid_provenance"  # the one key a non-strict talkvid.json record adds after TalkVid's fields
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
    judged: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # criterion -> the rule that applied
    caption: str | None = None  # the caption stage's text: TalkVid's `description`
    profile_name: str | None = None  # the profile whose rules `judged` holds

    @property
    def id(self) -> str:
        return self.clip.id

    def label(self, name: str) -> str:
        label = self.labels.get(name)
        return label.display if label else UNKNOWN

    def talkvid_score(self, fieldname: str) -> float | None:
        """TalkVid's score field: the stored metric of the backend and definition it names, or None."""
        backend, metric = TALKVID_SCORES[fieldname]
        return self.scores.get(backend, {}).get(metric)

    def head_backend(self) -> str | None:
        return next((b for b in HEAD_BACKENDS if any(self.scores.get(b, {}).get(m) is not None for m in HEAD_DETAIL_METRICS)), None)

    def judge(self, profile: Profile) -> None:
        """Record, per criterion, the rule that applied to this clip: the first whose backend scored it."""
        head, self.profile_name = self.head_backend(), profile.name
        for name, criterion in profile.criteria.items():
            self.judged[name] = None
            for rule in criterion.rules:
                backend = (head if rule.metric in HEAD_METRICS else None) if rule.backend == ANY_BACKEND else rule.backend
                if backend is None and rule.backend == ANY_BACKEND:
                    backend = next((b for b in sorted(self.scores) if self.scores[b].get(rule.metric) is not None), None)
                value = self.scores.get(backend, {}).get(rule.metric) if backend else None
                if value is not None:
                    self.judged[name] = {"backend": backend, "metric": rule.metric, "min": rule.min, "max": rule.max, "value": value}
                    break


def load_records(
    session: Session,
    profile_id: str,
    min_language_probability: float,
    profile: Profile | None = None,
    generation: str = CURRENT_GENERATION,
    as_of: dt.datetime | None = None,
) -> list[ClipRecord]:
    """Every clip of `generation` (see catalog.queries.generation_condition) of the videos crawled by `as_of` (None:
    all) the profile decided (passed, failed or undecided), with everything a release writes about it; with
    `profile`, the rule each criterion applied."""
    rows = session.execute(
        select(Clip, Video, Decision)
        .join(Video, Video.id == Clip.video_id)
        .join(Decision, Decision.clip_id == Clip.id)
        .where(Decision.profile_id == profile_id, generation_condition(generation), crawled_by(as_of))
        .order_by(Clip.id)
    ).all()
    records = {clip.id: ClipRecord(clip, video, decision) for clip, video, decision in rows}
    failures = session.execute(
        select(Decision.clip_id, DecisionFailure).join(Decision, Decision.id == DecisionFailure.decision_id).where(Decision.profile_id == profile_id)
    ).all()
    for clip_id, f in sorted(failures, key=lambda r: (r[0], r[1].criterion)):
        if clip_id not in records:  # a clip of another generation
            continue
        records[clip_id].failures.append(
            {"criterion": f.criterion, "metric": f.metric, "backend": f.backend, "value": f.value, "min": f.min_value, "max": f.max_value}
        )
    scores = session.execute(
        select(Score.clip_id, Score.backend, Score.metric, Score.value, Score.run_id)
        .join(Decision, Decision.clip_id == Score.clip_id)
        .where(Decision.profile_id == profile_id)
    ).all()
    for clip_id, backend, metric, value, run_id in scores:
        if clip_id not in records:
            continue
        records[clip_id].scores.setdefault(backend, {})[metric] = value
        records[clip_id].score_runs.add(run_id)
    labels = resolve_labels(session, {r.id: r.clip.video_id for r in records.values()}, min_language_probability)
    captions = caption_of(session, records)
    for record in records.values():
        record.labels = labels[record.id]
        record.caption = captions.get(record.id)
        if profile is not None:
            record.judge(profile)
    return list(records.values())


def display_size(video: Video) -> tuple[int | None, int | None]:
    """(width, height) as played: a quarter-turn rotation swaps them."""
    if video.rotation is not None and int(video.rotation) % 180 == 90:
        return video.height, video.width
    return video.width, video.height


def talkvid_record(record: ClipRecord, window: tuple[int, int] | None = None, strict: bool = False) -> dict[str, Any]:
    """The clip (or a window of it, in frames) in TalkVid's released record shape, field names exactly as released;
    unless `strict`, followed by `talkvid_provenance` (see `score_provenance`)."""
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
    if info["Gender"] in GENDERS:
        info["Gender"] = info["Gender"].capitalize()  # TalkVid releases Male / Female
    info["Video Link"] = video.url or ""
    out = {
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
        "description": record.caption,
        "dover_scores": record.talkvid_score("dover_scores"),
        "cotracker_ratio": record.talkvid_score("cotracker_ratio"),
        "head_detail": {"scores": {m: head.get(m) for m in HEAD_DETAIL_METRICS}, "passed": head_passed(record)},
    }
    if not strict:
        out[PROVENANCE_KEY] = score_provenance(record)
    return out


def head_passed(record: ClipRecord) -> bool | None:
    """Whether every head-detail criterion the profile judged passed (None: none was judged)."""
    head = [name for name, rule in record.judged.items() if rule and rule["metric"] in HEAD_METRICS]
    if not head:
        return None
    failed = {f["criterion"] for f in record.failures}
    return not any(name in failed for name in head)


def score_provenance(record: ClipRecord) -> dict[str, Any]:
    """Which backend and definition produced every exported score, and the metric each criterion judged."""

    def source(backend: str, metric: str) -> dict[str, str]:
        return {"backend": backend, "metric": metric, "definition": get_metric(metric).description}

    return {
        **{name: source(backend, metric) if record.talkvid_score(name) is not None else None for name, (backend, metric) in TALKVID_SCORES.items()},
        "head_detail": {"backend": record.head_backend(), "definition": HEAD_DEFINITION} if record.head_backend() else None,
        "profile": record.profile_name,
        "criteria": record.judged,
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
        "source_description": video.description or video.title or None,
        "caption": record.caption,
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
    """Which backend and metric filled TalkVid's score fields, with clip counts (the release metadata names them;
    "none": the field is null, its backend did not score the clip)."""
    used: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record in records:
        for fieldname, (backend, metric) in TALKVID_SCORES.items():
            used[fieldname][f"{backend}:{metric}" if record.talkvid_score(fieldname) is not None else "none"] += 1
        used["head_detail"][record.head_backend() or "none"] += 1
    return {k: dict(sorted(v.items())) for k, v in sorted(used.items())}


DURATION_BINS = (5.0, 10.0, 15.0, 20.0, 30.0, 60.0)  # s: clip-duration histogram edges (TalkVid keeps > 5 s)


def _resolution_class(record: ClipRecord) -> str:
    """TalkVid's resolution share: 2160p, 1080p or other, by the played frame's short side."""
    width, height = display_size(record.video)
    short = min(width or 0, height or 0)
    return "2160p" if short >= 2160 else "1080p" if short >= 1080 else "other"


def dataset_statistics(train: list[ClipRecord], candidates: list[ClipRecord]) -> dict[str, Any]:
    """The paper's dataset statistics of the training release (resolution share, clip-duration distribution and
    mean, upload year) and the pass rate per source over every candidate."""
    durations = [r.clip.duration for r in train]
    edges = (0.0, *DURATION_BINS, float("inf"))
    histogram = {}
    for low, high in zip(edges, edges[1:]):
        name = f"{low:g}-{high:g} s" if high != float("inf") else f">= {low:g} s"
        histogram[name] = sum(1 for d in durations if low <= d < high)
    resolution, years = defaultdict(lambda: [0, 0.0]), defaultdict(lambda: [0, 0.0])
    for record in train:
        for table, key in ((resolution, _resolution_class(record)), (years, (record.video.upload_date or "")[:4] or UNKNOWN)):
            table[key][0] += 1
            table[key][1] += record.clip.duration / 3600
    per_source = defaultdict(lambda: [0, 0])
    for record in candidates:
        per_source[record.video.source_id][0] += 1
        per_source[record.video.source_id][1] += record.decision.status == DecisionStatus.PASSED
    return {
        "clips": len(train),
        "mean_duration_s": round(sum(durations) / len(durations), 3) if durations else None,
        "duration_histogram": histogram,
        "resolution": {k: {"clips": n, "hours": round(h, 6)} for k, (n, h) in sorted(resolution.items())},
        "upload_year": {k: {"clips": n, "hours": round(h, 6)} for k, (n, h) in sorted(years.items())},
        "pass_rate_by_source": {s: {"candidates": n, "passed": p, "pass_rate": round(p / n, 6)} for s, (n, p) in sorted(per_source.items())},
    }
