"""Alembic environment: the catalog's own migrations, driven from `talkvid init` or `alembic` itself."""

from __future__ import annotations

from alembic import context

from talkvid_ops.catalog.db import get_engine
from talkvid_ops.catalog.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection") or get_engine(config.get_main_option("sqlalchemy.url"))
    with connectable.connect() as connection:
        # render_as_batch: SQLite cannot ALTER most things in place; batch mode rebuilds the table.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
