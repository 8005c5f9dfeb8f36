"""Engines, sessions and migrations for the catalog (SQLite embedded, PostgreSQL in production)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from talkvid_ops.errors import TalkvidError
from talkvid_ops.redact import redact

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # SQLite ignores foreign keys unless asked, per connection
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (the UI, `status`) never block a writing stage
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A datetime read from the catalog, in UTC: SQLite hands back naive datetimes, and everything we store is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


@lru_cache(maxsize=16)
def get_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # pre_ping: a worker whose connection died between tasks reconnects instead of failing the task.
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    return engine


def session_factory(database_url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(database_url), expire_on_commit=False)


@contextmanager
def session_scope(database_url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(database_url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # '%' is ConfigParser interpolation syntax; passwords may contain it.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(database_url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(database_url: str) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()


class CatalogUnavailable(TalkvidError):
    """The catalog cannot be used: unreachable, missing, not initialised, or at another schema revision."""

    def __init__(self, reason: str, catalog: str = "") -> None:
        super().__init__(f"catalog at {catalog}: {reason}" if catalog else reason)
        self.reason = reason
        self.catalog = catalog


def database_error(exc: BaseException) -> str:
    """The driver's first line (no SQL, no URL, no secret), e.g. 'connection to server at ... failed: Connection refused'."""
    message = str(getattr(exc, "orig", None) or exc).strip()
    return redact(message.splitlines()[0]) if message else type(exc).__name__


@lru_cache(maxsize=1)
def _code_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def check_catalog(database_url: str) -> None:
    """Raise CatalogUnavailable unless the catalog exists, answers and is at this code's schema revision.

    Never creates anything: connecting to a missing SQLite file would make an empty one.
    """
    from sqlalchemy.exc import SQLAlchemyError

    try:
        url = make_url(database_url)
    except (SQLAlchemyError, ValueError):  # ValueError: a port that is not a number
        raise CatalogUnavailable("TALKVID_DATABASE_URL is not a database URL", "(unparseable URL, not shown)") from None
    where = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" and not Path(url.database).exists():
        raise CatalogUnavailable(f"no catalog file at {url.database}: run `talkvid init`", where)
    try:
        current = current_revision(database_url)
    except (SQLAlchemyError, ImportError) as exc:  # ImportError: the URL names a driver that is not installed
        raise CatalogUnavailable(f"cannot reach the catalog: {database_error(exc)}", where) from None
    expected = _code_head()
    if current is None:
        raise CatalogUnavailable("the catalog is not initialised: run `talkvid init`", where)
    if current != expected:
        raise CatalogUnavailable(f"the catalog schema is at revision {current}, this code expects {expected}: run `talkvid init`", where)
