"""Upserts on natural keys that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, delete, or_, select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Base, Lease, Run, utcnow
from talkvid_ops.catalog.status import RunStatus

# Bound parameters per statement: SQLite allows 32766, PostgreSQL 65535.
_MAX_PARAMS = 30000


def _insert_for(session: Session):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - we support the two above
        raise NotImplementedError(f"upsert is not implemented for {dialect}")
    return insert


def upsert(
    session: Session,
    model: type[Base],
    rows: Iterable[dict[str, Any]],
    conflict: Sequence[str],
    update: Sequence[str] | None = None,
) -> int:
    """Insert rows; on a conflict on `conflict` columns update `update` columns (all non-key ones by default;
    an empty list means "keep the existing row"). Returns the number of rows sent."""
    rows = list(rows)
    if not rows:
        return 0
    insert = _insert_for(session)
    table = model.__table__
    columns = list(rows[0].keys())
    if update is None:
        update = [c for c in columns if c not in conflict and c != "id" and c != "created_at"]
    chunk = max(1, _MAX_PARAMS // max(1, len(columns)))
    for start in range(0, len(rows), chunk):
        stmt = insert(table).values(rows[start : start + chunk])
        if update:
            stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_={c: stmt.excluded[c] for c in update})
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict))
        session.execute(stmt)
    return len(rows)


def claim(session: Session, query: Select, limit: int | None = None) -> list:
    """Rows of `query` locked for this worker; parallel PostgreSQL workers skip each other's rows.

    SQLite has a single writer, so a plain select is already exclusive within the transaction.
    """
    if limit is not None:
        query = query.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def take_lease(session: Session, stage: str, item_id: str, holder: str, seconds: float) -> bool:
    """Hold `item_id` of `stage` for `seconds` unless another holder's lease on it is still running (a lease of a
    run marked abandoned is not); True when taken. One atomic insert-or-update on both databases (two workers racing for an item: one wins); commit soon
    after, since the row stays locked until then."""
    now = utcnow()
    insert = _insert_for(session)
    stmt = insert(Lease).values(stage=stage, item_id=item_id, holder=holder, expires_at=now + dt.timedelta(seconds=seconds))
    stmt = stmt.on_conflict_do_update(
        index_elements=["stage", "item_id"],
        set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
        where=or_(Lease.expires_at < now, Lease.holder == holder, Lease.holder.in_(select(Run.id).where(Run.status == RunStatus.ABANDONED))),
    ).returning(Lease.item_id)
    return session.execute(stmt).first() is not None


def release_lease(session: Session, stage: str, item_id: str, holder: str) -> None:
    session.execute(delete(Lease).where(Lease.stage == stage, Lease.item_id == item_id, Lease.holder == holder))
