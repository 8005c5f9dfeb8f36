"""The curate stages from the shell: `talkvid decide`, `talkvid labels`, `talkvid speakers` and `talkvid bench`."""

from __future__ import annotations

import click

from talkvid_ops.commands import echo_json, get_context
from talkvid_ops.curate.clips_cli import bounds_text


@click.command("decide")
@click.option("--profile", "profile_name", metavar="NAME", help="A shipped profile or a YAML file (default: curate.profile).")
@click.option(
    "--diff",
    "diff_profiles",
    nargs=2,
    metavar="A B",
    help="List the clips that enter or leave going from profile A to B (shipped names, YAML files or stored name@hash), with the criterion and values that flipped each.",
)
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
        for sign, side, clip_ids in (("+", "a", result["enter"]), ("-", "b", result["leave"])):
            for clip_id in clip_ids:
                reasons = "; ".join(bounds_text(f) for f in result["why"].get(clip_id, [])) or "undecided (a score missing)"
                click.echo(f"{sign} {clip_id}  under {side}: {reasons}")
        return
    result = deciding.decide(ctx, profile_name or ctx.config.curate.profile)
    if as_json:
        echo_json(result)
        return
    click.echo(
        f"{result['profile']}@{result['content_hash']}: {result['clips']} clips, passed={result['passed']} "
        f"failed={result['failed']} undecided={result['undecided']} (run {result['run_id']})"
    )


@click.group()
def labels() -> None:
    """Labels with provenance: import human annotations, estimate, list."""


@labels.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
def labels_import(file: str) -> None:
    """Import human annotations from FILE (.csv with a header, .json or .jsonl).

    Rows name a subject (clip_id, video_id, platform_id [+ platform] or url) and either `name` + `value` columns
    or one column per label (language, age_group, gender, ethnicity, person, category; TalkVid's info keys such as
    "Age Group" work too). Languages: ISO 639-1/-3 codes (en, eng, en-US) or the bench's names (English ... Other).
    Human labels always take precedence over estimates. A row with an unknown subject or any invalid value is
    reported with its line and skipped whole.
    """
    from talkvid_ops.curate.labels.annotations import import_labels

    result = import_labels(get_context(), file)
    echo_json(result)


@labels.command("estimate")
@click.option("--profile", default=None, help="Only clips this profile passed (default: every clip).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many clips get face estimates.")
@click.option("--redo", is_flag=True, help="Estimate again clips that already have estimates.")
def labels_estimate(profile: str | None, limit: int | None, redo: bool) -> None:
    """Language labels from ASR and metadata; age group and gender (ethnicity if a model is configured) estimated
    on sampled faces, stored with provenance `estimated` and their confidence."""
    from talkvid_ops.curate.labels.stage import estimate_labels

    echo_json(estimate_labels(get_context(), profile=profile, limit=limit, redo=redo))


@labels.command("list")
@click.option("--name", default=None, help="Only this label (language, age_group, gender, ethnicity, person, category).")
@click.option("--subject", default=None, help="Every label of one clip or video id, best first.")
def labels_list(name: str | None, subject: str | None) -> None:
    """Stored labels: counts per name, value and provenance, or every label of one subject."""
    from talkvid_ops.curate.labels.resolution import label_summary, labels_of
    from talkvid_ops.curate.labels.vocabulary import label_name

    try:
        name = label_name(name) if name else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from None
    ctx = get_context()
    with ctx.sessions() as session:
        if subject:
            rows = labels_of(session, subject)
            for r in rows:
                click.echo(
                    f"{r['name']:<10} {r['value']:<26} {r['provenance']:<9} {r['confidence'] if r['confidence'] is not None else '-':<8} {r['subject']:<5} {r['origin']}"
                )
            if not rows:
                click.echo(f"no labels for {subject}")
            return
        rows = label_summary(session, name)
    for r in rows:
        click.echo(f"{r['name']:<10} {r['value']:<26} {r['provenance']:<9} {r['subject']:<5} {r['count']}")
    if not rows:
        what = f"no {name} labels" if name else "no labels"
        click.echo(f"{what} yet: run `talkvid labels estimate` or `talkvid labels import FILE`")


@click.command()
@click.option("--profile", default=None, help="Only clips this profile passed (default: every clip).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many new clips get face descriptors.")
@click.option("--redo", is_flag=True, help="Describe again clips that already have a descriptor.")
def speakers(profile: str | None, limit: int | None, redo: bool) -> None:
    """Person ids: dlib face descriptors of clips, clustered across clips and videos."""
    from talkvid_ops.curate.speakers import assign_speakers

    echo_json(assign_speakers(get_context(), profile=profile, limit=limit, redo=redo))


@click.group()
def bench() -> None:
    """The held-out bench: balanced by label strata, whole videos and speakers held out."""


@bench.command("draw")
@click.option("--spec", default=None, help="Shipped spec name or YAML path (default: curate.bench_spec, talkvid-bench).")
@click.option("--seed", type=int, default=None, help="Draw seed (default: curate.seed).")
@click.option("--profile", default=None, help="Threshold profile whose passed clips are drawn from (default: curate.profile).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
def bench_draw(spec: str | None, seed: int | None, profile: str | None, as_json: bool) -> None:
    """Draw the bench, store it in the catalog (what `talkvid export` writes) and report requested vs achieved
    clips per stratum, naming every shortfall."""
    from talkvid_ops.curate.bench import draw_bench, limits_note

    ctx = get_context()
    report = draw_bench(ctx, profile or ctx.config.curate.profile, spec, seed)
    if as_json:
        echo_json(report)
        return
    click.echo(f"bench {report['spec']} (seed {report['seed']}) from {report['profile']}: {report['achieved']} of {report['requested']} clips")
    for row in report["strata"]:
        click.echo(f"  {row['subbenchmark']:<10} {row['stratum']:<12} {row['achieved']:>4} / {row['requested']:<4} eligible {row['eligible']}")
    click.echo("shortfalls: " + ("none" if not report["shortfalls"] else ""))
    for line in report["shortfalls"]:
        click.echo(f"  {line}")
    note = limits_note(report)
    if note:
        click.echo(note)
