"""Politeness: a minimum interval between requests per egress, and exponential back-off.

The interval holds across threads and processes on one machine: the time of the last request of an egress lives
in a small file under the data dir, read and written under an exclusive lock (`fcntl.flock`). Across machines
the Airflow pool of the egress keeps concurrency down; each machine is its own egress anyway.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import struct
import threading
import time
from contextlib import contextmanager
from pathlib import Path

_STAMP = struct.Struct("<d")


def backoff_delay(level: int, base_s: float, max_s: float) -> float:
    """base * 2**level, capped: the wait after the level-th consecutive failure (level 0 is the first)."""
    return min(max_s, base_s * (2 ** max(0, level)))


def pause_until(now: dt.datetime, level: int, base_s: float, max_s: float, retry_after_s: float | None = None) -> dt.datetime:
    """When a throttled source may be tried again: the back-off, or the server's Retry-After when that is later."""
    delay = backoff_delay(level, base_s, max_s)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max_s))
    return now + dt.timedelta(seconds=delay)


class Spacer:
    """Keeps requests of one egress at least `interval_s` apart, in this process and any other using `state_dir`:
    a request waits until `interval_s` after the previous one was sent and after its response arrived."""

    def __init__(self, egress: str, interval_s: float, state_dir: Path):
        self.egress = egress
        self.interval_s = interval_s
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / (re.sub(r"[^A-Za-z0-9_.-]", "_", egress) + ".last-request")
        self._thread_lock = threading.Lock()
        self.waited_s = 0.0

    def wait(self) -> None:
        """Block until this egress may send a request, and claim that moment for it."""
        if self.interval_s <= 0:
            return
        with self._locked() as (last, stamp):
            # Wall-clock time, since monotonic clocks are not comparable across processes.
            delay = last + self.interval_s - time.time()
            if delay > 0:
                time.sleep(delay)
                self.waited_s += delay
            stamp(time.time())

    def mark(self) -> None:
        """The response came: count the interval from now, so that a slow answer does not shorten the next gap."""
        if self.interval_s <= 0:
            return
        with self._locked() as (last, stamp):
            stamp(max(last, time.time()))

    @contextmanager
    def _locked(self):
        """(time of the last request, a function to store a new one) under the egress's exclusive lock."""
        with self._thread_lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                raw = os.pread(fd, _STAMP.size, 0)
                last = _STAMP.unpack(raw)[0] if len(raw) == _STAMP.size else 0.0
                yield last, lambda when: os.pwrite(fd, _STAMP.pack(when), 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


class Spacers:
    """One spacer per egress, made on first use."""

    def __init__(self, state_dir: Path, interval_for):
        self.state_dir = state_dir
        self._interval_for = interval_for
        self._spacers: dict[str, Spacer] = {}

    def get(self, egress: str) -> Spacer:
        if egress not in self._spacers:
            self._spacers[egress] = Spacer(egress, self._interval_for(egress), self.state_dir)
        return self._spacers[egress]
