"""The release report: self-contained HTML whose plots and clip pictures render in headless Chromium, offline."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from talkvid_ops.curate.profiles import load_profile
from talkvid_ops.export.report import DECISION_COLOURS, PLOTS
from talkvid_ops.media.thumbnails import write_pictures
from tests.release_catalog import PROFILE, build_people_catalog, draw_and_export, make_context, photo_pictures

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SVG = "{http://www.w3.org/2000/svg}"


def _plots(page: str) -> dict[str, ET.Element]:
    found = re.findall(r'<figure id="([a-z-]+)"><img alt="[^"]*" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)">', page)
    return {plot_id: ET.fromstring(base64.b64decode(data)) for plot_id, data in found}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make setup installs Debian's chromium)")
def test_report_renders_offline_in_headless_chromium_with_its_plots(sqlite_url, tmp_path):
    ctx = make_context(sqlite_url, tmp_path)
    built = build_people_catalog(ctx, tmp_path)
    clip_ids = sorted(built["clips"].values())
    pictured, unpictured = clip_ids[::2], clip_ids[1::2]  # the others were scored before pictures were written
    for clip_id in pictured:
        write_pictures(tmp_path, clip_id, photo_pictures())
    result = draw_and_export(ctx, tmp_path / "release", built["spec"], formats=["jsonl", "bench"])
    report = tmp_path / "release" / "report.html"
    assert result["paths"]["report"] == str(report)
    page = report.read_text()
    assert not re.search(r"<(script|link|iframe)\b|src=\"(https?:)?//|url\(", page)  # nothing to fetch: it works offline

    plots = _plots(page)
    assert sorted(plots) == sorted(PLOTS)
    for svg in plots.values():
        assert svg.tag == f"{SVG}svg" and len(list(svg.iter(f"{SVG}path"))) > 20
    dashed = [p for p in plots["score-distributions"].iter(f"{SVG}path") if "stroke-dasharray" in p.get("style", "")]
    assert len(dashed) == len(load_profile(PROFILE).criteria)  # every criterion is scored and has one bound: its line
    assert '<tr class="short"><td>gender</td><td>female</td><td>3</td><td>2</td><td>1</td>' in page
    # passed and failed clips on one axis per criterion, in their own colours
    bars = {colour: sum(colour in p.get("style", "") for p in plots["score-distributions"].iter(f"{SVG}path")) for colour in DECISION_COLOURS.values()}
    assert bars["#4c78a8"] > 20 and bars["#e15759"] > 0, bars
    # every candidate in the clip table: a thumbnail and a preview, or its id where it has none
    assert page.count('src="data:image/jpeg;base64,') == 2 * len(pictured)
    for clip_id in unpictured:
        assert page.count(f'<span class="noimage">{clip_id}</span>') == 2
    # a release of a few minutes is counted in minutes (or seconds), not in fractions of an hour
    assert re.search(r"<b>[0-9.]+</b> training (minutes|seconds)<", page) and "hours" not in page.replace("hours-per-stratum", "")

    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1200,2600", f"--screenshot={shot}", report.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    image = cv2.imread(str(shot))
    assert image.shape[:2] == (2600, 1200)
    ink = (image.min(axis=2) < 200).mean()
    blue = ((image[:, :, 0] > 130) & (image[:, :, 2] < 110)).mean()  # the histogram and bench bars (#4c78a8)
    assert ink > 0.05 and blue > 0.005, (ink, blue)
    assert np.std(image) > 20
