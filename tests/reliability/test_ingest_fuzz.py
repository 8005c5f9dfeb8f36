"""Fuzzing `talkvid ingest` with hostile file names: bytes that are not UTF-8, any unicode, control characters,
newlines. Whatever the name, the command ends without a traceback, a rejection names the file, and the good file
beside it is ingested."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from talkvid_ops.catalog.models import Run, Video
from talkvid_ops.cli import cli
from talkvid_ops.crawl.sources import MEDIA_SUFFIXES
from tests.loopback import loopback_context

MAX_NAME_BYTES = 200  # below NAME_MAX (255) with room for a suffix


def _usable(name: bytes) -> bool:
    return name not in (b".", b"..", b"good.mp4") and b"/" not in name and b"\0" not in name and 0 < len(name) <= MAX_NAME_BYTES


_raw = st.binary(min_size=1, max_size=60)
_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1, max_size=40).map(os.fsencode)
_names = st.tuples(st.one_of(_raw, _text), st.sampled_from([b"", b".mp4", b".MOV", b".txt", b"\n.mp4"])).map(b"".join).filter(_usable)


def display(path: bytes) -> str:
    """How a rejection names a file: its path, bytes that are not UTF-8 escaped."""
    return path.decode("utf-8", "backslashreplace")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=_names, is_video=st.booleans())
def test_any_file_name_is_ingested_or_rejected_by_name_and_the_rest_go_on(name, is_video, pyfeat_media, talkvid_env, tmp_path):
    runner = CliRunner()
    if not (talkvid_env / "catalog.sqlite").exists():
        assert runner.invoke(cli, ["init"]).exit_code == 0
    folder = os.path.join(os.fsencode(tmp_path), uuid.uuid4().hex.encode())
    os.makedirs(folder)
    fuzzed, good = os.path.join(folder, name), os.path.join(folder, b"good.mp4")
    video = os.fsencode(pyfeat_media["single_face.mp4"])
    os.link(video, good)
    if is_video:
        os.link(video, fuzzed)
    else:
        with open(fuzzed, "wb") as fh:
            fh.write(b"not a video\n" * 20)

    result = runner.invoke(cli, ["ingest", os.fsdecode(fuzzed), os.fsdecode(good)])

    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    ctx = loopback_context(talkvid_env, f"sqlite:///{talkvid_env / 'catalog.sqlite'}")
    with ctx.sessions() as session:
        run = session.get(Run, counts["run_id"])
        rows = {os.fsencode(ctx.settings.media_path(v.storage_path)): v for v in session.scalars(select(Video).where(Video.run_id == run.id))}
    assert rows[good].status in ("probed", "duplicate")  # nothing else in the batch is lost
    assert all(error["item"] == display(fuzzed) for error in run.errors)  # every rejection names the item
    if Path(os.fsdecode(name)).suffix.lower() in MEDIA_SUFFIXES:
        assert rows[fuzzed].status in (("probed", "duplicate") if is_video else ("failed",))
        assert len(run.errors) == (0 if is_video else 1)
    else:
        assert fuzzed not in rows and len(run.errors) == 1 and "not a media file" in run.errors[0]["reason"]
    shutil.rmtree(folder)
