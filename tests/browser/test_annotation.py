"""Blind annotation in headless Chromium (Playwright's Python package driving Debian's /usr/bin/chromium; no browser
is downloaded): two annotators label a validation set through the page, neither sees the other's labels nor any score
or decision, and the statistics page then shows the figures computed by hand.

The catalog page app (`talkvid_ops.dashboard.create_app`, with its validation pages) is served by uvicorn on 127.0.0.1
under /talkvid, as the Airflow plugin mounts it, with the annotator injected from a request header (in Airflow the
dependency asks Airflow's auth manager for the user)."""

from __future__ import annotations

import re
from typing import Annotated

import pytest
from fastapi import Header, HTTPException

from talkvid_ops.catalog.models import Score
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.config import Settings
from talkvid_ops.context import Context
from talkvid_ops.curate.profiles import validate_profile
from talkvid_ops.curate.validation.draw import draw
from talkvid_ops.ids import make_id
from tests.factories import add_clip, add_run, add_source, add_video
from tests.pageserver import CHROMIUM, chromium, serving

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make setup installs it)")

PROFILE = validate_profile({"name": "annotation-test", "criteria": {"quality": {"description": "sharp, well exposed picture",
                           "rules": [{"backend": "classical", "metric": "quality_technical", "min": 40.0}]}}})  # fmt: skip
FPS = 25.0
# value -> (alice, bob); values >= 40 pass. Majority: 45.25 accept (TP), 41.5 reject (FP), 39.25 and 35.5 reject (TN),
# 43.75 and 30.75 ties. accuracy 3/4, precision 1/2, recall 1/1, F1 2/3.
# Alice accepts 2 of 6, Bob 2 of 6, they agree on 4: po = 2/3, pe = (1/3)^2 + (2/3)^2 = 5/9, kappa = (1/9)/(4/9) = 0.25.
PLAN = {45.25: ("accept", "accept"), 43.75: ("accept", "reject"), 41.5: ("reject", "reject"),
        39.25: ("reject", "reject"), 35.5: ("reject", "reject"), 30.75: ("reject", "accept")}  # fmt: skip
EXPECTED = {"accuracy": "0.750", "precision": "0.500", "recall": "1.000", "f1": "0.667"}
ACCURACY_CI = "[0.301, 0.954]"  # Wilson, 3 of 4: (1.230182 -+ 0.640816) / 1.960365


@pytest.fixture
def validation_set(sqlite_url, tmp_path, pyfeat_media):
    """Six 3 s clips of a real video, scored around the bound, drawn into one set; returns (ctx, set, clip -> value)."""
    ctx = Context(Settings(data_dir=tmp_path, database_url=sqlite_url))
    video_file = pyfeat_media["WolfgangLanger_Pexels.mp4"]
    values = {}
    with ctx.sessions() as session:
        run_id = add_run(session, "score")
        video_id = add_video(session, add_source(session), "wolfgang", storage_path=str(video_file), status="probed")
        for k, value in enumerate(PLAN):
            clip_id = add_clip(session, video_id, run_id, 75 * k, 75 * k + 75, fps=FPS)
            values[clip_id] = value
            upsert(session, Score, [dict(id=make_id("score", clip_id, "classical", "quality_technical"), clip_id=clip_id, metric="quality_technical",
                   value=value, scorer="quality", scorer_version="1", backend="classical", run_id=run_id)], ["clip_id", "backend", "metric"])  # fmt: skip
        session.commit()
    drawn = draw(ctx, PROFILE, "quality", n=6, per_video=6)
    assert drawn["items"] == 6
    return ctx, drawn, values


@pytest.fixture
def server(validation_set, monkeypatch):
    """The catalog page app (as the Airflow plugin mounts it at /talkvid), reading this catalog from the environment,
    with the annotator injected from a header instead of Airflow's login."""
    from talkvid_ops.dashboard.app import create_app

    ctx = validation_set[0]
    monkeypatch.setenv("TALKVID_DATABASE_URL", ctx.settings.database_url)
    monkeypatch.setenv("TALKVID_DATA_DIR", str(ctx.settings.data_dir))
    monkeypatch.delenv("TALKVID_CONFIG", raising=False)

    def injected_annotator(x_annotator: Annotated[str | None, Header()] = None) -> str:
        if not x_annotator:
            raise HTTPException(401, "who are you?")
        return x_annotator

    with serving(create_app(annotator=injected_annotator)) as root:
        yield root + "validation/"


@pytest.fixture
def browser():
    with chromium() as launched:
        yield launched


def shown_clip(page, values: dict[str, float], ctx) -> tuple[str, float]:
    """The clip the page plays (from its media URL), after checking the player sits on the clip's time range."""
    from talkvid_ops.catalog.models import Clip, ValidationItem

    source = page.get_attribute("#clip", "src")
    item_id, start, end = re.fullmatch(r"media/([0-9a-f]+)#t=([0-9.]+),([0-9.]+)", source).groups()
    with ctx.sessions() as session:
        clip = session.get(Clip, session.get(ValidationItem, item_id).clip_id)
    assert (float(start), float(end)) == (pytest.approx(clip.start_time, abs=1e-3), pytest.approx(clip.end_time, abs=1e-3))
    page.wait_for_function("document.getElementById('clip').readyState >= 1", timeout=20000)  # Chromium decoded its header
    assert page.evaluate("document.getElementById('clip').currentTime") == pytest.approx(clip.start_time, abs=0.05)
    assert page.evaluate("document.getElementById('clip').duration") == pytest.approx(19.69, abs=0.1)  # the source file, served by the page
    return item_id, values[clip.id]


def assert_blind(page, values: dict[str, float]) -> None:
    html = page.content()
    assert not any(f"{value}" in html for value in values.values())  # no score
    assert not re.search(r"\b(pass|passed|passes|fail|failed|fails|decision)\b", html, re.IGNORECASE)  # no decision


def label_everything(page, url: str, who: int, values, ctx) -> dict[str, str]:
    """Label the set through the page as PLAN says for annotator `who` (0 alice, 1 bob); returns item -> verdict."""
    page.goto(url)
    page.click("text=annotate")
    given = {}
    for _ in PLAN:
        assert_blind(page, values)
        item_id, value = shown_clip(page, values, ctx)
        verdict = PLAN[value][who]
        with page.expect_navigation():
            page.click(f"#{verdict}")
        given[item_id] = verdict
    assert page.inner_text("#done") == "You have labelled every clip of this set."
    assert page.inner_text("#progress") == "6 of 6"
    return given


def test_two_annotators_label_blind_and_the_statistics_page_shows_the_figures(validation_set, server, browser):
    ctx, drawn, values = validation_set
    alice = browser.new_context(extra_http_headers={"X-Annotator": "alice"}).new_page()
    bob = browser.new_context(extra_http_headers={"X-Annotator": "bob"}).new_page()

    alice.goto(server)
    assert "you: alice" in alice.inner_text("body") and drawn["name"] in alice.inner_text("table")
    alice_labels = label_everything(alice, server, 0, values, ctx)
    assert len(alice_labels) == 6

    # bob sees none of alice's labels: not as progress, not in the list, not on an item she labelled
    bob.goto(server)
    assert bob.inner_text("table tbody tr td:nth-child(4)") == "0"
    bob.click("text=annotate")
    assert bob.inner_text("#progress") == "0 of 6" and bob.query_selector("#own") is None
    assert set(bob.locator("#items .label").all_inner_texts()) == {"not labelled"}
    first = next(iter(alice_labels))
    bob.goto(f"{server}set/{drawn['set_id']}/annotate?item={first}")
    assert bob.query_selector("#own") is None and "accept" not in bob.inner_text("#items") and "reject" not in bob.inner_text("#items")
    # alice does see her own
    alice.goto(f"{server}set/{drawn['set_id']}/annotate?item={first}")
    assert alice.inner_text("#own") == f"your label: {alice_labels[first]}"

    bob_labels = label_everything(bob, server, 1, values, ctx)
    assert bob_labels.keys() == alice_labels.keys()

    bob.click("text=statistics")
    figures = {key: bob.inner_text(f"#figures #{key} td.num") for key in EXPECTED}
    assert figures == EXPECTED
    assert bob.inner_text("#figures #accuracy td:last-child") == ACCURACY_CI
    assert [bob.inner_text(f"#{key}") for key in ("n", "tp", "fp", "fn", "tn")] == ["4", "1", "1", "0", "2"]
    assert (bob.inner_text("#labelled"), bob.inner_text("#ties")) == ("6", "2")
    assert bob.inner_text("#kappa tbody td.kappa") == "0.250"
    assert bob.inner_text("#kappa tbody td:first-child") == "alice / bob"
    shot = bob.screenshot(full_page=True)
    assert len(shot) > 10_000
