"""`talkvid clips`: why a clip passed or failed, and which clips a criterion failed."""

from __future__ import annotations

from typing import Any

import click

from talkvid_ops.commands import echo_json, get_context


def bounds_text(failure: dict[str, Any]) -> str:
    """`criterion: value (metric by backend) < min` or `> max`: the bound the value broke."""
    if failure["min"] is not None and failure["value"] < failure["min"]:
        bound = f"< min {failure['min']:g}"
    else:
        bound = f"> max {failure['max']:g}"
    return f"{failure['criterion']}: {failure['value']:g} {bound} ({failure['metric']} by {failure['backend']})"


@click.group()
def clips() -> None:
    """Inspect clips: why one passed or failed, which ones a criterion failed."""


@clips.command("show")
@click.argument("clip_id")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def clips_show(clip_id: str, as_json: bool) -> None:
    """Metadata, every score with its backend, the decision per stored profile (each failing criterion with value
    and bound), labels and lineage of CLIP_ID."""
    from talkvid_ops.curate.inspect import clip_report

    ctx = get_context()
    with ctx.sessions() as session:
        report = clip_report(session, clip_id)
    if as_json:
        echo_json(report)
        return
    click.echo(f"clip {report['clip_id']}")
    click.echo(f"  video {report['video_id']}  {report['start_time']:.2f}-{report['end_time']:.2f}s ({report['duration']:.2f}s at {report['fps']:g} fps)")
    click.echo(f"  language {report['language'] or '-'}  speech coverage {report['speech_coverage'] if report['speech_coverage'] is not None else '-'}")
    click.echo("scores:" if report["scores"] else "scores: none")
    for s in report["scores"]:
        click.echo(f"  {s['metric']:<28} {s['backend']:<12} {s['value'] if s['value'] is not None else '-'}")
    click.echo("decisions:" if report["decisions"] else "decisions: none (run `talkvid decide`)")
    for d in report["decisions"]:
        missing = f"  missing: {', '.join(d['missing'])}" if d["missing"] else ""
        click.echo(f"  {d['profile']}: {d['status']}{missing}")
        for failure in d["failures"]:
            click.echo(f"    {bounds_text(failure)}")
    click.echo("labels:" if report["labels"] else "labels: none")
    for label in report["labels"]:
        click.echo(f"  {label['name']:<10} {label['value']:<20} {label['provenance']:<9} {label['subject']:<5} {label['origin']}")
    click.echo("lineage:")
    for key, value in report["lineage"].items():
        click.echo(f"  {key}: {value if value is not None else '-'}")


@clips.command("list")
@click.option("--profile", required=True, metavar="NAME", help="A shipped profile, a YAML file or a stored name@hash.")
@click.option("--failed-by", "criterion", default=None, metavar="CRITERION", help="Only clips failing this criterion.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many clips.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def clips_list(profile: str, criterion: str | None, limit: int | None, as_json: bool) -> None:
    """The clips PROFILE failed, each with its failing criteria, values and bounds."""
    from talkvid_ops.curate.inspect import failed_clips

    ctx = get_context()
    with ctx.sessions() as session:
        rows = failed_clips(session, profile, criterion, limit)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        click.echo(f"{row['clip_id']}  " + "; ".join(bounds_text(f) for f in row["failures"]))
    if not rows:
        click.echo("no failed clips" + (f" with {criterion} failing" if criterion else ""))
