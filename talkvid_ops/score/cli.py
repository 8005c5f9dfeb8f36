"""`talkvid score`: one batch (the container entrypoint form), chosen clips, or everything pending."""

from __future__ import annotations

from talkvid_ops.commands import batch_stage_command, run_batch_stage


@batch_stage_command(
    "score",
    "clip",
    item_help="Score this clip (repeatable); rescoring replaces.",
    plan_help="Only plan batches of clips needing scores and print their ids.",
)
def score_command(**options) -> None:
    """Score clips for visual quality, motion and head detail, decoding each clip once for all scorers.

    Backends come from TALKVID_CONFIG `score:` (CPU defaults: classical, lk, dlib). Raw metrics are stored;
    `talkvid decide` applies thresholds. A scorer failing on a clip is recorded and the others still run.
    Prints the run's counts as JSON.
    """
    from talkvid_ops.score import stage

    run_batch_stage(stage.plan_batches, stage.score, "clip", **options)
