"""The bench: TalkVid-Bench's shipped spec, a deterministic balanced draw that holds out whole videos and speakers,
and a report of requested vs achieved per stratum with every shortfall named exactly."""

from __future__ import annotations

import json

import pytest
import yaml
from sqlalchemy import select

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import Bench, BenchClip, Run
from talkvid_ops.cli import cli
from talkvid_ops.curate.bench import bench_candidates, draw, draw_bench, limits_note, load_bench_spec
from talkvid_ops.curate.decide import profile_row_id
from talkvid_ops.curate.labels.vocabulary import LANGUAGES
from talkvid_ops.errors import ConfigError, TalkvidError
from tests.factories import add_clip, add_run, add_source, add_video
from tests.release_catalog import PROFILE, SMALL_SPEC_SHORTFALLS, add_decision, add_profile, build_people_catalog, cli_catalog, make_context


def test_shipped_spec_is_talkvid_bench():
    spec = load_bench_spec("talkvid-bench")
    totals = {name: sum(sub.strata.values()) for name, sub in spec.subbenchmarks.items()}
    assert totals == {"age": 105, "gender": 100, "ethnicity": 100, "language": 195} and sum(totals.values()) == 500
    assert list(spec.subbenchmarks["age"].strata) == ["0-19", "19-30", "31-45", "46-60", "60+"]
    assert set(spec.subbenchmarks["gender"].strata) == {"male", "female"}
    assert set(spec.subbenchmarks["ethnicity"].strata) == {"Black", "White", "Asian"}
    assert list(spec.subbenchmarks["language"].strata) == list(LANGUAGES) and len(LANGUAGES) == 15
    assert spec.clip_seconds == 5.0 and spec.max_clips_per_person == 1 and spec.require_person


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"subbenchmarks": {"age": {"label": "age_group", "strata": {"70-80": 3}}}},
            "subbenchmarks.age: Value error, stratum '70-80' is not a age_group value",
        ),
        ({"subbenchmarks": {"gender": {"label": "gender", "strata": {"male": -1}}}}, "stratum 'male': a negative count (-1)"),
        ({"clip_seconds": 0}, "clip_seconds: Input should be greater than 0"),
        ({"seed": 3}, "seed: Extra inputs are not permitted"),
    ],
)
def test_bad_specs_are_one_clear_error_naming_the_field(tmp_path, change, message):
    body = {"name": "bad", **change}
    body.setdefault("subbenchmarks", {"gender": {"label": "gender", "strata": {"male": 1}}})
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError) as caught:
        load_bench_spec(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_draw_balances_holds_out_videos_and_speakers_and_reports_shortfalls_exactly(catalog_url, tmp_path):
    ctx = make_context(catalog_url, tmp_path)
    built = build_people_catalog(ctx, tmp_path)
    spec = load_bench_spec(built["spec"])
    with ctx.sessions() as session:
        candidates = bench_candidates(session, profile_row_id(session, PROFILE))
    assert len(candidates) == 18  # the passed clips; the failed one is no candidate
    result = draw(candidates, spec, seed=0)

    assert [(r["subbenchmark"], r["stratum"], r["requested"], r["achieved"], r["shortfall"], r["eligible"]) for r in result.strata] == [
        ("gender", "male", 3, 3, 0, 8),
        ("gender", "female", 3, 2, 1, 4),  # two women, one clip per speaker
        ("age", "19-30", 2, 2, 0, 4),
        ("age", "60+", 2, 1, 1, 1),  # the 4 s clip is too short, the clip without a speaker and the human Unknown do not count
    ]
    assert result.shortfalls == SMALL_SPEC_SHORTFALLS
    person_of = built["person_of"]
    persons = [person_of[p.candidate.clip_id] for p in result.picks]
    assert len(persons) == len(set(persons)) == 8  # every speaker at most once in the bench
    assert {person_of[p.candidate.clip_id] for p in result.picks if p.stratum == "60+"} == {"P6"}
    assert all(p.end_frame - p.start_frame == 125 for p in result.picks)  # 5 s windows at 25 fps, inside their clips
    assert all(p.candidate.start_frame <= p.start_frame and p.end_frame <= p.candidate.end_frame for p in result.picks)

    training = [c for c in candidates if not result.holds_out(c.video_id, c.person)]
    bench_videos = {p.candidate.video_id for p in result.picks}
    bench_people = {p.candidate.person for p in result.picks}
    assert not {c.video_id for c in training} & bench_videos
    assert not {c.person for c in training} & bench_people
    held_by_speaker_only = [c for c in candidates if c.video_id not in bench_videos and c.person in bench_people]
    assert held_by_speaker_only, "a bench speaker's other video must be held out too"
    assert {c.clip_id for c in candidates} == {c.clip_id for c in training} | {p.candidate.clip_id for p in result.picks} | {
        c.clip_id for c in held_by_speaker_only
    }

    again = draw(list(reversed(candidates)), spec, seed=0)
    assert [(p.subbenchmark, p.stratum, p.candidate.clip_id) for p in again.picks] == [(p.subbenchmark, p.stratum, p.candidate.clip_id) for p in result.picks]
    picked_males = {frozenset(p.candidate.person for p in draw(candidates, spec, seed).picks if p.stratum == "male") for seed in range(8)}
    assert len(picked_males) > 1  # the seed matters where there is a choice


def test_the_hold_out_budget_keeps_the_bench_from_eating_the_training_set(sqlite_url, tmp_path):
    ctx = make_context(sqlite_url, tmp_path)
    build_people_catalog(ctx, tmp_path)
    spec = load_bench_spec(tmp_path / "small.yaml").model_copy(update={"max_held_out_share": 0.3})
    with ctx.sessions() as session:
        candidates = bench_candidates(session, profile_row_id(session, PROFILE))
    result = draw(candidates, spec, seed=0)
    report = result.report()
    assert report["held_out"]["budget"] == 5 and report["held_out"]["clips"] == 5  # floor(0.3 * 18)
    assert sum(1 for c in candidates if result.holds_out(c.video_id, c.person)) == 5
    # scarce strata first: the two women (two videos each) take 4 of the 5, a man would take 2 more; then the one
    # 60+ speaker (one video) takes the last, and nobody of 19-30 fits
    assert [(r["stratum"], r["achieved"], r["over_budget"]) for r in report["strata"]] == [("male", 0, 8), ("female", 2, 0), ("19-30", 0, 4), ("60+", 1, 0)]
    assert report["shortfalls"][0] == "gender/male: 0 of 3 (3 short: hold-out budget; eligible 8, 8 over the hold-out budget)"
    assert [r["reason"] for r in report["strata"]] == ["hold-out budget", "per-video/per-speaker caps", "hold-out budget", "not enough eligible clips"]
    assert report["limited_by"] == ["hold-out budget", "not enough eligible clips", "per-video/per-speaker caps"]
    assert limits_note(report).startswith(
        "The hold-out budget, not the data, limited 2 of its 4 short strata: max_held_out_share 0.3 lets the "
        "bench take at most 5 of the 18 passed clips from training"
    )
    unlimited = draw(candidates, spec.model_copy(update={"max_held_out_share": None}), seed=0).report()
    assert unlimited["limited_by"] == ["not enough eligible clips", "per-video/per-speaker caps"]
    assert limits_note(unlimited).startswith("The data, not the hold-out budget, limited this bench: too few eligible clips (5 s or longer")


def test_draw_is_stable_when_unrelated_clips_arrive(sqlite_url, tmp_path):
    ctx = make_context(sqlite_url, tmp_path)
    build_people_catalog(ctx, tmp_path)
    spec = load_bench_spec(tmp_path / "small.yaml")
    with ctx.sessions() as session:
        before = draw(bench_candidates(session, profile_row_id(session, PROFILE)), spec, seed=4)
        run_id = add_run(session)
        newcomer = add_clip(session, add_video(session, add_source(session), "newcomer"), run_id, 0, 150)
        add_decision(session, newcomer, add_profile(session), run_id, "passed")  # no labels: counts nowhere
        session.commit()
        after = draw(bench_candidates(session, profile_row_id(session, PROFILE)), spec, seed=4)
    assert [p.candidate.clip_id for p in after.picks] == [p.candidate.clip_id for p in before.picks]


def test_a_draw_is_stored_and_drawing_again_replaces_it_in_place(catalog_url, tmp_path):
    ctx = make_context(catalog_url, tmp_path)
    built = build_people_catalog(ctx, tmp_path)
    spec = str(built["spec"])
    first = draw_bench(ctx, PROFILE, spec, 0)

    def stored():
        with ctx.sessions() as session:
            benches = session.execute(select(Bench.id, Bench.seed, Bench.spec_name, Bench.report, Bench.run_id)).all()
            picks = session.execute(select(BenchClip.bench_id, BenchClip.clip_id, BenchClip.subbench, BenchClip.stratum, BenchClip.person)).all()
        return benches, sorted(picks)

    benches, picks = stored()
    assert [(b.id, b.seed, b.spec_name, b.run_id) for b in benches] == [(first["bench_id"], 0, "small", first["run_id"])]
    assert benches[0].report == {k: v for k, v in first.items() if k not in ("run_id", "bench_id", "profile", "profile_hash")}
    assert len(picks) == 8 and all(built["person_of"][p.clip_id] == p.person for p in picks)  # the speaker held out with each clip

    again = draw_bench(ctx, PROFILE, spec, 0)
    assert again["bench_id"] == first["bench_id"] and again["run_id"] != first["run_id"]
    benches_again, picks_again = stored()
    assert picks_again == picks and [(b.id, b.run_id) for b in benches_again] == [(first["bench_id"], again["run_id"])]
    other = draw_bench(ctx, PROFILE, spec, 3)  # another seed is another draw, beside the first
    assert other["bench_id"] != first["bench_id"] and len(stored()[0]) == 2


def test_bench_draw_from_the_cli_and_without_decisions(talkvid_env, tmp_path):
    runner, url, ctx = cli_catalog(talkvid_env)
    with pytest.raises(TalkvidError, match="no decisions for profile talkvid-code .* run `talkvid decide --profile talkvid-code` first"):
        draw_bench(ctx, PROFILE, "talkvid-bench")
    build_people_catalog(ctx, tmp_path)
    as_json = runner.invoke(cli, ["bench", "draw", "--spec", str(tmp_path / "small.yaml"), "--seed", "3", "--json"])
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert (report["requested"], report["achieved"], report["seed"]) == (10, 8, 3)
    assert report["shortfalls"] == SMALL_SPEC_SHORTFALLS
    with db.session_factory(url)() as session:
        run = session.get(Run, report["run_id"])
        assert (run.stage, run.status, run.counts["achieved"]) == ("bench", "succeeded", 8)
    shipped = runner.invoke(cli, ["bench", "draw"]).output  # the default: TalkVid-Bench, which this catalog cannot fill
    assert "bench talkvid-bench (seed 0) from talkvid-code: 3 of 500 clips" in shipped  # 20 % of 18 clips may be held out
    assert "language/Thai: 0 of 13 (13 short: not enough eligible clips; eligible 0)" in shipped
    assert "gender/male: 0 of 50 (50 short: hold-out budget; eligible 8, 8 over the hold-out budget)" in shipped
    assert (
        "The hold-out budget, not the data, limited 3 of its 25 short strata: max_held_out_share 0.2 lets the bench take at most 3 of the 18 passed clips"
        in shipped
    )
    assert "`talkvid bench draw --spec FILE`. The data, not the hold-out budget, limited the other 22: too few eligible clips" in shipped
