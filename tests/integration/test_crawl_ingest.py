"""`talkvid ingest`: local files and folders become a local_folder source, probed and hashed; bad files are
recorded with their reason; re-ingesting is a no-op; a watched folder's new files come in with each crawl."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from talkvid_ops.catalog.models import Clip, Run, Segmentation, Source, Video
from talkvid_ops.cli import cli
from talkvid_ops.crawl import ingest
from talkvid_ops.crawl.common import media_folder
from talkvid_ops.crawl.discover import discover
from talkvid_ops.crawl.download import download
from talkvid_ops.crawl.ingest import ingest_paths
from talkvid_ops.crawl.recheck import recheck
from talkvid_ops.crawl.sources import add_source
from talkvid_ops.segment.stage import segment
from tests.factories import add_clip, add_run
from tests.loopback import loopback_context


@pytest.fixture
def drop_folder(pyfeat_media, tmp_path) -> Path:
    """A real video, a zero-byte file, a text file renamed .mp4, a truncated mp4, and a note that is not media."""
    folder = tmp_path / "drop"
    (folder / "day2").mkdir(parents=True)
    shutil.copyfile(pyfeat_media["single_face.mp4"], folder / "good.mp4")
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("meeting notes, not a video\n" * 40)
    lecture = pyfeat_media["WolfgangLanger_Pexels.mp4"].read_bytes()
    (folder / "day2" / "cut.mp4").write_bytes(lecture[: len(lecture) // 3])
    (folder / "README.txt").write_text("what is in here")
    (folder / ".DS_Store").write_bytes(b"\0\1")
    return folder


def _ingest_cli(*args: str) -> dict:
    result = CliRunner().invoke(cli, ["ingest", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_ingest_folder_registers_the_good_file_and_records_three_failures(drop_folder, talkvid_env):
    CliRunner().invoke(cli, ["init"], catch_exceptions=False)
    first = _ingest_cli(str(drop_folder), "--name", "field-recordings")
    assert (first["ingested"], first["failed"], first["skipped_not_media"]) == (1, 3, 1)
    ctx = loopback_context(talkvid_env, f"sqlite:///{talkvid_env / 'catalog.sqlite'}")
    with ctx.sessions() as session:
        (source,) = session.scalars(select(Source)).all()
        videos = {Path(v.storage_path).name: v for v in session.scalars(select(Video))}
    assert (source.kind, source.locator, source.name, source.settings["min_height"]) == ("local_folder", str(drop_folder), "field-recordings", 0)
    good = videos["good.mp4"]
    assert (good.status, good.platform, good.storage_path) == ("probed", "local", str(drop_folder / "good.mp4"))  # not copied
    assert good.sha256 == hashlib.sha256((drop_folder / "good.mp4").read_bytes()).hexdigest()
    assert (good.width, good.height, good.fps, good.has_audio, good.availability) == (640, 360, 30.0, True, "available")
    reasons = {name: (v.status, v.error_class, v.error_message) for name, v in videos.items() if name != "good.mp4"}
    assert reasons["empty.mp4"] == ("failed", "media", "empty file (0 bytes)")
    assert reasons["notes.mp4"][:2] == ("failed", "media") and "not readable as media" in reasons["notes.mp4"][2]
    assert reasons["cut.mp4"][:2] == ("failed", "media") and reasons["cut.mp4"][2].startswith("truncated: video packets end at")
    status = json.loads(CliRunner().invoke(cli, ["status", "--json"]).output)
    assert status["video_failures"] == {"media": 3} and status["runs"][0]["status"] == "partial"

    again = _ingest_cli(str(drop_folder))
    assert again["unchanged"] == 4 and "ingested" not in again and "failed" not in again
    with ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Video)) == 4
        assert session.scalar(select(func.count()).select_from(Source)) == 1


def test_a_changed_file_is_ingested_again(drop_folder, sqlite_url, tmp_path, pyfeat_media):
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    ingest_paths(ctx, [drop_folder / "empty.mp4"])
    shutil.copyfile(pyfeat_media["no_face.mp4"], drop_folder / "empty.mp4")
    later = os.stat(drop_folder / "empty.mp4").st_mtime + 5
    os.utime(drop_folder / "empty.mp4", (later, later))
    result = ingest_paths(ctx, [drop_folder / "empty.mp4"])
    assert result["ingested"] == 1
    with ctx.sessions() as session:
        (video,) = session.scalars(select(Video)).all()
    assert (video.status, video.error_message, video.height, video.attempts) == ("probed", None, 540, 2)


def test_a_file_failing_to_read_is_recorded_and_the_rest_are_ingested(pyfeat_media, sqlite_url, tmp_path, monkeypatch):
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    folder = tmp_path / "drop"
    folder.mkdir()
    shutil.copyfile(pyfeat_media["single_face.mp4"], folder / "a.mp4")
    shutil.copyfile(pyfeat_media["no_face.mp4"], folder / "b.mp4")
    real_read = ingest.probe_and_hash

    def unreadable_a(path):
        if path.name == "a.mp4":
            raise OSError(5, "Input/output error", str(path))
        return real_read(path)

    monkeypatch.setattr(ingest, "probe_and_hash", unreadable_a)
    result = ingest_paths(ctx, [folder])
    assert (result["ingested"], result["failed_transient"], result["errors"]) == (1, 1, 1)
    with ctx.sessions() as session:
        videos = {v.title: v for v in session.scalars(select(Video))}
        (error,) = session.get(Run, result["run_id"]).errors
    assert videos["b"].status == "probed"
    assert (videos["a"].status, videos["a"].error_class, videos["a"].attempts) == ("failed", "transient", 1)
    assert "Input/output error" in videos["a"].error_message and error["video_id"] == videos["a"].id
    monkeypatch.undo()
    again = ingest_paths(ctx, [folder])  # the fault passed: the file is tried again, the other one is unchanged
    assert (again["ingested"], again["unchanged"]) == (1, 1)


def test_a_file_with_new_content_loses_its_old_clips(pyfeat_media, sqlite_url, tmp_path):
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    path = tmp_path / "talk.mp4"
    shutil.copyfile(pyfeat_media["single_face.mp4"], path)
    ingest_paths(ctx, [path])
    with ctx.sessions() as session:
        (video,) = session.scalars(select(Video)).all()
        add_clip(session, video.id, add_run(session), 0, 25)
        session.commit()
    segment(ctx)
    with ctx.sessions() as session:
        assert session.scalar(select(Segmentation.status)) == "done"
    shutil.copyfile(pyfeat_media["no_face.mp4"], path)
    later = os.stat(path).st_mtime + 5
    os.utime(path, (later, later))
    assert ingest_paths(ctx, [path])["ingested"] == 1
    with ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Clip)) == 0
        assert session.scalar(select(func.count()).select_from(Segmentation)) == 0
        assert session.get(Video, video.id).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_copy_duplicates_and_missing_paths(drop_folder, catalog_url, tmp_path):
    ctx = loopback_context(tmp_path / "data", catalog_url)
    copied = ingest_paths(ctx, [drop_folder / "good.mp4"], copy=True)
    assert copied["ingested"] == 1
    twin = tmp_path / "elsewhere" / "same-talk.mov"
    twin.parent.mkdir()
    shutil.copyfile(drop_folder / "good.mp4", twin)
    result = ingest_paths(ctx, [twin, tmp_path / "nowhere"])
    assert (result["duplicate"], result["errors"]) == (1, 1)
    with ctx.sessions() as session:
        videos = {v.platform_id: v for v in session.scalars(select(Video))}
    original, duplicate = videos[str(drop_folder / "good.mp4")], videos[str(twin)]
    stored = Path(original.storage_path)
    assert stored == media_folder(ctx.settings.media_dir, original.id) / f"{original.id}.mp4"
    assert stored.read_bytes() == (drop_folder / "good.mp4").read_bytes()
    assert (duplicate.status, duplicate.error_message) == ("duplicate", f"same content as video {original.id}")
    assert len(result["source_ids"]) == 1 and result["source_ids"][0] != copied["source_ids"][0]


def test_recheck_notices_a_local_file_that_disappeared(drop_folder, sqlite_url, tmp_path):
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    ingest_paths(ctx, [drop_folder])
    (drop_folder / "good.mp4").unlink()
    assert recheck(ctx)["gone"] == 1
    with ctx.sessions() as session:
        good = session.scalar(select(Video).where(Video.status == "probed"))
    assert good.availability == "gone" and good.availability_reason == f"file {drop_folder / 'good.mp4'} is missing"


def _sources(ctx) -> list[Source]:
    with ctx.sessions() as session:
        return session.scalars(select(Source).order_by(Source.created_at)).all()


def _videos_of(ctx, source_id: str) -> dict[str, Video]:
    with ctx.sessions() as session:
        return {Path(v.platform_id).name: v for v in session.scalars(select(Video).where(Video.source_id == source_id))}


def test_ingest_again_keeps_the_sources_name_and_a_named_non_media_file_makes_no_source(drop_folder, sqlite_url, tmp_path):
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    ingest_paths(ctx, [drop_folder], name="myvids")
    ingest_paths(ctx, [drop_folder])
    ingest_paths(ctx, [drop_folder / "good.mp4"])
    assert [s.name for s in _sources(ctx)] == ["myvids"]  # not renamed to "drop"
    ingest_paths(ctx, [drop_folder], name="field-recordings")
    assert [s.name for s in _sources(ctx)] == ["field-recordings"]  # --name renames

    stray = tmp_path / "somefile.yaml"
    stray.write_text("crawl:\n  retries: 3\n")
    result = ingest_paths(ctx, [stray])
    assert (result["errors"], result["source_ids"]) == (1, [])
    assert [s.locator for s in _sources(ctx)] == [str(drop_folder)]  # no source for the yaml file's folder
    with ctx.sessions() as session:
        (error,) = session.get(Run, result["run_id"]).errors
    assert error["item"] == str(stray) and error["reason"].startswith("not a media file by its extension (.yaml)")


def test_a_watched_folder_brings_in_new_files_with_every_download_run(pyfeat_media, sqlite_url, tmp_path):
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    watched = tmp_path / "watched"
    watched.mkdir()
    with ctx.sessions() as session:
        source_id, _ = add_source(session, str(watched))  # `talkvid source add FOLDER`
        session.commit()
    assert discover(ctx)["sources"] == 0  # nothing to list: the download run looks at the folder
    shutil.copyfile(pyfeat_media["single_face.mp4"], watched / "a.mp4")
    first = download(ctx)
    assert (first["sources"], first["ingested"]) == (1, 1)

    (watched / "day2").mkdir()
    shutil.copyfile(pyfeat_media["no_face.mp4"], watched / "day2" / "b.mov")
    (watched / "day2" / "notes.txt").write_text("not a video")
    second = download(ctx)
    assert (second["ingested"], second["unchanged"], second["skipped_not_media"]) == (1, 1, 1)
    videos = _videos_of(ctx, source_id)
    assert {n: (v.status, v.storage_path) for n, v in videos.items()} == {
        "a.mp4": ("probed", str(watched / "a.mp4")),
        "b.mov": ("probed", str(watched / "day2" / "b.mov")),
    }
    assert (videos["a.mp4"].run_id, videos["b.mov"].run_id) == (first["run_id"], second["run_id"])  # so the run publishes them

    for name in ("c.mp4", "d.mp4"):
        shutil.copyfile(pyfeat_media["WolfgangLanger_Pexels.mp4"], watched / name)
    capped = download(ctx, limit=1)
    assert capped.get("ingested", 0) + capped.get("duplicate", 0) == 1 and len(_videos_of(ctx, source_id)) == 3
    rest = download(ctx)
    assert rest.get("ingested", 0) + rest.get("duplicate", 0) == 1 and len(_videos_of(ctx, source_id)) == 4

    shutil.rmtree(watched)
    missing = download(ctx)
    assert missing["errors"] == 1 and len(_videos_of(ctx, source_id)) == 4  # what we hold stays
    (source,) = _sources(ctx)
    assert source.last_error == f"setup: folder {watched} is not there (moved, deleted or not mounted?)"
    with ctx.sessions() as session:
        (error,) = session.get(Run, missing["run_id"]).errors
    assert (error["item"], error["error_class"], error["locator"]) == (source_id, "setup", str(watched))


def test_a_folder_that_holds_a_named_file_is_not_watched_until_it_is_named(pyfeat_media, sqlite_url, tmp_path):
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    shutil.copyfile(pyfeat_media["single_face.mp4"], downloads / "talk.mp4")
    shutil.copyfile(pyfeat_media["no_face.mp4"], downloads / "holiday.mp4")
    (source_id,) = ingest_paths(ctx, [downloads / "talk.mp4"])["source_ids"]
    assert download(ctx).get("ingested") is None  # naming talk.mp4 does not pull in the rest of the folder
    assert set(_videos_of(ctx, source_id)) == {"talk.mp4"}
    ingest_paths(ctx, [downloads])
    shutil.copyfile(pyfeat_media["WolfgangLanger_Pexels.mp4"], downloads / "lecture.mp4")
    assert download(ctx)["ingested"] == 1  # named itself, the folder is watched from now on
    assert set(_videos_of(ctx, source_id)) == {"talk.mp4", "holiday.mp4", "lecture.mp4"}
    ingest_paths(ctx, [downloads / "talk.mp4"])  # naming a file in it again does not stop the watch
    shutil.copyfile(pyfeat_media["single_face.mp4"], downloads / "again.mp4")
    assert download(ctx)["duplicate"] == 1
