"""`talkvid segment`: one batch (the container entrypoint form), chosen videos, or everything pending."""

from __future__ import annotations

import click

from talkvid_ops.cli import echo_json, get_context


@click.command("segment")
@click.option("--video", "video_ids", multiple=True, metavar="ID", help="Segment this video (repeatable).")
@click.option("--batch", "batch_id", metavar="ID", help="Segment exactly the videos of this batch.")
@click.option("--limit", type=click.IntRange(min=1), help="Segment at most this many videos.")
@click.option("--plan-batches", "plan", is_flag=True, help="Only plan batches of pending videos and print their ids.")
@click.option("--size", type=click.IntRange(min=1), help="With --plan-batches: videos per batch (default: segment.batch_size).")
def segment_command(video_ids: tuple[str, ...], batch_id: str | None, limit: int | None, plan: bool, size: int | None) -> None:
    """Cut downloaded videos into candidate clips: shots, speech, transcripts and language.

    Rerunning with the same parameters changes nothing; new parameters (TALKVID_CONFIG `segment:`) make a new
    clip generation beside the old one. Prints the run's counts as JSON.
    """
    from talkvid_ops.segment import stage

    if batch_id and video_ids:
        raise click.UsageError("--batch and --video exclude each other")
    if size and not plan:
        raise click.UsageError("--size goes with --plan-batches")
    ctx = get_context()
    if plan:
        echo_json({"batches": stage.plan_batches(ctx, size=size)})
        return
    echo_json(stage.segment(ctx, video_ids=list(video_ids) or None, batch_id=batch_id, limit=limit))
