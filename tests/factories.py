"""Rows for tests, built through the same upsert helpers the stages use."""

from __future__ import annotations

from talkvid_ops.catalog.models import Clip, Run, Source, Video
from talkvid_ops.catalog.runs import code_version
from talkvid_ops.catalog.status import VideoStatus
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.ids import make_id


def add_run(session, stage: str = "test") -> str:
    import uuid

    run_id = uuid.uuid4().hex
    session.add(Run(id=run_id, stage=stage, params={}, code_version=code_version(), status="succeeded"))
    session.flush()
    return run_id


def add_source(session, locator: str = "https://example.invalid/list", kind: str = "url_list") -> str:
    source_id = make_id("source", kind, locator)
    upsert(session, Source, [dict(id=source_id, kind=kind, locator=locator, name=locator, settings={})], ["kind", "locator"])
    return source_id


def add_video(session, source_id: str, platform_id: str, **fields) -> str:
    video_id = make_id("video", "test", platform_id)
    row = dict(id=video_id, source_id=source_id, platform="test", platform_id=platform_id, status=VideoStatus.PROBED)
    row.update(fields)
    upsert(session, Video, [row], ["platform", "platform_id"])
    return video_id


def add_clip(session, video_id: str, run_id: str, start_frame: int, end_frame: int, fps: float = 25.0, params_hash: str = "p0") -> str:
    clip_id = make_id("clip", video_id, params_hash, start_frame, end_frame)
    upsert(
        session,
        Clip,
        [
            dict(
                id=clip_id,
                video_id=video_id,
                segmenter="test",
                segmenter_version="1",
                params_hash=params_hash,
                params={},
                start_time=start_frame / fps,
                end_time=end_frame / fps,
                start_frame=start_frame,
                end_frame=end_frame,
                fps=fps,
                duration=(end_frame - start_frame) / fps,
                run_id=run_id,
            )
        ],
        ["video_id", "params_hash", "start_frame", "end_frame"],
    )
    return clip_id


def score_row(clip_id: str, backend: str, metric: str, value: float | None, run_id: str, **fields) -> dict:
    """A `score` row for an upsert: one metric of one backend on a clip."""
    return dict(
        id=make_id("score", clip_id, backend, metric),
        clip_id=clip_id,
        metric=metric,
        value=value,
        scorer="test",
        scorer_version="1",
        backend=backend,
        run_id=run_id,
        **fields,
    )
