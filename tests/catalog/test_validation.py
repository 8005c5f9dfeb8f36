"""Validation sets on SQLite and PostgreSQL: the borderline draw picks exactly what its documented rule says, people's
labels are stored with provenance and travel through CSV, the statistics match hand-computed figures, and the
calibrated proposal is a valid profile with its what-if on the catalog."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from talkvid_ops.catalog.models import Annotation, Run, Score, ValidationItem, ValidationSet
from talkvid_ops.catalog.models import Profile as ProfileRow
from talkvid_ops.catalog.status import Bound, RuleSide
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.cli import cli as talkvid
from talkvid_ops.context import Context
from talkvid_ops.curate.decide import decide
from talkvid_ops.curate.profiles import validate_profile
from talkvid_ops.curate.validation.agreement import set_statistics, validation_summary
from talkvid_ops.curate.validation.annotations import ORIGIN_PAGE, blind_items, export_csv, find_set, import_csv, record
from talkvid_ops.curate.validation.calibration import calibrate
from talkvid_ops.curate.validation.cli import validate
from talkvid_ops.curate.validation.draw import draw
from talkvid_ops.errors import TalkvidError
from talkvid_ops.ids import make_id
from tests.factories import add_clip, add_run, add_source, add_video

PROFILE = validate_profile(
    {
        "name": "validation-test",
        "criteria": {
            "quality": {
                "description": "visual quality",
                "rules": [
                    {"backend": "dover", "metric": "dover_overall", "min": 7.0},
                    {"backend": "classical", "metric": "quality_technical", "min": 40.0},
                ],
            },
            "motion": {"rules": [{"backend": "lk", "metric": "motion_valid_ratio_paper", "min": 0.5, "max": 0.97}]},
            "min_resolution": {"rules": [{"backend": "any", "metric": "min_resolution", "min": 40}]},
        },
    }
)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# clip name -> (video, [(backend, metric, value, seconds after T0)]); distances to quality's min 40 in comments
CLIPS = {
    "a1": ("A", [("classical", "quality_technical", 40.0)]),  # pass, 0 (on the bound: passes)
    "a2": ("A", [("classical", "quality_technical", 39.9)]),  # fail, 0.1
    "a3": ("A", [("classical", "quality_technical", 40.2)]),  # pass, 0.2: video A is full by then (cap 2)
    "b1": ("B", [("classical", "quality_technical", 39.5)]),  # fail, 0.5
    "b2": ("B", [("classical", "quality_technical", 42.0)]),  # pass, 2: the passes are full by then
    "c1": ("C", [("classical", "quality_technical", 40.6), ("dover", "dover_overall", 8.0)]),  # pass, 0.6 (dover too: still eligible)
    "c2": ("C", [("classical", "quality_technical", 30.0)]),  # fail, 10
    "d1": ("D", [("classical", "quality_technical", 41.0)]),  # pass, 1: ties with e1, the seed decides
    "e1": ("E", [("classical", "quality_technical", 41.0)]),  # pass, 1
    "f1": ("F", [("classical", "quality_technical", 38.0)]),  # fail, 2
    "f2": ("F", [("classical", "quality_technical", 35.0)]),  # fail, 5
    # motion, two bounds [0.5, 0.97]
    "m1": ("M", [("lk", "motion_valid_ratio_paper", 0.96)]),  # pass, 0.01 to max
    "m2": ("M", [("lk", "motion_valid_ratio_paper", 0.975)]),  # fail, 0.005 to max
    "m3": ("M", [("lk", "motion_valid_ratio_paper", 0.53)]),  # pass, 0.03 to min
    "m4": ("M", [("lk", "motion_valid_ratio_paper", 0.48)]),  # fail, 0.02 to min
    "m5": ("M", [("lk", "motion_valid_ratio_paper", 0.7)]),  # pass, 0.2
    "m6": ("M", [("lk", "motion_valid_ratio_paper", 0.2)]),  # fail, 0.3
    # backend any: the latest score counts (fan, 39: a fail), as decide takes it
    "r1": ("R", [("dlib", "min_resolution", 45.0, 0), ("fan", "min_resolution", 39.0, 60)]),
    "r2": ("R", [("dlib", "min_resolution", 44.0, 0)]),
}
QUALITY_PICKS = {"a1", "a2", "b1", "c1", "f1"}  # plus the winner of the d1/e1 tie


def add_scores(session, run_id: str, clip_id: str, scores) -> None:
    rows = [
        dict(id=make_id("score", clip_id, backend, metric), clip_id=clip_id, metric=metric, value=value, scorer="test",
             scorer_version="1", backend=backend, run_id=run_id, created_at=T0 + dt.timedelta(seconds=later[0] if later else 0))
        for backend, metric, value, *later in scores
    ]  # fmt: skip
    upsert(session, Score, rows, ["clip_id", "backend", "metric"])


def add_clips(ctx: Context, clips: dict, start: int = 0) -> dict[str, str]:
    """Clips of 6 s (150 frames at 25 fps) with their scores; returns name -> clip id."""
    ids = {}
    with ctx.sessions() as session:
        run_id = add_run(session, "score")
        source_id = add_source(session)
        for k, (name, (video, scores)) in enumerate(clips.items(), start=start):
            video_id = add_video(session, source_id, f"video-{video}", storage_path=f"/media/{video}.mp4")
            ids[name] = add_clip(session, video_id, run_id, 200 * k, 200 * k + 150)
            add_scores(session, run_id, ids[name], scores)
        session.commit()
    return ids


@pytest.fixture
def catalog(env_catalog):
    return env_catalog, add_clips(env_catalog, CLIPS)


def items(ctx, set_id) -> dict[str, ValidationItem]:
    with ctx.sessions() as session:
        return {i.clip_id: i for i in session.scalars(select(ValidationItem).where(ValidationItem.set_id == set_id))}


def test_draw_picks_the_nearest_on_each_side_with_the_cap_and_seeded_ties(catalog):
    ctx, clips = catalog
    name_of = {clip_id: name for name, clip_id in clips.items()}
    tie_first = {}
    for seed in range(8):  # two seeds that order the tie both ways
        key = {c: make_id("validation-tie", seed, clips[c]) for c in ("d1", "e1")}
        tie_first.setdefault(min(key, key=key.get), seed)
    assert set(tie_first) == {"d1", "e1"}

    for winner, seed in tie_first.items():
        result = draw(ctx, PROFILE, "quality", n=6, per_video=2, seed=seed)
        # no dover rule is judged: the catalog holds dover scores (c1), so the first rule with scores is dover's...
        assert (result["backend"], result["metric"]) == ("dover", "dover_overall")
        result = draw(ctx, PROFILE, "quality", n=6, backend="classical", per_video=2, seed=seed)
        assert result["name"] == f"validation-test-quality-classical-n6-k2-s{seed}"
        assert (result["pass_requested"], result["pass_drawn"], result["pass_eligible"]) == (3, 3, 6)
        assert (result["fail_requested"], result["fail_drawn"], result["fail_eligible"]) == (3, 3, 5)
        got = items(ctx, result["set_id"])
        assert {name_of[c] for c in got} == QUALITY_PICKS | {winner}
        assert {name_of[c]: got[c].side for c in got} == {"a1": "pass", "a2": "fail", "b1": "fail", "c1": "pass", "f1": "fail", winner: "pass"}
        assert got[clips["a2"]].distance == pytest.approx(0.1) and got[clips["a1"]].value == 40.0
        assert sorted(i.position for i in got.values()) == [1, 2, 3, 4, 5, 6]
        order = sorted(got.values(), key=lambda i: make_id("validation-position", seed, i.clip_id))
        assert [i.position for i in order] == [1, 2, 3, 4, 5, 6]


def test_draw_around_two_bounds_and_the_latest_score_of_any_backend(catalog):
    ctx, clips = catalog
    result = draw(ctx, PROFILE, "motion", n=4, per_video=10)
    got = items(ctx, result["set_id"])
    expected = {"m1": ("pass", "max"), "m2": ("fail", "max"), "m3": ("pass", "min"), "m4": ("fail", "min")}
    assert {c: (i.side, i.bound) for c, i in got.items()} == {clips[n]: sides for n, sides in expected.items()}

    result = draw(ctx, PROFILE, "min_resolution", n=2, per_video=10)
    got = items(ctx, result["set_id"])
    assert got[clips["r1"]].value == 39.0 and got[clips["r1"]].side == RuleSide.FAIL and got[clips["r1"]].bound == Bound.MIN
    assert got[clips["r2"]].side == RuleSide.PASS


def test_draw_is_deterministic_stored_once_and_refuses_other_clips_under_its_name(catalog):
    ctx, clips = catalog
    first = draw(ctx, PROFILE, "quality", n=6, backend="classical", seed=3, per_video=2)
    again = draw(ctx, PROFILE, "quality", n=6, backend="classical", seed=3, per_video=2)
    assert again["existing"] and not first["existing"] and again["set_id"] == first["set_id"]
    assert {c: i.position for c, i in items(ctx, first["set_id"]).items()} == {c: i.position for c, i in items(ctx, again["set_id"]).items()}
    with ctx.sessions() as session:
        stored = session.get(ValidationSet, first["set_id"])
        assert (stored.criterion, stored.backend, stored.metric, stored.min_value, stored.max_value) == (
            "quality",
            "classical",
            "quality_technical",
            40.0,
            None,
        )
        assert stored.params == {"n": 6, "per_video": 2, "seed": 3}
        assert session.get(Run, stored.run_id).stage == "validate"
        add_scores(session, add_run(session), clips["f2"], [("classical", "quality_technical", 39.99)])  # now the nearest fail
        session.commit()
    with pytest.raises(TalkvidError, match="exists and this draw gives other clips"):
        draw(ctx, PROFILE, "quality", n=6, backend="classical", seed=3, per_video=2)
    renamed = draw(ctx, PROFILE, "quality", n=6, backend="classical", seed=3, per_video=2, name="after-rescoring")
    assert clips["f2"] in items(ctx, renamed["set_id"])
    short = draw(ctx, PROFILE, "quality", n=40, backend="classical", per_video=1)  # one clip per video at most
    assert (short["pass_drawn"], short["fail_drawn"], short["items"]) == (4, 2, 6)
    with pytest.raises(TalkvidError, match="no criterion 'nope'"):
        draw(ctx, PROFILE, "nope")
    with pytest.raises(TalkvidError, match=r"no clip has a score of avg_movement \(backend any\)"):
        draw(ctx, "talkvid-code", "avg_movement")


# per item (by clip): the rule's side, alice's and bob's verdict
LABELS = {"a1": ("accept", "accept"), "a2": ("reject", "reject"), "b1": ("accept", "reject"), "c1": ("accept", "accept"),
          "f1": ("reject", "reject"), "d1": ("reject", "accept")}  # fmt: skip


def test_labels_provenance_csv_and_statistics(catalog, tmp_path):
    ctx, clips = catalog
    seed = next(s for s in range(8) if make_id("validation-tie", s, clips["d1"]) < make_id("validation-tie", s, clips["e1"]))
    drawn = draw(ctx, PROFILE, "quality", n=6, backend="classical", per_video=2, seed=seed)
    by_clip = items(ctx, drawn["set_id"])
    with ctx.sessions() as session:
        for name, (alice, _bob) in LABELS.items():
            record(session, by_clip[clips[name]].id, "alice", alice, ORIGIN_PAGE)
        session.commit()
        mine = blind_items(session, drawn["set_id"], "bob")
        assert all(i.own_verdict is None for i in mine) and len(mine) == 6  # bob does not see alice's labels
        assert {i.video_path for i in mine} == {"/media/A.mp4", "/media/B.mp4", "/media/C.mp4", "/media/D.mp4", "/media/F.mp4"}

    sheet = tmp_path / "bob.csv"
    exported = export_csv(ctx, drawn["name"], sheet, annotator="bob")
    assert (exported["rows"], exported["labels"]) == (6, 0)
    rows = list(csv.DictReader(sheet.open()))
    assert all(r["annotator"] == "bob" and r["verdict"] == "" for r in rows) and "value" not in rows[0] and "side" not in rows[0]
    name_of = {clip_id: name for name, clip_id in clips.items()}
    for r in rows:
        r["verdict"] = LABELS[name_of[r["clip_id"]]][1]
    rows.append({**rows[0], "verdict": "maybe"})
    rows.append({**rows[0], "set": "no-such-set"})
    with sheet.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    imported = import_csv(ctx, sheet)
    assert (imported["rows_imported"], imported["annotations"], imported["errors"][0]["item"]) == (6, 6, "bob.csv:8")
    assert "verdict 'maybe'" in imported["errors"][0]["reason"] and "no validation set 'no-such-set'" in imported["errors"][1]["reason"]

    with ctx.sessions() as session:
        provenance = {(a.annotator, a.origin, a.run_id is not None) for a in session.scalars(select(Annotation))}
        assert provenance == {("alice", "page", False), ("bob", "import:bob.csv", True)}
        stats = set_statistics(session, find_set(session, drawn["name"]))
        (summary,) = validation_summary(session)
    # majority: a1 accept (pass: TP), a2 reject (fail: TN), c1 accept (pass: TP), f1 reject (fail: TN); b1, d1 ties
    assert (stats["labelled"], stats["ties"], stats["annotators"]) == (6, 2, {"alice": 6, "bob": 6})
    f = stats["filter"]
    assert (f["n"], f["tp"], f["fp"], f["fn"], f["tn"], f["accuracy"], f["f1"]) == (4, 2, 0, 0, 2, 1.0, 1.0)
    # alice accepts 3 of 6, bob 3 of 6, they agree on 4: po = 4/6, pe = 0.5, kappa = (2/3 - 1/2) / (1/2) = 1/3
    (pair,) = stats["kappa"]
    assert pair["kappa"] == pytest.approx(1 / 3) and pair["n"] == 6
    assert summary["name"] == drawn["name"] and summary["filter"] == f and summary["profile"] == "validation-test"

    everything = tmp_path / "all.csv"
    assert export_csv(ctx, drawn["set_id"], everything)["labels"] == 12
    assert import_csv(ctx, everything)["annotations"] == 12  # a round trip keeps the labels (origin becomes the file)

    result = CliRunner().invoke(validate, ["stats", drawn["name"], "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["kappa"][0]["kappa"] == pytest.approx(1 / 3)
    text = CliRunner().invoke(validate, ["stats", drawn["name"]]).output
    assert "accuracy  1.000 [" in text and "kappa alice / bob (n=6): 0.333 [" in text

    # the release card and report carry the figures and count the human annotations
    from talkvid_ops.export.release import export

    decide(ctx, PROFILE)
    release = tmp_path / "release"
    export(ctx, PROFILE, release, formats=["talkvid-json"], bench_spec="")
    card = (release / "README.md").read_text()
    section = card.split("## Human validation of the filters", 1)[1].split("\n## ", 1)[0]
    assert "12 human annotations by 2 annotators" in section and drawn["name"] in section and "1.000" in section
    report = (release / "report.html").read_text()
    assert "<h2>Human validation of the filters</h2>" in report and drawn["name"] in report


def test_cli_annotation_is_blind_and_reads_verdicts_from_stdin(catalog):
    ctx, clips = catalog
    drawn = draw(ctx, PROFILE, "motion", n=4, per_video=10)
    runner = CliRunner()
    result = runner.invoke(validate, ["annotate", drawn["name"], "--annotator", "carol"], input="a\nr\ns\n")
    assert result.exit_code == 0, result.output
    assert "0 of 4 clips labelled by carol" in result.output and "2 labels recorded for carol" in result.output
    assert "/media/M.mp4" in result.output and "0.96" not in result.output and "pass" not in result.output  # no score, no decision
    with ctx.sessions() as session:
        labelled = [i for i in blind_items(session, drawn["set_id"], "carol") if i.own_verdict]
        assert [i.position for i in labelled] == [1, 2] and [i.own_verdict for i in labelled] == ["accept", "reject"]
        assert {a.origin for a in session.scalars(select(Annotation))} == {"cli"}
    again = runner.invoke(validate, ["annotate", drawn["name"], "--annotator", "carol"], input="q\n")
    assert "2 of 4 clips labelled by carol; 2 to go" in again.output


# for calibration: value -> accepted (current min 40: F1 0.75; a min of 38.5 gives F1 8/9, see the unit test)
CALIBRATION = {30.0: False, 35.0: False, 38.0: False, 39.0: True, 41.0: False, 43.0: True, 45.0: True, 50.0: True}
CALIBRATION_PROFILE = validate_profile(
    {
        "name": "calibration-test",
        "criteria": {
            "quality": {
                "rules": [{"backend": "dover", "metric": "dover_overall", "min": 7.0}, {"backend": "classical", "metric": "quality_technical", "min": 40.0}]
            },
            "min_resolution": {"rules": [{"backend": "any", "metric": "min_resolution", "min": 40}]},
        },
    }
)


def test_calibration_proposes_the_f1_maximising_bound_as_a_valid_profile_with_its_what_if(env_catalog, tmp_path):
    ctx = env_catalog
    good = ("dlib", "min_resolution", 60.0)
    clips = add_clips(ctx, {f"q{v:g}": (f"V{k}", [("classical", "quality_technical", v), good]) for k, v in enumerate(CALIBRATION)})
    drawn = draw(ctx, CALIBRATION_PROFILE, "quality", n=8, backend="classical", per_video=1)
    assert drawn["items"] == 8
    with ctx.sessions() as session:
        for item in session.scalars(select(ValidationItem).where(ValidationItem.set_id == drawn["set_id"])):
            record(session, item.id, "dana", "accept" if CALIBRATION[item.value] else "reject", ORIGIN_PAGE)
        session.commit()
    # after the draw: a clip that enters with the new bound, one that fails another criterion too, one judged by DOVER
    extra = add_clips(ctx, {"enters": ("X", [("classical", "quality_technical", 39.5), good]),
                            "fails_twice": ("Y", [("classical", "quality_technical", 39.0), ("dlib", "min_resolution", 20.0)]),
                            "dover_judged": ("Z", [("classical", "quality_technical", 39.0), ("dover", "dover_overall", 6.0), good])},
                      start=20)  # fmt: skip

    before = calibrate(ctx, drawn["name"])
    assert before["proposed"]["min"] == 38.5 and before["proposed"]["f1"] == pytest.approx(8 / 9) and before["current"]["f1"] == 0.75
    assert before["what_if"] is None and "run `talkvid decide` with it first" in before["yaml"]

    decided = decide(ctx, CALIBRATION_PROFILE)
    assert decided["passed"] == 4
    result = calibrate(ctx, drawn["name"])
    assert result["what_if"]["enter"] == {"clips": 2, "hours": 12 / 3600, "clip_ids": sorted([clips["q39"], extra["enters"]])}
    assert result["what_if"]["leave"] == {"clips": 0, "hours": 0.0, "clip_ids": []}
    assert result["what_if"]["passed_now"] == {"clips": 4, "hours": pytest.approx(24 / 3600)}

    proposal = tmp_path / "proposed.yaml"
    cli_result = CliRunner().invoke(validate, ["calibrate", drawn["name"]])
    assert cli_result.exit_code == 0, cli_result.output
    proposal.write_text(cli_result.output)
    assert cli_result.output.startswith("# Proposed by `talkvid validate calibrate") and "enter 2 clips" in cli_result.output
    body = yaml.safe_load(proposal.read_text())
    assert body["name"] == "calibration-test.calibrated"
    assert body["criteria"]["quality"]["rules"][1]["min"] == 38.5 and body["criteria"]["quality"]["rules"][0]["min"] == 7.0
    checked = CliRunner().invoke(talkvid, ["profiles", "validate", str(proposal)])
    assert checked.exit_code == 0 and "calibration-test.calibrated: valid" in checked.output

    strict = calibrate(ctx, drawn["name"], target_precision=1.0, name="strict")
    assert strict["proposed"]["min"] == 42.0 and strict["proposed_profile"]["name"] == "strict"
    assert strict["what_if"]["leave"]["clip_ids"] == [clips["q41"]] and strict["what_if"]["enter"]["clips"] == 0
    with ctx.sessions() as session:  # nothing was applied: the proposals are neither stored nor decided
        assert set(session.scalars(select(ProfileRow.name))) == {"calibration-test"}


def test_the_catalog_page_app_serves_the_validation_pages_behind_its_login(catalog):
    """Mounted by the dashboard app (as the Airflow plugin does it): the host's login guards the pages too, and the
    signed-in user is the annotator."""
    from fastapi import Header, HTTPException, Request
    from fastapi.testclient import TestClient

    from talkvid_ops.dashboard.access import Capability
    from talkvid_ops.dashboard.app import create_app

    ctx, _ = catalog
    result = draw(ctx, PROFILE, "quality", n=6, backend="classical", per_video=2, seed=0)

    async def login(request: Request) -> None:
        if not request.headers.get("x-user"):
            raise HTTPException(401, "sign in")

    def user(x_user: str | None = Header(None)) -> str:
        return x_user

    client = TestClient(create_app(authorizers=dict.fromkeys(Capability, login), annotator=user))
    assert client.get("/validation/").status_code == 401
    listing = client.get("/validation/", headers={"X-User": "alice"})
    assert listing.status_code == 200 and result["name"] in listing.text
    page = client.get(f"/validation/set/{result['set_id']}/annotate", headers={"X-User": "alice"})
    assert page.status_code == 200 and "<video" in page.text
    assert "validation/" in client.get("/", headers={"X-User": "alice"}).text  # the dashboard links to them
