"""Local ingest: register media files or folders already on disk as a `local_folder` source, with the same probe
and hash as a download. Files stay where they are unless asked to be copied into the data dir.

A file is keyed by its absolute path. Ingesting it again is a no-op while its size is the same and it was not
modified after it was recorded; a file whose content another video already has is recorded as a `duplicate`.
Files that are not usable media are recorded as `failed` with the probe's reason, and the rest go on.

A folder named to ingest (or added with `talkvid source add`) is watched: every download run of the crawl ingests
the files added to it since (`sweep_folder`). A folder that became a source only because files in it were named is
not: naming ~/Downloads/talk.mp4 must not pull in the rest of ~/Downloads.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.db import as_utc
from talkvid_ops.catalog.models import Clip, Segmentation, Source, Transcript, Video
from talkvid_ops.catalog.runs import RunRecorder
from talkvid_ops.catalog.status import Availability, ErrorClass, VideoStatus
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.context import Context
from talkvid_ops.crawl.common import failure_outcome, media_folder, video_id_for
from talkvid_ops.crawl.sources import LOCAL_FOLDER, MEDIA_SUFFIXES, PLATFORM_LOCAL, SourceSettings, add_source, platform_key
from talkvid_ops.media.errors import MediaError
from talkvid_ops.media.hashing import sha256_file
from talkvid_ops.media.probe import probe

INGESTED = "ingested"
UNCHANGED = "unchanged"
# Local files are taken as they are: no height bar (the profiles judge quality later).
LOCAL_SETTINGS = SourceSettings(min_height=0)


def _media_files(folder: Path) -> tuple[list[Path], int]:
    """Media files under `folder` (recursively, hidden entries skipped, sorted), and how many other files it has."""
    found, others = [], 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            if path.suffix.lower() in MEDIA_SUFFIXES:
                found.append(path)
            else:
                others += 1
    return found, others


def _unchanged(existing: Video, path: Path) -> bool:
    """Recorded after its last modification, at its current size: nothing to do."""
    stat = path.stat()
    modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
    return existing.size_bytes == stat.st_size and as_utc(existing.updated_at) >= modified


def _copy_in(path: Path, media_dir: Path, video_id: str) -> Path:
    """Copy into the data dir under a temporary name, then rename: a half-copied file is never visible."""
    final = media_folder(media_dir, video_id) / f"{video_id}{path.suffix.lower()}"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.part")
    shutil.copyfile(path, tmp)
    tmp.replace(final)
    return final


def _forget_derived(session: Session, video_id: str) -> None:
    """The file under this id has new content: its clips (scores and decisions cascade), transcripts and
    segmentations describe the old one, so the next segment run starts over."""
    for model in (Clip, Transcript, Segmentation):
        session.execute(delete(model).where(model.video_id == video_id))


def _ingest_file(session: Session, run: RunRecorder, source_id: str, path: Path, copy: bool, media_dir: Path) -> str:
    key = platform_key(str(path))
    video_id = video_id_for(PLATFORM_LOCAL, key)
    existing = session.get(Video, video_id)
    if existing is not None and _unchanged(existing, path):
        return UNCHANGED
    now = dt.datetime.now(dt.UTC)
    row: dict[str, Any] = dict(
        id=video_id,
        source_id=source_id,
        platform=PLATFORM_LOCAL,
        platform_id=key,
        url=path.as_uri(),
        title=path.stem,
        attempts=(existing.attempts if existing else 0) + 1,
        run_id=run.id,
        size_bytes=path.stat().st_size,
        error_class=None,
        error_message=None,
        updated_at=now,  # an ON CONFLICT update does not run the column's onupdate
    )
    try:
        media = probe(path)
    except MediaError as exc:
        row.update(status=VideoStatus.FAILED, error_class=ErrorClass.MEDIA, error_message=str(exc), storage_path=str(path))
        upsert(session, Video, [row], ["platform", "platform_id"])
        run.error(str(path), str(exc), error_class=ErrorClass.MEDIA, video_id=video_id)
        return VideoStatus.FAILED
    row.update(media.as_row(), sha256=sha256_file(path))
    if existing is not None and existing.sha256 and existing.sha256 != row["sha256"]:
        _forget_derived(session, video_id)
    twin = session.scalar(select(Video.id).where(Video.sha256 == row["sha256"], Video.status == VideoStatus.PROBED, Video.id != video_id).limit(1))
    if twin:
        row.update(status=VideoStatus.DUPLICATE, error_message=f"same content as video {twin}", storage_path=str(path))
        upsert(session, Video, [row], ["platform", "platform_id"])
        return VideoStatus.DUPLICATE
    stored = _copy_in(path, media_dir, video_id) if copy else path
    row.update(
        status=VideoStatus.PROBED,
        storage_path=str(stored),
        downloaded_at=now,
        availability=Availability.AVAILABLE,
        availability_checked_at=now,
        availability_reason=None,
    )
    upsert(session, Video, [row], ["platform", "platform_id"])
    return INGESTED


def _ingest_or_record(session: Session, run: RunRecorder, source_id: str, path: Path, copy: bool, media_dir: Path) -> str:
    """`_ingest_file`, with an unexpected fault (a file gone since the walk, an OSError reading or copying it)
    recorded on its video as transient, so that the next run tries it again and the rest go on."""
    try:
        return _ingest_file(session, run, source_id, path, copy, media_dir)
    except Exception as exc:
        session.rollback()
        reason = f"{type(exc).__name__}: {exc}"
        key = platform_key(str(path))
        video_id = video_id_for(PLATFORM_LOCAL, key)
        existing = session.get(Video, video_id)
        row = dict(
            id=video_id,
            source_id=source_id,
            platform=PLATFORM_LOCAL,
            platform_id=key,
            url=path.as_uri(),
            title=path.stem,
            attempts=(existing.attempts if existing else 0) + 1,
            run_id=run.id,
            status=VideoStatus.FAILED,
            error_class=ErrorClass.TRANSIENT,
            error_message=reason,
            size_bytes=None,  # never "unchanged": the next run tries it again
            updated_at=dt.datetime.now(dt.UTC),
        )
        upsert(session, Video, [row], ["platform", "platform_id"])
        run.error(str(path), reason, error_class=ErrorClass.TRANSIENT, video_id=video_id)
        return failure_outcome(ErrorClass.TRANSIENT)


def _targets(paths: Iterable[str | Path], run: RunRecorder) -> list[tuple[Path, list[Path], bool]]:
    """(folder that becomes the source, files to ingest, whether the folder itself was named) for each path.

    Missing paths and named files that are not media by their extension are recorded as errors and make no source,
    as such files inside a folder are skipped.
    """
    targets = []
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if path.is_dir():
            files, others = _media_files(path)
            run.count("skipped_not_media", others)
            targets.append((path, files, True))
        elif path.is_file() and path.suffix.lower() in MEDIA_SUFFIXES:
            targets.append((path.parent, [path], False))
        elif path.is_file():
            run.error(
                str(path), f"not a media file by its extension ({path.suffix or 'none'}): ingest takes folders and video files (.mp4, .mov, .mkv, .webm...)"
            )
        else:
            run.error(str(path), "no such file or folder")
    return targets


def _local_source(session: Session, folder: Path, name: str | None, watch: bool) -> str:
    """The id of the folder's source. A new one gets the local settings; an existing one keeps its name (unless
    `name` is given) and settings, except that naming the folder itself turns watching on."""
    existing = session.scalar(select(Source).where(Source.kind == LOCAL_FOLDER, Source.locator == str(folder)))
    settings = None
    if existing is None:
        settings = LOCAL_SETTINGS.model_copy(update={"watch": watch})
    elif watch and not existing.settings.get("watch", True):
        settings = SourceSettings.load(existing.settings).model_copy(update={"watch": True})
    return add_source(session, str(folder), kind=LOCAL_FOLDER, name=name, settings=settings)[0]


def ingest_paths(ctx: Context, paths: Iterable[str | Path], copy: bool = False, name: str | None = None) -> dict[str, Any]:
    """Register local media files and folders (a folder is searched recursively); returns run id and counts."""
    paths = [str(p) for p in paths]
    with ctx.run("ingest", {"paths": paths, "copy": copy, "name": name}) as run:
        source_ids = []
        with ctx.sessions() as session:
            for folder, files, named in _targets(paths, run):
                source_id = _local_source(session, folder, name, watch=named)
                source_ids.append(source_id)
                session.commit()  # a file's fault rolls back only that file
                for file in files:
                    run.count(_ingest_or_record(session, run, source_id, file, copy, ctx.settings.media_dir))
                    session.commit()
            session.commit()
        return {"run_id": run.id, "source_ids": sorted(set(source_ids)), **run.counts}


def sweep_folder(session: Session, run: RunRecorder, source: Source, media_dir: Path, budget: int | None) -> int:
    """Ingest the files of a watched folder source that are new or changed since they were recorded (the others are
    no-ops), in place, at most `budget` of them; returns how many were worked on. A folder that is not there is an
    error of the source: its videos stay, and the next run looks again."""
    folder = Path(source.locator)
    if not folder.is_dir():
        reason = f"folder {folder} is not there (moved, deleted or not mounted?)"
        source.last_error = f"{ErrorClass.SETUP}: {reason}"
        run.error(source.id, reason, error_class=ErrorClass.SETUP, kind="source", locator=source.locator)
        return 0
    files, others = _media_files(folder)
    run.count("skipped_not_media", others)
    worked = 0
    for file in files:
        if budget is not None and worked >= budget:
            break  # the rest wait for the next run
        outcome = _ingest_or_record(session, run, source.id, file, False, media_dir)
        run.count(outcome)
        session.commit()
        worked += outcome != UNCHANGED
    source.last_crawled_at, source.last_error = dt.datetime.now(dt.UTC), None
    return worked
