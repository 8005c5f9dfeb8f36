"""The score stage: for each clip, decode its range once and feed every configured scorer from that one decode.

Work is the set of clips missing a `scoring` row for a configured (scorer, backend). Each scorer's outcome is a
`scoring` row (ok, or failed with the reason) and its metrics are long-format `score` rows carrying the scorer's
name, version, backend and the run. A scorer that fails on a clip records that failure; the others still score
the clip. Rows are upserted on their natural keys, so a rerun replaces instead of duplicating.

A batch's clips are scored by `score.workers` processes (default: the CPUs the task may use; 1 on a GPU), each
loading the models once; this process writes every row, so the rows are those of a serial run. Each clip is
leased before it is scored (`catalog.upsert.take_lease`), so concurrent stage runs take disjoint clips; a pending
clip that another run scored meanwhile is skipped (chosen clips are rescored on purpose).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.batches import chosen_items, make_batches, mark_batch_done
from talkvid_ops.catalog.models import Clip, Score, Scoring, Video, utcnow
from talkvid_ops.catalog.status import ScoringStatus
from talkvid_ops.catalog.upsert import release_lease, take_lease, upsert
from talkvid_ops.config.score import ScoreConfig
from talkvid_ops.context import Context
from talkvid_ops.ids import make_id
from talkvid_ops.media.sampler import ClipReader, FrameSpec
from talkvid_ops.media.thumbnails import PICTURE_SPEC, ClipPictures, PictureCollector, has_pictures, write_pictures
from talkvid_ops.score.base import Accumulator, Scorer, get_scorer
from talkvid_ops.score.faces import DlibBackend, FaceAlignmentBackend
from talkvid_ops.score.insightface_backend import InsightFaceBackend
from talkvid_ops.score.motion import CoTracker3Motion, FastLucasKanadeMotion, LucasKanadeMotion
from talkvid_ops.score.quality import ClassicalQuality, DoverOnnxQuality

STAGE = "score"
SCORER_CLASSES: dict[tuple[str, str], type[Scorer]] = {
    (cls.name, cls.backend): cls
    for cls in (
        ClassicalQuality,
        DoverOnnxQuality,
        LucasKanadeMotion,
        FastLucasKanadeMotion,
        CoTracker3Motion,
        DlibBackend,
        FaceAlignmentBackend,
        InsightFaceBackend,
    )
}
MAX_ERROR_LENGTH = 2000
LEASE_SECONDS = 1800.0  # far above a clip's scoring time; a dead worker's clips are free again after it


def configured(config: ScoreConfig) -> list[tuple[str, str]]:
    """(scorer, backend) pairs this configuration runs."""
    return [(name, getattr(config, f"{name}_backend")) for name in config.scorers]


def scorers_for(config: ScoreConfig) -> list[Scorer]:
    return [get_scorer(SCORER_CLASSES[key], config) for key in configured(config)]


def _pending(config: ScoreConfig):
    """The condition on a clip (joined with its video): stored, and missing a scoring row for some configured scorer."""
    missing = [~exists().where(Scoring.clip_id == Clip.id, Scoring.scorer == name, Scoring.backend == backend) for name, backend in configured(config)]
    return Video.storage_path.is_not(None) & or_(*missing)


def pending_clip_ids(session: Session, config: ScoreConfig, limit: int | None = None) -> list[str]:
    """Clips of stored videos that miss a scoring row for some configured scorer."""
    query = select(Clip.id).join(Video, Video.id == Clip.video_id).where(_pending(config)).order_by(Clip.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def plan_batches(ctx: Context, size: int | None = None, max_batches: int | None = None) -> list[str]:
    """Batches of the clips that need scoring; the same clips and scorers give the same batch ids (only the first
    `max_batches` are stored, see `make_batches`)."""
    config = ctx.config.score
    with ctx.sessions() as session:
        ids = pending_clip_ids(session, config)
        batches = make_batches(session, STAGE, ids, size or config.batch_size, {"scorers": dict(configured(config))}, max_batches)
        session.commit()
    return batches


@dataclass
class ClipOutcome:
    """What scoring one clip produced: per scorer the metrics and details, or the failure; the clip's pictures
    when they were asked for."""

    metrics: dict[Scorer, dict[str, float]] = field(default_factory=dict)
    details: dict[Scorer, dict[str, Any]] = field(default_factory=dict)
    failures: dict[Scorer, str] = field(default_factory=dict)
    pictures: ClipPictures | None = None

    def portable(self) -> tuple[dict[str, dict[tuple[str, str], Any]], ClipPictures | None]:
        """The outcome keyed by (scorer, backend), to send between processes (a loaded scorer does not pickle)."""
        return {part: {(s.name, s.backend): v for s, v in getattr(self, part).items()} for part in ("metrics", "details", "failures")}, self.pictures

    @classmethod
    def from_portable(cls, portable: tuple[dict[str, dict[tuple[str, str], Any]], ClipPictures | None], scorers: Iterable[Scorer]) -> ClipOutcome:
        by_key = {(s.name, s.backend): s for s in scorers}
        parts, pictures = portable
        return cls(**{part: {by_key[key]: v for key, v in values.items()} for part, values in parts.items()}, pictures=pictures)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]


def score_clip(path: Path, start: float, end: float, rotation: int | None, scorers: Iterable[Scorer], pictures: bool = False) -> ClipOutcome:
    """Decode the clip once, feeding every scorer each frame as it is decoded; failures are caught per scorer.
    With `pictures`, the same decode also gives the clip's thumbnail and preview (`media.thumbnails`).

    A scorer that cannot load or fails on a frame fails alone (it gets no more frames); a media fault fails every
    scorer that needed the clip's frames."""
    outcome = ClipOutcome()
    routes: dict[FrameSpec, list[tuple[Scorer, str]]] = {}  # spec -> the scorers (and their name for it) it feeds
    for scorer in scorers:
        try:
            scorer.load()
            needs = scorer.needs
        except Exception as exc:  # a model that cannot load fails this scorer only
            outcome.failures[scorer] = _reason(exc)
            continue
        for name, spec in needs.items():
            routes.setdefault(spec, []).append((scorer, name))
    fed = list(dict.fromkeys(scorer for receivers in routes.values() for scorer, _ in receivers))  # in configured order
    if not fed:
        return outcome
    accumulators: dict[Scorer, Accumulator] = {}
    collector = PictureCollector() if pictures else None

    def fail(scorer: Scorer, exc: Exception) -> None:
        outcome.failures[scorer] = _reason(exc)
        accumulators.pop(scorer, None)

    try:
        with ClipReader(path, start, end, [*routes, PICTURE_SPEC] if collector else routes, rotation) as clip:
            for scorer in fed:
                try:
                    accumulators[scorer] = scorer.begin(clip.info)
                except Exception as exc:
                    fail(scorer, exc)
            for spec, sample in clip:
                if collector and spec == PICTURE_SPEC:
                    collector.add(sample)
                for scorer, name in routes.get(spec, ()):
                    if scorer in accumulators:
                        try:
                            accumulators[scorer].add(name, sample)
                        except Exception as exc:
                            fail(scorer, exc)
    except Exception as exc:  # MediaError, or anything else the decode raised
        for scorer in fed:
            outcome.failures[scorer] = f"media: {_reason(exc)}"
        return outcome
    outcome.pictures = collector.pictures() if collector else None
    for scorer, accumulator in accumulators.items():
        try:
            metrics = accumulator.result()
            bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
            if bad:
                raise ValueError(f"non-finite metrics: {', '.join(bad)}")
        except Exception as exc:
            outcome.failures[scorer] = _reason(exc)
            continue
        outcome.metrics[scorer] = dict(metrics)
        outcome.details[scorer] = {**metrics.details, "decoded_frames": clip.decoded}
    return outcome


def _write(session: Session, clip_id: str, outcome: ClipOutcome, run_id: str) -> None:
    scorings, scores = [], []
    now = utcnow()
    for scorer in [*outcome.metrics, *outcome.failures]:
        failed = scorer in outcome.failures
        scorings.append(
            dict(
                id=make_id("scoring", clip_id, scorer.name, scorer.backend),
                clip_id=clip_id,
                scorer=scorer.name,
                backend=scorer.backend,
                scorer_version=scorer.version,
                status=ScoringStatus.FAILED if failed else ScoringStatus.OK,
                error=outcome.failures.get(scorer),
                details=outcome.details.get(scorer, {}),
                run_id=run_id,
                updated_at=now,
            )
        )
        for metric, value in outcome.metrics.get(scorer, {}).items():
            scores.append(
                dict(
                    id=make_id("score", clip_id, scorer.backend, metric),
                    clip_id=clip_id,
                    metric=metric,
                    value=value,
                    scorer=scorer.name,
                    scorer_version=scorer.version,
                    backend=scorer.backend,
                    run_id=run_id,
                    created_at=now,
                )
            )
    upsert(session, Scoring, scorings, ["clip_id", "scorer", "backend"])
    # A rescoring replaces the scorer's metrics: none of an earlier run's (or an older version's) stay behind.
    for scorer in [*outcome.metrics, *outcome.failures]:
        session.execute(delete(Score).where(Score.clip_id == clip_id, Score.backend == scorer.backend, Score.scorer == scorer.name))
    upsert(session, Score, scores, ["clip_id", "backend", "metric"])


class ClipPool:
    """Scores clips in `workers` processes (in this one when 1), results in submission order. Each worker loads
    the scorers once; OpenCV runs one thread per worker, so the workers do not fight over the cores."""

    def __init__(self, config: ScoreConfig, workers: int):
        self.config, self.workers = config, workers
        self.scorers = scorers_for(config)
        self.executor: ProcessPoolExecutor | None = None
        if workers > 1:
            import multiprocessing

            # forkserver: workers start from a clean process, not a fork of one that may run threads (Airflow)
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            self.executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(config.model_dump_json(),))

    def submit(self, path: Path, start: float, end: float, rotation: int | None, pictures: bool) -> Future:
        if self.executor is not None:
            return self.executor.submit(_score_in_worker, path, start, end, rotation, pictures)
        done: Future = Future()
        done.set_result(score_clip(path, start, end, rotation, self.scorers, pictures).portable())
        return done

    def outcome(self, future: Future) -> ClipOutcome:
        try:
            return ClipOutcome.from_portable(future.result(), self.scorers)
        except Exception as exc:  # a worker that died takes its clip with it, not the batch
            return ClipOutcome(failures=dict.fromkeys(self.scorers, f"worker: {_reason(exc)}"))

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)


_WORKER_SCORERS: list[Scorer] = []


def _start_worker(config_json: str) -> None:
    import cv2

    cv2.setNumThreads(1)
    _WORKER_SCORERS[:] = scorers_for(ScoreConfig.model_validate_json(config_json))


def _score_in_worker(path: Path, start: float, end: float, rotation: int | None, pictures: bool) -> tuple:
    return score_clip(path, start, end, rotation, _WORKER_SCORERS, pictures).portable()


def _lease(ctx: Context, config: ScoreConfig, clip_id: str, run_id: str, recheck: bool) -> bool:
    """Take the clip's lease; with `recheck`, only while it is still pending (another run may have scored it)."""
    with ctx.sessions() as session:
        taken = take_lease(session, STAGE, clip_id, run_id, LEASE_SECONDS)
        if taken and recheck:
            taken = session.scalar(select(Clip.id).join(Video, Video.id == Clip.video_id).where(Clip.id == clip_id, _pending(config))) is not None
        if taken:
            session.commit()
        else:
            session.rollback()
        return taken


def score(ctx: Context, clip_ids: Iterable[str] | None = None, batch_id: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """Score the given clips, a batch's, or every pending one (at most `limit`)."""
    config = ctx.config.score
    clip_ids = list(clip_ids) if clip_ids is not None else None
    params = {"clip_ids": clip_ids, "batch_id": batch_id, "limit": limit, "scorers": dict(configured(config))}
    with ctx.run(STAGE, params) as run:
        with ctx.sessions() as session:
            ids = chosen_items(session, STAGE, batch_id, clip_ids, lambda: pending_clip_ids(session, config, limit), limit)
            rows = {
                row.id: row
                for row in session.execute(
                    select(Clip.id, Clip.start_time, Clip.end_time, Video.storage_path, Video.rotation)
                    .join(Video, Video.id == Clip.video_id)
                    .where(Clip.id.in_(ids))
                )
            }
        pool = ClipPool(config, max(1, min(config.effective_workers(), len(ids))))
        in_flight: deque[tuple[str, Future]] = deque()  # leased clips being scored, oldest first

        def finish(clip_id: str, outcome: ClipOutcome) -> None:
            with ctx.sessions() as session:
                _write(session, clip_id, outcome, run.id)
                release_lease(session, STAGE, clip_id, run.id)
                session.commit()
            if outcome.pictures:
                run.count("pictures_written", write_pictures(ctx.settings.data_dir, clip_id, outcome.pictures))
            run.count("clips")
            run.count("scorings_ok", len(outcome.metrics))
            run.count("scores", sum(len(m) for m in outcome.metrics.values()))
            for scorer, reason in outcome.failures.items():
                run.count("scorings_failed")
                run.error(clip_id, reason, scorer=scorer.name, backend=scorer.backend)

        try:
            for clip_id in run.progress(ids, len(ids), "clips"):
                row = rows.get(clip_id)
                if row is None:
                    run.error(clip_id, "no such clip")
                    continue
                if not _lease(ctx, config, clip_id, run.id, recheck=clip_ids is None and batch_id is None):
                    run.count("clips_skipped")  # another run holds it, or scored it meanwhile
                    continue
                if not row.storage_path:
                    finish(clip_id, ClipOutcome(failures=dict.fromkeys(pool.scorers, "media: the clip's video has no stored file")))
                    continue
                pictures = not has_pictures(ctx.settings.data_dir, clip_id)  # written once: a rescoring leaves them
                in_flight.append((clip_id, pool.submit(ctx.settings.media_path(row.storage_path), row.start_time, row.end_time, row.rotation, pictures)))
                while len(in_flight) > 2 * pool.workers:  # enough queued to keep every worker busy, few leases held
                    finish(in_flight[0][0], pool.outcome(in_flight.popleft()[1]))
            while in_flight:
                finish(in_flight[0][0], pool.outcome(in_flight.popleft()[1]))
        finally:
            pool.close()
            if in_flight:  # stopped early: what was leased and not written is free for the next run now
                with ctx.sessions() as session:
                    for clip_id, _ in in_flight:
                        release_lease(session, STAGE, clip_id, run.id)
                    session.commit()
        if batch_id is not None:
            with ctx.sessions() as session:
                mark_batch_done(session, batch_id, run.id)
                session.commit()
        return {"run_id": run.id, **run.counts}
