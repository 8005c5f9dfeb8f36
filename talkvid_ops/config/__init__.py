"""Typed settings: environment variables for where things live, a YAML file for stage parameters."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote_from_bytes, unquote_to_bytes

from pydantic import BaseModel, ConfigDict

from talkvid_ops.config.caption import CaptionConfig
from talkvid_ops.config.crawl import CrawlConfig
from talkvid_ops.config.curate import CurateConfig
from talkvid_ops.config.export import ExportConfig
from talkvid_ops.config.runner import RunnerConfig
from talkvid_ops.config.score import ScoreConfig
from talkvid_ops.config.segment import SegmentConfig
from talkvid_ops.errors import ConfigError
from talkvid_ops.redact import redact, register_url_password
from talkvid_ops.yamlfile import load_yaml_model, shipped_yaml

ENV_DATABASE_URL = "TALKVID_DATABASE_URL"
ENV_DATA_DIR = "TALKVID_DATA_DIR"
ENV_CONFIG_FILE = "TALKVID_CONFIG"
ENV_PRESET = "TALKVID_PRESET"
DEFAULT_DATA_DIR = "./talkvid-data"
FILE_URI = "file://"


def stored_path(path: str | os.PathLike) -> str:
    """A path as the catalog stores it: as it is when it is UTF-8 text; otherwise (a file name that is not UTF-8,
    which os.fsdecode keeps as lone surrogates and no database text column takes) as its file:// URI, whose %XX
    escapes keep every byte. `path_from_stored` (and so `Settings.media_path`) turns either back into the path."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return FILE_URI + quote_from_bytes(os.fsencode(text))
    return text


def path_from_stored(stored: str) -> Path:
    """The path a `stored_path` value stands for."""
    if stored.startswith(FILE_URI):
        return Path(os.fsdecode(unquote_to_bytes(stored[len(FILE_URI) :])))
    return Path(stored)


def display_path(path: str | os.PathLike) -> str:
    """A path for people and messages: bytes that are not UTF-8 shown as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class PipelineConfig(BaseModel):
    """Stage parameters, from the YAML file named by TALKVID_CONFIG (every key optional)."""

    model_config = ConfigDict(extra="forbid")

    crawl: CrawlConfig = CrawlConfig()
    segment: SegmentConfig = SegmentConfig()
    score: ScoreConfig = ScoreConfig()
    caption: CaptionConfig = CaptionConfig()
    curate: CurateConfig = CurateConfig()
    export: ExportConfig = ExportConfig()
    runner: RunnerConfig = RunnerConfig()

    @classmethod
    def from_yaml(cls, path: str | Path) -> PipelineConfig:
        return load_yaml_model(cls, path, "a mapping of stage names", kind="config file", empty_ok=True)

    @classmethod
    def from_preset(cls, preset: str | None, path: str | Path | None = None) -> PipelineConfig:
        """A shipped preset (or None) with the config file at `path` (or None) over it, key by key."""
        body: dict = {}
        if preset:
            presets = shipped_presets()
            if preset not in presets:
                raise ConfigError(f"unknown preset {preset!r} (shipped: {', '.join(sorted(presets))})")
            body = _merged(body, cls.from_yaml(presets[preset]).model_dump(exclude_unset=True))
        if path:
            body = _merged(body, cls.from_yaml(path).model_dump(exclude_unset=True))
        return cls.model_validate(body)


def shipped_presets() -> dict[str, Path]:
    return shipped_yaml("talkvid_ops.config.presets")


def _merged(base: dict, over: dict) -> dict:
    """`over` on top of `base`, mappings merged key by key."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _check_database_url(database_url: str) -> None:
    """A URL SQLAlchemy cannot parse fails here, once, with the password hidden (not deep inside the first query)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(database_url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number (an unquoted ':' or '@' in the password)
        # not the parser's message: it quotes a piece of the password ("invalid literal for int(): 'Secret@host'")
        hint = "; quote '@', ':' and '/' in the password as %40, %3A, %2F" if "@" in database_url else ""
        raise ConfigError(f"{ENV_DATABASE_URL} is not a database URL: {redact(database_url)}{hint}") from None


class Settings(BaseModel):
    """Where the catalog and the media live, and the stage parameters."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path
    database_url: str
    config_file: Path | None = None
    preset: str | None = None
    pipeline: PipelineConfig = PipelineConfig()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        data_dir = Path(env.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR).expanduser().resolve()
        database_url = env.get(ENV_DATABASE_URL) or f"sqlite:///{data_dir / 'catalog.sqlite'}"
        if database_url.startswith("postgresql://"):
            # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; we ship psycopg2.
            database_url = "postgresql+psycopg2://" + database_url[len("postgresql://") :]
        register_url_password(database_url)  # from here on, no log line or error shows it
        _check_database_url(database_url)
        config_file, preset = env.get(ENV_CONFIG_FILE), env.get(ENV_PRESET) or None
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            config_file=Path(config_file) if config_file else None,
            preset=preset,
            pipeline=PipelineConfig.from_preset(preset, config_file),
        )

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    def media_path(self, stored: str | None) -> Path | None:
        """A stored media path (see `stored_path`) as a file on this host: relative paths live under the data dir."""
        if not stored:
            return None
        path = path_from_stored(stored).expanduser()
        return path if path.is_absolute() else self.data_dir / path

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def redacted_database_url(self) -> str:
        """The catalog URL with any password hidden, for logs and `talkvid status`."""
        from sqlalchemy.engine import make_url

        return make_url(self.database_url).render_as_string(hide_password=True)
