"""Catalog reads by lists of ids, in chunks, so that an IN (...) list stays within every database's limits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy.orm import Session

CHUNK = 5000  # ids per IN (...) query


def chunks(items: list[str], size: int = CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def select_in(session: Session, query, column, ids: Iterable[str] | None) -> list:
    """The rows of `query` whose `column` is one of `ids` (every row when `ids` is None)."""
    if ids is None:
        return list(session.execute(query).all())
    return [row for chunk in chunks(sorted(set(ids))) for row in session.execute(query.where(column.in_(chunk))).all()]
