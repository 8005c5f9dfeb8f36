"""`talkvid decide`: apply a threshold profile to stored scores, or compare two profiles."""

from __future__ import annotations

import click

from talkvid_ops.commands import echo_json, get_context


@click.command("decide")
@click.option("--profile", "profile_name", metavar="NAME", help="A shipped profile or a YAML file (default: curate.profile).")
@click.option("--diff", "diff_profiles", nargs=2, metavar="A B", help="List the clips that enter or leave going from profile A to B.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def decide_command(profile_name: str | None, diff_profiles: tuple[str, str] | None, as_json: bool) -> None:
    """Decide every clip under a threshold profile (set-based SQL over stored scores; no model runs).

    A clip passes when every criterion is met, fails when any is not (each failing criterion is stored with its
    value, bounds and the backend whose score was judged), and is undecided when a needed score is missing.
    """
    from talkvid_ops.curate import decide as deciding

    if diff_profiles and profile_name:
        raise click.UsageError("--profile and --diff exclude each other")
    ctx = get_context()
    if diff_profiles:
        result = deciding.diff(ctx, *diff_profiles)
        if as_json:
            echo_json(result)
            return
        for side in ("a", "b"):
            d = result[side]
            click.echo(f"{side}: {d['profile']}@{d['content_hash']}  passed={d['passed']} failed={d['failed']} undecided={d['undecided']}")
        click.echo(f"enter: {len(result['enter'])}  leave: {len(result['leave'])}")
        for clip_id in result["enter"]:
            click.echo(f"+ {clip_id}")
        for clip_id in result["leave"]:
            click.echo(f"- {clip_id}")
        return
    result = deciding.decide(ctx, profile_name or ctx.config.curate.profile)
    if as_json:
        echo_json(result)
        return
    click.echo(
        f"{result['profile']}@{result['content_hash']}: {result['clips']} clips, passed={result['passed']} "
        f"failed={result['failed']} undecided={result['undecided']} (run {result['run_id']})"
    )
