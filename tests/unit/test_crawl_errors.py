"""The crawl error taxonomy on recorded yt-dlp messages and on real yt-dlp exceptions from the loopback server."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from pathlib import Path

import pytest
import yt_dlp
from yt_dlp.utils import DownloadError

from talkvid_ops.catalog.status import ErrorClass
from talkvid_ops.crawl import errors
from talkvid_ops.crawl.errors import classify_exception, classify_message, clean_message, parse_retry_after
from talkvid_ops.crawl.politeness import backoff_delay, pause_until
from tests.loopback import LoopbackServer

RECORDED = json.loads((Path(__file__).parents[1] / "data" / "crawl" / "youtube_errors.json").read_text())


@pytest.mark.parametrize("case", RECORDED, ids=[f"{c['class']}-{i}" for i, c in enumerate(RECORDED)])
def test_recorded_youtube_errors_are_classified(case):
    assert classify_message(clean_message(case["message"])) == case["class"]


def test_every_class_is_represented_in_the_recordings():
    assert {c["class"] for c in RECORDED} == {ErrorClass.PERMANENT, ErrorClass.THROTTLED, ErrorClass.TRANSIENT}


def test_private_video_asks_to_sign_in_but_is_not_a_bot_check():
    private = next(c["message"] for c in RECORDED if "Private video" in c["message"])
    assert "Sign in" in private
    assert classify_message(private) == ErrorClass.PERMANENT


def test_a_throttling_body_wins_over_a_transient_status():
    assert classify_message("HTTP Error 503: Service Unavailable") == ErrorClass.TRANSIENT
    assert classify_message("HTTP Error 503: Service Unavailable", body="<p>Sign in to confirm you’re not a bot</p>") == ErrorClass.THROTTLED


def test_clean_message_strips_prefix_colours_and_carriage_returns():
    assert clean_message("ERROR: \r\x1b[0;31m[download]\x1b[0m Got error:\n 5 bytes read") == "[download] Got error: 5 bytes read"
    assert len(clean_message("x" * 10_000)) == errors.MAX_MESSAGE_CHARS


def test_retry_after_as_seconds_or_http_date():
    assert parse_retry_after("120") == 120.0
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 300, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(300, abs=1)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_doubles_up_to_the_cap_and_retry_after_can_extend_a_pause():
    assert [backoff_delay(n, 10, 100) for n in range(5)] == [10, 20, 40, 80, 100]
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert pause_until(now, 0, 60, 3600) == now + dt.timedelta(seconds=60)
    assert pause_until(now, 0, 60, 3600, retry_after_s=600) == now + dt.timedelta(seconds=600)
    assert pause_until(now, 3, 60, 3600, retry_after_s=10) == now + dt.timedelta(seconds=480)
    assert pause_until(now, 0, 60, 3600, retry_after_s=10**9) == now + dt.timedelta(seconds=3600)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LoopbackServer(tmp_path_factory.mktemp("empty"), retry_after=4321) as srv:
        yield srv


def _yt_dlp_error(url: str) -> DownloadError:
    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True, "logger": None}) as ydl, pytest.raises(DownloadError) as caught:
        ydl.extract_info(url, download=False)
    return caught.value


def test_real_429_is_throttled_with_the_servers_retry_after(server):
    found = classify_exception(_yt_dlp_error(server.url("/throttled/watch")))
    assert found.error_class == ErrorClass.THROTTLED
    assert found.retry_after_s == 4321
    assert "HTTP Error 429" in found.message and not found.message.startswith("ERROR")


def test_real_bot_check_page_is_throttled_from_its_body(server):
    error = _yt_dlp_error(server.url("/botcheck/watch"))
    assert "not a bot" not in str(error)  # yt-dlp's message alone would say "HTTP Error 503": transient
    assert classify_exception(error).error_class == ErrorClass.THROTTLED


def test_real_404_is_permanent(server):
    found = classify_exception(_yt_dlp_error(server.url("/nothing-here.mp4")))
    assert (found.error_class, found.retry_after_s) == (ErrorClass.PERMANENT, None)
