"""Releases that cannot be corrupted: a foreign folder is refused untouched, a release is published whole (kill -9
anywhere leaves the old release or the new one), two exports into one folder take turns, clip files are verified
before reuse, a full disk is one clear error that leaves the previous release as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import Release, Run
from talkvid_ops.errors import TalkvidError
from talkvid_ops.export.release import export
from talkvid_ops.media.hashing import sha256_file
from tests.factories import add_run
from tests.release_catalog import (
    MEDIA_CLIPS,
    PROFILE,
    add_decision,
    add_profile,
    build_media_catalog,
    build_people_catalog,
    draw_and_export,
    face_videos,
    make_context,
)

ROOT = Path(__file__).resolve().parents[2]
MEDIA_FORMATS = ["talkvid-json", "jsonl", "clips", "webdataset"]
OTHER_PROFILE = "talkvid-paper"
# the clips talkvid-paper passes in the media catalog below: some of talkvid-code's, and w3 it failed
OTHER_PASSED = ("w1", "a1", "b1", "w3")
EXPORT_SCRIPT = """
import json, sys
from pathlib import Path
from tests.release_catalog import make_context
from talkvid_ops.export.release import export
url, data, profile, out, formats = sys.argv[1:6]
result = export(make_context(url, Path(data), bench_spec=None), profile, out, formats=formats.split(","))
print(json.dumps({"release_id": result["release_id"], "errors": result["errors"]}))
"""


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _whole_release(target: Path) -> str:
    """The release id the folder holds, after checking it is whole: exactly the manifest's files, each hash verifying."""
    manifest = json.loads((target / "manifest.json").read_text())
    on_disk = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()}
    assert on_disk == set(manifest["files"]) | {"manifest.json"}
    for rel, digest in manifest["files"].items():
        assert sha256_file(target / rel) == digest, rel
        assert (target / rel).stat().st_size > 0, rel
    return manifest["release_id"]


def _decodes(path: Path) -> bool:
    done = subprocess.run(["ffmpeg", "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"], capture_output=True)
    return done.returncode == 0 and not done.stderr


@pytest.fixture
def media_catalog(tmp_path, cache_dir, pyfeat_media):
    """Real media; talkvid-code passes 7 clips, talkvid-paper 4 (three of them the same)."""
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    db.upgrade(url)
    with db.session_factory(url)() as session:
        catalog = build_media_catalog(session, face_videos(cache_dir, pyfeat_media), url)
        other, run_id = add_profile(session, OTHER_PROFILE), add_run(session, "decide")
        for name in MEDIA_CLIPS:
            add_decision(session, catalog.clips[name], other, run_id, "passed" if name in OTHER_PASSED else "failed")
        session.commit()
    yield url
    db.get_engine(url).dispose()


def _start(url: str, data: Path, profile: str, out: Path, formats=MEDIA_FORMATS, **env: str) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **env}
    command = [sys.executable, "-c", EXPORT_SCRIPT, url, str(data), profile, str(out), ",".join(formats)]
    return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def test_export_refuses_a_folder_that_is_not_a_release_and_touches_nothing(sqlite_url, tmp_path):
    ctx = make_context(sqlite_url, tmp_path)
    built = build_people_catalog(ctx, tmp_path)
    foreign = tmp_path / "my-project"
    for rel, text in {"README.md": "# mine\n", "report.html": "<p>mine</p>", "manifest.json": '{"mine": 1}', "clips/keep.txt": "x",
                      "bench/notes.txt": "y", "webdataset/a.tar": "z"}.items():  # fmt: skip
        (foreign / rel).parent.mkdir(parents=True, exist_ok=True)
        (foreign / rel).write_text(text)
    before = _tree(foreign)
    with pytest.raises(TalkvidError, match=rf"{foreign} is neither empty nor a talkvid release"):
        draw_and_export(ctx, foreign, built["spec"], formats=["talkvid-json", "jsonl", "bench"])
    assert _tree(foreign) == before and not foreign.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".my-project")) == [".my-project.lock"]  # no staging left
    env = {**os.environ, "TALKVID_DATABASE_URL": sqlite_url, "TALKVID_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    command = [str(Path(sys.executable).with_name("talkvid")), "export", "--profile", PROFILE, "--out", str(foreign), "--format", "jsonl"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and f"error: {foreign} is neither empty nor a talkvid release" in done.stderr and "Traceback" not in done.stderr
    assert _tree(foreign) == before

    empty = tmp_path / "empty"
    empty.mkdir()
    first = draw_and_export(ctx, empty, built["spec"], formats=["jsonl"])  # an empty folder is fine
    assert _whole_release(empty) == first["release_id"] and empty.is_symlink()


def test_a_release_is_a_link_to_one_whole_folder_and_the_row_records_the_link(sqlite_url, tmp_path):
    ctx = make_context(sqlite_url, tmp_path)
    built = build_people_catalog(ctx, tmp_path)
    out = tmp_path / "release"
    first = draw_and_export(ctx, out, built["spec"], formats=["talkvid-json", "jsonl"])
    second = draw_and_export(ctx, out, built["spec"], seed=5, formats=["talkvid-json", "parquet"])
    assert json.loads((out / "talkvid.json").read_text()) and not (out / "clips.jsonl").exists()
    assert _whole_release(out) == second["release_id"] != first["release_id"]
    folders = {p.name for p in tmp_path.iterdir() if p.name.startswith(".release.")}
    assert folders == {".release.lock", os.readlink(out)} and os.readlink(out).startswith(f".release.{second['release_id']}.")  # older one removed
    with db.session_factory(sqlite_url)() as session:
        assert session.get(Release, second["release_id"]).out_dir == str(out) == second["out_dir"]
    assert second["paths"]["talkvid_json"] == str(out / "talkvid.json")


def test_a_second_export_into_the_same_folder_waits_for_the_lock(sqlite_url, tmp_path):
    import fcntl

    ctx = make_context(sqlite_url, tmp_path, bench_spec=None)
    build_people_catalog(ctx, tmp_path)
    out = tmp_path / "release"
    with open(tmp_path / ".release.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as an export in progress holds it
        process = _start(sqlite_url, tmp_path, PROFILE, out, ["jsonl"])
        deadline = time.monotonic() + 120
        while not _export_started(sqlite_url) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # ample for this export to finish, were it not waiting
        assert process.poll() is None and not out.exists()  # waiting
    code, stdout, stderr = _finish(process)
    assert code == 0, stderr
    assert _whole_release(out) == json.loads(stdout)["release_id"]


def _export_started(url: str) -> bool:
    with db.session_factory(url)() as session:
        return session.scalar(select(Run.id).where(Run.stage == "export")) is not None


def test_kill_9_anywhere_in_an_export_or_a_re_export_leaves_one_whole_release(media_catalog, tmp_path):
    out = tmp_path / "release"
    old = None
    for profile, kill_points in ((PROFILE, (1, 4, 9, 11, 12)), (OTHER_PROFILE, (2, 5, 7, 8, 9))):
        for point in kill_points:
            code, _, stderr = _finish(_start(media_catalog, tmp_path, profile, out, TALKVID_EXPORT_KILL_AT=str(point)))
            assert code == -signal.SIGKILL, f"{profile} at checkpoint {point} was not killed: {stderr[-2000:]}"
            held = _whole_release(out) if out.exists() else None
            if held != old:  # killed after the switch: the new release, whole
                assert json.loads((out / "manifest.json").read_text())["profile"]["name"] == profile, (profile, point)
            old = held
        code, stdout, stderr = _finish(_start(media_catalog, tmp_path, profile, out))
        assert code == 0, stderr[-2000:]
        old = json.loads(stdout)["release_id"]
        assert _whole_release(out) == old
        assert all(_decodes(clip) for clip in (out / "clips").glob("*.mp4"))
    assert len(list((out / "clips").glob("*.mp4"))) == len(OTHER_PASSED)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".release.") and p.is_dir()] == [os.readlink(out)]


def test_two_exports_into_one_folder_at_once_both_finish_and_leave_a_whole_release(media_catalog, tmp_path):
    out = tmp_path / "release"
    first, second = _start(media_catalog, tmp_path, PROFILE, out), _start(media_catalog, tmp_path, OTHER_PROFILE, out)
    results = [_finish(first), _finish(second)]
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    held = _whole_release(out)
    assert held in {json.loads(stdout)["release_id"] for _, stdout, _ in results}
    clips = sorted((out / "clips").glob("*.mp4"))
    assert clips and all(_decodes(clip) for clip in clips)


def test_a_damaged_or_foreign_clip_file_is_cut_again_not_reused(media_catalog, tmp_path):
    out = tmp_path / "release"
    ctx = make_context(media_catalog, tmp_path, bench_spec=None)
    export(ctx, PROFILE, out, formats=MEDIA_FORMATS)
    clips = sorted((out / "clips").glob("*.mp4"))
    good = {clip.name: clip.read_bytes() for clip in clips}
    truncated, foreign = clips[0], clips[1]
    with truncated.open("r+b") as handle:  # as a crashed or concurrent writer left it
        handle.truncate(truncated.stat().st_size // 2)
    foreign.write_bytes(good[clips[2].name])  # another clip's bytes under this name
    again = export(ctx, PROFILE, out, formats=MEDIA_FORMATS)
    assert _whole_release(out) == again["release_id"]
    assert {clip.name: clip.read_bytes() for clip in (out / "clips").glob("*.mp4")} == good  # cut again, byte for byte
    assert _decodes(out / "clips" / truncated.name)


def test_a_full_disk_is_one_clear_error_and_the_previous_release_stays(media_catalog, tmp_path):
    disk = tmp_path / "small-disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("needs permission to mount a small tmpfs")
    try:
        ctx = make_context(media_catalog, tmp_path, bench_spec=None)
        out = disk / "release"
        before = export(ctx, PROFILE, out, formats=["talkvid-json", "jsonl"])
        tree = _tree(out)
        with pytest.raises(TalkvidError, match=rf"^disk full: no space left on the device of {disk} while writing release") as failed:
            export(ctx, OTHER_PROFILE, out, formats=MEDIA_FORMATS)
        assert "Traceback" not in str(failed.value)
        assert _whole_release(out) == before["release_id"] and _tree(out) == tree
        assert {p.name for p in disk.iterdir()} == {".release.lock", os.readlink(out), "release"}  # staging removed
        assert not [p for p in disk.rglob("*") if p.is_file() and p.stat().st_size == 0 and p.name != ".release.lock"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)
