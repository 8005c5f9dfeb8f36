"""Progress of long stage loops: a bar on an interactive terminal, periodic log lines elsewhere (Airflow task
logs, containers), so an operator always sees how far a batch is and how fast it goes."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("talkvid.progress")
LOG_EVERY_S = 15.0


def track(items: Iterable[T], total: int | None, label: str, *, stream=None, log_every_s: float = LOG_EVERY_S) -> Iterator[T]:
    """Yield `items`, reporting progress as `label: done/total (rate/s, eta)`."""
    stream = stream or sys.stderr
    if total and getattr(stream, "isatty", lambda: False)():
        import click

        with click.progressbar(items, length=total, label=label, file=stream, show_pos=True, show_eta=True) as bar:
            yield from bar
        return
    started = last = time.monotonic()
    for done, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if now - last >= log_every_s or done == total:
            last = now
            log.info(describe(label, done, total, now - started))


def describe(label: str, done: int, total: int | None, elapsed: float) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    text = f"{label}: {done}/{total if total is not None else '?'} ({rate:.2f}/s"
    if total and rate > 0 and done < total:
        text += f", eta {(total - done) / rate:.0f} s"
    return text + ")"
