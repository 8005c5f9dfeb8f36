"""The release report stays small whatever the release's size: a release of 250,000 clips (records built in memory,
each clip the report may show with a thumbnail and a preview on disk) gives a report of a few MB, its clip table and
rejected examples cut at their bounds, its durations in hours, and the custom profile's overrides in its header."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from talkvid_ops.catalog.models import Clip, Decision, Video
from talkvid_ops.catalog.status import DecisionStatus
from talkvid_ops.curate.profiles import load_profile
from talkvid_ops.export.records import ClipRecord
from talkvid_ops.export.release import assign_splits, release_summary
from talkvid_ops.export.report import EXAMPLES_PER_CRITERION, MAX_CLIPS, DurationUnit, render_report
from talkvid_ops.media.thumbnails import preview_path, thumbnail_path, write_pictures
from tests.release_catalog import photo_pictures

CLIPS = 250_000
SECONDS = 8.0


def _records(profile) -> list[ClipRecord]:
    """About 1 % of the clips fail quality (classical, min 55), 1 % avg_movement (min 85)."""
    videos = [Video(id=f"video-{v:04d}", source_id="source-0", width=1280, height=720, rotation=0, upload_date="20240101") for v in range(500)]
    decisions = {status: Decision(status=status, missing=[]) for status in DecisionStatus}
    values = np.random.default_rng(0).uniform((54.5, 84.85), 100, size=(CLIPS, 2)).round(3)
    records = []
    for index in range(CLIPS):
        quality, movement = (float(v) for v in values[index])
        failures = [
            {"criterion": name, "metric": metric, "backend": backend, "value": value, "min": low, "max": None}
            for name, metric, backend, value, low in (("quality", "quality_technical", "classical", quality, 55.0),
                                                      ("avg_movement", "avg_movement", "dlib", movement, 85.0))
            if value < low
        ]  # fmt: skip
        clip = Clip(id=f"clip-{index:06d}", video_id=videos[index % 500].id, duration=SECONDS)
        record = ClipRecord(clip, videos[index % 500], decisions[DecisionStatus.FAILED if failures else DecisionStatus.PASSED], failures)
        record.scores = {"classical": {"quality_technical": quality}, "dlib": {"avg_movement": movement}}
        records.append(record)
    assign_splits(records, None)
    return records


@pytest.fixture(scope="module")
def big_report(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    profile = load_profile("talkvid-code").with_thresholds({"quality": {"backend": "classical", "min": 55}, "avg_movement": {"min": 85}})
    records = _records(profile)
    # every clip the report may show (the first of the table, any rejected one) has its pictures: one real pair,
    # hard-linked under each clip's name; a report past its bounds would grow past the limit with their ids alone
    write_pictures(data_dir, records[0].id, photo_pictures())
    for record in [*records[1:MAX_CLIPS], *(r for r in records[MAX_CLIPS:] if r.failures)]:
        os.link(thumbnail_path(data_dir, records[0].id), thumbnail_path(data_dir, record.id))
        os.link(preview_path(data_dir, records[0].id), preview_path(data_dir, record.id))
    summary = release_summary("big", "release-big", records, profile, None, None, 0, ["jsonl"])
    summary.update(sources=[], rot={"videos": 500, "gone": 0, "unknown": 500}, validation=None)
    return render_report(summary, records, profile, data_dir), records


def test_a_quarter_million_clips_make_a_report_of_a_few_mb(big_report):
    page, records = big_report
    assert len(page.encode()) < 4_000_000, len(page)
    failing = {name: sum(1 for r in records for f in r.failures if f["criterion"] == name) for name in ("quality", "avg_movement")}
    pictures = page.count('src="data:image/jpeg;base64,')
    assert pictures == 2 * MAX_CLIPS + EXAMPLES_PER_CRITERION * len(failing)  # every shown clip has both, nothing more
    assert f"<p>and {CLIPS - MAX_CLIPS} more in clips.jsonl.</p>" in page
    for name, count in failing.items():
        assert f"<h3>{name}: {count} clips rejected</h3>" in page
        assert f"<p>and {count - EXAMPLES_PER_CRITERION} more in clips.jsonl (<code>failing</code>).</p>" in page
    # the examples run from the nearest miss to the furthest, each with its value and bound
    quality = re.search(r"<h3>quality: .*?</div>", page).group(0)
    shown = [float(v) for v in re.findall(r"classical: quality_technical ([0-9.]+) &lt; min 55\b", quality)]
    assert len(shown) == EXAMPLES_PER_CRITERION and shown == sorted(shown, reverse=True) and shown[0] > 54.99 and shown[-1] < 54.51


def test_durations_suit_the_size_and_the_overrides_head_the_report(big_report):
    page, records = big_report
    passed = sum(1 for r in records if r.decision.status == DecisionStatus.PASSED)
    assert f"<b>{passed * SECONDS / 3600:.0f}</b> training hours" in page
    assert "Thresholds moved from its base profile: <code>quality[classical] min=55</code>, <code>avg_movement min=85</code>." in page
    assert [DurationUnit.for_total(s).name for s in (40, 119, 120, 7199, 7200)] == ["seconds", "seconds", "minutes", "minutes", "hours"]
    assert (DurationUnit.for_total(40).number(40 / 3600), DurationUnit.for_total(600).number(0.25), DurationUnit.for_total(1e6).number(555.5)) == (
        "40.0",
        "15.0",
        "556",
    )
