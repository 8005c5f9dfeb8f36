"""What every `talkvid` command shares: the stage context from the environment, JSON output, and the options of the
stage commands that work over batches. Stage CLIs import this module, never `talkvid_ops.cli` (which imports them).
"""

from __future__ import annotations

import json

import click


def get_context(require_catalog: bool = True):
    """The stage context from the environment (TALKVID_DATABASE_URL, TALKVID_DATA_DIR, TALKVID_CONFIG); unless told
    otherwise, after checking that the catalog answers and is initialised (one clear error, never a traceback)."""
    from talkvid_ops.catalog.db import check_catalog
    from talkvid_ops.context import Context

    ctx = Context.from_env()
    if require_catalog:
        check_catalog(ctx.settings.database_url)
    return ctx


def echo_json(payload) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def batch_stage_command(name: str, item: str, item_help: str, plan_help: str):
    """A stage command over batches of `item`s (segment: videos, score: clips): --<item> (repeatable), --batch,
    --limit, --plan-batches and --size, passed to the command as ids, batch_id, limit, plan and size."""
    verb = name.capitalize()
    options = [
        click.option(f"--{item}", "ids", multiple=True, metavar="ID", help=item_help),
        click.option("--batch", "batch_id", metavar="ID", help=f"{verb} exactly the {item}s of this batch."),
        click.option("--limit", type=click.IntRange(min=1), help=f"{verb} at most this many {item}s."),
        click.option("--plan-batches", "plan", is_flag=True, help=plan_help),
        click.option("--size", type=click.IntRange(min=1), help=f"With --plan-batches: {item}s per batch (default: {name}.batch_size)."),
    ]

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return click.command(name)(func)

    return decorate


def run_batch_stage(plan_batches, run, item: str, ids: tuple[str, ...], batch_id: str | None, limit: int | None, plan: bool, size: int | None) -> None:
    """What a `batch_stage_command` does: print the planned batch ids (`plan_batches(ctx, size=)`), or run the stage
    (`run(ctx, <item>_ids=, batch_id=, limit=)`) on one batch, the chosen items or everything pending and print its counts."""
    if batch_id and ids:
        raise click.UsageError(f"--batch and --{item} exclude each other")
    if size and not plan:
        raise click.UsageError("--size goes with --plan-batches")
    ctx = get_context()
    if plan:
        echo_json({"batches": plan_batches(ctx, size=size)})
        return
    echo_json(run(ctx, **{f"{item}_ids": list(ids) or None}, batch_id=batch_id, limit=limit))
