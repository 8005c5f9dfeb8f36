"""Batches: the unit of mapped work. A DAG plans batches of item ids, XCom carries the batch ids, and a task
(in-process or in a container) runs `talkvid <stage> --batch ID`, reading its items from here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.models import Batch
from talkvid_ops.catalog.status import BatchStatus
from talkvid_ops.catalog.upsert import upsert
from talkvid_ops.errors import TalkvidError
from talkvid_ops.ids import make_id


def make_batches(
    session: Session, stage: str, item_ids: Sequence[str], size: int, params: dict[str, Any] | None = None, max_batches: int | None = None
) -> list[str]:
    """Split `item_ids` into batches of at most `size`; the same items and params give the same batch ids.

    Returns every batch id in order, but stores only the first `max_batches`: the rest are what a bounded plan
    defers, and the next plan groups them again, so storing them would leave rows nobody runs.
    """
    if size < 1:
        raise TalkvidError(f"batch size must be at least 1, got {size}")
    params = params or {}
    ids: list[str] = []
    rows = []
    for start in range(0, len(item_ids), size):
        items = sorted(item_ids[start : start + size])
        batch_id = make_id("batch", stage, items, params)
        ids.append(batch_id)
        rows.append(dict(id=batch_id, stage=stage, items=items, params=params, status=BatchStatus.PENDING))
    upsert(session, Batch, rows[:max_batches] if max_batches else rows, ["id"], update=[])
    return ids


def batch_items(session: Session, batch_id: str, stage: str) -> list[str]:
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise TalkvidError(f"no batch {batch_id!r}")
    if batch.stage != stage:
        raise TalkvidError(f"batch {batch_id!r} belongs to stage {batch.stage!r}, not {stage!r}")
    return list(batch.items)


def chosen_items(
    session: Session, stage: str, batch_id: str | None, item_ids: Sequence[str] | None, pending: Callable[[], list[str]], limit: int | None
) -> list[str]:
    """What one run of a batch stage works on: the batch's items, else the given ids (each once), else `pending()`;
    at most `limit`."""
    if batch_id is not None:
        ids = batch_items(session, batch_id, stage)
    elif item_ids is not None:
        ids = list(dict.fromkeys(item_ids))
    else:
        ids = pending()
    return ids[:limit] if limit is not None else ids


def mark_batch_done(session: Session, batch_id: str, run_id: str) -> None:
    batch = session.get(Batch, batch_id)
    if batch is not None:
        batch.status, batch.run_id = BatchStatus.DONE, run_id


def pending_batches(session: Session, stage: str) -> list[str]:
    return list(session.scalars(select(Batch.id).where(Batch.stage == stage, Batch.status == BatchStatus.PENDING).order_by(Batch.created_at, Batch.id)))
