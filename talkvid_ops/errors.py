"""Errors a user can act on: each names what is wrong and where."""

from __future__ import annotations


class TalkvidError(Exception):
    """Base of every error we raise on purpose (the CLI prints these without a traceback)."""


class ConfigError(TalkvidError):
    """A config file, profile or spec does not validate; the message names the field."""


class ModelUnavailable(TalkvidError):
    """A model's weights are not where the operator's model dir (or the package that ships them) says they are."""


def format_validation_error(source: str, exc) -> ConfigError:
    """Turn a pydantic ValidationError into one ConfigError naming every offending field."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{where}: {err['msg']}")
    return ConfigError(f"{source}: " + "; ".join(lines))
