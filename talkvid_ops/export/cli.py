"""`talkvid export`: the release stage from the shell (it writes what the catalog holds: decisions, labels, speakers,
the stored bench draw)."""

from __future__ import annotations

import click

from talkvid_ops.commands import echo_json, get_context
from talkvid_ops.config.export import ALL_FORMATS


def with_export_options(ctx, **options):
    """`ctx` with the export options given on the command line (None: as configured) in its export config."""
    chosen = {key: value for key, value in options.items() if value is not None}
    if chosen:
        ctx.config.export = ctx.config.export.model_copy(update=chosen)
    return ctx


@click.command()
@click.option("--profile", default=None, help="Threshold profile (shipped name or YAML path; default: curate.profile).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Release directory.")
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(ALL_FORMATS),
    help="Repeatable; default: every manifest, cut clips and shards (crops only when named).",
)
@click.option("--bench-spec", default=None, help="Shipped spec name or YAML path (default: curate.bench_spec).")
@click.option("--seed", type=int, default=None, help="Bench draw seed (default: curate.seed).")
@click.option("--name", default=None, help="Release name (default: profile, hash, spec and seed).")
@click.option("--strict", is_flag=True, default=None, help="talkvid.json in TalkVid's record shape only (no talkvid_provenance).")
@click.option("--generation", default=None, help="Clip generation: current (default: each video's newest segmentation) or a segment params hash.")
def export(profile: str | None, out_dir: str, formats: tuple[str, ...], bench_spec: str | None, seed: int | None, name: str | None,
           strict: bool | None, generation: str | None) -> None:  # fmt: skip
    """Write a release: talkvid.json, clips.parquet/.jsonl, clip files, crops, WebDataset shards, bench manifests,
    the dataset card and the HTML report."""
    from talkvid_ops.export.release import export as run_export

    ctx = with_export_options(get_context(), strict=strict, generation=generation)
    result = run_export(ctx, profile or ctx.config.curate.profile, out_dir, formats=list(formats) or None, bench_spec=bench_spec,
                        seed=ctx.config.curate.seed if seed is None else seed, name=name)  # fmt: skip
    echo_json(result)
