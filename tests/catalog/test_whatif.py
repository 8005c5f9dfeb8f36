"""The what-if view of the catalog page on SQLite and PostgreSQL: a threshold move predicts, from stored scores and
decisions, the clips that `decide` then passes with the conf the page would trigger; a move from a stored custom
profile keeps its overrides; the trigger button needs the operate capability and the same origin, and a conf with an
unknown criterion is refused naming it before the host's trigger is called."""

from __future__ import annotations

import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient
from sqlalchemy import select

from talkvid_ops.catalog.models import Decision
from talkvid_ops.catalog.status import DecisionStatus
from talkvid_ops.curate.decide import decide
from talkvid_ops.dashboard.access import Capability
from talkvid_ops.dashboard.app import create_app
from talkvid_ops.dashboard.whatif import Move, TriggeredRun, what_if_move
from talkvid_ops.stages import resolve_profile
from tests.factories import add_clip, add_run, add_source, add_video
from tests.release_catalog import add_scores, set_score

# classical quality per clip (talkvid-code: min 40); every other score passes. 6 s clips.
QUALITY = {"q38": 38.0, "q41": 41.0, "q45": 45.0, "q55": 55.0, "q39": 39.0}
SECONDS = 6.0


@pytest.fixture
def catalog(env_catalog):
    ctx, clips = env_catalog, {}
    with ctx.sessions() as session:
        run_id = add_run(session, "score")
        video_id = add_video(session, add_source(session), "talk", storage_path="/media/talk.mp4")
        for k, (name, value) in enumerate(QUALITY.items()):
            clips[name] = add_clip(session, video_id, run_id, 200 * k, 200 * k + 150)
            add_scores(session, clips[name], run_id)
            set_score(session, clips[name], "quality_technical", value)
        session.commit()
    decided = decide(ctx, "talkvid-code")
    assert (decided["passed"], decided["failed"]) == (3, 2)
    return ctx, clips, f"talkvid-code@{decided['content_hash']}"


def passed(ctx, profile_id: str) -> set[str]:
    with ctx.sessions() as session:
        return set(session.scalars(select(Decision.clip_id).where(Decision.profile_id == profile_id, Decision.status == DecisionStatus.PASSED)))


def test_a_move_predicts_what_decide_records_with_its_conf(catalog):
    ctx, clips, stored = catalog
    moves = {
        "stricter": (Move(stored, "quality", "classical", lo=42.0), {"q41"}, set()),
        "looser": (Move(stored, "quality", "classical", lo=38.5), set(), {"q39"}),
    }
    for name, (move, leaving, entering) in moves.items():
        with ctx.sessions() as session:
            result = what_if_move(session, move)
        assert result["passed_now"] == {"clips": 3, "hours": pytest.approx(3 * SECONDS / 3600)}, name
        assert result["leave"]["clip_ids"] == sorted(clips[c] for c in leaving), name
        assert result["enter"]["clip_ids"] == sorted(clips[c] for c in entering), name
        assert result["passed_after"]["clips"] == 3 - len(leaving) + len(entering), name
        assert [r["moved"] for r in result["rules"]] == [False, True]  # the classical rule, not DOVER's
        assert result["conf"] == {"profile": "talkvid-code", "thresholds": {"quality": {"backend": "classical", "min": move.lo}}}
        after = decide(ctx, resolve_profile(result["conf"]["profile"], result["conf"]["thresholds"]))
        expected = {clips[c] for c in ("q41", "q45", "q55")} - {clips[c] for c in leaving} | {clips[c] for c in entering}
        assert passed(ctx, after["profile_id"]) == expected and after["passed"] == result["passed_after"]["clips"], name


def test_a_move_from_a_custom_profile_keeps_its_overrides(catalog):
    ctx, clips, _ = catalog
    custom = decide(ctx, resolve_profile("talkvid-code", {"avg_movement": {"min": 96}}))  # every clip has 95: all fail
    ref = f"{custom['profile']}@{custom['content_hash']}"
    assert custom["profile"] == "talkvid-code.custom" and custom["passed"] == 0
    with ctx.sessions() as session:
        result = what_if_move(session, Move(ref, "avg_movement", lo=90.0))
    # back under 95: the clips failing on avg_movement alone enter; q38 and q39 still fail on quality
    assert result["enter"]["clip_ids"] == sorted(clips[c] for c in ("q41", "q45", "q55")) and result["leave"]["clips"] == 0
    assert result["conf"] == {"profile": "talkvid-code", "thresholds": {"avg_movement": {"min": 90.0}}}
    assert decide(ctx, resolve_profile(result["conf"]["profile"], result["conf"]["thresholds"]))["passed"] == 3


def test_the_page_shows_the_figures_and_refuses_a_bad_move(catalog):
    ctx, clips, stored = catalog
    client = TestClient(create_app())
    page = client.get("/whatif", params={"profile": stored, "criterion": "quality", "backend": "classical", "min": "42"})
    assert page.status_code == 200
    for figure, value in (("passed-now", 3), ("enter", 0), ("leave", 1), ("passed-after", 2)):
        assert f'id="{figure}">{value}<' in page.text
    assert f'href="clips/{clips["q41"]}"' in page.text and "&quot;min&quot;: 42.0" in page.text
    assert 'id="trigger"' not in page.text  # no trigger injected: no button
    prefilled = client.get("/whatif", params={"profile": stored, "criterion": "quality"})  # the clip view's link
    assert prefilled.status_code == 200 and 'id="error"' not in prefilled.text and 'id="passed-now"' not in prefilled.text
    unknown = client.get("/whatif", params={"profile": stored, "criterion": "qualty", "min": "60"})
    assert unknown.status_code == 200 and "has no criterion &#x27;qualty&#x27;" in unknown.text


def test_the_trigger_needs_operate_and_the_same_origin_and_validates_the_conf_first(catalog):
    ctx, clips, stored = catalog
    triggered = []

    def trigger():
        def start(conf):
            triggered.append(conf)
            return TriggeredRun(f"manual__{len(triggered)}", f"../dags/talkvid_curate/runs/manual__{len(triggered)}")

        return start

    async def allow(request: Request) -> None:
        return None

    async def refuse(request: Request) -> None:
        raise HTTPException(403, "viewers may not operate")

    form = {"profile": stored, "criterion": "quality", "backend": "classical", "min": "42", "max": ""}
    origin = {"origin": "http://testserver"}
    readers = TestClient(create_app({Capability.READ: allow, Capability.OPERATE: refuse}, trigger=trigger))
    assert 'id="trigger"' in readers.get("/whatif", params=form).text
    assert readers.post("/whatif", data=form, headers=origin).status_code == 403
    operators = TestClient(create_app({Capability.READ: allow, Capability.OPERATE: allow}, trigger=trigger))
    assert operators.post("/whatif", data=form).status_code == 403  # no Origin: cross-site refused
    assert operators.post("/whatif", data=form, headers={"origin": "http://evil.example"}).status_code == 403
    assert triggered == []

    typo = operators.post("/whatif", data={**form, "criterion": "qualty", "backend": ""}, headers=origin)
    assert typo.status_code == 400 and "thresholds" in typo.text and "qualty" in typo.text
    unbounded = operators.post("/whatif", data={**form, "min": ""}, headers=origin)
    assert unbounded.status_code == 400 and "min, max: give a new min, a new max or both" in unbounded.text
    assert triggered == []  # refused before the host was asked

    done = operators.post("/whatif", data=form, headers=origin)
    assert done.status_code == 200, done.text
    assert triggered == [{"profile": "talkvid-code", "thresholds": {"quality": {"backend": "classical", "min": 42.0}}}]
    assert 'id="run-link"' in done.text and 'href="../dags/talkvid_curate/runs/manual__1"' in done.text
