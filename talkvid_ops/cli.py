"""`talkvid`: every stage from the shell, and the entrypoint of the stage containers.

The stage commands come from the stage registry (`talkvid_ops.stages`). They and the other commands that live
beside a stage are imported only when invoked, so `talkvid status` never loads OpenCV or yt-dlp.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
from sqlalchemy.exc import SQLAlchemyError

from talkvid_ops import __version__
from talkvid_ops.commands import echo_json, get_context
from talkvid_ops.errors import TalkvidError
from talkvid_ops.stages import stage_commands


def _run_command() -> click.Command:
    from talkvid_ops.pipeline import run_command

    return run_command


def _source_group() -> click.Command:
    from talkvid_ops.crawl.cli import source

    return source


def _ingest_command() -> click.Command:
    from talkvid_ops.crawl.cli import ingest

    return ingest


def _validate_group() -> click.Command:
    from talkvid_ops.curate.validation.cli import validate

    return validate


def _clips_group() -> click.Command:
    from talkvid_ops.curate.clips_cli import clips

    return clips


def _models_group() -> click.Command:
    from talkvid_ops.models_check import models

    return models


# command name -> the function importing it, beside the registry's stage commands
OTHER_COMMANDS: dict[str, Callable[[], click.Command]] = {
    "run": _run_command,
    "source": _source_group,
    "ingest": _ingest_command,
    "validate": _validate_group,
    "models": _models_group,
    "clips": _clips_group,
}


def lazy_commands() -> dict[str, Callable[[], click.Command]]:
    return {**stage_commands(), **OTHER_COMMANDS}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *lazy_commands()])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = lazy_commands().get(name)
        return command() if command else super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="talkvid")
def cli() -> None:
    """Curate a talking-head video dataset: crawl, segment, score, decide, export.

    Where things live comes from the environment: TALKVID_DATABASE_URL (default: a SQLite file in the data
    dir), TALKVID_DATA_DIR (default ./talkvid-data) and TALKVID_CONFIG (a YAML file of stage parameters).
    """


@cli.command()
def init() -> None:
    """Create the catalog, or migrate it to the current schema (safe to run again)."""
    from talkvid_ops.catalog import db

    ctx = get_context(require_catalog=False)
    try:
        ctx.settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TalkvidError(f"cannot create the data dir {ctx.settings.data_dir}: {exc.strerror}") from None
    before = db.current_revision(ctx.settings.database_url)
    db.upgrade(ctx.settings.database_url)
    after = db.current_revision(ctx.settings.database_url)
    where = ctx.settings.redacted_database_url()
    if before == after:
        click.echo(f"catalog at {where} is up to date (revision {after})")
    else:
        click.echo(f"catalog at {where} migrated from {before or 'empty'} to {after}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--runs", default=10, show_default=True, help="How many recent runs to list.")
def status(as_json: bool, runs: int) -> None:
    """Counts per stage, failures with their class, and the last runs."""
    from talkvid_ops.catalog.queries import catalog_status

    ctx = get_context()
    with ctx.sessions() as session:
        report = catalog_status(session, recent_runs=runs)
    if as_json:
        echo_json(report)
        return
    click.echo(f"catalog: {ctx.settings.redacted_database_url()}")
    click.echo(f"data dir: {ctx.settings.data_dir}")
    for key in ("sources", "videos", "video_failures", "scorings", "clip_generations"):
        values = ", ".join(f"{k}={v}" for k, v in sorted(report[key].items())) or "none"
        click.echo(f"{key}: {values}")
    click.echo(f"videos gone since crawl: {report['videos_gone']}")
    click.echo(f"clips: {report['clips']}  scores: {report['scores']}  releases: {report['releases']}")
    for profile, counts in sorted(report["decisions"].items()):
        click.echo(f"decisions {profile}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    for kind, counts in report["failures"].items():
        click.echo(f"failures {kind}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    click.echo("last runs:" if report["runs"] else "last runs: none")
    for run in report["runs"]:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(run["counts"].items()))
        click.echo(f"  {run['started_at']}  {run['stage']:<10} {run['status']:<10} {counts}")


@cli.group()
def profiles() -> None:
    """Threshold profiles: list the shipped ones, show or validate one."""


@profiles.command("list")
@click.option("--stored", is_flag=True, help="List the profiles stored in the catalog (every version decided), as name@hash.")
def profiles_list(stored: bool) -> None:
    """List shipped profiles with their content hash, or the catalog's stored ones."""
    from talkvid_ops.curate.profiles import load_profile, shipped_profiles

    if stored:
        from talkvid_ops.curate.decide import stored_profiles
        from talkvid_ops.curate.profiles import override_text

        with get_context().sessions() as session:
            for row in stored_profiles(session):
                overrides = ", ".join(override_text(o) for o in row["overrides"])
                click.echo(f"{row['name']}@{row['content_hash']}\t{row['created_at']:%Y-%m-%d %H:%M}\t{overrides or row['description'][:60]}")
        return
    for name in sorted(shipped_profiles()):
        profile = load_profile(name)
        click.echo(f"{name}\t{profile.content_hash}\t{len(profile.criteria)} criteria\t{profile.description[:60]}")


@profiles.command("show")
@click.argument("profile")
def profiles_show(profile: str) -> None:
    """Print PROFILE (a shipped name, a YAML path or a stored name@hash), validated, with its content hash."""
    import yaml

    from talkvid_ops.curate.profiles import load_profile

    if "@" in profile:
        from talkvid_ops.curate.decide import stored_or_loaded

        with get_context().sessions() as session:
            loaded = stored_or_loaded(session, profile)
    else:
        loaded = load_profile(profile)
    click.echo(f"# {loaded.name} content_hash={loaded.content_hash}")
    click.echo(yaml.safe_dump(loaded.body(), sort_keys=False))


@profiles.command("validate")
@click.argument("profile")
def profiles_validate(profile: str) -> None:
    """Check PROFILE (a shipped name or a YAML path) against the schema; exit 1 naming the bad field."""
    from talkvid_ops.curate.profiles import load_profile

    loaded = load_profile(profile)
    click.echo(f"{loaded.name}: valid ({len(loaded.criteria)} criteria, content_hash {loaded.content_hash})")


def _setup_logging() -> None:
    """Our own messages (progress, crawl notes) on stderr; libraries stay at warnings; every line redacted."""
    import logging
    import os

    from talkvid_ops import redact

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("talkvid")
    logger.addHandler(handler)
    logger.setLevel(os.environ.get("TALKVID_LOG_LEVEL", "INFO").upper())
    logger.propagate = False
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")  # libraries' warnings, via root
    redact.install()


def _fail(message: str) -> None:
    from talkvid_ops.redact import redact

    click.echo(f"error: {redact(message)}", err=True)
    sys.exit(1)


def main() -> None:
    """Run the CLI: an error is one redacted line on stderr and exit 1 (with TALKVID_DEBUG=1 an unexpected one
    also prints its traceback, redacted)."""
    import os

    from talkvid_ops.redact import redacted_exception

    try:
        _setup_logging()
        code = cli(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TalkvidError as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:  # the catalog failed mid-command (connection lost, disk full): what ran is recorded
        from talkvid_ops.catalog.db import database_error

        _fail(f"the catalog failed: {database_error(exc)}")
    except Exception as exc:  # a bug or an unforeseen environment: never a raw traceback that may quote a secret
        if os.environ.get("TALKVID_DEBUG") == "1":
            click.echo(redacted_exception(exc, with_traceback=True), err=True, nl=False)
        _fail(f"unexpected {redacted_exception(exc)} (TALKVID_DEBUG=1 shows the traceback)")
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
