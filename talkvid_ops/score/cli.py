"""`talkvid score`: one batch (the container entrypoint form), chosen clips, or everything pending."""

from __future__ import annotations

import click

from talkvid_ops.cli import echo_json, get_context


@click.command("score")
@click.option("--clip", "clip_ids", multiple=True, metavar="ID", help="Score this clip (repeatable); rescoring replaces.")
@click.option("--batch", "batch_id", metavar="ID", help="Score exactly the clips of this batch.")
@click.option("--limit", type=click.IntRange(min=1), help="Score at most this many clips.")
@click.option("--plan-batches", "plan", is_flag=True, help="Only plan batches of clips needing scores and print their ids.")
@click.option("--size", type=click.IntRange(min=1), help="With --plan-batches: clips per batch (default: score.batch_size).")
def score_command(clip_ids: tuple[str, ...], batch_id: str | None, limit: int | None, plan: bool, size: int | None) -> None:
    """Score clips for visual quality, motion and head detail, decoding each clip once for all scorers.

    Backends come from TALKVID_CONFIG `score:` (CPU defaults: classical, lk, dlib). Raw metrics are stored;
    `talkvid decide` applies thresholds. A scorer failing on a clip is recorded and the others still run.
    Prints the run's counts as JSON.
    """
    from talkvid_ops.score import stage

    if batch_id and clip_ids:
        raise click.UsageError("--batch and --clip exclude each other")
    if size and not plan:
        raise click.UsageError("--size goes with --plan-batches")
    ctx = get_context()
    if plan:
        echo_json({"batches": stage.plan_batches(ctx, size=size)})
        return
    echo_json(stage.score(ctx, clip_ids=list(clip_ids) or None, batch_id=batch_id, limit=limit))
