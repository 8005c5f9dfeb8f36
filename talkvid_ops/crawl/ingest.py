"""Local ingest: register media files or folders already on disk as a `local_folder` source, with the same probe
and hash as a download. Files stay where they are unless asked to be copied into the data dir.

A file is keyed by its absolute path. Ingesting it again is a no-op while its size is the same and it was not
modified after it was recorded; a file whose content another video already has is recorded as a `duplicate`.
Files that are not usable media are recorded as `failed` with the probe's reason, and the rest go on. A file or
folder that cannot be read (permissions, a disk fault) is a transient failure, tried again by the next run; a path
that cannot be resolved (a symlink loop) or listed is an error of the run naming it. A file name that is not UTF-8 is
stored losslessly (see `talkvid_ops.config.stored_path`) and shown with its odd bytes escaped.

A folder named to ingest (or added with `talkvid source add`) is watched: every download run of the crawl ingests
the files added to it since (`sweep_folder`). A folder that became a source only because files in it were named is
not: naming ~/Downloads/talk.mp4 must not pull in the rest of ~/Downloads.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.db import as_utc
from talkvid_ops.catalog.models import Clip, Segmentation, Source, Transcript, Video
from talkvid_ops.catalog.runs import RunRecorder
from talkvid_ops.catalog.status import Availability, ErrorClass, MediaFault, VideoStatus
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.config import display_path, path_from_stored, stored_path
from talkvid_ops.context import Context
from talkvid_ops.crawl.common import failure_outcome, media_folder, video_id_for
from talkvid_ops.crawl.sources import LOCAL_FOLDER, MEDIA_SUFFIXES, PLATFORM_LOCAL, SourceSettings, add_source, platform_key
from talkvid_ops.media.errors import MediaError
from talkvid_ops.media.probe import probe_and_hash

INGESTED = "ingested"
UNCHANGED = "unchanged"
# Local files are taken as they are: no height bar (the profiles judge quality later).
LOCAL_SETTINGS = SourceSettings(min_height=0)


def _media_files(folder: Path, run: RunRecorder) -> tuple[list[Path], list[str]]:
    """Media files under `folder` (recursively, hidden entries skipped, sorted), counting the other files. A
    subfolder that cannot be listed is an error of the run naming it; returns the files and those errors' reasons."""
    found, others, unreadable = [], 0, []

    def unlistable(exc: OSError) -> None:
        where = display_path(exc.filename if exc.filename is not None else folder)
        reason = f"cannot list the folder {where}: {exc.strerror or exc}"
        run.error(where, reason, error_class=ErrorClass.TRANSIENT, kind="folder")
        unreadable.append(reason)

    for root, dirs, files in os.walk(folder, onerror=unlistable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            if path.suffix.lower() in MEDIA_SUFFIXES:
                found.append(path)
            else:
                others += 1
    run.count("skipped_not_media", others)
    return found, unreadable


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


def _key(path: Path) -> str:
    """A local file's platform id: its absolute path as stored."""
    return platform_key(stored_path(path))


def _video_id(path: Path) -> str:
    return video_id_for(PLATFORM_LOCAL, _key(path))


def _local_row(run: RunRecorder, source_id: str, path: Path, existing: Video | None) -> dict[str, Any]:
    """The columns every ingest outcome writes: which file, which run tried it, how often."""
    key = _key(path)
    return dict(
        id=video_id_for(PLATFORM_LOCAL, key),
        source_id=source_id,
        platform=PLATFORM_LOCAL,
        platform_id=key,
        url=path.as_uri(),
        title=display_path(path.stem),
        attempts=(existing.attempts if existing else 0) + 1,
        run_id=run.id,
        error_class=None,
        error_message=None,
        updated_at=dt.datetime.now(dt.UTC),  # an ON CONFLICT update does not run the column's onupdate
    )


def _check_readable(path: Path, st: os.stat_result) -> None:
    """Raise MediaError for what is not a regular file (a FIFO would block the reader forever), and OSError when its
    content cannot be read: a permission or disk fault is transient, unlike a broken file."""
    if not stat.S_ISREG(st.st_mode):
        raise MediaError(MediaFault.UNREADABLE, "not a regular file (a FIFO, socket or device)")
    with open(path, "rb") as fh:
        fh.read(1)


def _ingest_file(session: Session, run: RunRecorder, source_id: str, path: Path, copy: bool, media_dir: Path) -> str:
    video_id = _video_id(path)
    existing = session.get(Video, video_id)
    if existing is not None and _unchanged(existing, path):
        return UNCHANGED
    st = path.stat()
    row = _local_row(run, source_id, path, existing)
    row.update(size_bytes=st.st_size)
    now = row["updated_at"]
    try:
        _check_readable(path, st)
        media, sha256 = probe_and_hash(path)  # one read of the file for both
    except MediaError as exc:
        row.update(status=VideoStatus.FAILED, error_class=ErrorClass.MEDIA, error_message=str(exc), storage_path=stored_path(path))
        upsert(session, Video, [row], ["platform", "platform_id"])
        run.error(display_path(path), str(exc), error_class=ErrorClass.MEDIA, video_id=video_id)
        return VideoStatus.FAILED
    row.update(media.as_row(), sha256=sha256)
    if existing is not None and existing.sha256 and existing.sha256 != row["sha256"]:
        _forget_derived(session, video_id)
    twin = session.scalar(select(Video.id).where(Video.sha256 == row["sha256"], Video.status == VideoStatus.PROBED, Video.id != video_id).limit(1))
    if twin:
        row.update(status=VideoStatus.DUPLICATE, error_message=f"same content as video {twin}", storage_path=stored_path(path))
        upsert(session, Video, [row], ["platform", "platform_id"])
        return VideoStatus.DUPLICATE
    stored = _copy_in(path, media_dir, video_id) if copy else path
    row.update(
        status=VideoStatus.PROBED,
        storage_path=stored_path(stored),
        downloaded_at=now,
        availability=Availability.AVAILABLE,
        availability_checked_at=now,
        availability_reason=None,
    )
    upsert(session, Video, [row], ["platform", "platform_id"])
    return INGESTED


def _ingest_or_record(session: Session, run: RunRecorder, source_id: str, path: Path, copy: bool, media_dir: Path) -> str:
    """`_ingest_file`, with an unexpected fault (a file gone since the walk, unreadable, an OSError reading or copying
    it) recorded on its video as transient, so that the next run tries it again and the rest go on."""
    try:
        return _ingest_file(session, run, source_id, path, copy, media_dir)
    except Exception as exc:
        session.rollback()
        reason = display_path(f"{type(exc).__name__}: {exc}")
        row = _local_row(run, source_id, path, session.get(Video, _video_id(path)))
        row.update(
            status=VideoStatus.FAILED,
            error_class=ErrorClass.TRANSIENT,
            error_message=reason,
            size_bytes=None,  # never "unchanged": the next run tries it again
        )
        upsert(session, Video, [row], ["platform", "platform_id"])
        run.error(display_path(path), reason, error_class=ErrorClass.TRANSIENT, video_id=row["id"])
        return failure_outcome(ErrorClass.TRANSIENT)


def _targets(paths: Iterable[str | Path], run: RunRecorder) -> list[tuple[Path, list[Path], bool]]:
    """(folder that becomes the source, files to ingest, whether the folder itself was named) for each path.

    Missing paths, paths that cannot be resolved (a symlink loop) and named files that are not media by their
    extension are recorded as errors and make no source, as such files inside a folder are skipped.
    """
    targets = []
    for raw in paths:
        given = Path(raw).expanduser()
        try:
            path = given.resolve()
            is_dir, is_file = path.is_dir(), path.is_file()
        except RuntimeError:  # Path.resolve's report of a symlink loop
            run.error(display_path(given.absolute()), "a symlink loop: following its links never reaches a file or folder")
            continue
        except OSError as exc:
            run.error(display_path(given.absolute()), f"cannot resolve the path: {exc.strerror or exc}")
            continue
        if is_dir:
            targets.append((path, _media_files(path, run)[0], True))
        elif is_file and path.suffix.lower() in MEDIA_SUFFIXES:
            targets.append((path.parent, [path], False))
        elif is_file:
            suffix = display_path(path.suffix) or "none"
            run.error(display_path(path), f"not a media file by its extension ({suffix}): ingest takes folders and video files (.mp4, .mov, .mkv, .webm...)")
        else:
            run.error(display_path(path), "no such file or folder")
    return targets


def _local_source(session: Session, folder: Path, name: str | None, watch: bool) -> str:
    """The id of the folder's source. A new one gets the local settings; an existing one keeps its name (unless
    `name` is given) and settings, except that naming the folder itself turns watching on."""
    existing = session.scalar(select(Source).where(Source.kind == LOCAL_FOLDER, Source.locator == stored_path(folder)))
    settings = None
    if existing is None:
        settings = LOCAL_SETTINGS.model_copy(update={"watch": watch})
    elif watch and not existing.settings.get("watch", True):
        settings = SourceSettings.load(existing.settings).model_copy(update={"watch": True})
    return add_source(session, os.fspath(folder), kind=LOCAL_FOLDER, name=name, settings=settings)[0]


def ingest_paths(ctx: Context, paths: Iterable[str | Path], copy: bool = False, name: str | None = None) -> dict[str, Any]:
    """Register local media files and folders (a folder is searched recursively); returns run id and counts."""
    paths = [os.fspath(p) for p in paths]
    with ctx.run("ingest", {"paths": [display_path(p) for p in paths], "copy": copy, "name": name}) as run:
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
    folder = path_from_stored(source.locator)
    if not folder.is_dir():
        reason = f"folder {display_path(folder)} is not there (moved, deleted or not mounted?)"
        source.last_error = f"{ErrorClass.SETUP}: {reason}"
        run.error(source.id, reason, error_class=ErrorClass.SETUP, kind="source", locator=source.locator)
        return 0
    files, unreadable = _media_files(folder, run)
    worked = 0
    for file in files:
        if budget is not None and worked >= budget:
            break  # the rest wait for the next run
        outcome = _ingest_or_record(session, run, source.id, file, False, media_dir)
        run.count(outcome)
        session.commit()
        worked += outcome != UNCHANGED
    source.last_crawled_at = dt.datetime.now(dt.UTC)
    source.last_error = f"{ErrorClass.TRANSIENT}: " + "; ".join(unreadable) if unreadable else None
    return worked
