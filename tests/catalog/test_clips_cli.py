"""Why a clip failed, from the shell: `talkvid clips show` and `talkvid clips list --failed-by` on a catalog with
known scores, and `decide --diff` / `profiles show` naming stored (custom) profiles, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from factories import add_clip, add_run, add_source, add_video, score_row
from sqlalchemy import select

from talkvid_ops.catalog.models import Label, Score
from talkvid_ops.catalog.models import Profile as ProfileRow
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.cli import cli
from talkvid_ops.config import Settings
from talkvid_ops.context import Context
from talkvid_ops.curate.decide import decide
from talkvid_ops.curate.profiles import validate_profile
from talkvid_ops.ids import make_id

PROFILE = validate_profile(
    {
        "name": "why-profile",
        "criteria": {
            "quality": {"rules": [{"backend": "classical", "metric": "quality_technical", "min": 42.0}]},
            "motion": {"rules": [{"backend": "lk", "metric": "motion_valid_ratio_paper", "min": 0.5, "max": 0.98}]},
            "avg_resolution": {"rules": [{"backend": "dlib", "metric": "avg_resolution", "min": 50}]},
        },
    }
)
METRICS = (("classical", "quality_technical"), ("lk", "motion_valid_ratio_paper"), ("dlib", "avg_resolution"))
# clip name -> (quality, motion, resolution)
SCORES = {"good": (60, 0.8, 300), "blurry": (30, 0.8, 300), "frozen": (60, 1.0, 300), "hopeless": (10, 1.0, 20), "blurry_too": (41.5, 0.7, 80)}


@pytest.fixture
def decided(catalog_url, tmp_path):
    """The clips above, scored and decided under PROFILE; returns (CLI env, context, clip name -> id)."""
    ctx = Context(Settings(data_dir=tmp_path, database_url=catalog_url))
    with ctx.sessions() as session:
        run_id = add_run(session, "score")
        video_id = add_video(session, add_source(session), "why-test", url="https://example.invalid/v/why-test")
        clips, rows = {}, []
        for n, (name, values) in enumerate(SCORES.items()):
            clips[name] = add_clip(session, video_id, run_id, n * 200, n * 200 + 150)
            for (backend, metric), value in zip(METRICS, values, strict=True):
                rows.append(score_row(clips[name], backend, metric, value, run_id))
        upsert(session, Score, rows, ["clip_id", "backend", "metric"])
        label = dict(subject_kind="clip", subject_id=clips["blurry"], name="language", value="en", provenance="human", origin="curators.csv")
        upsert(session, Label, [dict(id=make_id("label", *label.values()), **label)], ["subject_kind", "subject_id", "name", "provenance", "origin"])
        session.commit()
    decide(ctx, PROFILE)
    env = {"TALKVID_DATA_DIR": str(tmp_path), "TALKVID_DATABASE_URL": catalog_url, "TALKVID_CONFIG": ""}
    return env, ctx, clips


def run_cli(env, *args):
    out = CliRunner().invoke(cli, list(args), env=env)
    assert out.exit_code == 0, out.output
    return out.output


def test_clips_show_names_each_failing_criterion_value_and_bound(decided):
    env, _, clips = decided
    out = run_cli(env, "clips", "show", clips["hopeless"])
    assert f"clip {clips['hopeless']}" in out
    assert "quality_technical            classical    10" in out  # every score with its backend
    assert f"why-profile@{PROFILE.content_hash}: failed" in out
    assert "quality: 10 < min 42 (quality_technical by classical)" in out
    assert "motion: 1 > max 0.98 (motion_valid_ratio_paper by lk)" in out
    assert "avg_resolution: 20 < min 50 (avg_resolution by dlib)" in out
    assert "video: test:why-test" in out and "segmenter: test 1 (params p0)" in out  # lineage

    out = run_cli(env, "clips", "show", clips["blurry"])
    assert "quality: 30 < min 42" in out and "motion:" not in out
    assert "language   en                   human" in out
    out = run_cli(env, "clips", "show", clips["good"])
    assert f"why-profile@{PROFILE.content_hash}: passed" in out

    report = json.loads(run_cli(env, "clips", "show", clips["frozen"], "--json"))
    (decision,) = report["decisions"]
    assert decision["failures"] == [{"criterion": "motion", "metric": "motion_valid_ratio_paper", "backend": "lk", "value": 1.0, "min": 0.5, "max": 0.98}]
    out = CliRunner().invoke(cli, ["clips", "show", "nope"], env=env)
    assert out.exit_code != 0 and "no clip nope in the catalog" in str(out.exception)


def test_clips_list_failed_by_lists_exactly_the_clips_failing_that_criterion(decided):
    env, _, clips = decided
    profile = f"why-profile@{PROFILE.content_hash}"
    rows = json.loads(run_cli(env, "clips", "list", "--profile", profile, "--failed-by", "quality", "--json"))
    assert [r["clip_id"] for r in rows] == sorted([clips["blurry"], clips["hopeless"], clips["blurry_too"]])
    too = next(r for r in rows if r["clip_id"] == clips["blurry_too"])
    assert too["failures"] == [{"criterion": "quality", "metric": "quality_technical", "backend": "classical", "value": 41.5, "min": 42.0, "max": None}]

    out = run_cli(env, "clips", "list", "--profile", profile, "--failed-by", "motion")
    listed = [line.split()[0] for line in out.splitlines()]
    assert listed == sorted([clips["frozen"], clips["hopeless"]])
    assert f"{clips['frozen']}  motion: 1 > max 0.98 (motion_valid_ratio_paper by lk)" in out

    everything = json.loads(run_cli(env, "clips", "list", "--profile", profile, "--json"))
    assert {r["clip_id"] for r in everything} == {clips[n] for n in ("blurry", "frozen", "hopeless", "blurry_too")}
    assert len(json.loads(run_cli(env, "clips", "list", "--profile", profile, "--limit", "2", "--json"))) == 2
    assert "no failed clips with lip_sync failing" in run_cli(env, "clips", "list", "--profile", profile, "--failed-by", "lip_sync")


def test_diff_and_profiles_show_take_stored_custom_profiles(decided):
    env, ctx, clips = decided
    lenient = PROFILE.with_thresholds({"quality": {"min": 35}})
    decide(ctx, lenient)
    stored = f"{lenient.name}@{lenient.content_hash}"
    assert lenient.name == "why-profile.custom"

    out = run_cli(env, "profiles", "show", stored)
    assert f"# why-profile.custom content_hash={lenient.content_hash}" in out
    assert "overrides:\n- criterion: quality\n  min: 35" in out
    assert f"{stored}" in run_cli(env, "profiles", "list", "--stored") and "quality min=35" in run_cli(env, "profiles", "list", "--stored")
    with ctx.sessions() as session:
        body = session.scalar(select(ProfileRow.body).where(ProfileRow.content_hash == lenient.content_hash))
    assert body["overrides"] == [{"criterion": "quality", "min": 35}]

    out = run_cli(env, "decide", "--diff", f"why-profile@{PROFILE.content_hash}", stored)
    assert "enter: 1  leave: 0" in out
    assert f"+ {clips['blurry_too']}  under a: quality: 41.5 < min 42 (quality_technical by classical)" in out
    out = run_cli(env, "decide", "--diff", stored, f"why-profile@{PROFILE.content_hash}")
    assert f"- {clips['blurry_too']}  under b: quality: 41.5 < min 42" in out

    out = CliRunner().invoke(cli, ["profiles", "show", "why-profile@0000"], env=env)
    assert out.exit_code != 0 and "no stored profile why-profile@0000" in str(out.exception)
