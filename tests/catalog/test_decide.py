"""Set-based decisions over stored scores, on SQLite and PostgreSQL: statuses, which rule applies, what a failure
records, reruns, profile changes and diffs."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from click.testing import CliRunner
from factories import add_clip, add_run, add_source, add_video
from factories import score_row as factory_score_row
from sqlalchemy import func, select

from talkvid_ops.catalog.models import Decision, DecisionFailure, Run, Score
from talkvid_ops.catalog.models import Profile as ProfileRow
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.cli import cli
from talkvid_ops.config import Settings
from talkvid_ops.context import Context
from talkvid_ops.curate.decide import decide, diff, passed_clip_ids, profile_row_id
from talkvid_ops.curate.profiles import validate_profile
from talkvid_ops.errors import TalkvidError
from talkvid_ops.ids import make_id

PROFILE = validate_profile(
    {
        "name": "test-profile",
        "criteria": {
            "quality": {
                "rules": [
                    {"backend": "dover", "metric": "dover_overall", "min": 7.0},
                    {"backend": "classical", "metric": "quality_technical", "min": 42.0},
                ]
            },
            "motion": {
                "rules": [
                    {"backend": "cotracker3", "metric": "motion_valid_ratio_paper", "min": 0.85, "max": 0.999},
                    {"backend": "lk", "metric": "motion_valid_ratio_paper", "min": 0.5, "max": 0.98},
                ]
            },
            "avg_resolution": {"rules": [{"backend": "any", "metric": "avg_resolution", "min": 50}]},
        },
    }
)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# clip name -> [(backend, metric, value, seconds after T0)]
SCORES = {
    "pass_cpu": [("classical", "quality_technical", 60), ("lk", "motion_valid_ratio_paper", 0.8), ("dlib", "avg_resolution", 300)],
    "dover_first": [
        ("dover", "dover_overall", 6.5),
        ("classical", "quality_technical", 80),
        ("lk", "motion_valid_ratio_paper", 0.8),
        ("dlib", "avg_resolution", 300),
    ],
    "fails_three": [("classical", "quality_technical", 30), ("lk", "motion_valid_ratio_paper", 1.0), ("dlib", "avg_resolution", 20)],
    "motion_missing": [("classical", "quality_technical", 60), ("dlib", "avg_resolution", 300)],
    "missing_and_failed": [("classical", "quality_technical", 10), ("dlib", "avg_resolution", 300)],
    "no_scores": [],
    "any_takes_latest": [
        ("classical", "quality_technical", 60),
        ("lk", "motion_valid_ratio_paper", 0.6),
        ("dlib", "avg_resolution", 20),
        ("fan", "avg_resolution", 300, 60),
    ],
}


def score_row(clip_id, backend, metric, value, run_id, created_at=T0):
    return factory_score_row(clip_id, backend, metric, value, run_id, created_at=created_at)


@pytest.fixture
def scored(catalog_url, tmp_path):
    """A catalog with the clips above and their scores; returns (context, clip name -> id)."""
    ctx = Context(Settings(data_dir=tmp_path, database_url=catalog_url))
    with ctx.sessions() as session:
        run_id = add_run(session, "score")
        video_id = add_video(session, add_source(session), "decide-test")
        clips, rows = {}, []
        for n, (name, scores) in enumerate(SCORES.items()):
            clips[name] = add_clip(session, video_id, run_id, n * 200, n * 200 + 150)
            for backend, metric, value, *later in scores:
                rows.append(score_row(clips[name], backend, metric, value, run_id, T0 + dt.timedelta(seconds=later[0] if later else 0)))
        upsert(session, Score, rows, ["clip_id", "backend", "metric"])
        session.commit()
    return ctx, clips


def decisions(ctx, profile_id):
    with ctx.sessions() as session:
        rows = session.scalars(select(Decision).where(Decision.profile_id == profile_id)).all()
        failures = session.execute(
            select(Decision.clip_id, DecisionFailure).join(DecisionFailure, DecisionFailure.decision_id == Decision.id).where(Decision.profile_id == profile_id)
        ).all()
    by_clip = {d.clip_id: {"status": d.status, "missing": sorted(d.missing), "failures": {}} for d in rows}
    for clip_id, f in failures:
        by_clip[clip_id]["failures"][f.criterion] = (f.metric, f.backend, f.value, f.min_value, f.max_value)
    return by_clip


def test_statuses_rules_and_failure_records(scored):
    ctx, clips = scored
    result = decide(ctx, PROFILE)
    assert (result["clips"], result["passed"], result["failed"], result["undecided"]) == (7, 2, 3, 2)
    got = decisions(ctx, result["profile_id"])

    assert got[clips["pass_cpu"]] == {"status": "passed", "missing": [], "failures": {}}
    # the DOVER rule comes first and the clip has a DOVER score: its failing 6.5 applies, not classical's 80
    assert got[clips["dover_first"]]["failures"] == {"quality": ("dover_overall", "dover", 6.5, 7.0, None)}
    assert got[clips["fails_three"]] == {
        "status": "failed",
        "missing": [],
        "failures": {
            "quality": ("quality_technical", "classical", 30.0, 42.0, None),
            "motion": ("motion_valid_ratio_paper", "lk", 1.0, 0.5, 0.98),  # above the frozen-shot bound
            "avg_resolution": ("avg_resolution", "dlib", 20.0, 50.0, None),
        },
    }
    assert got[clips["motion_missing"]] == {"status": "undecided", "missing": ["motion"], "failures": {}}
    assert got[clips["missing_and_failed"]]["status"] == "failed"  # a failure outweighs a missing score
    assert got[clips["missing_and_failed"]]["missing"] == ["motion"]
    assert got[clips["no_scores"]] == {"status": "undecided", "missing": ["avg_resolution", "motion", "quality"], "failures": {}}
    # `backend: any` judges the latest score of the metric, whoever wrote it
    assert got[clips["any_takes_latest"]]["status"] == "passed"

    with ctx.sessions() as session:
        stored = session.get(ProfileRow, result["profile_id"])
        assert (stored.name, stored.content_hash) == (PROFILE.name, PROFILE.content_hash)
        run = session.get(Run, result["run_id"])
        assert run.stage == "decide" and run.status == "succeeded" and run.counts["failed"] == 3
        # what the curate stages after decide ask of the decisions
        assert profile_row_id(session, PROFILE) == result["profile_id"]
        assert passed_clip_ids(session, result["profile_id"]) == sorted([clips["pass_cpu"], clips["any_takes_latest"]])
        with pytest.raises(
            TalkvidError, match=r"no decisions for profile talkvid-code \(content hash \w+\): run `talkvid decide --profile talkvid-code` first"
        ):
            profile_row_id(session, "talkvid-code")


def test_rerun_replaces_and_changed_thresholds_are_a_new_version(scored):
    ctx, clips = scored
    first = decide(ctx, PROFILE)
    again = decide(ctx, PROFILE)
    assert again["profile_id"] == first["profile_id"]
    with ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Decision)) == 7
        assert session.scalar(select(func.count()).select_from(DecisionFailure)) == 1 + 3 + 1
        assert set(session.scalars(select(Decision.run_id))) == {again["run_id"]}

    lenient = PROFILE.with_thresholds({"quality": {"backend": "dover", "min": 25}, "motion": {"min": 0.5, "max": None}}).with_thresholds(
        {"quality": {"backend": "classical", "min": 25}}, name="test-lenient"
    )
    relaxed = decide(ctx, lenient)
    assert relaxed["profile_id"] != first["profile_id"]
    got = decisions(ctx, relaxed["profile_id"])
    assert got[clips["fails_three"]]["failures"] == {"avg_resolution": ("avg_resolution", "dlib", 20.0, 50.0, None)}
    # both quality rules were lowered (one backend at a time); motion's rules share one metric, so one bound sets both
    assert got[clips["dover_first"]]["failures"] == {"quality": ("dover_overall", "dover", 6.5, 25.0, None)}
    # the stricter profile's decisions are kept beside the new ones
    assert decisions(ctx, first["profile_id"])[clips["dover_first"]]["status"] == "failed"


@pytest.mark.parametrize("catalog_url", ["postgres"], indirect=True)
def test_a_second_decide_of_a_profile_waits_for_the_first(scored):
    """Decide inserts a profile's new decisions without ON CONFLICT: it relies on holding the profile's row, so
    that a second decide of the profile (another Airflow task, a user at the CLI) waits instead of colliding."""
    ctx, clips = scored
    profile_id = decide(ctx, PROFILE)["profile_id"]
    results: list[dict] = []
    with ctx.sessions() as holder:  # a decide of the profile in progress holds its row like this
        holder.execute(select(ProfileRow.id).where(ProfileRow.id == profile_id).with_for_update(key_share=True))
        second = threading.Thread(target=lambda: results.append(decide(ctx, PROFILE)))
        second.start()
        second.join(2.0)
        assert second.is_alive() and not results  # held back by the lock
        holder.commit()
    second.join(60)
    assert not second.is_alive() and results[0]["clips"] == len(clips)
    assert decisions(ctx, profile_id)[clips["no_scores"]]["status"] == "undecided"


def test_diff_lists_clips_entering_and_leaving(scored):
    ctx, clips = scored
    lenient_quality = PROFILE.with_thresholds({"quality": {"backend": "dover", "min": 5}}, name="test-b")
    result = diff(ctx, PROFILE, lenient_quality)
    assert result["enter"] == [clips["dover_first"]] and result["leave"] == []
    assert (result["a"]["passed"], result["b"]["passed"]) == (2, 3)
    strict_resolution = PROFILE.with_thresholds({"avg_resolution": {"min": 400}}, name="test-c")
    result = diff(ctx, PROFILE, strict_resolution)
    assert result["enter"] == [] and result["leave"] == sorted([clips["pass_cpu"], clips["any_takes_latest"]])


def test_cli_decide_and_diff(tmp_path, monkeypatch):
    from talkvid_ops.catalog import db

    data = tmp_path / "data"
    env = {"TALKVID_DATA_DIR": str(data), "TALKVID_DATABASE_URL": f"sqlite:///{data / 'catalog.sqlite'}", "TALKVID_CONFIG": ""}
    db.upgrade(env["TALKVID_DATABASE_URL"])
    ctx = Context(Settings(data_dir=data, database_url=env["TALKVID_DATABASE_URL"]))
    with ctx.sessions() as session:
        run_id = add_run(session, "score")
        clip_id = add_clip(session, add_video(session, add_source(session), "cli"), run_id, 0, 150)
        upsert(
            session,
            Score,
            [
                dict(
                    id=make_id("score", clip_id, "classical", "quality_technical"),
                    clip_id=clip_id,
                    metric="quality_technical",
                    value=99.0,
                    scorer="quality",
                    scorer_version="1",
                    backend="classical",
                    run_id=run_id,
                )
            ],
            ["clip_id", "backend", "metric"],
        )
        session.commit()
    runner = CliRunner()
    out = runner.invoke(cli, ["decide", "--profile", "talkvid-code"], env=env)
    assert out.exit_code == 0, out.output
    assert "talkvid-code@" in out.output and "1 clips" in out.output and "undecided=1" in out.output

    profile_file = tmp_path / "quality-only.yaml"
    profile_file.write_text("name: quality-only\ncriteria:\n  quality:\n    rules:\n      - {backend: classical, metric: quality_technical, min: 50}\n")
    out = runner.invoke(cli, ["decide", "--diff", "talkvid-code", str(profile_file), "--json"], env=env)
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["enter"] == [clip_id] and result["leave"] == []
    assert result["b"]["passed"] == 1 and result["a"]["undecided"] == 1

    out = runner.invoke(cli, ["decide", "--profile", "talkvid-code", "--diff", "a", "b"], env=env)
    assert out.exit_code != 0 and "exclude each other" in out.output


# --- the set-based SQL against a row-by-row reading of the rules ----------------------------------------------------

# the test profile and a criterion with an upper bound only, judged on any backend
EDGE_PROFILE = validate_profile(
    {
        **PROFILE.body(),
        "name": "edge-profile",
        "criteria": {**PROFILE.body()["criteria"], "face_consistency": {"rules": [{"backend": "any", "metric": "face_consistency", "max": 90}]}},
    }
)
# per (backend, metric): values at, just inside and just outside the bounds, and None (a scorer that wrote no number)
EDGE_VALUES = {
    ("dover", "dover_overall"): [7.0, 6.999, 9.0, None],
    ("classical", "quality_technical"): [42.0, 41.99, 70.0, None],
    ("cotracker3", "motion_valid_ratio_paper"): [0.85, 0.999, 0.9991, 0.5, None],
    ("lk", "motion_valid_ratio_paper"): [0.5, 0.98, 0.981, 0.4999, None],
    ("dlib", "avg_resolution"): [50.0, 49.0, 300.0, None],
    ("fan", "avg_resolution"): [50.0, 10.0, 300.0],
    ("insightface", "avg_resolution"): [20.0, 80.0],
    ("dlib", "face_consistency"): [90.0, 90.5, 40.0],
    ("fan", "face_consistency"): [99.0, 10.0, None],
}


def decided_row_by_row(profile, scores):
    """One clip's decision as the module docstring states the rules, one criterion at a time. `scores` holds
    (backend, metric, value, created_at) rows."""
    failures, missing = {}, []
    for name, criterion in profile.criteria.items():
        applied = None
        for rule in criterion.rules:
            usable = [s for s in scores if s[1] == rule.metric and rule.backend in ("any", s[0]) and s[2] is not None]
            if usable:  # the latest score; at equal times the first backend by name
                applied = rule, min(usable, key=lambda s: (-s[3].timestamp(), s[0]))
                break
        if applied is None:
            missing.append(name)
            continue
        rule, (backend, metric, value, _) = applied
        if (rule.min is not None and value < rule.min) or (rule.max is not None and value > rule.max):
            failures[name] = (metric, backend, value, rule.min, rule.max)
    status = "failed" if failures else "undecided" if missing else "passed"
    return {"status": status, "missing": sorted(missing), "failures": failures}


def test_the_set_based_decision_is_the_row_by_row_one(catalog_url, tmp_path):
    """Clips with every mix of edge cases (a missing or null score, values at the bounds, several backends of one
    metric written at the same or different times) are decided as a loop over the rules decides them."""
    import random

    rng = random.Random(13)
    ctx = Context(Settings(data_dir=tmp_path, database_url=catalog_url))
    expected, rows = {}, []
    with ctx.sessions() as session:
        run_id = add_run(session, "score")
        video_id = add_video(session, add_source(session), "decide-golden")
        for n in range(240):
            clip_id = add_clip(session, video_id, run_id, n * 200, n * 200 + 150)
            scores = [
                (backend, metric, rng.choice(values), T0 + dt.timedelta(seconds=rng.choice([0, 0, 30])))
                for (backend, metric), values in EDGE_VALUES.items()
                if rng.random() < 0.6
            ]
            expected[clip_id] = decided_row_by_row(EDGE_PROFILE, scores)
            rows += [score_row(clip_id, b, m, v, run_id, t) for b, m, v, t in scores]
        upsert(session, Score, rows, ["clip_id", "backend", "metric"])
        session.commit()
    statuses = {d["status"] for d in expected.values()}
    assert statuses == {"passed", "failed", "undecided"}  # the draw reaches every outcome
    first = decide(ctx, EDGE_PROFILE)
    assert decisions(ctx, first["profile_id"]) == expected
    # deciding again (nothing changed) and after a rescore of some clips gives the row-by-row answer too
    again = decide(ctx, EDGE_PROFILE)
    assert decisions(ctx, again["profile_id"]) == expected
    rescored = sorted(expected)[::7]
    with ctx.sessions() as session:
        for clip_id in rescored:
            session.execute(Score.__table__.update().where(Score.clip_id == clip_id, Score.metric == "quality_technical").values(value=10.0))
            session.execute(Score.__table__.delete().where(Score.clip_id == clip_id, Score.metric == "avg_resolution"))
        session.commit()
        for clip_id in rescored:
            stored = session.execute(select(Score.backend, Score.metric, Score.value, Score.created_at).where(Score.clip_id == clip_id)).all()
            expected[clip_id] = decided_row_by_row(EDGE_PROFILE, [(b, m, v, t if t.tzinfo else t.replace(tzinfo=dt.UTC)) for b, m, v, t in stored])
    assert decisions(ctx, decide(ctx, EDGE_PROFILE)["profile_id"]) == expected
