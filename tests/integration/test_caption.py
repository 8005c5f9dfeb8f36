"""The caption stage end to end on real face video with a tiny randomly initialised Qwen2.5-VL that the test builds
from its config, with its own tokenizer, chat template and image processor config (tests/caption_models.py): frames
are sampled over each clip, the prompt is rendered through the chat template with one image placeholder per frame
(Qwen2.5-VL's forward refuses a count of image tokens that does not match the frames' patches), text is generated
in batches and stored with model, prompt hash and sampling; the video gets a category from the closed list, which a
human annotation overrides; and with no model configured the stage records a skipped run and writes nothing."""

from __future__ import annotations

import pytest
from caption_models import write_tiny_qwen2_5_vl
from factories import add_clip, add_run, add_source, add_video
from sqlalchemy import select

from talkvid_ops.caption import stage
from talkvid_ops.caption.model import model_identity
from talkvid_ops.caption.prompts import CATEGORIES, caption_prompt_hash, category_prompt_hash
from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import Batch, Caption, Label, Run
from talkvid_ops.config import PipelineConfig, Settings
from talkvid_ops.config.caption import CaptionConfig
from talkvid_ops.context import Context
from talkvid_ops.errors import ModelUnavailable

FPS = 30  # of the clip rows
VIDEO_FPS = 23.976  # WolfgangLanger_Pexels.mp4


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    return write_tiny_qwen2_5_vl(tmp_path_factory.mktemp("models") / "tiny-qwen2.5-vl")


def catalog(tmp_path, pyfeat_media, config: CaptionConfig) -> tuple[Context, dict[str, str]]:
    """Two clips of a real face video with a title and transcripts, and one clip of a file that is not media."""
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    db.upgrade(url)
    ctx = Context(Settings(data_dir=tmp_path, database_url=url, pipeline=PipelineConfig(caption=config)))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with ctx.sessions() as session:
        run_id, source_id = add_run(session, "segment"), add_source(session)
        video = add_video(
            session, source_id, "face", storage_path=str(pyfeat_media["WolfgangLanger_Pexels.mp4"]), title="What I learned in my first year of teaching"
        )
        ids = {"video": video, "first": add_clip(session, video, run_id, 0, 4 * FPS, FPS), "second": add_clip(session, video, run_id, 5 * FPS, 8 * FPS, FPS)}
        ids["broken"] = add_clip(session, add_video(session, source_id, "broken", storage_path=str(broken), title="broken"), run_id, 0, 2 * FPS, FPS)
        session.commit()
    return ctx, ids


def captions(ctx: Context) -> dict[str, Caption]:
    with ctx.sessions() as session:
        return {c.clip_id: c for c in session.scalars(select(Caption))}


def test_caption_stage_end_to_end_with_a_tiny_qwen2_5_vl(tmp_path, pyfeat_media, tiny_vlm):
    config = CaptionConfig(model_dir=str(tiny_vlm), frames_per_clip=4, max_new_tokens=12, clips_per_generation=2)
    ctx, ids = catalog(tmp_path, pyfeat_media, config)
    result = stage.caption(ctx)
    assert result["clips_captioned"] == 2 and result["clips_failed"] == 1, result
    assert result["videos_categorised"] == 2, result  # the face video and the broken file's video (it has a title)

    stored = captions(ctx)
    model_id = model_identity(tiny_vlm)
    assert model_id.startswith("tiny-qwen2.5-vl@")
    first = stored[ids["first"]]
    assert (first.status, first.model, first.prompt_hash, first.error) == ("ok", model_id, caption_prompt_hash(), None)
    assert isinstance(first.text, str) and first.text  # gibberish from random weights, but generated and stored
    # the frames covering the centres of four equal parts of the clip (the video runs at 23.976 fps), and the
    # generation settings
    assert first.sampling["times"] == pytest.approx([0.5, 1.5, 2.5, 3.5], abs=1 / VIDEO_FPS)
    assert first.sampling["frames"] == 4 and first.sampling["max_new_tokens"] == 12 and first.sampling["do_sample"] is False
    assert stored[ids["second"]].status == "ok"
    assert stored[ids["second"]].sampling["times"] == pytest.approx([0.375, 1.125, 1.875, 2.625], abs=1 / VIDEO_FPS)
    broken = stored[ids["broken"]]
    assert broken.status == "failed" and broken.text is None and broken.error.startswith("media: ")

    with ctx.sessions() as session:
        assert stage.caption_of(session, [ids["first"], ids["second"], ids["broken"]]) == {
            ids["first"]: first.text,
            ids["second"]: stored[ids["second"]].text,
        }  # what releases export as `description`; a clip without a caption exports null
        (category,) = session.scalars(select(Label).where(Label.subject_id == ids["video"], Label.name == "category"))
    assert category.value in CATEGORIES and category.subject_kind == "video" and category.provenance == "estimated"
    assert category.origin == f"{model_id}:{category_prompt_hash()}" and 0 < category.confidence <= 1

    # a release exports the caption as TalkVid's `description`, and null for a clip without one
    from talkvid_ops.curate.decide import decide, profile_row_id
    from talkvid_ops.export.records import load_records, talkvid_record

    decide(ctx, "talkvid-code")
    with ctx.sessions() as session:
        records = {r.id: r for r in load_records(session, profile_row_id(session, "talkvid-code"), 0.5)}
    assert talkvid_record(records[ids["first"]])["description"] == first.text
    assert talkvid_record(records[ids["second"]])["description"] == stored[ids["second"]].text
    assert talkvid_record(records[ids["broken"]])["description"] is None

    # captioned clips and categorised videos are done: a second run finds nothing to do
    again = stage.caption(ctx)
    assert "clips_captioned" not in again and again["videos_categorised"] == 0, again


def test_a_human_category_wins_over_the_models(tmp_path, pyfeat_media, tiny_vlm):
    from talkvid_ops.curate.labels.annotations import import_labels
    from talkvid_ops.curate.labels.resolution import resolve_labels

    ctx, ids = catalog(tmp_path, pyfeat_media, CaptionConfig(model_dir=str(tiny_vlm), frames_per_clip=2, max_new_tokens=4))
    stage.caption(ctx, clip_ids=[ids["first"]])
    annotations = tmp_path / "categories.csv"
    human = next(c for c in CATEGORIES if c != "Other")
    annotations.write_text(f"video_id,category\n{ids['video']},{human}\n")
    import_labels(ctx, annotations)
    with ctx.sessions() as session:
        assert len(session.scalars(select(Label).where(Label.name == "category")).all()) == 2  # the model's is kept
        resolved = resolve_labels(session, {ids["first"]: ids["video"]})[ids["first"]]["category"]
    assert (resolved.value, resolved.provenance) == (human, "human")


def test_caption_batches_plan_and_run(tmp_path, pyfeat_media, tiny_vlm):
    config = CaptionConfig(model_dir=str(tiny_vlm), frames_per_clip=2, max_new_tokens=4)
    ctx, ids = catalog(tmp_path, pyfeat_media, config)
    batches = stage.plan_batches(ctx, size=2)
    assert len(batches) == 2 and stage.plan_batches(ctx, size=2) == batches  # deterministic ids
    result = stage.caption(ctx, batch_id=batches[0])
    with ctx.sessions() as session:
        batch = session.get(Batch, batches[0])
        assert batch.status == "done" and batch.run_id == result["run_id"]
    assert result.get("clips_captioned", 0) + result.get("clips_failed", 0) == 2
    assert set(captions(ctx)) == set(batch.items)
    assert len(stage.plan_batches(ctx, size=2)) == 1  # only the clip of the other batch is still pending


def test_without_a_model_the_stage_is_skipped_cleanly(tmp_path, pyfeat_media):
    ctx, ids = catalog(tmp_path, pyfeat_media, CaptionConfig())
    assert stage.plan_batches(ctx) == []
    result = stage.caption(ctx)
    assert set(result) == {"run_id", "skipped"} and "caption.model_dir" in result["skipped"]
    with ctx.sessions() as session:
        run = session.get(Run, result["run_id"])
        assert (run.stage, run.status, run.params["skipped"]) == ("caption", "succeeded", result["skipped"])
        assert stage.caption_of(session, ids.values()) == {}
        assert session.scalars(select(Label).where(Label.name == "category")).all() == []
    assert captions(ctx) == {}


def test_a_configured_model_that_is_missing_names_the_path(tmp_path, pyfeat_media):
    ctx, _ = catalog(tmp_path, pyfeat_media, CaptionConfig(model_dir=str(tmp_path / "models" / "qwen2.5-vl")))
    with pytest.raises(ModelUnavailable, match=r"captioning model not found: .*models/qwen2\.5-vl/config\.json"):
        stage.caption(ctx)
    with ctx.sessions() as session:
        assert session.scalar(select(Run.status).where(Run.stage == "caption")) == "failed"
