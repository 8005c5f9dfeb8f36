"""The crawl under hostile conditions (issue 11): file names that are not UTF-8, files and folders that cannot be read,
symlink loops, malformed cookies, and a crawler killed with SIGKILL while it holds cookies."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import Run, Source, Video
from talkvid_ops.cli import cli
from talkvid_ops.crawl.discover import discover
from talkvid_ops.crawl.download import download
from talkvid_ops.crawl.ingest import ingest_paths
from talkvid_ops.crawl.sources import SourceSettings, add_source
from talkvid_ops.redact import redact
from tests.loopback import LoopbackServer, loopback_context, prepare_web_media

NOT_UTF8 = b"bad\xff.mp4"


@pytest.fixture(scope="module")
def web_media(pyfeat_media, tmp_path_factory) -> Path:
    return prepare_web_media(pyfeat_media, tmp_path_factory.mktemp("web-media"))


@pytest.fixture
def server(web_media) -> Iterator[LoopbackServer]:
    with LoopbackServer(web_media) as running:
        yield running


def _videos(ctx) -> list[Video]:
    with ctx.sessions() as session:
        return list(session.scalars(select(Video).order_by(Video.created_at, Video.id)))


def _run(ctx, run_id: str) -> Run:
    with ctx.sessions() as session:
        return session.get(Run, run_id)


def _source(ctx, source_id: str) -> Source:
    with ctx.sessions() as session:
        return session.get(Source, source_id)


# --- file names that are not UTF-8 ---------------------------------------------------------------------------------


def _bytes_folder(pyfeat_media, root: Path, folder: bytes) -> bytes:
    """A folder (its name given as bytes) holding a.mp4, bad\\xff.mp4 and z.mp4, each a different real video."""
    where = os.path.join(os.fsencode(root), folder)
    os.makedirs(where)
    for name, original in ((b"a.mp4", "single_face.mp4"), (NOT_UTF8, "no_face.mp4"), (b"z.mp4", "WolfgangLanger_Pexels.mp4")):
        shutil.copyfile(pyfeat_media[original], os.path.join(where, name))
    return where


def test_a_file_name_that_is_not_utf8_is_ingested_losslessly_and_the_rest_go_on(pyfeat_media, catalog_url, tmp_path):
    ctx = loopback_context(tmp_path / "data", catalog_url)
    folder = _bytes_folder(pyfeat_media, tmp_path, b"drop")
    first = ingest_paths(ctx, [os.fsdecode(folder)])
    assert (first["ingested"], first.get("errors", 0)) == (3, 0)
    videos = _videos(ctx)
    assert len(videos) == 3 and {v.status for v in videos} == {"probed"}
    stored = {os.fsencode(ctx.settings.media_path(v.storage_path)): v for v in videos}
    bad_path = os.path.join(folder, NOT_UTF8)
    assert set(stored) == {os.path.join(folder, n) for n in (b"a.mp4", NOT_UTF8, b"z.mp4")}  # the exact bytes come back
    bad = stored[bad_path]
    assert bad.size_bytes == os.stat(bad_path).st_size and bad.height == 540
    assert bad.title == "bad\\xff"  # shown with the byte escaped
    again = ingest_paths(ctx, [os.fsdecode(folder)])
    assert (again["unchanged"], again.get("ingested", 0), again.get("errors", 0)) == (3, 0, 0)
    assert len(_videos(ctx)) == 3


def test_a_watched_folder_holding_names_that_are_not_utf8_never_fails_the_crawl(pyfeat_media, catalog_url, tmp_path):
    """The watched folder itself is named in Latin-1 (caf\\xe9), and a file that is not UTF-8 arrives after it was named."""
    ctx = loopback_context(tmp_path / "data", catalog_url)
    folder = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.makedirs(folder)
    shutil.copyfile(pyfeat_media["single_face.mp4"], os.path.join(folder, b"a.mp4"))
    (source_id,) = ingest_paths(ctx, [os.fsdecode(folder)])["source_ids"]
    shutil.copyfile(pyfeat_media["no_face.mp4"], os.path.join(folder, NOT_UTF8))
    shutil.copyfile(pyfeat_media["WolfgangLanger_Pexels.mp4"], os.path.join(folder, b"z.mp4"))
    swept = download(ctx)
    assert (swept["ingested"], swept.get("errors", 0)) == (2, 0)
    assert download(ctx)["unchanged"] == 3
    source = _source(ctx, source_id)
    assert os.fsencode(ctx.settings.media_path(source.locator)) == folder and source.last_error is None
    assert {os.fsencode(ctx.settings.media_path(v.storage_path)) for v in _videos(ctx)} == {os.path.join(folder, n) for n in (b"a.mp4", NOT_UTF8, b"z.mp4")}


# --- files and folders that cannot be read -------------------------------------------------------------------------


def _refuse_reading(monkeypatch, target: bytes) -> None:
    """Opening `target` fails with EACCES, as it does for a non-root reader of a chmod 000 file.

    Simulated: the tests run as root, whom the kernel lets read anything. The refusal is put in every door the code
    reaches a file's content through: Python's open / io.open / os.open, and PyAV's av.open (which raises its
    PermissionError, an OSError, as it does on a real EACCES). Stat and directory listing still work, as they do
    for a chmod 000 file in a readable folder.
    """

    def refused(path) -> bool:
        return isinstance(path, (str, bytes, os.PathLike)) and os.fsencode(path) == target

    def denied():
        return av.error.PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(target))

    real_open, real_os_open, real_av_open = io.open, os.open, av.open

    def fake_open(file, *args, **kwargs):
        if refused(file):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(target))
        return real_open(file, *args, **kwargs)

    def fake_os_open(path, *args, **kwargs):
        if refused(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(target))
        return real_os_open(path, *args, **kwargs)

    def fake_av_open(file, *args, **kwargs):
        if refused(file):
            raise denied()
        return real_av_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(av, "open", fake_av_open)


def test_an_unreadable_file_is_a_transient_failure_retried_once_it_is_readable(pyfeat_media, sqlite_url, tmp_path, monkeypatch):
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    folder = tmp_path / "drop"
    folder.mkdir()
    shutil.copyfile(pyfeat_media["single_face.mp4"], folder / "locked.mp4")
    shutil.copyfile(pyfeat_media["no_face.mp4"], folder / "open.mp4")
    with monkeypatch.context() as patched:
        _refuse_reading(patched, os.fsencode(folder / "locked.mp4"))
        first = ingest_paths(ctx, [folder])
    assert (first["ingested"], first["failed_transient"], first["errors"]) == (1, 1, 1)
    locked = next(v for v in _videos(ctx) if v.title == "locked")
    assert (locked.status, locked.error_class) == ("failed", "transient")
    assert "Permission denied" in locked.error_message
    (error,) = _run(ctx, first["run_id"]).errors
    assert error["item"] == str(folder / "locked.mp4") and error["error_class"] == "transient"

    again = ingest_paths(ctx, [folder])  # readable now (chmod fixed): tried again, not left failed
    assert (again["ingested"], again["unchanged"]) == (1, 1)
    locked = next(v for v in _videos(ctx) if v.title == "locked")
    assert (locked.status, locked.error_class, locked.height) == ("probed", None, 360)


def test_an_unreadable_subfolder_of_a_watched_folder_is_recorded(pyfeat_media, sqlite_url, tmp_path, monkeypatch):
    """Listing the subfolder fails with EACCES (simulated at os.scandir, the call os.walk lists folders with: root
    may list any folder)."""
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    folder = tmp_path / "watched"
    (folder / "private").mkdir(parents=True)
    shutil.copyfile(pyfeat_media["single_face.mp4"], folder / "a.mp4")
    shutil.copyfile(pyfeat_media["no_face.mp4"], folder / "private" / "b.mp4")
    hidden = os.fsencode(folder / "private")
    real_scandir = os.scandir

    def scandir(path="."):
        if isinstance(path, (str, bytes, os.PathLike)) and os.fsencode(path) == hidden:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(hidden))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    (source_id,) = (first := ingest_paths(ctx, [folder]))["source_ids"]
    assert (first["ingested"], first["errors"]) == (1, 1)
    (error,) = _run(ctx, first["run_id"]).errors
    assert error["item"] == str(folder / "private") and "Permission denied" in error["reason"]

    swept = download(ctx)  # the watched folder's sweep says so too, on the run and on the source
    assert swept["errors"] == 1
    (error,) = _run(ctx, swept["run_id"]).errors
    assert error["item"] == str(folder / "private")
    assert str(folder / "private") in _source(ctx, source_id).last_error

    monkeypatch.undo()
    readable = download(ctx)
    assert (readable["ingested"], readable.get("errors", 0)) == (1, 0) and _source(ctx, source_id).last_error is None


def test_a_symlink_loop_named_to_ingest_is_recorded_and_the_other_paths_go_on(pyfeat_media, talkvid_env, tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    os.symlink("loop", tmp_path / "loop")
    shutil.copyfile(pyfeat_media["single_face.mp4"], tmp_path / "good.mp4")
    result = runner.invoke(cli, ["ingest", str(tmp_path / "loop"), str(tmp_path / "good.mp4")])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    assert (counts["ingested"], counts["errors"]) == (1, 1)
    ctx = loopback_context(talkvid_env, f"sqlite:///{talkvid_env / 'catalog.sqlite'}")
    (error,) = _run(ctx, counts["run_id"]).errors
    assert error["item"] == str(tmp_path / "loop") and "symlink loop" in error["reason"]


# --- cookies -------------------------------------------------------------------------------------------------------

CANARY = "canary-cookie-9876"


def _netscape(secret: str) -> str:
    return f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tSID\t{secret}\n"


def _add(ctx, locator: str, **settings) -> str:
    with ctx.sessions() as session:
        source_id, _ = add_source(session, locator, settings=SourceSettings(min_height=0, **settings))
        session.commit()
    return source_id


def test_malformed_cookies_fail_only_their_source(server, sqlite_url, tmp_path, monkeypatch):
    ctx = loopback_context(tmp_path / "data", sqlite_url)
    garbage = tmp_path / "garbage-cookies.txt"
    garbage.write_text(f"SID={CANARY}; this is not a Netscape cookies file\n")
    connections = {
        "extra_not_json": json.dumps({"conn_type": "generic", "extra": "{not json"}),
        "extra_a_list": json.dumps({"conn_type": "generic", "extra": ["cookies"]}),
        "cookies_not_text": json.dumps({"conn_type": "generic", "extra": {"cookies": 5}}),
        "cookies_not_netscape": json.dumps({"conn_type": "generic", "extra": {"cookies": f"SID={CANARY}; not a cookies file"}}),
    }
    for name, value in connections.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", value)

    def url_list(name: str, media: str) -> str:
        path = tmp_path / f"{name}.txt"
        path.write_text(server.url(f"/media/{media}") + "\n")
        return str(path)

    good = _add(ctx, url_list("good", "talk.mp4"))
    bad = {name: _add(ctx, url_list(name, "interview.mp4"), cookies_connection=name) for name in connections}
    bad["file_not_netscape"] = _add(ctx, url_list("file_not_netscape", "interview.mp4"), cookies_file=str(garbage))

    found = discover(ctx)
    assert (found["sources"], found["new"], found["errors"]) == (6, 1, 5)
    assert [v.source_id for v in _videos(ctx)] == [good]
    for name, source_id in bad.items():
        error = _source(ctx, source_id).last_error
        assert error.startswith("setup: ") and (name in error or str(garbage) in error), error
        assert CANARY not in error
    errors = _run(ctx, found["run_id"]).errors
    assert {e["item"]: e["error_class"] for e in errors} == dict.fromkeys(bad.values(), "setup")
    assert CANARY not in json.dumps(errors)

    fetched = download(ctx)  # the same sources fail the same way when downloading; the good one downloads
    assert (fetched["probed"], fetched["errors"]) == (1, 5)
    assert {e["item"]: e["error_class"] for e in _run(ctx, fetched["run_id"]).errors} == dict.fromkeys(bad.values(), "setup")


def _files_holding(secret: str, *roots: Path) -> list[Path]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes():
                found.append(path)
    return found


def test_cookie_files_of_a_crawler_killed_with_sigkill_are_swept_by_the_next_run(server, talkvid_env, tmp_path, monkeypatch):
    """A crawler holding a connection's cookies in a file is killed mid-download; the next run removes the file.
    The cookie value is also registered for redaction, so no log line or error can show it."""
    secret = "sigkill-cookie-secret-4242"
    system_tmp = tmp_path / "system-tmp"  # the killed process's temp dir, so that nothing else's files are searched
    system_tmp.mkdir()
    connection = json.dumps({"conn_type": "generic", "extra": {"cookies": _netscape(secret)}})
    config = tmp_path / "talkvid.yaml"
    config.write_text(yaml.safe_dump({"crawl": {"min_request_interval_s": 0, "retries": 1}}))
    env = {**os.environ, "TALKVID_CONFIG": str(config), "TMPDIR": str(system_tmp), "AIRFLOW_CONN_WEB_COOKIES": connection}
    monkeypatch.setenv("AIRFLOW_CONN_WEB_COOKIES", connection)
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    ctx = loopback_context(talkvid_env, f"sqlite:///{talkvid_env / 'catalog.sqlite'}")
    db.upgrade(ctx.settings.database_url)
    urls = tmp_path / "urls.txt"
    urls.write_text(server.url("/stall/lecture.mp4") + "\n")
    _add(ctx, str(urls), cookies_connection="web_cookies")
    discover(ctx)
    assert _files_holding(secret, talkvid_env, system_tmp) == []  # discovery removed its cookie file on exit

    proc = subprocess.Popen(
        [sys.executable, "-m", "talkvid_ops.cli", "crawl", "--download"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while not any(h.dropped for h in server.hits_for("/stall/")):
            assert proc.poll() is None and time.monotonic() < deadline, "the download never reached the stall"
            time.sleep(0.05)
        (held,) = _files_holding(secret, talkvid_env, system_tmp)
        assert stat.S_IMODE(held.parent.stat().st_mode) == 0o700 and stat.S_IMODE(held.stat().st_mode) == 0o600
        assert all(h.headers.get("Cookie", "").endswith(secret) for h in server.hits_for("/stall/"))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert held.exists()  # SIGKILL: no cleanup ran
    server.release_stalls()

    result = download(ctx)
    assert result["probed"] == 1
    assert _files_holding(secret, talkvid_env, system_tmp) == []
    assert not held.parent.exists()
    assert redact(f"Cookie: SID={secret}") == "Cookie: SID=***"
