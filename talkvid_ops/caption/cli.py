"""`talkvid caption`: one batch (the container entrypoint form), chosen clips, or everything pending."""

from __future__ import annotations

from talkvid_ops.commands import batch_stage_command, run_batch_stage


@batch_stage_command(
    "caption",
    "clip",
    item_help="Caption this clip (repeatable); captioning again replaces.",
    plan_help="Only plan batches of clips needing captions and print their ids.",
)
def caption_command(**options) -> None:
    """Describe clips with a vision-language model from frames sampled over each clip, and give their videos a
    topic category.

    The model is the local directory `caption.model_dir` of TALKVID_CONFIG (never downloaded); without one the
    stage records a skipped run and captions stay null. Prints the run's counts as JSON.
    """
    from talkvid_ops.caption import stage

    run_batch_stage(stage.plan_batches, stage.caption, "clip", **options)
