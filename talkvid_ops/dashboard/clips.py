"""The clip view of the catalog page (`clips/{clip_id}`): what `talkvid clips show` prints (metadata, scores with
their backends, the decision per stored profile with each failing criterion, value and bound, labels, lineage) and a
player on the clip's time range.

The player plays the source video itself (`clips/{id}/media`, range requests, a `#t=start,end` media fragment) when
a browser can: an H.264, VP8, VP9 or AV1 stream in an MP4 or WebM file. Any other source (HEVC, MPEG-4 part 2, a
Matroska or QuickTime file) gets `clips/{id}/preview.mp4`: the clip's range cut to H.264 once with ffmpeg and kept
under `<data dir>/previews/`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from talkvid_ops.dashboard.page import _code, _e, _page, _table
from talkvid_ops.dashboard.whatif import move_query
from talkvid_ops.errors import TalkvidError

BROWSER_CODECS = frozenset({"h264", "vp8", "vp9", "av1"})
BROWSER_CONTAINERS = frozenset({".mp4", ".m4v", ".webm"})


@dataclass(frozen=True)
class PreviewEncoding:
    """A small H.264 preview: fast to make, good enough to look at (the `media.cut.Encoding` a cut needs)."""

    video_preset: str = "veryfast"
    video_crf: int = 28
    audio_bitrate: str = "96k"
    crop_size: int = 0  # previews are not cropped


def browser_plays(codec: str | None, file: Path) -> bool:
    """Whether a browser plays the file's video as it is (a small allow-list; anything else gets a preview)."""
    return (codec or "").lower() in BROWSER_CODECS and file.suffix.lower() in BROWSER_CONTAINERS


def preview_path(data_dir: Path, clip_id: str) -> Path:
    return data_dir / "previews" / f"{clip_id}.mp4"


def make_preview(source: Path, out: Path, clip: Any, has_audio: bool) -> Path:
    """The clip's frames of its source as H.264 in out (once: an existing preview is reused)."""
    from talkvid_ops.media.cut import CutRequest, cut_clip

    if out.is_file():
        return out
    request = CutRequest(source, out, clip.start_frame, clip.end_frame, clip.fps, has_audio, clip.start_time, clip.end_time)
    return cut_clip(request, PreviewEncoding())


def _source(session: Any, clip_id: str) -> tuple[Any, Any]:
    from talkvid_ops.catalog.models import Clip, Video

    clip = session.get(Clip, clip_id)
    if clip is None:
        raise HTTPException(404, f"no clip {clip_id} in the catalog")
    return clip, session.get(Video, clip.video_id)


def _value(value: Any) -> str:
    return "-" if value is None else _e(f"{value:g}" if isinstance(value, float) else value)


def render_clip(report: dict[str, Any], player: str) -> str:
    from talkvid_ops.curate.clips_cli import bounds_text

    meta = [[_e(key), _value(report[key])] for key in ("video_id", "start_time", "end_time", "duration", "fps", "language", "speech_coverage")]
    scores = [[_code(s["metric"]), _e(s["backend"]), _value(s["value"]), _e(f"{s['scorer']} {s['scorer_version']}")] for s in report["scores"]]
    decisions = [
        [_code(d["profile"]), f'<span class="{_e(d["status"])}-text">{_e(d["status"])}</span>',
         "<br>".join(f'{_e(bounds_text(f))} <a class="what-if" href="../{_e(f["what_if"])}">what if?</a>' for f in d["failures"])
         or '<span class="meta">none</span>', _e(", ".join(d["missing"]))]
        for d in report["decisions"]
    ]  # fmt: skip
    labels = [[_e(x["name"]), _e(x["value"]), _e(x["provenance"]), _e(x["subject"]), _e(x["origin"])] for x in report["labels"]]
    lineage = [[_e(key), _value(value)] for key, value in report["lineage"].items()]
    body = "".join([
        f'<h1>Clip {_code(report["clip_id"])}</h1><p class="meta"><a href="../">catalog</a> &middot; <a href="../whatif">what if?</a></p>',
        player,
        "<h2>Clip</h2>", _table(["", ""], meta, ""),
        "<h2>Decisions</h2>", f'<div id="decisions">{_table(["profile", "status", "failing criteria (value, bound)", "missing"], decisions, "no decision yet: run talkvid decide")}</div>',
        "<h2>Scores</h2>", f'<div id="scores">{_table(["metric", "backend", "value", "scorer"], scores, "no scores yet")}</div>',
        "<h2>Labels</h2>", _table(["name", "value", "provenance", "subject", "origin"], labels, "no labels"),
        "<h2>Lineage</h2>", _table(["", ""], lineage, ""),
    ])  # fmt: skip
    return _page(f"clip {report['clip_id']}", body)


def _player(clip_id: str, start: float, end: float, plays: bool) -> str:
    base = quote(clip_id, safe="")
    if plays:
        src, note = f"{base}/media#t={start:.3f},{end:.3f}", f"{start:.2f}-{end:.2f} s of its source video"
    else:
        src, note = f"{base}/preview.mp4", "an H.264 preview of the clip (the source's codec or container does not play in browsers)"
    return f'<video id="player" controls preload="auto" width="640" src="{_e(src)}"></video><p class="meta" id="player-note">{_e(note)}</p>'


def clip_router(catalog: Callable[..., Any]) -> APIRouter:
    """`clips/{clip_id}` (the page), `clips/{clip_id}/media` (its source file) and `clips/{clip_id}/preview.mp4`."""
    router = APIRouter(prefix="/clips")
    CatalogDep = Depends(catalog)

    # plain `def` endpoints: FastAPI runs them in its threadpool, off the server's event loop
    @router.get("/{clip_id}", response_class=HTMLResponse)
    def clip_page(clip_id: str, ctx=CatalogDep) -> str:
        from talkvid_ops.curate.decide import stored_or_loaded
        from talkvid_ops.curate.inspect import clip_report

        with ctx.sessions() as session:
            clip, video = _source(session, clip_id)
            try:
                report = clip_report(session, clip_id)
            except TalkvidError as exc:
                raise HTTPException(404, str(exc)) from None
            for decision in report["decisions"]:
                profile = stored_or_loaded(session, decision["profile"])
                for failure in decision["failures"]:
                    failure["what_if"] = move_query(profile, failure["criterion"], failure["backend"])
        file = ctx.settings.media_path(video.storage_path)
        plays = file is not None and browser_plays(video.video_codec, file)
        return render_clip(report, _player(clip_id, clip.start_time, clip.end_time, plays))

    @router.get("/{clip_id}/media")
    def source_media(clip_id: str, ctx=CatalogDep) -> FileResponse:
        from talkvid_ops.curate.validation.views import source_video_file

        with ctx.sessions() as session:
            _, video = _source(session, clip_id)
        return FileResponse(source_video_file(ctx, video.storage_path, f"clip {clip_id}"))

    @router.get("/{clip_id}/preview.mp4")
    def preview(clip_id: str, ctx=CatalogDep) -> FileResponse:
        from talkvid_ops.curate.validation.views import source_video_file
        from talkvid_ops.media.errors import MediaError

        with ctx.sessions() as session:
            clip, video = _source(session, clip_id)
        file = source_video_file(ctx, video.storage_path, f"clip {clip_id}")
        try:
            return FileResponse(make_preview(file, preview_path(ctx.settings.data_dir, clip_id), clip, bool(video.has_audio)), media_type="video/mp4")
        except MediaError as exc:
            raise HTTPException(422, f"no preview of clip {clip_id}: {exc}") from None

    return router
