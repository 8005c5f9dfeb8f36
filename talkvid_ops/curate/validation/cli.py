"""`talkvid validate`: borderline sets for people to judge, their labels, the filter's agreement with them, and
bounds calibrated on them."""

from __future__ import annotations

import shlex
import subprocess

import click

from talkvid_ops.commands import echo_json, get_context
from talkvid_ops.config import display_path
from talkvid_ops.curate.validation import draw as drawing
from talkvid_ops.curate.validation.annotations import ORIGIN_CLI, blind_items, check_annotator, find_set, record

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


@click.group("validate")
def validate() -> None:
    """Validate the filters with people: draw borderline clips, label them, measure agreement, calibrate bounds."""


@validate.command("draw")
@click.option("--profile", "profile_name", metavar="NAME", help="A shipped profile or a YAML file (default: curate.profile).")
@click.option("--criterion", required=True, help="The profile's criterion to validate.")
@click.option("--n", "size", type=click.IntRange(min=2), default=drawing.DEFAULT_SIZE, show_default=True, help="Clips in the set: half passes, half fails.")
@click.option("--backend", help="The criterion's rule to judge, by backend (default: its only rule, or the first one with scores).")
@click.option("--per-video", type=click.IntRange(min=1), default=drawing.DEFAULT_PER_VIDEO, show_default=True, help="At most this many clips of one video.")
@click.option("--seed", type=int, default=drawing.DEFAULT_SEED, show_default=True, help="Breaks ties in distance, and orders what annotators see.")
@click.option("--name", help="The set's name (default: from profile, criterion, backend, n, cap and seed).")
@json_option
def draw_command(profile_name, criterion, size, backend, per_video, seed, name, as_json) -> None:
    """Store the clips nearest CRITERION's bound on both sides, from stored scores (the rule: `talkvid_ops.curate.validation.draw`)."""
    ctx = get_context()
    result = drawing.draw(ctx, profile_name or ctx.config.curate.profile, criterion, n=size, backend=backend, per_video=per_video, seed=seed, name=name)
    if as_json:
        echo_json(result)
        return
    state = "already stored, unchanged" if result["existing"] else "stored"
    click.echo(f"{result['name']} ({state}): {result['items']} clips of {result['backend']} {result['metric']} (set {result['set_id']})")
    for side in ("pass", "fail"):
        click.echo(f"  {side}: {result[f'{side}_drawn']} of {result[f'{side}_requested']} requested ({result[f'{side}_eligible']} eligible)")


@validate.command("list")
@json_option
def list_command(as_json: bool) -> None:
    """The validation sets with their items and annotators."""
    from talkvid_ops.curate.validation.agreement import validation_summary

    ctx = get_context()
    with ctx.sessions() as session:
        summary = validation_summary(session)
    if as_json:
        echo_json([{k: s[k] for k in ("set_id", "name", "profile", "criterion", "backend", "items", "labelled", "annotators")} for s in summary])
        return
    for s in summary:
        people = ", ".join(f"{who} ({n})" for who, n in s["annotators"].items()) or "nobody yet"
        click.echo(f"{s['name']}\t{s['criterion']}/{s['backend']}\t{s['items']} clips, {s['labelled']} labelled\tannotators: {people}")


@validate.command("annotate")
@click.argument("set_ref", metavar="SET")
@click.option("--annotator", required=True, help="Your name: your labels are kept apart from everyone else's.")
@click.option(
    "--player",
    metavar="COMMAND",
    help="Run this for each clip; {path}, {start} and {end} (seconds) are filled in, e.g. 'mpv --start={start} --end={end} {path}'.",
)
def annotate_command(set_ref: str, annotator: str, player: str | None) -> None:
    """Label the clips of SET you have not labelled: each clip's file and time range is printed (or played with
    --player), then answer a (accept), r (reject), s (skip) or q (quit). No score or decision is shown."""
    annotator = check_annotator(annotator)
    ctx = get_context()
    with ctx.sessions() as session:
        validation_set = find_set(session, set_ref)
        items = blind_items(session, validation_set.id, annotator)
    todo = [item for item in items if item.own_verdict is None]
    click.echo(f"{validation_set.name}: {len(items) - len(todo)} of {len(items)} clips labelled by {annotator}; {len(todo)} to go")
    labelled = 0
    for item in todo:
        video = ctx.settings.media_path(item.video_path)
        click.echo(f"[{item.position}/{len(items)}] {display_path(video)}  {item.start_time:.3f}-{item.end_time:.3f} s  (clip {item.clip_id})")
        if player:
            command = [part.format(path=video, start=item.start_time, end=item.end_time) for part in shlex.split(player)]
            subprocess.run(command, check=False)
        try:
            answer = click.prompt("accept, reject, skip or quit [a/r/s/q]", type=click.Choice(["a", "r", "s", "q"]), show_choices=False)
        except click.exceptions.Abort:  # end of input
            break
        if answer == "q":
            break
        if answer == "s":
            continue
        with ctx.sessions() as session:
            record(session, item.item_id, annotator, answer, ORIGIN_CLI)
            session.commit()
        labelled += 1
    click.echo(f"{labelled} labels recorded for {annotator}")


@validate.command("stats")
@click.argument("set_ref", metavar="SET")
@json_option
def stats_command(set_ref: str, as_json: bool) -> None:
    """The filter's accuracy, precision, recall and F1 against the majority label, and Cohen's kappa between
    annotators, with 95 % intervals (definitions: `talkvid_ops.curate.validation.agreement`)."""
    from talkvid_ops.curate.validation.agreement import set_statistics, statistics_lines

    ctx = get_context()
    with ctx.sessions() as session:
        stats = set_statistics(session, find_set(session, set_ref))
    if as_json:
        echo_json(stats)
        return
    for line in statistics_lines(stats):
        click.echo(line)


@validate.command("calibrate")
@click.argument("set_ref", metavar="SET")
@click.option("--target-precision", type=click.FloatRange(0, 1), help="Reach this precision (then the highest recall) instead of the highest F1.")
@click.option("--name", help="The proposed profile's name (default: <profile>.calibrated).")
@json_option
def calibrate_command(set_ref: str, target_precision: float | None, name: str | None, as_json: bool) -> None:
    """Print a proposed profile with SET's rule bound calibrated on its labels, and what it would change in the
    catalog. Nothing is applied: save the output to a file to use it (`talkvid decide --profile FILE`)."""
    from talkvid_ops.curate.validation.calibration import calibrate

    result = calibrate(get_context(), set_ref, target_precision=target_precision, name=name)
    if as_json:
        echo_json({k: v for k, v in result.items() if k != "yaml"})
        return
    click.echo(result["yaml"], nl=False)


@validate.command("export")
@click.argument("set_ref", metavar="SET")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The CSV file to write.")
@click.option("--annotator", help="Only this person's labels (a sheet for them to fill in).")
def export_command(set_ref: str, out: str, annotator: str | None) -> None:
    """Write SET's clips and labels as CSV (a sheet outside tools can fill in and `import` reads back)."""
    from talkvid_ops.curate.validation.annotations import export_csv

    echo_json(export_csv(get_context(), set_ref, out, annotator=annotator))


@validate.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_command(path: str) -> None:
    """Read labels from a CSV sheet (columns set, clip_id or item_id, annotator, verdict); origin import:<file name>."""
    from talkvid_ops.curate.validation.annotations import import_csv

    echo_json(import_csv(get_context(), path))
