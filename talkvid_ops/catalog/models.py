"""The catalog: every source, video, clip, raw score, decision and release, with the run that made it.

Ids are deterministic hashes of natural keys (see `talkvid_ops.ids`), and every natural key is also a unique
constraint, so upserts on either are safe on SQLite and PostgreSQL alike. Derived rows carry `run_id`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Explicit constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(24)
DECISION_ID = String(48)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, dt.datetime: DateTime(timezone=True)}


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Run(Base):
    """One execution of a stage: what ran, with which parameters and code, where, and what came of it."""

    __tablename__ = "run"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    stage: Mapped[str] = mapped_column(String(32), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    code_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)  # running|succeeded|partial|failed|abandoned
    hostname: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]
    process_started: Mapped[str | None] = mapped_column(String(64))  # tells a reused PID apart (runs.ProcessIdentity)
    heartbeat_at: Mapped[dt.datetime | None]  # written while the run lives; a stale one on another host means dead
    dag_id: Mapped[str | None] = mapped_column(String(250))
    dag_run_id: Mapped[str | None] = mapped_column(String(250))
    task_id: Mapped[str | None] = mapped_column(String(250))
    map_index: Mapped[int | None]
    try_number: Mapped[int | None]
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    errors: Mapped[list[Any]] = mapped_column(default=list)


class Source(Timestamps, Base):
    """Where videos come from: a channel, playlist, search, URL list, any yt-dlp page, or a local folder."""

    __tablename__ = "source"
    __table_args__ = (UniqueConstraint("kind", "locator"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    locator: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|paused
    paused_until: Mapped[dt.datetime | None]
    backoff_level: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_discovered_at: Mapped[dt.datetime | None]
    last_crawled_at: Mapped[dt.datetime | None]


class Video(Timestamps, Base):
    """One media file: discovered, downloaded or ingested, probed, with its availability over time."""

    __tablename__ = "video"
    __table_args__ = (
        UniqueConstraint("platform", "platform_id"),
        Index("ix_video_status_source", "status", "source_id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    platform_id: Mapped[str] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(255))
    license: Mapped[str | None] = mapped_column(String(255))
    upload_date: Mapped[str | None] = mapped_column(String(16))
    language_hint: Mapped[str | None] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(Text)
    # probe
    duration: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None]
    height: Mapped[int | None]
    fps: Mapped[float | None] = mapped_column(Float)
    frame_count: Mapped[int | None]
    is_vfr: Mapped[bool | None] = mapped_column(Boolean)
    rotation: Mapped[int | None]
    video_codec: Mapped[str | None] = mapped_column(String(32))
    audio_codec: Mapped[str | None] = mapped_column(String(32))
    has_audio: Mapped[bool | None] = mapped_column(Boolean)
    audio_sample_rate: Mapped[int | None]
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int | None]
    storage_path: Mapped[str | None] = mapped_column(Text)
    subtitles_path: Mapped[str | None] = mapped_column(Text)
    # lifecycle: discovered -> downloaded -> probed | failed; segmented is tracked by clips
    status: Mapped[str] = mapped_column(String(16), default="discovered")
    error_class: Mapped[str | None] = mapped_column(String(16))  # permanent|throttled|transient|media
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    availability: Mapped[str] = mapped_column(String(16), default="unknown")  # available|gone|unknown
    availability_checked_at: Mapped[dt.datetime | None]
    availability_reason: Mapped[str | None] = mapped_column(Text)  # why the site says it is gone
    downloaded_at: Mapped[dt.datetime | None]
    run_id: Mapped[str | None] = mapped_column(ForeignKey("run.id"), index=True)


class Transcript(Timestamps, Base):
    """ASR output and spoken language for a video (or a clip's range of it), per backend."""

    __tablename__ = "transcript"
    __table_args__ = (UniqueConstraint("video_id", "backend", "model", "start_time", "end_time"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"), index=True)
    backend: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(255))
    start_time: Mapped[float] = mapped_column(Float, default=0.0)
    end_time: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(String(16))
    language_probability: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[list[Any]] = mapped_column(default=list)  # [{start, end, text}]
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id"), index=True)


class Clip(Timestamps, Base):
    """A time range of a video. Virtual until export: scorers decode the range from the source video."""

    __tablename__ = "clip"
    __table_args__ = (
        UniqueConstraint("video_id", "params_hash", "start_frame", "end_frame"),
        Index("ix_clip_generation", "segmenter", "params_hash"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"), index=True)
    segmenter: Mapped[str] = mapped_column(String(64))
    segmenter_version: Mapped[str] = mapped_column(String(32))
    params_hash: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    shot_index: Mapped[int | None]
    start_time: Mapped[float] = mapped_column(Float)
    end_time: Mapped[float] = mapped_column(Float)
    start_frame: Mapped[int]
    end_frame: Mapped[int]
    fps: Mapped[float] = mapped_column(Float)
    duration: Mapped[float] = mapped_column(Float)
    speech_seconds: Mapped[float | None] = mapped_column(Float)
    speech_coverage: Mapped[float | None] = mapped_column(Float)
    speech_source: Mapped[str | None] = mapped_column(String(32))  # vad|subtitles|vad+subtitles|none
    language: Mapped[str | None] = mapped_column(String(16))
    language_probability: Mapped[float | None] = mapped_column(Float)
    transcript_text: Mapped[str | None] = mapped_column(Text)
    transcript_id: Mapped[str | None] = mapped_column(ForeignKey("transcript.id", ondelete="SET NULL"), index=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id"), index=True)


class Segmentation(Timestamps, Base):
    """That a video was segmented with a parameter set (also when it yielded no clip), or why it failed."""

    __tablename__ = "segmentation"
    __table_args__ = (UniqueConstraint("video_id", "params_hash"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("video.id", ondelete="CASCADE"), index=True)
    segmenter: Mapped[str] = mapped_column(String(64))
    segmenter_version: Mapped[str] = mapped_column(String(32))
    params_hash: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # done|failed
    clip_count: Mapped[int] = mapped_column(default=0)
    shots: Mapped[list[Any]] = mapped_column(default=list)  # [[start_s, end_s], ...]
    speech: Mapped[list[Any]] = mapped_column(default=list)  # [[start_s, end_s], ...]
    speech_source: Mapped[str | None] = mapped_column(String(32))  # vad|subtitles|vad_or_subtitles|vad_and_subtitles|none
    error: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(String(16))  # no_audio|zero_length|undecodable|unreadable|...
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)  # fps, frame count, seconds per step
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id"), index=True)


class Scoring(Timestamps, Base):
    """That a scorer ran on a clip (ok or failed, with the reason); the metrics are `score` rows."""

    __tablename__ = "scoring"
    __table_args__ = (
        UniqueConstraint("clip_id", "scorer", "backend"),
        # counts per status and the failed ones per scorer (`talkvid status`, the catalog page) without a scan
        Index("ix_scoring_status_scorer", "status", "scorer"),
        Index("ix_scoring_scorer_backend", "scorer", "backend"),  # the page's pending work per scorer
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"), index=True)
    scorer: Mapped[str] = mapped_column(String(32))
    backend: Mapped[str] = mapped_column(String(32))
    scorer_version: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # ok|failed
    error: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)  # normalisation used, frames sampled, ...
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id"), index=True)


class Score(Base):
    """One raw metric of one clip, long format. Thresholds never live here."""

    __tablename__ = "score"
    __table_args__ = (
        UniqueConstraint("clip_id", "backend", "metric"),
        Index("ix_score_metric_backend", "metric", "backend"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"), nullable=False)
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    scorer: Mapped[str] = mapped_column(String(32))
    scorer_version: Mapped[str] = mapped_column(String(32))
    backend: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id"), nullable=False, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Profile(Base):
    """A threshold profile, versioned by the hash of its validated content."""

    __tablename__ = "profile"
    __table_args__ = (UniqueConstraint("name", "content_hash"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    content_hash: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Decision(Base):
    """A profile's verdict on a clip: passed, failed (see decision_failure) or undecided (a score missing)."""

    __tablename__ = "decision"
    __table_args__ = (
        UniqueConstraint("clip_id", "profile_id"),  # also the index of clip_id alone (its first column)
        Index("ix_decision_profile_status", "profile_id", "status"),
        # Deciding a profile again rewrites every row of it (status, missing, run_id, decided_at). With half of each
        # page free, the new version lands on the old one's page, and when no indexed column changed (run_id is
        # not indexed: runs are never deleted, and nothing looks decisions up by run) PostgreSQL updates the row
        # in place, "HOT", without touching an index: re-deciding a million clips writes a fifth of the WAL.
        {"postgresql_with": {"fillfactor": 50}},
    )

    # profile id + clip id: deterministic, and computable inside the set-based INSERT ... SELECT that decides
    id: Mapped[str] = mapped_column(DECISION_ID, primary_key=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"))
    profile_id: Mapped[str] = mapped_column(ForeignKey("profile.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # passed|failed|undecided
    missing: Mapped[list[Any]] = mapped_column(default=list)  # criteria with no usable score
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id"))
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DecisionFailure(Base):
    """One failing criterion of a decision, with the value, the bound and the backend whose threshold applied."""

    __tablename__ = "decision_failure"
    __table_args__ = (
        UniqueConstraint("decision_id", "criterion"),
        # a profile's clips failed by one criterion (decision ids start with the profile id): the catalog page's
        # examples, `clips list --failed-by`, without reading the other criteria's failures
        Index("ix_decision_failure_criterion_decision_id", "criterion", "decision_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # indexed by the unique constraint above (decision_id first)
    decision_id: Mapped[str] = mapped_column(DECISION_ID, ForeignKey("decision.id", ondelete="CASCADE"))
    criterion: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)


class Label(Timestamps, Base):
    """A label of a clip or video (language, age group, gender, ethnicity, person) with where it came from."""

    __tablename__ = "label"
    __table_args__ = (
        UniqueConstraint("subject_kind", "subject_id", "name", "provenance", "origin"),
        Index("ix_label_name_value", "name", "value"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(8))  # clip|video
    subject_id: Mapped[str] = mapped_column(ID, index=True)
    name: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(128))
    confidence: Mapped[float | None] = mapped_column(Float)
    provenance: Mapped[str] = mapped_column(String(16))  # human|estimated|asr|metadata
    origin: Mapped[str] = mapped_column(String(255))  # backend name + version, or the imported file
    run_id: Mapped[str | None] = mapped_column(ForeignKey("run.id"), index=True)


class Caption(Timestamps, Base):
    """A clip's description (TalkVid's `description`) written by a vision-language model from frames of the clip, with
    the model, the prompt's hash and how frames were sampled; one per clip (a new model or prompt replaces it)."""

    __tablename__ = "caption"
    __table_args__ = (UniqueConstraint("clip_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(255))  # model dir name @ content hash
    prompt_hash: Mapped[str] = mapped_column(String(16))
    sampling: Mapped[dict[str, Any]] = mapped_column(default=dict)  # frame times and size, generation settings
    status: Mapped[str] = mapped_column(String(16))  # CaptionStatus
    text: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id"), index=True)


class FaceEmbedding(Base):
    """A clip's face descriptor (mean over sampled frames) for speaker clustering; null when no face was found."""

    __tablename__ = "face_embedding"
    __table_args__ = (UniqueConstraint("clip_id", "model"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(64))
    vector: Mapped[list[Any] | None] = mapped_column(JSON)
    frames: Mapped[int] = mapped_column(default=0)  # sampled frames that had a face
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ClipFace(Base):
    """One sampled frame of a clip from the face pass shared by labels, speakers and crops: the frame's time and
    size, its largest face (none: no face found) and what each face model made of that face, by model origin."""

    __tablename__ = "clip_face"
    __table_args__ = (UniqueConstraint("clip_id", "samples", "sample"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"), index=True)
    samples: Mapped[int]  # frames sampled from the clip in this pass (`curate.faces.frames_per_clip`)
    sample: Mapped[int]  # this frame's place among them
    time: Mapped[float] = mapped_column(Float)  # seconds of the video
    frame_width: Mapped[int]
    frame_height: Mapped[int]
    box: Mapped[list[Any] | None] = mapped_column(JSON)  # [left, top, right, bottom) in frame pixels, upright
    outputs: Mapped[dict[str, Any]] = mapped_column(default=dict)  # model origin -> its outputs on the face
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Bench(Timestamps, Base):
    """A bench drawn from a profile's passed clips by a spec and seed, with its report (requested vs achieved per
    stratum, shortfalls, what was held out) and a hash of the candidates it was drawn from."""

    __tablename__ = "bench"
    __table_args__ = (UniqueConstraint("profile_id", "spec_hash", "seed"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    profile_id: Mapped[str] = mapped_column(ForeignKey("profile.id", ondelete="CASCADE"), index=True)
    spec_name: Mapped[str] = mapped_column(String(128))
    spec_hash: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int]
    candidates_hash: Mapped[str] = mapped_column(String(16))  # the passed clips, their labels and speakers
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id"), index=True)


class BenchClip(Base):
    """A clip of a stored bench: its sub-benchmark and stratum, the bench window in frames, and its speaker at
    draw time (held out of training with the clip's video)."""

    __tablename__ = "bench_clip"
    __table_args__ = (UniqueConstraint("bench_id", "clip_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    bench_id: Mapped[str] = mapped_column(ForeignKey("bench.id", ondelete="CASCADE"), index=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"), index=True)
    subbench: Mapped[str] = mapped_column(String(32))
    stratum: Mapped[str] = mapped_column(String(64))
    start_frame: Mapped[int]
    end_frame: Mapped[int]
    person: Mapped[str | None] = mapped_column(String(128))


class Release(Base):
    """An export: the profile, bench spec and seed that made it, its files with their hashes, its counts."""

    __tablename__ = "release"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    profile_id: Mapped[str] = mapped_column(ForeignKey("profile.id"), index=True)
    bench_spec: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    bench_spec_hash: Mapped[str | None] = mapped_column(String(16))
    seed: Mapped[int | None]
    formats: Mapped[list[Any]] = mapped_column(default=list)
    out_dir: Mapped[str] = mapped_column(Text)
    files: Mapped[dict[str, Any]] = mapped_column(default=dict)  # relative path -> sha256
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    code_version: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ReleaseClip(Base):
    """Membership of a clip in a release: training split or a bench sub-benchmark stratum."""

    __tablename__ = "release_clip"
    __table_args__ = (UniqueConstraint("release_id", "clip_id", "split", "subbench"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    release_id: Mapped[str] = mapped_column(ForeignKey("release.id", ondelete="CASCADE"), index=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"), index=True)
    split: Mapped[str] = mapped_column(String(16))  # train|bench
    subbench: Mapped[str | None] = mapped_column(String(32))
    stratum: Mapped[str | None] = mapped_column(String(64))


class Batch(Base):
    """A unit of mapped work: a stage and the item ids it covers. XCom carries only batch ids."""

    __tablename__ = "batch"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    stage: Mapped[str] = mapped_column(String(32), index=True)
    items: Mapped[list[Any]] = mapped_column(default=list)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|done
    run_id: Mapped[str | None] = mapped_column(ForeignKey("run.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Lease(Base):
    """A worker's hold on one item of a stage until `expires_at`: concurrent workers take disjoint items, and the
    items of a worker that died are free again once its leases expire (talkvid_ops.catalog.upsert.take_lease)."""

    __tablename__ = "lease"

    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[str] = mapped_column(ID, primary_key=True)
    holder: Mapped[str] = mapped_column(String(32))  # the run holding it
    expires_at: Mapped[dt.datetime] = mapped_column()


class ValidationSet(Base):
    """A borderline sample of one criterion's rule, drawn for people to judge (talkvid_ops.curate.validation.draw)."""

    __tablename__ = "validation_set"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    profile_id: Mapped[str] = mapped_column(ForeignKey("profile.id"), index=True)
    criterion: Mapped[str] = mapped_column(String(64))
    backend: Mapped[str] = mapped_column(String(32))  # the judged rule's backend, `any` included
    metric: Mapped[str] = mapped_column(String(64))
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)  # n, per_video, seed
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # requested, drawn and eligible per side
    run_id: Mapped[str] = mapped_column(ForeignKey("run.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ValidationItem(Base):
    """A clip of a validation set, with the rule's verdict on its stored score (never shown to annotators)."""

    __tablename__ = "validation_item"
    __table_args__ = (UniqueConstraint("set_id", "clip_id"), UniqueConstraint("set_id", "position"))

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    set_id: Mapped[str] = mapped_column(ForeignKey("validation_set.id", ondelete="CASCADE"), index=True)
    clip_id: Mapped[str] = mapped_column(ForeignKey("clip.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]  # the order annotators see, seeded, passes and fails mixed
    side: Mapped[str] = mapped_column(String(8))  # pass|fail under the rule
    bound: Mapped[str] = mapped_column(String(8))  # min|max: the bound nearest to the value
    value: Mapped[float] = mapped_column(Float)
    distance: Mapped[float] = mapped_column(Float)


class Annotation(Timestamps, Base):
    """A person's accept / reject of a validation item: who (annotator), how (origin: page, cli, import:<file>), when."""

    __tablename__ = "annotation"
    __table_args__ = (UniqueConstraint("item_id", "annotator"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("validation_item.id", ondelete="CASCADE"), index=True)
    annotator: Mapped[str] = mapped_column(String(255))
    verdict: Mapped[str] = mapped_column(String(8))  # accept|reject
    origin: Mapped[str] = mapped_column(String(255))
    run_id: Mapped[str | None] = mapped_column(ForeignKey("run.id"), index=True)  # the import that brought it


ALL_TABLES = [t.name for t in Base.metadata.sorted_tables]
