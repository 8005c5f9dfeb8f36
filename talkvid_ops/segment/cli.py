"""`talkvid segment`: one batch (the container entrypoint form), chosen videos, or everything pending."""

from __future__ import annotations

from talkvid_ops.commands import batch_stage_command, run_batch_stage


@batch_stage_command(
    "segment",
    "video",
    item_help="Segment this video (repeatable).",
    plan_help="Only plan batches of pending videos and print their ids.",
)
def segment_command(**options) -> None:
    """Cut downloaded videos into candidate clips: shots, speech, transcripts and language.

    Rerunning with the same parameters changes nothing; new parameters (TALKVID_CONFIG `segment:`) make a new
    clip generation beside the old one. Prints the run's counts as JSON.
    """
    from talkvid_ops.segment import stage

    run_batch_stage(stage.plan_batches, stage.segment, "video", **options)
